import { createLogger, type LogLevel } from './logger';

/** A logger writing into an array, and the records it wrote. */
function capture(level?: LogLevel, base: Record<string, unknown> = { service: 'processor' }) {
  const lines: string[] = [];
  const log = createLogger(base, level, (line) => lines.push(line));
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records };
}

describe('createLogger', () => {
  it('writes one JSON object per line with time, level, base fields, message and fields', () => {
    const { log, lines, records } = capture();
    const before = Date.now();
    log.info('partition opened', { partition: 3 });
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(lines[0].indexOf('\n')).toBe(lines[0].length - 1);
    const [record] = records();
    expect(record).toEqual({ time: expect.any(String), level: 'info', service: 'processor', msg: 'partition opened', partition: 3 });
    expect(Date.parse(record.time as string)).toBeGreaterThanOrEqual(before - 1000);
    expect(record.time).toBe(new Date(Date.parse(record.time as string)).toISOString());
  });

  it('logs at info and above by default', () => {
    const { log, records } = capture();
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(records().map((r) => r.level)).toEqual(['info', 'warn', 'error']);
  });

  it.each([
    ['debug', ['debug', 'info', 'warn', 'error']],
    ['warn', ['warn', 'error']],
    ['error', ['error']],
  ] as const)('at level %s writes only %j', (level, written) => {
    const { log, records } = capture(level);
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(records().map((r) => r.level)).toEqual(written);
  });

  it('writes an Error field with its type, message, stack and cause', () => {
    const { log, records } = capture();
    const err = new TypeError('x is undefined', { cause: new RangeError('index 9 of 3') });
    log.error('handler failed', { error: err, attempt: 2 });
    const written = records()[0] as { error: { type: string; message: string; stack: string; cause: { type: string; message: string } }; attempt: number };
    expect(written).toMatchObject({
      error: { type: 'TypeError', message: 'x is undefined', cause: { type: 'RangeError', message: 'index 9 of 3' } },
      attempt: 2,
    });
    expect(written.error.stack).toMatch(/^TypeError: x is undefined\n\s+at /);
  });

  it("keeps a field named time, level or msg beside the record's own, never over it", () => {
    const { log, records } = capture();
    log.info('real', { msg: 'fake', level: 'fatal', time: 'then' });
    expect(records()[0]).toMatchObject({ level: 'info', msg: 'real', field_msg: 'fake', field_level: 'fatal', field_time: 'then' });
    expect(Date.parse(records()[0].time as string)).not.toBeNaN();
  });

  it('puts the message before the fields, so a line reads "msg":"...","field":...', () => {
    const { log, lines } = capture();
    log.info('http listening', { port: 8080, tls: false });
    expect(lines[0]).toMatch(/^\{"level":"info","time":"[^"]+","service":"processor","msg":"http listening","port":8080,"tls":false\}\n$/);
  });

  it('gives a child the fields of its parent and its own, and the same level', () => {
    const { log, records } = capture('warn');
    const child = log.child({ partition: 4 });
    child.info('hidden');
    child.warn('shown', { id: 'e-1' });
    log.warn('parent');
    expect(records()).toEqual([
      expect.objectContaining({ service: 'processor', partition: 4, msg: 'shown', id: 'e-1' }),
      expect.not.objectContaining({ partition: 4 }),
    ]);
  });
});

describe('createLogger with per-call fields', () => {
  it('adds the fields of the active trace to every line, children included', () => {
    const lines: string[] = [];
    let ids: Record<string, string> = { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7' };
    const log = createLogger(
      { service: 'router' },
      'info',
      (l) => lines.push(l),
      () => ids,
    );
    log.info('one');
    ids = {};
    log.child({ partition: 3 }).info('two');
    const [one, two] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(one).toMatchObject({ service: 'router', msg: 'one', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7' });
    expect(two).toMatchObject({ service: 'router', partition: 3, msg: 'two' });
    expect(two).not.toHaveProperty('trace_id');
  });
});
