import { lineRenderer, logFormat } from './log-lines';

const record = JSON.stringify({
  level: 'warn',
  time: '2026-11-30T05:40:00.123Z',
  service: 'router',
  instance: 'router-1',
  msg: 'waiting for NATS',
  url: 'nats://127.0.0.1:4222',
  reason: 'connection refused',
});

describe('npm start log lines', () => {
  it('shows JSON as it is when the output is not a terminal, readable on one', () => {
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({ MESH_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ MESH_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(() => logFormat({ MESH_LOG_FORMAT: 'yaml' }, true)).toThrow('MESH_LOG_FORMAT must be json or pretty, got "yaml"');
  });

  it('keeps JSON lines byte for byte, prefixed with the service', () => {
    expect(lineRenderer('json', false)('router', record)).toBe(`[router    ] ${record}\n`);
  });

  it('renders a record as level, message and fields, without the service and instance the prefix says', () => {
    const out = lineRenderer('pretty', false)('router', record);
    expect(out).toMatch(/^\[router {4}\] \[\d\d:\d\d:00\.123\] WARN: waiting for NATS \{"url":"nats:\/\/127\.0\.0\.1:4222","reason":"connection refused"\}\n$/);
    expect(out).not.toContain('router-1');
  });

  it('prefixes every line of an error with its stack, and passes lines that are not records', () => {
    const error = JSON.stringify({
      level: 'error',
      time: '2026-11-30T05:40:00.123Z',
      msg: 'boom',
      error: { type: 'Error', message: 'x', stack: 'Error: x\n    at f' },
    });
    const lines = lineRenderer('pretty', false)('ingest', error).trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.startsWith('[ingest    ] ')).toBe(true);
    expect(lines.join('\n')).toContain('at f');
    expect(lineRenderer('pretty', false)('ingest', 'Error: not a record')).toBe('[ingest    ] Error: not a record\n');
  });
});
