import { checkpointKey, consumerName, handlerStatePrefix, retryRecordPrefix } from './names';

describe('names in the JetStream layout', () => {
  it('names consumers and checkpoint keys with two-digit partitions, as the README documents', () => {
    expect(consumerName('router', 3)).toBe('router-p03');
    expect(checkpointKey('aggregator', 12)).toBe('aggregator.p12');
  });

  it('keys the processor retry records of a partition under processor.pNN.retry.<seq>', () => {
    expect(retryRecordPrefix(3)).toBe('processor.p03.retry.');
    expect(`${retryRecordPrefix(15)}42`).toBe('processor.p15.retry.42');
  });

  it('keys the handler state of a partition under <service>.pNN.state.', () => {
    expect(handlerStatePrefix(3)).toBe('processor.p03.state.');
    expect(handlerStatePrefix(12, 'billing')).toBe('billing.p12.state.');
  });
});
