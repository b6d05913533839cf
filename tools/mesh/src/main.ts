#!/usr/bin/env node
/** `mesh`: the operator CLI of the event mesh. See `mesh --help`. */
import { runCli } from './cli';
import { stdioOutput } from './output';

runCli(process.argv.slice(2), process.env, stdioOutput()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mesh: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
