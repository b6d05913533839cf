import { ConfigError, loadConfig } from './load-config';
import { faultSchema, FaultPointNames, knownEnvNames } from './schema';

const load = (value: string) => loadConfig<{ faults: { point: string } }>({ faults: faultSchema() }, { env: { MESH_TEST_FAULT: value } }).faults.point;

describe('MESH_TEST_FAULT (test only)', () => {
  it('is off by default, and a known variable every service accepts', () => {
    expect(loadConfig<{ faults: { point: string } }>({ faults: faultSchema() }, { env: {} }).faults.point).toBe('');
    expect(knownEnvNames().has('MESH_TEST_FAULT')).toBe(true);
  });

  it.each(['before-ack', 'handover:3', 'after-checkpoint:2:stop', 'between-commits:kill'])('accepts %s', (value) => {
    expect(load(value)).toBe(value);
  });

  it.each(['befor-ack', 'before-ack:0', 'before-ack:x', 'before-ack:2:pause', ' before-ack'])('refuses %j, naming the points it knows', (value) => {
    let error: unknown;
    try {
      load(value);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('MESH_TEST_FAULT');
    for (const name of FaultPointNames) expect((error as Error).message).toContain(name);
  });
});
