/**
 * The CLI as a function: argv in, lines out, an exit code back. main.ts
 * wires it to the process; tests call it (or a command) directly.
 */
import { runApiKeyCommand } from './apikey';
import type { ApiKeyInvocation } from './apikey-argv';
import { parseArgv, type Invocation } from './argv';
import { openContext, type CommandContext } from './context';
import { dlqList } from './dlq-ls';
import { dlqRedrive } from './dlq-redrive';
import { dlqRemove } from './dlq-rm';
import { dlqShow } from './dlq-show';
import { CliError, UsageError } from './errors';
import { printable, type Output } from './output';
import { writeNatsConfig } from './nats-config/nats-config';
import { showPartitions } from './partitions';
import { handlersList, handlersRemove } from './handlers';
import { provision } from './provision';
import { replay } from './replay';
import { routesList, routesRemove, routesSet } from './routes';
import { send } from './send';
import { tail } from './tail';

export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** Run one parsed command (not help) on an open context. */
export function runCommand(
  ctx: CommandContext,
  inv: Exclude<Invocation, { command: 'help' | 'version' | 'completion' } | ApiKeyInvocation | { command: 'nats-config' }>,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<void> {
  switch (inv.command) {
    case 'dlq ls':
      return dlqList(ctx, inv);
    case 'dlq show':
      return dlqShow(ctx, inv);
    case 'dlq redrive':
      return dlqRedrive(ctx, inv.target);
    case 'dlq rm':
      return dlqRemove(ctx, inv.target);
    case 'partitions':
      return showPartitions(ctx, inv);
    case 'handlers ls':
      return handlersList(ctx);
    case 'handlers rm':
      return handlersRemove(ctx, inv);
    case 'routes ls':
      return routesList(ctx);
    case 'routes set':
      return routesSet(ctx, inv);
    case 'routes rm':
      return routesRemove(ctx, inv.name);
    case 'send':
      return send(ctx, inv);
    case 'provision':
      return provision(ctx, inv, env);
    case 'replay':
      return replay(ctx, inv);
    case 'tail':
      return tail(ctx, inv);
  }
}

/** One printable line, whatever the message held (a malformed body's bytes, say). */
function oneLine(text: string): string {
  return printable(text.replace(/\s*\n\s*/g, ' ').trim());
}

/** An error as one line on stderr, and its exit code. */
export function reportError(err: unknown, out: Output): number {
  if (err instanceof UsageError) {
    out.err(`mesh: ${oneLine(err.message)}`);
    return ExitCode.usage;
  }
  out.err(`mesh: ${oneLine(err instanceof Error ? err.message || err.name : String(err))}`);
  return err instanceof CliError ? err.exitCode : ExitCode.failed;
}

export async function runCli(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, out: Output): Promise<number> {
  let inv: Invocation;
  try {
    inv = parseArgv(argv, env);
  } catch (err) {
    return reportError(err, out);
  }
  if (inv.command === 'help' || inv.command === 'version' || inv.command === 'completion') {
    out.out(inv.text);
    return ExitCode.ok;
  }
  if (!('global' in inv)) {
    // Commands that write local files need no NATS connection.
    try {
      if (inv.command === 'nats-config') writeNatsConfig(inv.options, out);
      else await runApiKeyCommand(inv, out);
      return ExitCode.ok;
    } catch (err) {
      return reportError(err, out);
    }
  }
  let ctx: CommandContext | undefined;
  try {
    ctx = await openContext(inv.global, out);
    await runCommand(ctx, inv, env);
    return ExitCode.ok;
  } catch (err) {
    return reportError(err, out);
  } finally {
    await ctx?.nc.close().catch(() => undefined);
  }
}
