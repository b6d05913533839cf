import { epochMsgId, parseReplaySignal, replayAckKey } from './replay';

describe('replay names', () => {
  it('leaves ids as they were in epoch 0 and prefixes them with the epoch after a replay', () => {
    expect(epochMsgId(0, 'router:12:orders')).toBe('router:12:orders');
    expect(epochMsgId(1, 'router:12:orders')).toBe('e1:router:12:orders');
    expect(epochMsgId(12, 'agg:totals:k:0')).toBe('e12:agg:totals:k:0');
  });

  it('acks under the stage and instance', () => {
    expect(replayAckKey('aggregator', 'a-1')).toBe('replay.ack.aggregator.a-1');
  });

  it('reads a signal only when every field is as the CLI writes it', () => {
    expect(parseReplaySignal('{"epoch":2,"from":"beginning","phase":"pause"}')).toEqual({ epoch: 2, from: 'beginning', phase: 'pause' });
    for (const bad of [
      '',
      'x',
      '{"epoch":0,"from":"beginning","phase":"run"}',
      '{"epoch":1.5,"from":"beginning","phase":"run"}',
      '{"epoch":1,"phase":"run"}',
      '{"epoch":1,"from":"beginning","phase":"stop"}',
    ]) {
      expect(parseReplaySignal(bad)).toBeUndefined();
    }
  });
});
