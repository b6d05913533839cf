#!/usr/bin/env node
// `npm run test:stress`: the fault scenarios again and again, each run with a
// fresh seed, to find the rare interleaving one run of `npm test` misses.
// Not part of `npm test` or CI (it takes STRESS_RUNS times as long).
//
//   STRESS_RUNS     runs (default 10)
//   STRESS_FILES    comma-separated test paths (default: test/contract)
//   STRESS_FAULTS=1 also test/fault-points.e2e.spec.ts and test/crash.e2e.spec.ts
//                   (their kill points are fixed; the runs differ by timing)
//
// Each run is one jest process over the files (in band) with MESH_TEST_SEED
// set; it prints the seed and pass or fail per run, and at the end every
// failing seed with the command that reruns it. Jest's output of each run
// goes to a log file, named when the run fails. Exit code 1 if any run failed.
'use strict';

const { spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, relative, resolve } = require('node:path');

const root = resolve(__dirname, '..');

function positiveInt(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^[1-9]\d*$/.test(value)) {
    console.error(`${name} must be a whole number of runs, 1 or more; got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return Number(value);
}

const runs = positiveInt('STRESS_RUNS', 10);
const files = (process.env.STRESS_FILES || 'test/contract')
  .split(',')
  .map((f) => f.trim())
  .filter(Boolean);
if (process.env.STRESS_FAULTS === '1') files.push('test/fault-points.e2e.spec.ts', 'test/crash.e2e.spec.ts');
const logs = mkdtempSync(join(tmpdir(), 'mesh-stress-'));
const jest = require.resolve('jest/bin/jest', { paths: [root] });

console.log(`stress: ${runs} runs of ${files.join(' ')}; jest output in ${logs}`);
const failures = [];
for (let run = 1; run <= runs; run++) {
  const seed = Math.floor(Math.random() * 2 ** 32) >>> 0;
  const report = join(logs, `run-${run}-seed-${seed}.json`);
  const log = join(logs, `run-${run}-seed-${seed}.log`);
  const started = Date.now();
  const child = spawnSync(process.execPath, [jest, ...files, '--runInBand', '--json', `--outputFile=${report}`], {
    cwd: root,
    env: { ...process.env, MESH_TEST_SEED: String(seed) },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  writeFileSync(log, `${child.stdout ?? ''}${child.stderr ?? ''}`);
  const took = `${Math.round((Date.now() - started) / 1000)} s`;
  let results;
  try {
    results = JSON.parse(readFileSync(report, 'utf8'));
  } catch {
    results = undefined;
  }
  const failed = results
    ? results.testResults
        .filter((f) => f.status !== 'passed')
        .map((f) => ({
          file: relative(root, f.name),
          tests: f.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName),
        }))
    : [{ file: files.join(' '), tests: [`jest did not report (exit ${child.status}${child.error ? `, ${child.error.message}` : ''})`] }];
  if (child.status === 0 && failed.length === 0) {
    console.log(`run ${run}/${runs} seed=${seed}: pass (${took})`);
    continue;
  }
  console.log(`run ${run}/${runs} seed=${seed}: FAIL (${took}); log ${log}`);
  for (const f of failed) {
    if (f.tests.length === 0) f.tests.push('the file failed outside a test (set-up or tear-down)');
    for (const t of f.tests) console.log(`  ${f.file}: ${t}`);
    failures.push({ run, seed, ...f, log });
  }
}

console.log(`\nstress: ${runs - new Set(failures.map((f) => f.run)).size} of ${runs} runs passed`);
if (failures.length > 0) {
  console.log('failing seeds (rerun each with the command after it):');
  for (const f of failures) {
    console.log(`  seed=${f.seed} run ${f.run} ${f.file}: ${f.tests.join('; ')}`);
    console.log(`    MESH_TEST_SEED=${f.seed} npx jest ${f.file} --runInBand`);
  }
  process.exit(1);
}
