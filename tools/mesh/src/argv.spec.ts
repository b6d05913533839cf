import { MeshVersion } from '@mesh/contracts';
import { parseArgv, type Invocation } from './argv';
import { UsageError } from './errors';

function usageError(argv: string[], env = {}): string {
  try {
    parseArgv(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`parseArgv(${JSON.stringify(argv)}) did not fail`);
}

function help(argv: string[]): string {
  const inv = parseArgv(argv);
  if (inv.command !== 'help') throw new Error(`not help: ${inv.command}`);
  return inv.text;
}

describe('parseArgv', () => {
  describe('global options', () => {
    it('connects to NATS_URL, else to nats://127.0.0.1:4222, unless --nats says otherwise', () => {
      expect(parseArgv(['dlq', 'ls'], {})).toMatchObject({ global: { natsUrl: 'nats://127.0.0.1:4222', json: false } });
      expect(parseArgv(['dlq', 'ls'], { NATS_URL: 'nats://10.0.0.1:4222' })).toMatchObject({ global: { natsUrl: 'nats://10.0.0.1:4222' } });
      expect(parseArgv(['dlq', 'ls', '--nats', 'nats://a:1,nats://b:2'], { NATS_URL: 'nats://10.0.0.1:4222' })).toMatchObject({
        global: { natsUrl: 'nats://a:1,nats://b:2' },
      });
    });

    it('takes options before or after the command, as --opt value or --opt=value', () => {
      const want = { command: 'dlq ls', global: { natsUrl: 'nats://h:1', json: true }, stage: 'processor', partition: 2, limit: 5 };
      expect(parseArgv(['--json', '--nats', 'nats://h:1', 'dlq', 'ls', '--stage', 'processor', '--partition', '2', '--limit', '5'])).toMatchObject(want);
      expect(parseArgv(['dlq', '--stage=processor', 'ls', '--partition=2', '--limit=5', '--nats=nats://h:1', '--json'])).toMatchObject(want);
    });

    it('takes credentials from the flags over the NATS_* env, and names where each came from', () => {
      const env = { NATS_USER: 'env-user', NATS_PASSWORD_FILE: '/run/secrets/pw', NATS_TLS_CA: '/etc/ca.pem' };
      const inv = parseArgv(['partitions', '--user', 'admin', '--password', 'pw', '--tls-cert', '/c.pem', '--tls-key', '/c.key'], env) as Exclude<
        Invocation,
        { command: 'help' }
      >;
      expect(inv.global.credentials).toMatchObject({
        user: 'admin',
        password: 'pw',
        passwordFile: '',
        tlsCa: '/etc/ca.pem',
        tlsCert: '/c.pem',
        tlsKey: '/c.key',
      });
      expect(inv.global.labels).toMatchObject({ user: '--user', password: '--password', tlsCa: 'NATS_TLS_CA', tlsCert: '--tls-cert' });
      const fromEnv = parseArgv(['partitions'], env) as Exclude<Invocation, { command: 'help' }>;
      expect(fromEnv.global.credentials).toMatchObject({ user: 'env-user', passwordFile: '/run/secrets/pw' });
    });

    it('rejects a NATS URL that is not one, naming where it came from', () => {
      expect(usageError(['dlq', 'ls', '--nats', 'not a url'])).toBe(
        "invalid --nats 'not a url'; use one or more comma-separated NATS URLs such as nats://127.0.0.1:4222",
      );
      expect(usageError(['dlq', 'ls'], { NATS_URL: 'http//x' })).toMatch(/^invalid NATS_URL 'http\/\/x'; use one or more/);
    });
  });

  describe('commands', () => {
    it('lists dead letters with a default limit of 100', () => {
      expect(parseArgv(['dlq', 'ls'])).toMatchObject({ command: 'dlq ls', limit: 100, stage: undefined, partition: undefined });
    });

    it('shows one dead letter by sequence', () => {
      expect(parseArgv(['dlq', 'show', '42'])).toMatchObject({ command: 'dlq show', seq: 42 });
    });

    it('redrives one or more sequences, or --all with an optional stage and partition', () => {
      expect(parseArgv(['dlq', 'redrive', '7'])).toMatchObject({ command: 'dlq redrive', target: { seqs: [7] } });
      expect(parseArgv(['dlq', 'redrive', '3', '5', '9'])).toMatchObject({ command: 'dlq redrive', target: { seqs: [3, 5, 9] } });
      expect(parseArgv(['dlq', 'redrive', '--all'])).toMatchObject({ target: { all: true, stage: undefined, partition: undefined } });
      expect(parseArgv(['dlq', 'redrive', '--all', '--stage', 'router', '--partition', '3'])).toMatchObject({
        target: { all: true, stage: 'router', partition: 3 },
      });
    });

    it('removes one or more sequences, or --all with an optional stage and partition', () => {
      expect(parseArgv(['dlq', 'rm', '4', '2'])).toMatchObject({ command: 'dlq rm', target: { seqs: [4, 2] } });
      expect(parseArgv(['dlq', 'rm', '--all', '--stage', 'processor', '--partition', '1'])).toMatchObject({
        command: 'dlq rm',
        target: { all: true, stage: 'processor', partition: 1 },
      });
    });

    it('prints the mesh version for --version, wherever it stands', () => {
      expect(parseArgv(['--version'])).toEqual({ command: 'version', text: `mesh ${MeshVersion}` });
      expect(parseArgv(['dlq', 'ls', '--version'])).toEqual({ command: 'version', text: `mesh ${MeshVersion}` });
    });

    it('tails a stage or a subject, with an optional type filter and count', () => {
      expect(parseArgv(['tail', 'processor'])).toMatchObject({ command: 'tail', target: 'processor', filter: undefined, count: undefined });
      expect(parseArgv(['tail', 'mesh.routed.3.>', '--filter', 'order.*', '--count', '5'])).toMatchObject({
        target: 'mesh.routed.3.>',
        filter: 'order.*',
        count: 5,
      });
    });

    it('shows partitions of every stage or of one', () => {
      expect(parseArgv(['partitions'])).toMatchObject({ command: 'partitions', stage: undefined });
      expect(parseArgv(['partitions', '--stage', 'aggregator'])).toMatchObject({ stage: 'aggregator' });
    });

    it('treats everything after -- as arguments', () => {
      expect(parseArgv(['dlq', 'show', '--', '9'])).toMatchObject({ command: 'dlq show', seq: 9 });
    });
  });

  describe('errors name what was wrong, the value given and what is accepted', () => {
    it.each([
      [['dlq', 'ls', '--stage', 'Router'], "unknown stage 'Router'; use router, processor, aggregator, ingest or the name of a handler service"],
      [
        ['partitions', '--stage', 'ingest'],
        "unknown stage 'ingest'; use router, processor, aggregator or the name of a handler service (ingest has no partition consumers)",
      ],
      [['dlq', 'ls', '--partition', 'two'], "invalid partition 'two'; use a whole number from 0 to 1023"],
      [['dlq', 'ls', '--partition', '-1'], "invalid partition '-1'; use a whole number from 0 to 1023"],
      [['dlq', 'ls', '--partition', '1024'], "invalid partition '1024'; use a whole number from 0 to 1023"],
      [['dlq', 'ls', '--limit', '0'], "invalid limit '0'; use a whole number from 1"],
      [['dlq', 'show', 'abc'], "invalid sequence 'abc'; use a DLQ sequence number (a whole number from 1) as listed by 'mesh dlq ls'"],
      [['dlq', 'show', '0'], "invalid sequence '0'; use a DLQ sequence number (a whole number from 1) as listed by 'mesh dlq ls'"],
      [['dlq', 'show'], "'mesh dlq show' takes one <seq>, got none"],
      [['dlq', 'show', '1', '2'], "'mesh dlq show' takes one <seq>, got 2: 1 2"],
      [
        [],
        "missing command; use dlq ls, dlq show, dlq redrive, dlq rm, partitions, handlers ls, handlers rm, replay, tail, routes ls, routes set, routes rm, send, provision, nats-config, apikey create, apikey ls or apikey revoke (see 'mesh --help')",
      ],
      [['dlc'], "unknown command 'dlc'; use dlq, partitions, handlers, replay, tail, routes, send, provision, nats-config or apikey (see 'mesh --help')"],
      [['dlq'], "missing command after 'mesh dlq'; use ls, show, redrive or rm"],
      [['routes'], "missing command after 'mesh routes'; use ls, set or rm"],
      [['routes', 'set', 'canary'], "'mesh routes set' takes <name> and the rule as JSON, or <name> and --file <path>; got canary"],
      [['routes', 'set', 'bad name', '{}'], "invalid rule name 'bad name'; use 1 to 64 letters, digits, '_' or '-'"],
      [['routes', 'rm'], "'mesh routes rm' takes one rule name, got none"],
      [['dlq', 'list'], "unknown command 'mesh dlq list'; use ls, show, redrive or rm"],
      [['dlq', 'ls', 'extra'], "unexpected argument 'extra' for 'mesh dlq ls'; it takes none"],
      [
        ['dlq', 'ls', '--verbose'],
        "unknown option '--verbose' for 'mesh dlq ls'; use --stage, --partition, --limit, --nats, --user, --password, --creds, --nkey, --tls-ca, --tls-cert, --tls-key, --json or --help",
      ],
      [
        ['dlq', 'show', '1', '--limit', '3'],
        "option --limit does not apply to 'mesh dlq show'; use --nats, --user, --password, --creds, --nkey, --tls-ca, --tls-cert, --tls-key, --json or --help",
      ],
      [
        ['dlq', 'ls', '--stage'],
        'option --stage needs a value <stage>: only dead letters of this stage: router, processor, aggregator, ingest or a handler service',
      ],
      [
        ['dlq', 'ls', '--stage', '--json'],
        'option --stage needs a value <stage>: only dead letters of this stage: router, processor, aggregator, ingest or a handler service',
      ],
      [['dlq', 'ls', '--limit', '1', '--limit', '2'], 'option --limit is given twice; give it once'],
      [['dlq', 'ls', '--json=yes'], "option --json takes no value, got 'yes'"],
      [['dlq', 'redrive'], "missing <seq>; give the DLQ sequence of one or more dead letters (see 'mesh dlq ls') or --all for 'mesh dlq redrive'"],
      [['dlq', 'rm'], "missing <seq>; give the DLQ sequence of one or more dead letters (see 'mesh dlq ls') or --all for 'mesh dlq rm'"],
      [['dlq', 'rm', '3', 'x'], "invalid sequence 'x'; use a DLQ sequence number (a whole number from 1) as listed by 'mesh dlq ls'"],
      [['dlq', 'redrive', '3', '5', '3'], 'sequence 3 is given twice; give each dead letter once'],
      [['dlq', 'rm', '3', '--partition', '1'], '--partition selects the dead letters of --all; with a <seq> leave it out'],
      [['dlq', 'redrive', '3', '--all'], "give either <seq> or --all, not both (got '3' and --all)"],
      [['dlq', 'redrive', '3', '--stage', 'router'], '--stage selects the dead letters of --all; with a <seq> leave it out'],
      [['dlq', 'redrive', '--all', '--stage', 'x_y'], "unknown stage 'x_y'; use router, processor, aggregator, ingest or the name of a handler service"],
      [['tail'], "'mesh tail' takes one stage (ingest, router, processor or aggregator) or subject, got none"],
      [
        ['tail', 'mesh..x'],
        "invalid subject 'mesh..x': a subject is dot-separated tokens without spaces, such as mesh.processed.>; or give a stage: ingest, router, processor or aggregator",
      ],
      [['tail', 'mesh.>.x'], "invalid subject 'mesh.>.x': '>' may only be the last token; or give a stage: ingest, router, processor or aggregator"],
      [['tail', 'router', '--count', '0'], "invalid --count '0'; use a whole number from 1"],
      [['tail', 'router', '--filter', 'order..x'], "invalid --filter 'order..x': token '' must be letters, digits, '_' or '-', or a wildcard '*' or '>'"],
      [['nats-config'], 'missing --out <dir>: the directory to write the config and credentials into'],
      [['nats-config', '--out', 'd', '--partitions', '0'], "invalid --partitions '0'; use a whole number from 1 to 1024"],
      [['nats-config', '--out', 'd', '--hosts', 'a.b'], '--hosts names the hosts of the server certificate; it needs --tls'],
      [
        ['nats-config', '--out', 'd', '--tls', '--hosts', 'a.b,has space'],
        "invalid host 'has space' in --hosts 'a.b,has space'; use host names or IP addresses separated by commas, such as nats.internal,10.0.0.5",
      ],
      [['nats-config', '--out', 'd', 'extra'], "unexpected argument 'extra' for 'mesh nats-config'; it takes none"],
    ])('%j', (argv, message) => {
      expect(usageError(argv)).toBe(message);
    });
  });

  describe('nats-config', () => {
    it('takes the partition count from --partitions, else MESH_PARTITIONS, else 16', () => {
      const options = (argv: string[], env = {}) => {
        const inv = parseArgv(['nats-config', '--out', 'dir', ...argv], env);
        if (inv.command !== 'nats-config') throw new Error(`not nats-config: ${inv.command}`);
        return inv.options;
      };
      expect(options([])).toEqual({ out: 'dir', tls: false, partitions: 16, hosts: [], force: false, handlerServices: [] });
      expect(options(['--handler-service', 'refunds,fraud-check']).handlerServices).toEqual(['refunds', 'fraud-check']);
      expect(() => options(['--handler-service', 'router'])).toThrow("invalid --handler-service 'router': is taken by the mesh itself");
      expect(options([], { MESH_PARTITIONS: '4' }).partitions).toBe(4);
      expect(options(['--partitions', '8'], { MESH_PARTITIONS: '4' }).partitions).toBe(8);
      expect(options(['--tls', '--hosts', 'nats.internal, 10.0.0.5', '--force'])).toMatchObject({
        tls: true,
        hosts: ['nats.internal', '10.0.0.5'],
        force: true,
      });
      expect(usageError(['nats-config', '--out', 'd'], { MESH_PARTITIONS: 'x' })).toBe("invalid MESH_PARTITIONS 'x'; use a whole number from 1 to 1024");
      // It writes files only: no NATS options.
      expect(usageError(['nats-config', '--out', 'd', '--nats', 'nats://h:1'])).toBe(
        "option --nats does not apply to 'mesh nats-config'; use --out, --tls, --partitions, --hosts, --force, --handler-service, --json or --help",
      );
    });
  });

  describe('help', () => {
    it('describes every command at the top level', () => {
      const text = help(['--help']);
      expect(text).toMatch(/^usage: mesh <command> \[options\]/);
      for (const c of ['dlq ls', 'dlq show', 'dlq redrive', 'dlq rm', 'partitions', 'nats-config']) expect(text).toContain(`mesh ${c}`);
      expect(text).toContain('--nats <url>');
      expect(text).toContain('--version');
    });

    it('narrows to a group or a command, with -h, --help or help', () => {
      expect(help(['dlq', '--help'])).toMatch(/^usage: mesh dlq <command>/);
      expect(help(['dlq', 'ls', '-h'])).toMatch(/^usage: mesh dlq ls \[options\]/);
      expect(help(['help', 'partitions'])).toMatch(/^usage: mesh partitions \[options\]/);
      expect(help(['dlq', 'redrive', '--help'])).toContain('--all');
    });

    it('wins over other mistakes on the line', () => {
      expect(help(['dlq', 'ls', '--stage', 'nope', '--help'])).toMatch(/^usage: mesh dlq ls/);
      expect(help(['nonsense', '--help'])).toMatch(/^usage: mesh <command>/);
    });
  });
});
