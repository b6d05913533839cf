import { checkpointKey, consumerName, handlerServiceNameProblem, handlerStatePrefix, parseHandlerRecord, retryRecordPrefix, stageInput } from './names';

describe('names in the JetStream layout', () => {
  it('names consumers and checkpoint keys with two-digit partitions, as the README documents', () => {
    expect(consumerName('router', 3)).toBe('router-p03');
    expect(checkpointKey('aggregator', 12)).toBe('aggregator.p12');
  });

  it('keys the processor retry records of a partition under processor.pNN.retry.<seq>', () => {
    expect(retryRecordPrefix(3)).toBe('processor.p03.retry.');
    expect(`${retryRecordPrefix(15)}42`).toBe('processor.p15.retry.42');
    expect(retryRecordPrefix(3, 'refunds')).toBe('refunds.p03.retry.');
  });

  it('names the consumers of a handler service after it, on MESH_ROUTED', () => {
    expect(consumerName('refunds', 7)).toBe('refunds-p07');
    expect(stageInput('refunds')).toBe('MESH_ROUTED');
    expect(stageInput('router')).toBe('MESH_INGEST');
    expect(stageInput('aggregator')).toBe('MESH_PROCESSED');
  });
});

describe('handler service names', () => {
  it.each(['refunds', 'fraud-check', 'processor', 'team2-billing'])('accepts %s', (name) => {
    expect(handlerServiceNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['Refunds', /lowercase letters and digits/],
    ['fraud_check', /lowercase letters and digits/],
    ['-x', /lowercase letters and digits/],
    ['router', /taken by the mesh itself; reserved: router, aggregator, ingest, sink, console, replay, mesh/],
    ['replay', /taken by the mesh/],
    ['mesh', /taken by the mesh/],
    ['a'.repeat(41), /longer than 40 characters/],
  ])('refuses %s, saying why', (name, why) => {
    expect(handlerServiceNameProblem(name)).toMatch(why);
  });
});

describe('handler records', () => {
  it("reads a record without a service as the processor's", () => {
    expect(parseHandlerRecord('{"types":["order.*"],"description":"d"}')).toEqual({ types: ['order.*'], description: 'd', service: 'processor' });
    expect(parseHandlerRecord('{"types":["refund.requested"],"service":"refunds"}')).toEqual({
      types: ['refund.requested'],
      description: '',
      service: 'refunds',
    });
  });

  it('is undefined for what is not a record', () => {
    expect(parseHandlerRecord('nope')).toBeUndefined();
    expect(parseHandlerRecord('{"types":"x"}')).toBeUndefined();
    expect(parseHandlerRecord('{"types":[],"service":"Bad Name"}')).toBeUndefined();
  });

  it('keys the handler state of a partition under <service>.pNN.state.', () => {
    expect(handlerStatePrefix(3)).toBe('processor.p03.state.');
    expect(handlerStatePrefix(12, 'billing')).toBe('billing.p12.state.');
  });
});
