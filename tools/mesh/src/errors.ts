/**
 * The two ways a command fails. The exit code tells a script which one:
 * 2 for a command line that cannot be run as given, 1 for anything that
 * went wrong while running it (NATS unreachable, no such dead letter, a
 * dead letter refused).
 */

/** The command line is wrong: unknown command or option, a bad value. Exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command could not do its work. Exit code 1. */
export class CliError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
