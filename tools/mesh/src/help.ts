/** `--help` texts, rendered from the command table. */
import { Commands, GlobalOptions, VersionOption, type CommandSpec, type OptionSpec } from './commands';

/** A paragraph broken into lines of at most `width` characters (a longer word keeps its own line). */
export function wrap(text: string, width = 80): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function optionLines(options: readonly OptionSpec[]): string[] {
  const left = options.map((o) => (o.value ? `${o.flag} ${o.value}` : o.flag));
  const width = Math.max(...left.map((l) => l.length));
  return options.map((o, i) => `  ${left[i].padEnd(width)}  ${o.help}`);
}

function commandLines(commands: readonly CommandSpec[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length));
  return commands.map((c) => `  mesh ${c.name.padEnd(width)}  ${c.summary}`);
}

/** Help for `mesh`, `mesh dlq` (a group) or one command. */
export function helpText(topic: string): string {
  const spec = Commands.find((c) => c.name === topic);
  if (spec) {
    const usage = [`mesh ${spec.name}`, spec.args, spec.options.length > 0 ? '[options]' : ''].filter(Boolean).join(' ');
    return [
      `usage: ${usage}`,
      '',
      `${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.`,
      ...spec.details.flatMap((d) => ['', ...wrap(d)]),
      ...(spec.options.length > 0 ? ['', 'options:', ...optionLines(spec.options)] : []),
      '',
      'global options:',
      ...optionLines(GlobalOptions),
    ].join('\n');
  }
  const group = Commands.filter((c) => c.name.startsWith(`${topic} `));
  if (topic !== '' && group.length > 0) {
    return [
      `usage: mesh ${topic} <command> [options]`,
      '',
      'commands:',
      ...commandLines(group),
      '',
      `Run 'mesh ${topic} <command> --help' for its options.`,
    ].join('\n');
  }
  return [
    'usage: mesh <command> [options]',
    '',
    'Operate the event mesh on NATS JetStream: dead letters, partitions and HTTP API keys.',
    '',
    'commands:',
    ...commandLines(Commands),
    '',
    'global options:',
    ...optionLines([...GlobalOptions, VersionOption]),
    '',
    "Run 'mesh <command> --help' for a command's options; 'mesh completion bash' prints a bash completion script.",
    'Exit codes: 0 done, 1 failed (NATS unreachable, not found, refused), 2 usage error.',
  ].join('\n');
}
