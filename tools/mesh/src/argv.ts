/**
 * The command line: `mesh <group> <command> [args] [options]`, split by
 * node:util's parseArgs and checked against the commands' option specs.
 * Options may come anywhere after `mesh`, as `--opt value` or `--opt=value`;
 * `--` ends the options. Every mistake is a UsageError naming what was wrong,
 * the value given and what is accepted.
 */
import { parseArgs } from 'node:util';
import { handlerServiceNameProblem, MeshVersion, Stages, typePatternProblem, type DlqStage, type Stage } from '@mesh/contracts';
import { credentialsFromEnv, EnvLabels, type CredentialLabels, type NatsCredentials } from '@mesh/messaging';
import { Commands, DefaultLimit, GlobalOptions, VersionOption, type CommandName, type OptionSpec } from './commands';
import { isApiKeyCommand, parseApiKeyArgs, type ApiKeyInvocation } from './apikey-argv';
import { UsageError } from './errors';
import { bashCompletion } from './completion';
import { checkRuleName, DlqStages } from '@mesh/operations';
import { checkHandlerName } from './handlers';
import { checkEventType } from './send';
import { helpText } from './help';
import type { NatsConfigOptions } from './nats-config/nats-config';
import { oneOf } from './output';
import { StageOutputs, subjectProblem } from './tail';
import { parseReplayArgs, type ReplayArgs } from './replay-argv';

export const DefaultNatsUrl = 'nats://127.0.0.1:4222';
/** The largest partition count the mesh accepts (MESH_PARTITIONS). */
const MaxPartitions = 1024;
/** The mesh's partition count when MESH_PARTITIONS does not say. */
const DefaultPartitions = 16;

export interface GlobalOpts {
  natsUrl: string;
  json: boolean;
  /** From the flags, else the NATS_* env variables. */
  credentials: NatsCredentials;
  /** How each credential setting was given (its flag or env variable), for errors. */
  labels: CredentialLabels;
}

/** The credential flags and the settings they stand for; env variables fill what they leave. */
const CredentialFlags: [string, keyof NatsCredentials][] = [
  ['--user', 'user'],
  ['--password', 'password'],
  ['--creds', 'creds'],
  ['--nkey', 'nkeySeedFile'],
  ['--tls-ca', 'tlsCa'],
  ['--tls-cert', 'tlsCert'],
  ['--tls-key', 'tlsKey'],
];

export interface ProvisionArgs {
  partitions?: number;
  replicas?: number;
  /** Handler services whose partition consumers to create too. */
  handlerServices?: string[];
}

/** Which dead letters `dlq redrive` and `dlq rm` act on: the sequences given, or all (of a stage, a partition). */
export type DlqSelection = { seqs: number[] } | { all: true; stage?: DlqStage; partition?: number };

export type Invocation =
  | { command: 'help'; text: string }
  | { command: 'version'; text: string }
  | { command: 'completion'; text: string }
  | { command: 'dlq ls'; global: GlobalOpts; stage?: DlqStage; partition?: number; limit: number }
  | { command: 'dlq show'; global: GlobalOpts; seq: number }
  | { command: 'dlq redrive'; global: GlobalOpts; target: DlqSelection }
  | { command: 'dlq rm'; global: GlobalOpts; target: DlqSelection }
  | { command: 'partitions'; global: GlobalOpts; stage?: Stage }
  | { command: 'handlers ls'; global: GlobalOpts }
  | { command: 'handlers rm'; global: GlobalOpts; name: string; yes: boolean }
  | ({ command: 'replay'; global: GlobalOpts } & ReplayArgs)
  | { command: 'tail'; global: GlobalOpts; target: string; filter?: string; count?: number }
  | { command: 'routes ls'; global: GlobalOpts }
  | { command: 'routes set'; global: GlobalOpts; name: string; rule?: string; file?: string }
  | { command: 'routes rm'; global: GlobalOpts; name: string }
  | { command: 'send'; global: GlobalOpts; type: string; body?: string; file?: string; timeoutMs: number }
  | { command: 'provision'; global: GlobalOpts; partitions?: number; replicas?: number; handlerServices?: string[] }
  | { command: 'nats-config'; options: NatsConfigOptions }
  | ApiKeyInvocation;

const groups: Record<string, string[]> = {};
for (const c of Commands) {
  const [group, sub] = c.name.split(' ');
  if (sub !== undefined) (groups[group] ??= []).push(sub);
}
const topLevel = [...new Set(Commands.map((c) => c.name.split(' ')[0]))];
const knownOptions = new Map<string, OptionSpec>([...GlobalOptions, ...Commands.flatMap((c) => c.options)].map((o) => [o.flag, o]));

interface Lexed {
  words: string[];
  values: Map<string, string | true>;
  help: boolean;
  version: boolean;
  /** The first problem with the options; reported after the command is known. */
  problem?: (command: string, allowed: readonly OptionSpec[]) => UsageError;
}

/** What node:util's parseArgs is told: every option's name and whether it takes a value. */
const parserOptions = {
  ...Object.fromEntries(
    [...knownOptions.values(), VersionOption].map((o) => [o.flag.replace(/^--/, ''), { type: o.value ? ('string' as const) : ('boolean' as const) }]),
  ),
  help: { type: 'boolean' as const, short: 'h' },
};

/**
 * The words and options of a command line. node:util's parseArgs splits it
 * (`--opt value`, `--opt=value`, `--` ending the options); what each option
 * means, and what is wrong with it, is decided here against the commands'
 * option specs.
 */
function lex(argv: readonly string[]): Lexed {
  const out: Lexed = { words: [], values: new Map(), help: false, version: false };
  const fail = (p: Lexed['problem']) => {
    out.problem ??= p;
  };
  const { tokens } = parseArgs({ args: [...argv], options: parserOptions, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') {
      out.words.push(t.value);
      continue;
    }
    if (t.kind === 'option-terminator') continue;
    if (t.name === 'help') {
      out.help = true;
      continue;
    }
    const flag = t.rawName;
    if (flag === VersionOption.flag) {
      out.version = true;
      continue;
    }
    const spec = knownOptions.get(flag);
    if (!spec) {
      fail((command, allowed) => new UsageError(`unknown option '${flag}' for 'mesh ${command}'; use ${oneOf(allowed.map((o) => o.flag))}`));
      continue;
    }
    let value: string | true = true;
    if (spec.value) {
      // parseArgs takes the next word as the value whatever it is; another option is not a value.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) {
        fail((_, allowed) => {
          // The same flag may mean slightly different things per command (--stage); explain the command's.
          const own = allowed.find((o) => o.flag === flag) ?? spec;
          return new UsageError(`option ${flag} needs a value ${own.value}: ${own.help}`);
        });
        continue;
      }
      value = t.value;
    } else if (t.inlineValue) {
      fail(() => new UsageError(`option ${flag} takes no value, got '${t.value}'`));
      continue;
    }
    if (out.values.has(flag)) fail(() => new UsageError(`option ${flag} is given twice; give it once`));
    out.values.set(flag, value);
  }
  return out;
}

/** The command the leading words name, and the words after it. */
function resolve(words: readonly string[]): { name: CommandName; rest: string[] } {
  const [first, second] = words;
  if (first === undefined) throw new UsageError(`missing command; use ${oneOf(Commands.map((c) => c.name))} (see 'mesh --help')`);
  if (groups[first]) {
    // `mesh handlers` alone lists them.
    if (second === undefined && first === 'handlers') return { name: 'handlers ls', rest: [] };
    if (second === undefined) throw new UsageError(`missing command after 'mesh ${first}'; use ${oneOf(groups[first])}`);
    if (!groups[first].includes(second)) throw new UsageError(`unknown command 'mesh ${first} ${second}'; use ${oneOf(groups[first])}`);
    return { name: `${first} ${second}` as CommandName, rest: words.slice(2) };
  }
  if (topLevel.includes(first)) return { name: first as CommandName, rest: words.slice(1) };
  throw new UsageError(`unknown command '${first}'; use ${oneOf(topLevel)} (see 'mesh --help')`);
}

/** The help topic named by the words, as far as they name one. */
function helpTopic(words: readonly string[]): string {
  const [first, second] = words[0] === 'help' ? words.slice(1) : words;
  if (first !== undefined && groups[first]) return second !== undefined && groups[first].includes(second) ? `${first} ${second}` : first;
  return first !== undefined && topLevel.includes(first) ? first : '';
}

function wholeNumber(text: string): number | undefined {
  return /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

export function parseStage(text: string): Stage {
  const stage = Stages.find((s) => s === text);
  if (stage) return stage;
  if (text !== 'ingest' && handlerServiceNameProblem(text) === undefined) return text;
  const why = text === 'ingest' ? ' (ingest has no partition consumers)' : '';
  throw new UsageError(`unknown stage '${text}'; use ${[...Stages].join(', ')} or the name of a handler service${why}`);
}

export function parseDlqStage(text: string): DlqStage {
  const stage = DlqStages.find((s) => s === text);
  if (stage) return stage;
  if (handlerServiceNameProblem(text) === undefined) return text;
  throw new UsageError(`unknown stage '${text}'; use ${DlqStages.join(', ')} or the name of a handler service`);
}

/** `--handler-service a,b`: handler service names, each valid. */
export function parseHandlerServices(text: string): string[] {
  const names = text.split(',').map((n) => n.trim());
  for (const n of names) {
    const problem = n === 'processor' ? undefined : handlerServiceNameProblem(n);
    if (problem) throw new UsageError(`invalid --handler-service '${n}': ${problem}`);
  }
  return names;
}

export function parsePartition(text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n >= MaxPartitions) throw new UsageError(`invalid partition '${text}'; use a whole number from 0 to ${MaxPartitions - 1}`);
  return n;
}

export function parseLimit(text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n < 1) throw new UsageError(`invalid limit '${text}'; use a whole number from 1`);
  return n;
}

export function parseSeq(text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n < 1)
    throw new UsageError(`invalid sequence '${text}'; use a DLQ sequence number (a whole number from 1) as listed by 'mesh dlq ls'`);
  return n;
}

export function parsePartitionCount(text: string, from: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n < 1 || n > MaxPartitions) throw new UsageError(`invalid ${from} '${text}'; use a whole number from 1 to ${MaxPartitions}`);
  return n;
}

/** Host names or IP addresses, comma-separated, for a server certificate. */
export function parseHosts(text: string): string[] {
  const hosts = text.split(',').map((h) => h.trim());
  const bad = hosts.find((h) => !/^[A-Za-z0-9._:-]+$/.test(h));
  if (bad !== undefined)
    throw new UsageError(`invalid host '${bad}' in --hosts '${text}'; use host names or IP addresses separated by commas, such as nats.internal,10.0.0.5`);
  return hosts;
}

function parseNatsConfigArgs(
  rest: readonly string[],
  value: (flag: string) => string | undefined,
  has: (flag: string) => boolean,
  env: Readonly<Record<string, string | undefined>>,
): NatsConfigOptions {
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' for 'mesh nats-config'; it takes none`);
  if (!has('--out')) throw new UsageError('missing --out <dir>: the directory to write the config and credentials into');
  if (has('--hosts') && !has('--tls')) throw new UsageError('--hosts names the hosts of the server certificate; it needs --tls');
  const partitions = has('--partitions')
    ? parsePartitionCount(value('--partitions')!, '--partitions')
    : env.MESH_PARTITIONS
      ? parsePartitionCount(env.MESH_PARTITIONS, 'MESH_PARTITIONS')
      : DefaultPartitions;
  return {
    out: value('--out')!,
    tls: has('--tls'),
    partitions,
    hosts: has('--hosts') ? parseHosts(value('--hosts')!) : [],
    force: has('--force'),
    handlerServices: has('--handler-service') ? parseHandlerServices(value('--handler-service')!) : [],
  };
}

const NATS_URL = /^(nats|tls|ws|wss):\/\/[^\s/]+\/?$|^[^\s:/]+:\d+$/;

function parseNatsUrl(text: string, from: string): string {
  const urls = text.split(',').map((u) => u.trim());
  if (urls.some((u) => !NATS_URL.test(u))) {
    throw new UsageError(`invalid ${from} '${text}'; use one or more comma-separated NATS URLs such as ${DefaultNatsUrl}`);
  }
  return urls.join(',');
}

/** The dead letters a redrive or rm names: one or more sequences, or --all with optional --stage and --partition. */
function dlqSelection(
  name: CommandName,
  rest: readonly string[],
  has: (flag: string) => boolean,
  stage: DlqStage | undefined,
  partition: string | undefined,
): DlqSelection {
  if (has('--all')) {
    if (rest.length > 0) throw new UsageError(`give either <seq> or --all, not both (got '${rest[0]}' and --all)`);
    return { all: true, stage, partition: partition === undefined ? undefined : parsePartition(partition) };
  }
  if (rest.length === 0)
    throw new UsageError(`missing <seq>; give the DLQ sequence of one or more dead letters (see 'mesh dlq ls') or --all for 'mesh ${name}'`);
  for (const flag of ['--stage', '--partition']) {
    if (has(flag)) throw new UsageError(`${flag} selects the dead letters of --all; with a <seq> leave it out`);
  }
  const seqs = rest.map(parseSeq);
  const twice = seqs.find((s, i) => seqs.indexOf(s) !== i);
  if (twice !== undefined) throw new UsageError(`sequence ${twice} is given twice; give each dead letter once`);
  return { seqs };
}

/**
 * Parse `argv` (without `node` and the script). `env` supplies NATS_URL.
 * Returns what to run, or throws a UsageError.
 */
export function parseArgv(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Invocation {
  const lexed = lex(argv);
  if (lexed.help || lexed.words[0] === 'help') return { command: 'help', text: helpText(helpTopic(lexed.words)) };
  if (lexed.version) return { command: 'version', text: `mesh ${MeshVersion}` };
  if (lexed.words[0] === 'completion') {
    if (lexed.words[1] !== 'bash' || lexed.words.length !== 2) {
      throw new UsageError(
        `'mesh completion' takes the shell: bash (zsh: load bashcompinit, then the bash script); got ${lexed.words.slice(1).join(' ') || 'none'}`,
      );
    }
    return { command: 'completion', text: bashCompletion() };
  }

  const { name, rest } = resolve(lexed.words);
  const spec = Commands.find((c) => c.name === name)!;
  // A command that works on local files takes no NATS options.
  const globalOptions = spec.offline ? GlobalOptions.filter((o) => o.flag === '--json' || o.flag === '--help') : GlobalOptions;
  const allowed = [...spec.options, ...globalOptions];
  if (lexed.problem) throw lexed.problem(name, allowed);
  for (const flag of lexed.values.keys()) {
    if (!allowed.some((o) => o.flag === flag)) {
      throw new UsageError(`option ${flag} does not apply to 'mesh ${name}'; use ${oneOf(allowed.map((o) => o.flag))}`);
    }
  }
  const value = (flag: string) => lexed.values.get(flag) as string | undefined;
  const has = (flag: string) => lexed.values.has(flag);
  // Offline: the key file, no NATS URL to check.
  if (isApiKeyCommand(name)) return parseApiKeyArgs(name, rest, value, env, has('--json'));
  // Offline too: it writes files.
  if (name === 'nats-config') return { command: name, options: parseNatsConfigArgs(rest, value, has, env) };

  const natsUrl = has('--nats') ? parseNatsUrl(value('--nats')!, '--nats') : env.NATS_URL ? parseNatsUrl(env.NATS_URL, 'NATS_URL') : DefaultNatsUrl;
  const credentials = credentialsFromEnv(env);
  const labels: CredentialLabels = { ...EnvLabels };
  for (const [flag, key] of CredentialFlags) {
    if (!has(flag)) continue;
    credentials[key] = value(flag)!;
    labels[key] = flag;
    // A flag replaces the env's way of giving the same thing (--password over NATS_PASSWORD_FILE).
    if (key === 'password') credentials.passwordFile = '';
  }
  const global: GlobalOpts = { natsUrl, json: has('--json'), credentials, labels };

  const noArguments = () => {
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' for 'mesh ${name}'; it takes none`);
  };
  const dlqStage = has('--stage') ? parseDlqStage(value('--stage')!) : undefined;

  switch (name) {
    case 'dlq ls': {
      noArguments();
      const partition = has('--partition') ? parsePartition(value('--partition')!) : undefined;
      const limit = has('--limit') ? parseLimit(value('--limit')!) : DefaultLimit;
      return { command: name, global, stage: dlqStage, partition, limit };
    }
    case 'dlq show': {
      if (rest.length !== 1) throw new UsageError(`'mesh dlq show' takes one <seq>, got ${rest.length === 0 ? 'none' : `${rest.length}: ${rest.join(' ')}`}`);
      return { command: name, global, seq: parseSeq(rest[0]) };
    }
    case 'dlq redrive':
    case 'dlq rm':
      return { command: name, global, target: dlqSelection(name, rest, has, dlqStage, value('--partition')) };
    case 'partitions': {
      noArguments();
      return { command: name, global, stage: has('--stage') ? parseStage(value('--stage')!) : undefined };
    }
    case 'handlers ls':
      noArguments();
      return { command: name, global };
    case 'handlers rm':
      if (rest.length !== 1) throw new UsageError(`'mesh handlers rm' takes one handler name, got ${rest.length === 0 ? 'none' : rest.join(' ')}`);
      return { command: name, global, name: checkHandlerName(rest[0]), yes: has('--yes') };
    case 'replay':
      return { command: name, global, ...parseReplayArgs(rest, value, has) };
    case 'routes ls':
      noArguments();
      return { command: name, global };
    case 'routes set': {
      const file = value('--file');
      const want = file === undefined ? 2 : 1;
      if (rest.length !== want) {
        throw new UsageError(
          `'mesh routes set' takes <name> and the rule as JSON, or <name> and --file <path>; got ${rest.length === 0 ? 'nothing' : rest.join(' ')}`,
        );
      }
      return { command: name, global, name: checkRuleName(rest[0]), rule: rest[1], file };
    }
    case 'send': {
      const file = value('--file');
      const want = file === undefined ? 2 : 1;
      if (rest.length !== want)
        throw new UsageError(
          `'mesh send' takes <type> and the event as JSON, or <type> and --file <path>; got ${rest.length === 0 ? 'nothing' : rest.join(' ')}`,
        );
      const timeoutText = value('--timeout');
      const timeoutMs = timeoutText === undefined ? 5_000 : wholeNumber(timeoutText);
      if (timeoutMs === undefined || timeoutMs < 1) throw new UsageError(`invalid --timeout '${timeoutText}'; use a whole number of milliseconds from 1`);
      return { command: name, global, type: checkEventType(rest[0]), body: rest[1], file, timeoutMs };
    }
    case 'routes rm':
      if (rest.length !== 1) throw new UsageError(`'mesh routes rm' takes one rule name, got ${rest.length === 0 ? 'none' : rest.join(' ')}`);
      return { command: name, global, name: checkRuleName(rest[0]) };
    case 'provision': {
      noArguments();
      const count = (flag: string, max: number) => {
        const n = wholeNumber(value(flag)!);
        if (n === undefined || n < 1 || n > max) throw new UsageError(`invalid ${flag} '${value(flag)}'; use a whole number from 1 to ${max}`);
        return n;
      };
      return {
        command: name,
        global,
        partitions: has('--partitions') ? count('--partitions', MaxPartitions) : undefined,
        replicas: has('--replicas') ? count('--replicas', 5) : undefined,
        handlerServices: has('--handler-service') ? parseHandlerServices(value('--handler-service')!) : undefined,
      };
    }
    case 'tail': {
      if (rest.length !== 1)
        throw new UsageError(
          `'mesh tail' takes one stage (${oneOf(Object.keys(StageOutputs))}) or subject, got ${rest.length === 0 ? 'none' : `${rest.length}: ${rest.join(' ')}`}`,
        );
      const problem = StageOutputs[rest[0]] ? undefined : subjectProblem(rest[0]);
      if (problem) throw new UsageError(`invalid subject '${rest[0]}': ${problem}; or give a stage: ${oneOf(Object.keys(StageOutputs))}`);
      const filter = value('--filter');
      const filterProblem = filter === undefined ? undefined : typePatternProblem(filter);
      if (filterProblem) throw new UsageError(`invalid --filter '${filter}': ${filterProblem}`);
      const countText = value('--count');
      const count = countText === undefined ? undefined : wholeNumber(countText);
      if (countText !== undefined && (count === undefined || count < 1)) throw new UsageError(`invalid --count '${countText}'; use a whole number from 1`);
      return { command: name, global, target: rest[0], filter, count };
    }
  }
}
