/**
 * The two ways a command fails. The exit code tells a script which one:
 * 2 for a command line that cannot be run as given, 1 for anything that
 * went wrong while running it (NATS unreachable, no such dead letter, a
 * dead letter refused). They are the errors of '@mesh/operations', which
 * the commands share with the console, under the CLI's names.
 */
export {
  /** The command line is wrong: unknown command or option, a bad value. Exit code 2. */
  InvalidRequestError as UsageError,
  /** The command could not do its work. Exit code 1. */
  OperationError as CliError,
} from '@mesh/operations';
