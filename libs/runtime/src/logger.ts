/** Structured JSON logs, one object per line on stdout. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function errorFields(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return fields;
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? { name: v.name, message: v.message } : v;
  return out;
}

/**
 * `dynamic` adds fields at each call (the active trace and span ids, say).
 */
export function createLogger(
  base: LogFields,
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stdout.write(l),
  dynamic?: () => LogFields,
): Logger {
  const min = RANK[level];
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    const record: LogFields = { time: '', level: lvl, ...base, ...dynamic?.(), msg, ...errorFields(fields) };
    // A field named time, level or msg must not overwrite the record's own.
    record.time = new Date().toISOString();
    record.level = lvl;
    record.msg = msg;
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, level, write, dynamic),
  };
}
