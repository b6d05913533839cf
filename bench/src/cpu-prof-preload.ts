/**
 * Preloaded into a service (`NODE_OPTIONS=--require …/cpu-prof-preload.js`)
 * by `npm run bench -- --cpu-prof`: Node 20 refuses `--cpu-prof` in
 * NODE_OPTIONS, and the services are spawned by @mesh/testing without extra
 * node arguments. Starts V8's sampling profiler through the in-process
 * inspector and writes the profile to BENCH_CPU_PROF_FILE when the process
 * exits (the services exit after a graceful SIGTERM stop). The in-thread
 * inspector session answers synchronously, so this works inside 'exit'.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const file = process.env.BENCH_CPU_PROF_FILE;
if (file) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
