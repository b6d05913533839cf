/**
 * Secrets never reach a log line, an error or a status page: a NATS URL may
 * carry `user:password@` or `token@`, and is shown with that part masked.
 */

const UserInfo = /(\b[a-z][a-z0-9+.-]*:\/\/)([^@/\s,]+)@/gi;

/** `nats://app:s3cret@host:4222` -> `nats://app:***@host:4222`; `nats://tok@host` -> `nats://***@host`. */
export function redactUrl(text: string): string {
  return text.replace(UserInfo, (_all, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return colon >= 0 ? `${scheme}${info.slice(0, colon)}:***@` : `${scheme}***@`;
  });
}
