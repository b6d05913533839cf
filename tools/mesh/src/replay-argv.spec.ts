/**
 * `mesh replay`'s command line: it refuses (exit 2) before connecting to
 * anything unless the operator said --yes or --dry-run, saying what it would
 * have done, and it takes only a start it can name exactly.
 */
import { parseArgv } from './argv';
import { runCli } from './cli';
import { UsageError } from './errors';
import { MemoryOutput } from './output';

function usageError(argv: string[]): string {
  try {
    parseArgv(argv, {});
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`parseArgv(${JSON.stringify(argv)}) did not fail`);
}

describe('mesh replay arguments', () => {
  it('takes --from beginning or an RFC 3339 time (normalised to UTC), with --yes or --dry-run', () => {
    expect(parseArgv(['replay', '--from', 'beginning', '--yes'])).toMatchObject({ command: 'replay', from: 'beginning', dryRun: false, timeoutMs: 60_000 });
    expect(parseArgv(['replay', '--from=2026-11-30T09:00:00+01:00', '--dry-run'])).toMatchObject({ from: '2026-11-30T08:00:00.000Z', dryRun: true });
    expect(parseArgv(['replay', '--from', '2026-11-30T08:00:00.250Z', '--yes', '--timeout', '5000'])).toMatchObject({
      from: '2026-11-30T08:00:00.250Z',
      timeoutMs: 5000,
    });
  });

  it('without --yes refuses, says what it would do and how to go on', () => {
    const message = usageError(['replay', '--from', '2026-11-30T08:00:00Z']);
    expect(message).toContain('pauses every router, processor and aggregator instance');
    expect(message).toContain('every result in mesh_aggregates');
    expect(message).toContain('at or after 2026-11-30T08:00:00.000Z');
    expect(message).toContain('add --yes');
    expect(message).toContain('--dry-run');
  });

  it('refuses with exit code 2 and touches no NATS server (the one given does not exist)', async () => {
    const out = new MemoryOutput();
    const code = await runCli(['replay', '--from', 'beginning'], { NATS_URL: 'nats://127.0.0.1:1' }, out);
    expect(code).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/^mesh: 'mesh replay' pauses .* every event stored in MESH_INGEST\. Nothing was done: add --yes/);
    expect(out.stdout).toEqual([]);
  });

  it('names a missing or malformed --from, a bad --timeout and stray arguments', () => {
    expect(usageError(['replay', '--yes'])).toMatch(/needs --from: 'beginning' or an RFC 3339 time/);
    for (const bad of ['yesterday', '2026-11-30', '2026-11-30T08:00:00', '2026-13-30T08:00:00Z', '1700000000']) {
      expect(usageError(['replay', '--from', bad, '--yes'])).toBe(
        `invalid --from '${bad}'; use 'beginning' or an RFC 3339 time with its offset, e.g. 2026-11-30T08:00:00Z`,
      );
    }
    expect(usageError(['replay', '--from', 'beginning', '--yes', '--timeout', '0'])).toBe("invalid --timeout '0'; use a whole number of milliseconds from 1");
    expect(usageError(['replay', 'now', '--from', 'beginning', '--yes'])).toMatch(/unexpected argument 'now' for 'mesh replay'/);
    expect(usageError(['replay', '--from', 'beginning', '--yes', '--stage', 'router'])).toMatch(/option --stage does not apply to 'mesh replay'/);
  });
});
