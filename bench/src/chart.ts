/**
 * The chart of a run, as plain SVG written by hand: end-to-end throughput
 * (left) and post → aggregate latency (right, log scale) against the offered
 * load of each load step, with the raw baseline and the latency step in the
 * caption.
 */
import { batchedReference, offeredLabel, type BenchResults, type StepResult } from './results';

const W = 960;
const H = 480;
const Panel = { top: 92, height: 280, width: 380 };
const LeftX = 90;
const RightX = 560;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (n: number) =>
  n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k` : String(Math.round(n * 10) / 10);

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

/** A round number at least `v`: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten. */
function niceCeil(v: number, steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of steps) if (m * p >= v * (1 - 1e-9)) return m * p;
  return 10 * p;
}

function xPositions(n: number, x0: number): number[] {
  const step = Panel.width / n;
  return Array.from({ length: n }, (_, i) => x0 + step * (i + 0.5));
}

function frame(x0: number, title: string, yLabel: string): string[] {
  const y0 = Panel.top;
  return [
    `<rect x="${x0}" y="${y0}" width="${Panel.width}" height="${Panel.height}" fill="#fafafa" stroke="#999"/>`,
    text(x0 + Panel.width / 2, y0 - 12, title, 'text-anchor="middle" font-size="14" font-weight="bold"'),
    text(x0 - 58, y0 + Panel.height / 2, yLabel, `text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 - 58} ${y0 + Panel.height / 2})"`),
    text(x0 + Panel.width / 2, y0 + Panel.height + 40, 'offered load (events/s)', 'text-anchor="middle" font-size="12"'),
  ];
}

function xLabels(steps: StepResult[], xs: number[]): string[] {
  return steps.map((s, i) => text(xs[i], Panel.top + Panel.height + 18, offeredLabel(s.offered).replace('/s', ''), 'text-anchor="middle" font-size="12"'));
}

function throughputPanel(r: BenchResults, steps: StepResult[]): string[] {
  const out = frame(LeftX, 'End-to-end throughput', 'events/s (first post → exact totals)');
  const xs = xPositions(steps.length, LeftX);
  const batched = batchedReference(r);
  const perEvent = r.baseline.perEvent?.eventsPerSec;
  const meshMax = Math.max(1, ...steps.map((s) => Math.max(s.e2eEventsPerSec ?? 0, s.postedEventsPerSec, s.offered === 'max' ? 0 : s.offered)));
  // Draw a baseline on the same axis only when it does not flatten the mesh's bars.
  const onScale = (v?: number) => v !== undefined && v <= meshMax * 3;
  const yMax = niceCeil(Math.max(meshMax, onScale(batched) ? batched! : 0, onScale(perEvent) ? perEvent! : 0) * 1.15);
  const y = (v: number) => Panel.top + Panel.height - (v / yMax) * Panel.height;
  for (let i = 0; i <= 5; i++) {
    const v = (yMax / 5) * i;
    out.push(`<line x1="${LeftX}" x2="${LeftX + Panel.width}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e3e3"/>`);
    out.push(text(LeftX - 6, y(v) + 4, fmt(v), 'text-anchor="end" font-size="11"'));
  }
  const bw = Math.min(48, (Panel.width / steps.length) * 0.55);
  steps.forEach((s, i) => {
    const posted = s.postedEventsPerSec;
    out.push(`<rect x="${xs[i] - bw / 2 - 8}" y="${y(posted)}" width="${bw}" height="${Panel.top + Panel.height - y(posted)}" fill="#c9c9c9"/>`);
    const v = s.e2eEventsPerSec ?? 0;
    out.push(
      `<rect x="${xs[i] - bw / 2 + 4}" y="${y(v)}" width="${bw}" height="${Panel.top + Panel.height - y(v)}" fill="${s.exact ? '#3b7dd8' : '#d83b3b'}"/>`,
    );
    out.push(text(xs[i] + 4, y(v) - 5, fmt(v), 'text-anchor="middle" font-size="11"'));
    if (s.offered !== 'max') {
      out.push(`<line x1="${xs[i] - bw / 2 - 6}" x2="${xs[i] + bw / 2 + 6}" y1="${y(s.offered)}" y2="${y(s.offered)}" stroke="#333" stroke-dasharray="3 2"/>`);
    }
  });
  const baseLine = (v: number | undefined, label: string, color: string) => {
    if (!onScale(v)) return;
    out.push(`<line x1="${LeftX}" x2="${LeftX + Panel.width}" y1="${y(v!)}" y2="${y(v!)}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    out.push(text(LeftX + 4, y(v!) - 4, `${label} ${fmt(v!)}`, `font-size="11" fill="${color}"`));
  };
  baseLine(batched, 'raw batched', '#2a9d4b');
  baseLine(perEvent, 'raw per event', '#c77c1e');
  const legend: [string, string][] = [
    ['#c9c9c9', 'accepted (202) ev/s'],
    ['#3b7dd8', 'end to end ev/s'],
  ];
  legend.forEach(([color, label], i) => {
    const lx = LeftX + 10 + i * 140;
    out.push(`<rect x="${lx}" y="${Panel.top + 8}" width="12" height="10" fill="${color}"/>`);
    out.push(text(lx + 16, Panel.top + 17, label, 'font-size="11"'));
  });
  out.push(...xLabels(steps, xs));
  return out;
}

function latencyPanel(steps: StepResult[]): string[] {
  const out = frame(RightX, 'Post → visible in aggregate', 'latency, ms (log scale)');
  const xs = xPositions(steps.length, RightX);
  const values = steps.flatMap((s) => (s.latencyMs ? [s.latencyMs.p50, s.latencyMs.p99] : []));
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...values, 1))));
  const hi = niceCeil(Math.max(...values, lo * 10) * 1.4, [1, 2, 5, 10]);
  const y = (v: number) => Panel.top + Panel.height - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * Panel.height;
  for (let decade = lo; decade <= hi; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = decade * m;
      if (v > hi) break;
      out.push(`<line x1="${RightX}" x2="${RightX + Panel.width}" y1="${y(v)}" y2="${y(v)}" stroke="${m === 1 ? '#d5d5d5' : '#eeeeee'}"/>`);
      out.push(text(RightX - 6, y(v) + 4, fmt(v), 'text-anchor="end" font-size="11"'));
    }
  }
  const series: { key: 'p50' | 'p95' | 'p99'; color: string; width: number }[] = [
    { key: 'p50', color: '#8fb8ee', width: 1.5 },
    { key: 'p95', color: '#4f8fe0', width: 1.5 },
    { key: 'p99', color: '#c0392b', width: 2.5 },
  ];
  for (const s of series) {
    const pts = steps.map((st, i) => (st.latencyMs ? `${xs[i].toFixed(1)},${y(st.latencyMs[s.key]).toFixed(1)}` : undefined)).filter(Boolean);
    if (pts.length > 1) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.width}"/>`);
    steps.forEach((st, i) => {
      if (st.latencyMs) out.push(`<circle cx="${xs[i]}" cy="${y(st.latencyMs[s.key])}" r="3" fill="${s.color}"/>`);
    });
  }
  steps.forEach((st, i) => {
    if (st.latencyMs) out.push(text(xs[i], y(st.latencyMs.p99) - 7, fmt(st.latencyMs.p99), 'text-anchor="middle" font-size="11" fill="#c0392b"'));
  });
  series.forEach((s, i) => {
    const lx = RightX + 10 + i * 60;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${Panel.top + 14}" y2="${Panel.top + 14}" stroke="${s.color}" stroke-width="${s.width}"/>`);
    out.push(text(lx + 22, Panel.top + 18, s.key, 'font-size="11"'));
  });
  out.push(...xLabels(steps, xs));
  return out;
}

export function renderChart(r: BenchResults): string {
  const steps = r.mesh.steps;
  const o = r.options;
  const lines: string[] = [];
  const b = r.baseline;
  if (b.batched || b.perEvent) {
    lines.push(
      `Raw baseline (bare client, same 4 hops): ${b.batched ? `batched ×${b.batched.perMessage} ${fmt(batchedReference(r)!)} ev/s${b.batchedAfter ? ' (mean of before and after)' : ''}` : ''}` +
        `${b.batched && b.perEvent ? ', ' : ''}${b.perEvent ? `per event ${fmt(b.perEvent.eventsPerSec)} ev/s` : ''}` +
        (r.mesh.saturation && r.ratios.saturationVsBatchedBaseline !== undefined
          ? `; mesh saturation ${fmt(r.mesh.saturation.eventsPerSec)} ev/s = ${r.ratios.saturationVsBatchedBaseline.toFixed(3)}× batched`
          : ''),
    );
  }
  const lat = r.mesh.latency?.latencyMs;
  if (lat && r.mesh.latency) {
    lines.push(
      `Latency at ${offeredLabel(r.mesh.latency.offered)}, ${r.mesh.latency.batch} event(s)/request: p50 ${lat.p50} ms, p95 ${lat.p95} ms, p99 ${lat.p99} ms (${lat.samples} events)`,
    );
  }
  lines.push(
    `Dashed marks: offered load. Red bars: totals not exact. End to end = first post → exact totals of every key in GET /v1/aggregates/totals/<key>. ${r.smoke ? 'SMOKE RUN: not a measurement.' : ''}`,
  );

  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(W / 2, 26, `NATS event mesh: throughput and latency, ${r.date}`, 'text-anchor="middle" font-size="17" font-weight="bold"'),
    text(
      W / 2,
      46,
      `${o.batch} events/request, ${o.concurrency} requests in flight, ${o.eventBytes} B padding, ${o.keys} keys, ${Number(o.durationMs) / 1000} s per step, ${r.environment.cpus} cores`,
      'text-anchor="middle" font-size="12" fill="#555"',
    ),
    ...(steps.length > 0 ? [...throughputPanel(r, steps), ...latencyPanel(steps)] : [text(W / 2, H / 2, 'no load steps were run', 'text-anchor="middle"')]),
    ...lines.map((l, i) => text(30, Panel.top + Panel.height + 70 + i * 17, l, 'font-size="12" fill="#333"')),
    '</svg>',
    '',
  ];
  return svg.join('\n');
}
