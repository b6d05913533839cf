/**
 * convict formats with errors that say what would be accepted. A format
 * throws; `load-config` adds the key, the env variable and the value given.
 */
import convict from 'convict';
import { FaultPointNames } from './schema';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in a duration such as `250ms`, `30s`, `10m`, `1h` or a plain number of ms. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const match = typeof value === 'string' ? DURATION.exec(value.trim()) : null;
  if (!match) throw new Error('must be a duration such as "250ms", "30s", "10m" or "1h"');
  return Number(match[1]) * UNIT_MS[match[2] ?? 'ms'];
}

function integerIn(min: number, max: number) {
  return (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`must be a whole number from ${min} to ${max}`);
    }
  };
}

let registered = false;

/** Register the mesh's formats once per process. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormats({
    'fault-point': {
      validate(value: unknown) {
        if (value === '') return;
        const m = typeof value === 'string' ? /^([a-z-]+)(?::([1-9]\d*))?(?::(kill|stop))?$/.exec(value) : null;
        if (!m || !(FaultPointNames as readonly string[]).includes(m[1])) {
          throw new Error(`must be empty (off) or '<point>[:<n>][:kill|stop]' (n from 1), point one of ${FaultPointNames.join(', ')}`);
        }
      },
    },
    'nats-urls': {
      validate(value: unknown) {
        const urls = typeof value === 'string' ? value.split(',').map((u) => u.trim()) : [];
        if (urls.length === 0 || urls.some((u) => !/^(nats|tls|ws|wss):\/\/[^\s/]+(:\d+)?\/?$|^[^\s:/]+:\d+$/.test(u))) {
          throw new Error('must be one or more comma-separated NATS URLs such as "nats://127.0.0.1:4222"');
        }
      },
    },
    'tcp-port': { validate: integerIn(0, 65535), coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v) },
    partitions: { validate: integerIn(1, 1024), coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v) },
    replicas: { validate: integerIn(1, 5), coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v) },
    'positive-int': {
      validate: integerIn(1, Number.MAX_SAFE_INTEGER),
      coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    },
    'non-negative-int': {
      validate: integerIn(0, Number.MAX_SAFE_INTEGER),
      coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    },
    'positive-duration': {
      validate(value: unknown) {
        if (parseDuration(value) <= 0) throw new Error('must be a duration above zero such as "500ms", "1s" or "10s"');
      },
      coerce: (v: unknown) => {
        try {
          return parseDuration(v);
        } catch {
          return v;
        }
      },
    },
    duration: {
      validate(value: unknown) {
        parseDuration(value);
      },
      coerce: (v: unknown) => {
        try {
          return parseDuration(v);
        } catch {
          return v;
        }
      },
    },
    'subject-prefix': {
      validate(value: unknown) {
        if (typeof value !== 'string' || !/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/.test(value)) {
          throw new Error("must be a NATS subject prefix: tokens of letters, digits, '_', '-' or '$' separated by '.', such as \"_INBOX_ingest\"");
        }
      },
    },
    boolean: {
      validate(value: unknown) {
        if (typeof value !== 'boolean') throw new Error('must be true or false');
      },
      coerce: (v: unknown) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v),
    },
    'postgres-url': {
      validate(value: unknown) {
        let ok = false;
        try {
          const u = new URL(String(value));
          ok = (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
        } catch {
          ok = false;
        }
        if (!ok) throw new Error('must be a PostgreSQL URL such as "postgres://user:password@127.0.0.1:5432/mesh"');
      },
    },
    'instance-id': {
      validate(value: unknown) {
        if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
          throw new Error("must be 1 to 64 letters, digits, '_' or '-'");
        }
      },
    },
  });
}
