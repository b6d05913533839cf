/**
 * `mesh send <type> <event-json>`: post events to ingest over NATS (a request
 * on `mesh.in.<type>`, answered by one ingest instance), as an application
 * would without HTTP. Prints ingest's answer; exit code 1 unless it is 202.
 */
import { readFileSync } from 'node:fs';
import { errors } from '@nats-io/nats-core';
import { Subjects, typePatternProblem } from '@mesh/contracts';
import type { CommandContext } from './context';
import { CliError, UsageError } from './errors';

export function checkEventType(type: string): string {
  const problem = /[*>]/.test(type) ? 'has a wildcard' : typePatternProblem(type);
  if (problem) throw new UsageError(`invalid event type '${type}': ${problem}; use dot-separated tokens such as order.created`);
  return type;
}

export async function send(ctx: CommandContext, o: { type: string; body?: string; file?: string; timeoutMs: number }): Promise<void> {
  let body = o.body ?? '';
  if (o.file !== undefined) {
    try {
      body = readFileSync(o.file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let reply;
  try {
    reply = await ctx.nc.request(Subjects.inbound(o.type), body, { timeout: o.timeoutMs });
  } catch (err) {
    if (err instanceof errors.NoRespondersError || (err as Error).cause instanceof errors.NoRespondersError || /no responders/.test((err as Error).message)) {
      throw new CliError(`no ingest instance answers on ${Subjects.inbound(o.type)} at ${ctx.natsUrl}; is ingest running?`);
    }
    throw new CliError(`no answer from ingest within ${o.timeoutMs} ms on ${Subjects.inbound(o.type)}: ${(err as Error).message}`);
  }
  const text = reply.string();
  let answer: { status?: number };
  try {
    answer = JSON.parse(text) as { status?: number };
  } catch {
    throw new CliError(`ingest answered something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (ctx.json || answer.status === 202) ctx.out.out(ctx.json ? text : `${answer.status} ${text}`);
  if (answer.status !== 202) throw new CliError(`ingest refused the events (${answer.status}): ${text}`);
}
