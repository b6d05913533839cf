/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof` when the process
 * exits) and sums self time per function and per module, so the hottest
 * code of each service can be printed next to the figures.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  /** Self time, ms. */
  selfMs: number;
  /** Share of the busy (non-idle) time, %. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Busy time sampled (everything but "(idle)"), ms. */
  busyMs: number;
  functions: HotSpot[];
  modules: HotSpot[];
}

/** `node_modules/@nats-io/jetstream`, `libs/runtime`, `node:internal/...`, or a builtin marker such as `(garbage collector)`. */
function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const repo = /\/((?:libs|services|tools|bench)\/[^/]+)\//.exec(url);
  if (repo) return repo[1];
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(node_modules|libs|services|tools|bench)\//, '$1/');
}

function top(map: Map<string, number>, busyMs: number, n: number): HotSpot[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, selfMs: Math.round(ms), percent: Math.round((ms / busyMs) * 1000) / 10 }));
}

export function summariseProfile(file: string, n = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const fnTime = new Map<string, number>();
  const modTime = new Map<string, number>();
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    // The delta before sample i+1 is the time spent in sample i.
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!node || node.callFrame.functionName === '(idle)') continue;
    busyUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = `${functionName || '(anonymous)'} ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim();
    fnTime.set(fn, (fnTime.get(fn) ?? 0) + us / 1000);
    const mod = moduleOf(url, functionName);
    modTime.set(mod, (modTime.get(mod) ?? 0) + us / 1000);
  }
  const busyMs = busyUs / 1000;
  return { file, busyMs: Math.round(busyMs), functions: top(fnTime, busyMs, n), modules: top(modTime, busyMs, n) };
}
