/**
 * Handler errors. A handler throws a RetryableError when trying again may
 * succeed (a timeout, a busy dependency); the runtime retries it with backoff
 * up to the handler's limit, then dead-letters the event. Any other error is
 * permanent: the event is dead-lettered at once.
 */
export class RetryableError extends Error {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

/** An event a handler can never process (bad data, a broken invariant). */
export class PermanentError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}

/** Thrown at start-up when two handlers (or aggregations) share a name. */
export class DuplicateNameError extends Error {
  constructor(kind: string, name: string) {
    super(`two ${kind}s are named '${name}'; each ${kind} needs a unique name`);
    this.name = 'DuplicateNameError';
  }
}

/** Thrown at start-up for a handler or aggregation definition that cannot work. */
export class DefinitionError extends Error {
  constructor(kind: string, name: string, problem: string) {
    super(`${kind} '${name}': ${problem}`);
    this.name = 'DefinitionError';
  }
}
