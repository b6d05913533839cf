import { InFlightBudget } from './in-flight-budget';

describe('InFlightBudget', () => {
  it('refuses a ticket that would pass the bytes bound, and admits again once bytes are released', () => {
    const budget = new InFlightBudget(100, 1000);
    const a = budget.open();
    expect(a.addBytes(700)).toBe(true);
    const b = budget.open();
    expect(b.addBytes(400)).toBe(false);
    expect(budget.bytes).toBe(700);
    a.release();
    expect(b.addBytes(400)).toBe(true);
    expect(budget.bytes).toBe(400);
  });

  it('bounds events the same way', () => {
    const budget = new InFlightBudget(100, 1e9);
    const a = budget.open();
    expect(a.addEvents(60)).toBe(true);
    expect(budget.open().addEvents(41)).toBe(false);
    expect(budget.open().addEvents(40)).toBe(true);
  });

  it('admits a ticket larger than the bound when it is alone, so a big request still goes through on a quiet ingest', () => {
    const budget = new InFlightBudget(10, 100);
    const a = budget.open();
    expect(a.addBytes(500)).toBe(true);
    expect(a.addEvents(50)).toBe(true);
    expect(budget.open().addBytes(1)).toBe(false);
  });

  it('releases once, however often release is called', () => {
    const budget = new InFlightBudget(10, 100);
    const a = budget.open();
    a.addBytes(50);
    a.addEvents(5);
    a.release();
    a.release();
    expect([budget.bytes, budget.events]).toEqual([0, 0]);
  });
});
