import { consumerName, Stages } from './names';
import { handlerServicePermissions, MeshServices, servicePermissions } from './service-permissions';

describe('servicePermissions', () => {
  const all = MeshServices.map((s) => servicePermissions(s, 16));
  const subjects = (p: (typeof all)[number]) => [...p.publish, ...p.subscribe].map((g) => g.subject);

  it('grants no service everything, the whole JetStream API or every KV key (nats-server issue 5203)', () => {
    for (const p of all) {
      for (const subject of subjects(p)) expect(['>', '$JS.>', '$JS.API.>', '$KV.>', '$JS.API.CONSUMER.>', '$JS.API.STREAM.>']).not.toContain(subject);
    }
  });

  it('lets no service create, update or delete a stream', () => {
    for (const p of all) expect(subjects(p).filter((s) => /^\$JS\.API\.STREAM\.(CREATE|UPDATE|DELETE)\./.test(s))).toEqual([]);
  });

  it("names each stage's own partition consumers, p00 to p15, and no other stage's", () => {
    for (const stage of Stages) {
      const own = subjects(servicePermissions(stage, 16));
      for (let p = 0; p < 16; p++)
        expect(own).toContain(
          `$JS.API.CONSUMER.MSG.NEXT.${{ router: 'MESH_INGEST', processor: 'MESH_ROUTED', aggregator: 'MESH_PROCESSED' }[stage]}.${consumerName(stage, p)}`,
        );
      expect(own.join(' ')).not.toContain(consumerName(stage, 16));
      for (const other of Stages.filter((s) => s !== stage)) expect(own.join(' ')).not.toContain(`${other}-p`);
    }
  });

  it('gives each service a private inbox and the answers of requests', () => {
    for (const p of all) {
      expect(p.subscribe.map((g) => g.subject)).toContain(`_INBOX_${p.service}.>`);
      expect(subjects(p).filter((s) => s.startsWith('_INBOX') && s !== `_INBOX_${p.service}.>`)).toEqual([]);
      expect(p.allowResponses).toBe(true);
    }
  });

  it('scopes KV writes to the keys a service owns', () => {
    const kvWrites = (s: (typeof MeshServices)[number]) =>
      servicePermissions(s, 4)
        .publish.map((g) => g.subject)
        .filter((x) => x.startsWith('$KV.'));
    expect(kvWrites('ingest')).toEqual([]);
    expect(kvWrites('processor').sort()).toEqual([
      '$KV.mesh_checkpoints.processor.>',
      '$KV.mesh_checkpoints.replay.ack.processor.>',
      '$KV.mesh_leases.processor.>',
      '$KV.mesh_members.processor.>',
      '$KV.mesh_routes.handler.>',
    ]);
    expect(kvWrites('aggregator').sort()).toEqual([
      '$KV.mesh_aggregates.>',
      '$KV.mesh_checkpoints.aggregator.>',
      '$KV.mesh_checkpoints.replay.ack.aggregator.>',
      '$KV.mesh_leases.aggregator.>',
      '$KV.mesh_members.aggregator.>',
    ]);
    expect(kvWrites('router').sort()).toEqual(['$KV.mesh_checkpoints.replay.ack.router.>', '$KV.mesh_leases.router.>', '$KV.mesh_members.router.>']);
    expect(kvWrites('sink')).toEqual([]);
    // Operators' rules only: never a handler's declaration, a lease, a checkpoint or a result.
    expect(kvWrites('console')).toEqual(['$KV.mesh_routes.rule.>']);
  });

  it('lets the sink use its one consumer of the results stream and publish nothing else but JetStream start-up', () => {
    const sink = servicePermissions('sink', 16).publish.map((g) => g.subject);
    expect(sink.filter((s) => s.startsWith('$JS.API.CONSUMER.') || s.startsWith('$JS.ACK.')).sort()).toEqual([
      '$JS.ACK.KV_mesh_aggregates.sink.>',
      '$JS.API.CONSUMER.CREATE.KV_mesh_aggregates.sink.$KV.mesh_aggregates.>',
      '$JS.API.CONSUMER.INFO.KV_mesh_aggregates.sink',
      '$JS.API.CONSUMER.MSG.NEXT.KV_mesh_aggregates.sink',
    ]);
    expect(sink.filter((s) => !s.startsWith('$JS.'))).toEqual([]);
  });

  it("gives a handler service its own consumers, keys, inbox and dead letters, and no other stage's", () => {
    const refunds = handlerServicePermissions('refunds', 4);
    const subjects = [...refunds.publish, ...refunds.subscribe].map((g) => g.subject);
    for (let p = 0; p < 4; p++) {
      expect(subjects).toContain(`$JS.API.CONSUMER.CREATE.MESH_ROUTED.refunds-p0${p}.mesh.routed.refunds.${p}.>`);
      expect(subjects).toContain(`$JS.API.CONSUMER.MSG.NEXT.MESH_ROUTED.refunds-p0${p}`);
    }
    expect(subjects.join(' ')).not.toMatch(/processor-p|router-p|aggregator-p/);
    expect(subjects.filter((x) => x.startsWith('$KV.')).sort()).toEqual([
      '$KV.mesh_checkpoints.refunds.>',
      '$KV.mesh_checkpoints.replay.ack.refunds.>',
      '$KV.mesh_leases.refunds.>',
      '$KV.mesh_members.refunds.>',
      '$KV.mesh_routes.handler.>',
    ]);
    expect(subjects).toContain('mesh.dlq.refunds.*');
    expect(refunds.subscribe.map((g) => g.subject)).toContain('_INBOX_refunds.>');
  });
});
