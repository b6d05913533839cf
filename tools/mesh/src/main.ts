#!/usr/bin/env node
/** `mesh`: the operator CLI of the event mesh. See `mesh --help`. */
import { runCli } from './cli';
import { stdioOutput } from './output';

// `mesh dlq ls | head`: a reader that stops reading is no error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

runCli(process.argv.slice(2), process.env, stdioOutput()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mesh: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
