/** `mesh dlq show <seq>`: one dead letter, every header and its body. */
import { Streams } from '@mesh/contracts';
import type { CommandContext } from './context';
import { getDeadLetter, summaryJson, type DeadLetterRecord } from '@mesh/operations';
import { printable } from './output';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bodyText(body: Uint8Array): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

export function detailJson(d: DeadLetterRecord) {
  const text = d.events ? undefined : bodyText(d.body);
  return {
    ...summaryJson(d),
    headers: d.headers,
    body: d.events ?? null,
    ...(d.events ? {} : { bodyText: text ?? null, bodyBase64: Buffer.from(d.body).toString('base64') }),
  };
}

export function detailLines(d: DeadLetterRecord): string[] {
  const fields: [string, string | number | undefined][] = [
    ['subject', d.subject],
    ['time', d.time.toISOString()],
    ['stage', d.stage],
    ['partition', d.partition],
    ['handler', d.handler],
    ['error', d.error],
    ['error kind', d.errorKind],
    ['attempts', d.attempts],
    ['original stream', d.originalStream],
    ['original subject', d.originalSubject],
    ['original sequence', d.originalSequence],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  const lines = [`dead letter ${d.seq} in ${Streams.dlq}`];
  for (const [k, v] of fields) lines.push(`  ${k.padEnd(width)}  ${v === undefined ? '-' : printable(String(v))}`);

  lines.push('', 'headers');
  for (const [k, values] of Object.entries(d.headers)) for (const v of values) lines.push(`  ${printable(k)}: ${printable(v)}`);

  const size = `${d.body.byteLength} bytes`;
  if (d.events) {
    const n = d.events.length;
    lines.push('', `body: a batch envelope of ${n} event${n === 1 ? '' : 's'} (${size})`);
    lines.push(...printable(JSON.stringify(d.events, null, 2)).split('\n'));
  } else {
    const text = bodyText(d.body);
    lines.push('', `body: not a batch envelope: ${printable(d.malformed ?? '')} (${size}${text === undefined ? ', not UTF-8; shown as base64' : ''})`);
    lines.push(text === undefined ? Buffer.from(d.body).toString('base64') : printable(text));
  }
  return lines;
}

export async function dlqShow(ctx: CommandContext, o: { seq: number }): Promise<void> {
  const d = await getDeadLetter(ctx, o.seq);
  if (ctx.json) ctx.out.out(JSON.stringify(detailJson(d), null, 2));
  else for (const line of detailLines(d)) ctx.out.out(line);
}
