/**
 * How `npm start` shows its services' log lines: as they are (JSON, one
 * object per line) when its output goes to a file or a pipe, readable
 * (pino-pretty: time, level, message, then the fields) on a terminal.
 * MESH_LOG_FORMAT=json|pretty chooses either way.
 */
import { prettyFactory } from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

export function logFormat(env: NodeJS.ProcessEnv, isTty: boolean): LogFormat {
  const asked = env.MESH_LOG_FORMAT;
  if (asked === undefined || asked === '') return isTty ? 'pretty' : 'json';
  if (asked === 'json' || asked === 'pretty') return asked;
  throw new Error(`MESH_LOG_FORMAT must be json or pretty, got ${JSON.stringify(asked)}`);
}

/** Renders one line of a service's output, prefixed with the service's name on each line it becomes. */
export function lineRenderer(format: LogFormat, colorize: boolean): (name: string, line: string) => string {
  const pretty =
    format === 'pretty'
      ? prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service,instance', messageKey: 'msg', singleLine: true })
      : undefined;
  return (name, line) => {
    const prefix = `[${name.padEnd(10)}] `;
    // Lines that are not a JSON log record (a stack a crash printed, say) pass as they are.
    const text = pretty && line.startsWith('{') ? pretty(line).replace(/\n$/, '') : line;
    return `${text
      .split('\n')
      .map((l) => prefix + l)
      .join('\n')}\n`;
  };
}
