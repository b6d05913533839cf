/**
 * What `mesh_routes` says of a handler an instance does not host: declared
 * (some service hosts it: its events wait for a host), removed (by `mesh
 * handlers rm`: its events are dead-lettered), or never declared (a route
 * rule names it, but no service ever did: dead-lettered too).
 *
 * Read on demand, only for handlers not hosted here (a rolling update, a
 * rule naming a handler nobody hosts), and remembered for a second: no watch
 * to wait for at start-up, and `rm` is seen within a second.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { Buckets, parseHandlerRecord, RouteKeyPrefix, type HandlerRecord } from '@mesh/contracts';

export type HandlerStatus = { kind: 'declared'; record: HandlerRecord } | { kind: 'removed' } | { kind: 'undeclared' };

/** How long an answer is reused. */
const FreshMs = 1_000;

export class HandlerRecords {
  private readonly known = new Map<string, { at: number; status: Promise<HandlerStatus> }>();

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<HandlerRecords> {
    // Direct gets name the key in their subject, so a handler service's permissions can allow reading handler records only.
    return new HandlerRecords(await new Kvm(nc).open(Buckets.routes, { allow_direct: true }));
  }

  /** The handler's record as of at most a second ago. */
  status(name: string): Promise<HandlerStatus> {
    const now = Date.now();
    const cached = this.known.get(name);
    if (cached && now - cached.at < FreshMs) return cached.status;
    const status = this.read(name);
    this.known.set(name, { at: now, status });
    // A failed read is not remembered: the next asks again.
    status.catch(() => this.known.delete(name));
    return status;
  }

  private async read(name: string): Promise<HandlerStatus> {
    const entry = await this.kv.get(`${RouteKeyPrefix.handler}${name}`);
    if (!entry) return { kind: 'undeclared' };
    if (entry.operation !== 'PUT') return { kind: 'removed' };
    const record = parseHandlerRecord(entry.string());
    return record ? { kind: 'declared', record } : { kind: 'undeclared' };
  }
}

/** Dead-letter reason for an event of a handler removed with `mesh handlers rm`. */
export class HandlerRemovedError extends Error {
  constructor(name: string) {
    super(`handler '${name}' was removed with mesh handlers rm`);
    this.name = 'HandlerRemovedError';
  }
}

/** Dead-letter reason for an event of a handler now declared by another service. */
export class HandlerMovedError extends Error {
  constructor(name: string, from: string, to: string) {
    super(`handler '${name}' is declared by service '${to}' now, not '${from}': events routed to '${from}' before it moved are not handled there`);
    this.name = 'HandlerMovedError';
  }
}

/**
 * Thrown by the worker for an envelope of a handler this instance does not
 * host that cannot be split (it may have been handled whole before): the
 * partition is reopened after a backoff, so it waits, in order, until an
 * instance that hosts the handler owns it.
 */
export class HandlerNotHostedError extends Error {
  constructor(name: string, service: string) {
    super(`handler '${name}' is not hosted by this instance of '${service}'; the partition waits for an instance that hosts it`);
    this.name = 'HandlerNotHostedError';
  }
}
