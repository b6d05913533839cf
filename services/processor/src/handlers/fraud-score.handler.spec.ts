import { createHandlerHarness } from '@mesh/testing';
import fraudScore, { FraudThreshold } from './fraud-score.handler';

const charge = (customer: string, amount: number, country: string) => ({ type: 'card.charged', partitionkey: customer, data: { amount, country } });

describe('fraud-score handler (through the test kit)', () => {
  it('keeps a running score per customer and flags a customer once when it passes the threshold', async () => {
    const mesh = createHandlerHarness({ handlers: [fraudScore] });
    await mesh.send([charge('c-1', 20, 'DE'), charge('c-1', 1500, 'DE'), charge('c-2', 20, 'DE')]);
    expect(mesh.state('fraud-score', 'c-1')).toEqual({ score: 40, lastCountry: 'DE', flagged: false });
    expect(mesh.emitted('fraud.flagged')).toEqual([]);

    await mesh.send(charge('c-1', 10, 'BR'));
    expect(mesh.state('fraud-score', 'c-1')).toEqual({ score: 70, lastCountry: 'BR', flagged: true });
    const [flag] = mesh.emitted('fraud.flagged');
    expect(flag.partitionkey).toBe('c-1');
    expect(flag.data).toEqual({ customer: 'c-1', score: FraudThreshold, chargeId: expect.any(String) });

    // Still above the threshold: no second flag.
    await mesh.send(charge('c-1', 2000, 'BR'));
    expect(mesh.emitted('fraud.flagged')).toHaveLength(1);
    expect(mesh.state('fraud-score', 'c-2')).toEqual({ score: 0, lastCountry: 'DE', flagged: false });
  });

  it('scores each charge once although the processor crashed before acking them', async () => {
    const mesh = createHandlerHarness({ handlers: [fraudScore] });
    await mesh.send([charge('c-1', 1500, 'DE'), charge('c-1', 1500, 'DE')], { crash: 'before-ack' });
    // Counted twice, the score would be 160 and the customer flagged twice.
    expect(mesh.state('fraud-score', 'c-1')).toEqual({ score: 80, lastCountry: 'DE', flagged: true });
    expect(mesh.emitted('fraud.flagged')).toHaveLength(1);
    expect(mesh.pending()).toBe(0);
  });

  it('dead-letters at once a charge without a country, leaving the score as it was', async () => {
    const mesh = createHandlerHarness({ handlers: [fraudScore] });
    await mesh.send(charge('c-1', 1500, 'DE'));
    await mesh.send({ type: 'card.charged', partitionkey: 'c-1', data: { amount: 5000 } });
    const [letter] = mesh.deadLetters();
    expect(letter.headers['Mesh-Handler']).toBe('fraud-score');
    expect(letter.headers['Mesh-Error']).toMatch(/data\.country is required/);
    expect(mesh.state('fraud-score', 'c-1')).toEqual({ score: 40, lastCountry: 'DE', flagged: false });
  });
});
