import { join, resolve } from 'node:path';
import { devSettings, serviceEnv } from './dev-settings';

describe('devSettings', () => {
  it('defaults to NATS on 4222, the store in .data/nats and ports 8080-8084', () => {
    expect(devSettings({}, '/repo')).toEqual({ natsUrl: 'nats://127.0.0.1:4222', dataDir: join('/repo', '.data', 'nats'), portBase: 8080 });
  });

  it('takes the NATS URL, the store directory and the port base from the environment', () => {
    const env = { NATS_URL: 'nats://127.0.0.1:5222', MESH_DEV_DATA_DIR: 'tmp/store', MESH_DEV_PORT_BASE: '9100' };
    expect(devSettings(env, '/repo')).toEqual({ natsUrl: 'nats://127.0.0.1:5222', dataDir: resolve('tmp/store'), portBase: 9100 });
  });

  it.each(['0', '65531', '80.5', 'eighty'])('refuses MESH_DEV_PORT_BASE=%s, naming the accepted range', (value) => {
    expect(() => devSettings({ MESH_DEV_PORT_BASE: value }, '/repo')).toThrow(`MESH_DEV_PORT_BASE is "${value}"; it must be a port from 1 to 65530`);
  });
});

describe('serviceEnv', () => {
  it("passes everything on but the tool's own variables, which the services would refuse", () => {
    expect(serviceEnv({ PATH: '/bin', MESH_PARTITIONS: '8', MESH_DEV_PORT_BASE: '9100', MESH_DEV_DATA_DIR: '/tmp/x' })).toEqual({
      PATH: '/bin',
      MESH_PARTITIONS: '8',
    });
  });
});
