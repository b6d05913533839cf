/**
 * docs/asyncapi.yaml describes the subjects the code uses: each subject the
 * mesh publishes to has a channel, each channel a subject, every header the
 * mesh sets is described, and every reference resolves.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Headers } from './envelope';
import { Subjects } from './subjects';

interface Doc {
  asyncapi: string;
  channels: Record<string, { address: string; parameters?: Record<string, unknown> }>;
  operations: Record<string, { channel: { $ref: string } }>;
}
const text = readFileSync(join(__dirname, '../../../docs/asyncapi.yaml'), 'utf8');
const doc = parse(text) as Doc;

/** The channel addresses with their parameters as one token each: `mesh.ingest.{partition}.{type}` -> `mesh.ingest.P.T`. */
function concrete(address: string, values: Record<string, string>): string {
  return address.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? `<${name}>`);
}
const values = { partition: '7', type: 'order.created', handler: 'orders', service: 'refunds', name: 'totals', stage: 'processor' };

// Every subject-making function of the contract, called with the same values.
const published: Record<string, string> = {
  inbound: Subjects.inbound(values.type),
  ingest: Subjects.ingest(7, values.type),
  routed: Subjects.routed(values.service, 7, values.handler),
  processed: Subjects.processed(7, values.type),
  aggregates: Subjects.aggregates(values.name),
  aggregatesLate: Subjects.aggregatesLate(values.name),
  dlq: Subjects.dlq('processor', 7),
};

describe('docs/asyncapi.yaml', () => {
  it('is AsyncAPI 3', () => {
    expect(doc.asyncapi).toMatch(/^3\./);
  });

  it('has one channel per subject the mesh publishes to, with the same layout', () => {
    const addresses = Object.fromEntries(Object.entries(doc.channels).map(([id, c]) => [id, concrete(c.address, values)]));
    expect(addresses).toEqual(published);
  });

  it('declares every parameter its addresses use', () => {
    for (const [id, c] of Object.entries(doc.channels)) {
      const used = [...c.address.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect({ id, parameters: Object.keys(c.parameters ?? {}).sort() }).toEqual({ id, parameters: used });
    }
  });

  it('describes every header the mesh sets', () => {
    for (const header of Object.values(Headers)) expect({ header, described: text.includes(`${header}:`) }).toEqual({ header, described: true });
  });

  it('resolves every reference', () => {
    const refs = [...text.matchAll(/\$ref: ["']#\/([^"']+)["']/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      const target = ref.split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
      expect({ ref, found: target !== undefined }).toEqual({ ref, found: true });
    }
  });
});
