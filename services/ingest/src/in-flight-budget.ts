/**
 * What ingest holds at once: events and body bytes received but not yet
 * stored in JetStream. Each request holds a ticket; a ticket that would take
 * the total past a bound is refused (the request gets 503 at once), so an
 * overload costs refusals instead of memory. A ticket is always admitted
 * when it would be alone, so a request larger than the bound still goes
 * through on a quiet ingest.
 */
export class InFlightBudget {
  events = 0;
  bytes = 0;

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {}

  open(): InFlightTicket {
    return new InFlightTicket(this);
  }
}

export class InFlightTicket {
  private events = 0;
  private bytes = 0;
  private closed = false;

  constructor(private readonly budget: InFlightBudget) {}

  /** Hold `n` more bytes; false (and nothing held) when that would pass the bound. */
  addBytes(n: number): boolean {
    const b = this.budget;
    if (b.bytes + n > b.maxBytes && b.bytes > this.bytes) return false;
    b.bytes += n;
    this.bytes += n;
    return true;
  }

  /** Hold `n` more events; false (and nothing held) when that would pass the bound. */
  addEvents(n: number): boolean {
    const b = this.budget;
    if (b.events + n > b.maxEvents && b.events > this.events) return false;
    b.events += n;
    this.events += n;
    return true;
  }

  /** Give back everything this ticket holds (once the request is answered). */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.events -= this.events;
    this.budget.bytes -= this.bytes;
  }
}
