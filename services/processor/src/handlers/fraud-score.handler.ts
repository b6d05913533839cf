/**
 * Example stateful handler: a running fraud score per customer, kept in
 * `ctx.state` (checkpointed with the partition, exact after a crash).
 *
 * Takes `card.charged` keyed by customer, with data `{ amount, country }`.
 * A large charge adds 40 points, a charge from another country than the
 * last one adds 30, any other charge takes 10 off. When the score reaches
 * 70 it emits `fraud.flagged` once, until the score falls below 70 again.
 */
import { defineHandler, fields } from '@mesh/runtime';

interface Score {
  score: number;
  lastCountry?: string;
  flagged: boolean;
}

export const FraudThreshold = 70;

export default defineHandler({
  name: 'fraud-score',
  types: ['card.charged'],
  description: 'Keeps a fraud score per customer; emits fraud.flagged past the threshold.',
  schema: fields({ amount: 'number', country: 'string' }),
  handle(event, ctx) {
    const charge = event.data!;
    const was = ctx.state.get<Score>() ?? { score: 0, flagged: false };
    let score = was.score;
    if (charge.amount >= 1000) score += 40;
    if (was.lastCountry !== undefined && was.lastCountry !== charge.country) score += 30;
    if (score === was.score) score = Math.max(0, score - 10);
    const flag = score >= FraudThreshold && !was.flagged;
    ctx.state.set({ score, lastCountry: charge.country, flagged: score >= FraudThreshold } satisfies Score);
    return flag ? { type: 'fraud.flagged', data: { customer: ctx.state.key, score, chargeId: event.id } } : undefined;
  },
});
