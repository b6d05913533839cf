/**
 * Structured JSON logs through pino, one object per line on stdout:
 * `{"level":"info","time":"<ISO>",<base>,<trace ids>,"msg":...,<fields>}`.
 * An Error in the fields is written with its type, message, stack and
 * cause chain. `npm start` renders the lines readably (pino-pretty).
 */
import pino, { type Logger as PinoLogger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Keys of the record itself: a field of the same name is kept under `field_<name>`, never overwriting them. */
const RESERVED = new Set(['time', 'level', 'msg']);

function record(msg: string, fields: LogFields | undefined): LogFields {
  // msg first, so a line reads `"msg":"partition opened","partition":3`.
  const out: LogFields = { msg };
  if (!fields) return out;
  for (const [k, v] of Object.entries(fields)) {
    const key = RESERVED.has(k) ? `field_${k}` : k;
    out[key] = v instanceof Error ? pino.stdSerializers.errWithCause(v) : v;
  }
  return out;
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (m, f) => p.debug(record(m, f)),
    info: (m, f) => p.info(record(m, f)),
    warn: (m, f) => p.warn(record(m, f)),
    error: (m, f) => p.error(record(m, f)),
    child: (fields) => wrap(p.child(fields)),
  };
}

/**
 * `write` receives each line (stdout by default, written synchronously so a
 * line before an exit is never lost); `dynamic` adds fields at each call
 * (the active trace and span ids, say).
 */
export function createLogger(base: LogFields, level: LogLevel = 'info', write?: (line: string) => void, dynamic?: () => LogFields): Logger {
  const destination = write ? { write } : pino.destination({ fd: 1, sync: true });
  const p = pino(
    {
      level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(dynamic ? { mixin: dynamic } : {}),
    },
    destination,
  );
  return wrap(p);
}
