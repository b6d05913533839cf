/**
 * `mesh tail <stage|subject>`: the events passing by, live, one line each:
 * time, subject, type, partition key, id.
 *
 * A stage name means the stage's output (ingest: mesh.ingest.>, router:
 * mesh.routed.>, processor: mesh.processed.>, aggregator: its closed windows
 * on mesh.aggregates.>); anything else is taken as a subject (wildcards
 * allowed). It is a plain core NATS subscription: a JetStream publish reaches
 * it as it is stored, so tailing creates nothing on the server, changes
 * nothing the stages see, and shows only what arrives from now on.
 *
 * It runs until `--count` events were printed, or until it is stopped
 * (Ctrl-C); either way it unsubscribes and returns normally. With --json it
 * prints one JSON object per line ({subject, event}), as it goes.
 */
import { decodeEnvelope, partitionKeyOf, Subjects, typeMatches, type CloudEvent } from '@mesh/contracts';
import type { CommandContext } from './context';
import { printable } from './output';

export interface TailOptions {
  /** A stage name or a subject. */
  target: string;
  /** Only events whose type matches this pattern (`*` one token, `>` the rest). */
  filter?: string;
  /** Stop after printing this many events. */
  count?: number;
}

/** The subject each stage publishes its output to. */
export const StageOutputs: Readonly<Record<string, string>> = {
  ingest: Subjects.ingestAll,
  router: Subjects.routedAll,
  processor: Subjects.processedAll,
  aggregator: Subjects.aggregatesAll,
};

export function tailSubject(target: string): string {
  return StageOutputs[target] ?? target;
}

function eventLine(subject: string, e: CloudEvent): string {
  return [e.time ?? '-', subject, e.type, partitionKeyOf(e), e.id].map((c) => printable(String(c))).join('  ');
}

/** A message that is not a batch envelope (a closed window, say): one line with what it holds. */
function otherLine(subject: string, data: Uint8Array): string {
  let key = '-';
  let text = Buffer.from(data).toString('utf8');
  try {
    const value = JSON.parse(text) as { key?: unknown };
    if (value && typeof value === 'object' && typeof value.key === 'string') key = value.key;
    text = JSON.stringify(value);
  } catch {
    // not JSON: shown as text
  }
  const body = text.length > 200 ? `${text.slice(0, 197)}...` : text;
  return [new Date().toISOString(), subject, '-', key, body].map((c) => printable(c)).join('  ');
}

/** Why a subject cannot be subscribed to, or undefined when it can. */
export function subjectProblem(subject: string): string | undefined {
  const tokens = subject.split('.');
  if (/\s/.test(subject) || tokens.some((t) => t === '')) return 'a subject is dot-separated tokens without spaces, such as mesh.processed.>';
  if (tokens.some((t, i) => t === '>' && i < tokens.length - 1)) return "'>' may only be the last token";
  return undefined;
}

/**
 * Print what passes on the target's subject until `count` events were
 * printed or `stop` is aborted (by default: on SIGINT or SIGTERM).
 */
export async function tail(ctx: CommandContext, o: TailOptions, stop?: AbortSignal): Promise<void> {
  const subject = tailSubject(o.target);
  const sub = ctx.nc.subscribe(subject);
  const done = () => sub.unsubscribe();
  const signals: NodeJS.Signals[] = stop ? [] : ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.once(s, done);
  stop?.addEventListener('abort', done);
  if (stop?.aborted) done();
  let printed = 0;
  const enough = () => o.count !== undefined && printed >= o.count;
  // Says where it listens on stderr, so stdout stays one line per event.
  ctx.out.err(`tailing ${subject}${o.filter ? ` (types ${o.filter})` : ''}; Ctrl-C stops`);
  try {
    await ctx.nc.flush();
    for await (const m of sub) {
      let events: CloudEvent[] | undefined;
      try {
        events = decodeEnvelope(m.data);
      } catch {
        events = undefined;
      }
      if (!events) {
        if (o.filter) continue;
        ctx.out.out(ctx.json ? JSON.stringify({ subject: m.subject, data: Buffer.from(m.data).toString('utf8') }) : otherLine(m.subject, m.data));
        printed++;
      }
      for (const e of events ?? []) {
        if (enough()) break;
        if (o.filter && !typeMatches(o.filter, e.type)) continue;
        ctx.out.out(ctx.json ? JSON.stringify({ subject: m.subject, event: e }) : eventLine(m.subject, e));
        printed++;
      }
      if (enough()) break;
    }
  } finally {
    for (const s of signals) process.off(s, done);
    stop?.removeEventListener('abort', done);
    sub.unsubscribe();
  }
}
