import { loadAggregatorConfig } from './config';

describe('aggregator config', () => {
  it("keeps state 24 hours after a key's last window and sends heartbeats every 15 s by default", () => {
    const c = loadAggregatorConfig({ env: {} });
    expect(c.aggregator).toMatchObject({ stateRetention: 86_400_000, updatesHeartbeat: 15_000 });
  });

  it('takes MESH_STATE_RETENTION and MESH_UPDATES_HEARTBEAT as durations', () => {
    const c = loadAggregatorConfig({ env: { MESH_STATE_RETENTION: '10m', MESH_UPDATES_HEARTBEAT: '500ms' } });
    expect(c.aggregator).toMatchObject({ stateRetention: 600_000, updatesHeartbeat: 500 });
  });

  it('refuses a retention that is not a duration, naming the variable and what is accepted', () => {
    expect(() => loadAggregatorConfig({ env: { MESH_STATE_RETENTION: 'forever' } })).toThrow(
      /MESH_STATE_RETENTION[\s\S]*must be a duration such as "250ms", "30s", "10m" or "1h"/,
    );
  });

  it('refuses a heartbeat of zero', () => {
    expect(() => loadAggregatorConfig({ env: { MESH_UPDATES_HEARTBEAT: '0s' } })).toThrow(/MESH_UPDATES_HEARTBEAT[\s\S]*above zero/);
  });

  it('commits every 100 ms by default, and takes MESH_COMMIT_INTERVAL from 0 (every batch) to 60s', () => {
    expect(loadAggregatorConfig({ env: {} }).consumer.commitInterval).toBe(100);
    expect(loadAggregatorConfig({ env: { MESH_COMMIT_INTERVAL: '0' } }).consumer.commitInterval).toBe(0);
    expect(loadAggregatorConfig({ env: { MESH_COMMIT_INTERVAL: '1.5s' } }).consumer.commitInterval).toBe(1500);
    expect(loadAggregatorConfig({ env: { MESH_COMMIT_INTERVAL: '60s' } }).consumer.commitInterval).toBe(60_000);
  });

  it.each(['often', '-5ms', '61s', '2m'])('refuses a commit interval of %j, naming the variable, the value and what is accepted', (value) => {
    expect(() => loadAggregatorConfig({ env: { MESH_COMMIT_INTERVAL: value } })).toThrow(
      `MESH_COMMIT_INTERVAL (consumer.commitInterval) = "${value}" is invalid: must be a duration from 0 (commit after every batch) to 60s, such as "100ms" or "1s"`,
    );
  });
});
