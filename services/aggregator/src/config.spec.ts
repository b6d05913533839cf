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
});
