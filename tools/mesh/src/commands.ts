/**
 * The commands of `mesh`, as data: the parser checks options against it
 * and the help is rendered from it, so the two cannot disagree.
 */
import { ApiKeyCommands, type ApiKeyCommandName } from './apikey-commands';

export interface OptionSpec {
  /** `--stage` */
  flag: string;
  /** Placeholder of the value (`<stage>`); absent for a flag. */
  value?: string;
  help: string;
}

export type CommandName =
  | 'dlq ls'
  | 'dlq show'
  | 'dlq redrive'
  | 'dlq rm'
  | 'partitions'
  | 'handlers ls'
  | 'handlers rm'
  | 'replay'
  | 'tail'
  | 'routes ls'
  | 'routes set'
  | 'routes rm'
  | 'send'
  | 'provision'
  | 'nats-config'
  | ApiKeyCommandName;

export interface CommandSpec {
  name: CommandName;
  /** Positional arguments, as shown in the usage line. */
  args: string;
  summary: string;
  options: OptionSpec[];
  /** Extra paragraphs for `--help`. */
  details: string[];
  /** Runs without a NATS connection (edits a local file). */
  offline?: boolean;
}

export const GlobalOptions: OptionSpec[] = [
  { flag: '--nats', value: '<url>', help: 'NATS server URL(s), comma-separated (default: $NATS_URL, else nats://127.0.0.1:4222)' },
  { flag: '--user', value: '<name>', help: 'NATS user name (default: $NATS_USER)' },
  {
    flag: '--password',
    value: '<secret>',
    help: 'NATS password (default: $NATS_PASSWORD or the file $NATS_PASSWORD_FILE; visible to other local users: prefer the env)',
  },
  { flag: '--creds', value: '<file>', help: 'NATS .creds file, JWT and nkey seed (default: $NATS_CREDS)' },
  { flag: '--nkey', value: '<file>', help: 'file with an nkey user seed (default: $NATS_NKEY_SEED_FILE)' },
  { flag: '--tls-ca', value: '<file>', help: 'CA certificate to verify the NATS server; turns TLS on (default: $NATS_TLS_CA)' },
  { flag: '--tls-cert', value: '<file>', help: 'client certificate for mutual TLS (default: $NATS_TLS_CERT)' },
  { flag: '--tls-key', value: '<file>', help: 'key of the client certificate (default: $NATS_TLS_KEY)' },
  { flag: '--json', help: 'print JSON instead of a table' },
  { flag: '--help', help: 'show this help' },
];

/** `mesh --version`: taken before any command, so it is listed in the top-level help only. */
export const VersionOption: OptionSpec = { flag: '--version', help: 'print the mesh version and exit' };

const dlqStageOption: OptionSpec = {
  flag: '--stage',
  value: '<stage>',
  help: 'only dead letters of this stage: router, processor, aggregator, ingest or a handler service',
};
const partitionOption: OptionSpec = { flag: '--partition', value: '<n>', help: 'only dead letters of this partition' };

export const DefaultLimit = 100;

export const Commands: CommandSpec[] = [
  {
    name: 'dlq ls',
    args: '',
    summary: 'list dead letters, oldest first',
    options: [dlqStageOption, partitionOption, { flag: '--limit', value: '<n>', help: `list at most n dead letters (default ${DefaultLimit})` }],
    details: ['Reads MESH_DLQ with an ordered consumer; creates nothing durable.'],
  },
  {
    name: 'dlq show',
    args: '<seq>',
    summary: 'show one dead letter: its headers and its body',
    options: [],
    details: ['<seq> is the DLQ sequence listed by `mesh dlq ls`.'],
  },
  {
    name: 'dlq redrive',
    args: '<seq>... | --all',
    summary: 'publish dead letters back to their original subject, then delete them',
    options: [{ flag: '--all', help: 'redrive every dead letter (with --stage, --partition: those of a stage or partition)' }, dlqStageOption, partitionOption],
    details: [
      'The body is published as it is to the subject in Mesh-Original-Subject, with message id redrive:<seq> ' +
        '(redriving one dead letter twice within the duplicate window stores it once) and header Mesh-Redrive: <seq>. ' +
        'The dead letter is deleted only after JetStream has acknowledged the publish.',
      'A dead letter whose body is not a batch envelope (a JSON array of CloudEvents) or that has no original subject is refused and kept.',
      'Given several sequences, each is redriven in turn; one that cannot be is reported and the others go on.',
    ],
  },
  {
    name: 'dlq rm',
    args: '<seq>... | --all',
    summary: 'discard dead letters for good, printing each one removed',
    options: [{ flag: '--all', help: 'remove every dead letter (with --stage, --partition: those of a stage or partition)' }, dlqStageOption, partitionOption],
    details: [
      'Asks nothing: what it removed is printed (or listed with --json), and cannot be redriven any more. ' +
        '--all takes MESH_DLQ as it is when it starts; dead letters that arrive meanwhile stay.',
    ],
  },
  {
    name: 'partitions',
    args: '',
    summary: 'per stage and partition: consumer, lag, ack floor and owner',
    options: [{ flag: '--stage', value: '<stage>', help: 'only this stage: router, processor, aggregator or a handler service' }],
    details: [
      'The stages are the router, the aggregator and every handler service (the processor and those named in mesh_routes or mesh_members).',
      'lag = messages not yet delivered + delivered but not acknowledged. ' +
        "The owner is the instance holding the partition's lease in mesh_leases ('-' when none does).",
    ],
  },
  {
    name: 'handlers ls',
    args: '',
    summary: 'every handler: the service hosting it, its types, the instances of that service and its lag (`mesh handlers` alone does this)',
    options: [],
    details: [
      'Reads the handler records in mesh_routes (handler.<name>, written by the service hosting it when it starts), the live members in mesh_members ' +
        'and the consumers <service>-pNN. INSTANCES shows "n (k hosting)" when only k of the n live instances host the handler (a rolling update); ' +
        'LAG = messages of the service not yet delivered + delivered but not acknowledged.',
    ],
  },
  {
    name: 'handlers rm',
    args: '<name>',
    summary: 'remove a handler for good: the router stops routing to it, its waiting events are dead-lettered',
    options: [{ flag: '--yes', help: 'do it (without --yes the command only says what it would do, and exits 2)' }],
    details: [
      'Deletes handler.<name> from mesh_routes. Events already routed to it that wait for a host are dead-lettered with the reason ' +
        '"handler \'<name>\' was removed with mesh handlers rm" (redrive them once a service hosts it again). ' +
        'A service that still hosts the handler declares it again when it restarts: remove the handler from its code first.',
    ],
  },
  {
    name: 'replay',
    args: '',
    summary: 'rebuild everything downstream of ingest from the events stored in MESH_INGEST',
    options: [
      { flag: '--from', value: '<time|beginning>', help: "replay the events stored at or after this RFC 3339 time, or 'beginning' for all of them" },
      { flag: '--yes', help: 'do it (without --yes the command only says what it would do, and exits 2)' },
      { flag: '--dry-run', help: 'print what would be paused and reset, change nothing' },
      { flag: '--timeout', value: '<ms>', help: 'how long to wait for every stage instance to pause (default 60000)' },
    ],
    details: [
      'The services keep running and ingest keeps accepting. The stages pause their partitions (keeping their leases), ' +
        'the stage consumers are recreated (the router at --from, the processor and aggregator after the last message of their input), ' +
        "the processor's and aggregator's checkpoints and retry records and every result in mesh_aggregates are removed, and the stages resume: " +
        'the results then reflect exactly the events replayed. Outputs of a replay carry the epoch in their message ids (e<n>:...).',
      'With a --from time, the results of windows before it are removed too and not rebuilt. MESH_AGGREGATES (closed windows) and MESH_DLQ are kept.',
      'If an instance does not pause within --timeout, nothing is reset, the stages resume, and the command fails naming the instances that did not answer.',
    ],
  },
  {
    name: 'tail',
    args: '<stage|subject>',
    summary: 'print events as they pass: time, subject, type, key, id',
    options: [
      { flag: '--filter', value: '<type-pattern>', help: 'only events of these types (* one token, > the rest), such as order.*' },
      { flag: '--count', value: '<n>', help: 'stop after n events (default: run until Ctrl-C)' },
    ],
    details: [
      'A stage prints its output: ingest mesh.ingest.>, router mesh.routed.>, processor mesh.processed.>, aggregator mesh.aggregates.> (closed windows). ' +
        'Anything else is a subject, wildcards allowed. A core NATS subscription: it creates nothing and shows only what arrives from now on. ' +
        'With --json, one JSON object per line.',
    ],
  },
  {
    name: 'routes ls',
    args: '',
    summary: 'the route table: handler declarations and rules, each rule checked as the router checks it',
    options: [],
    details: [
      "Reads KV mesh_routes: handler.<name> (the types a hosted handler declares) and rule.<name> (operators' rules). A rule the router ignores shows why.",
    ],
  },
  {
    name: 'routes set',
    args: '<name> <rule-json> | <name> --file <path>',
    summary: 'store a routing rule, after checking it as the router would',
    options: [{ flag: '--file', value: '<path>', help: 'read the rule from this JSON file' }],
    details: [
      'A rule: {"match": "order.*", "where": {"source": "shop"}, "priority": 10, "to": ["orders"] or [{"handler": "orders-v2", "weight": 10}, ...], "drop": false}. ' +
        'Rules are tried by priority (highest first), then name; the first that matches decides. A rule with problems is refused and nothing is stored. ' +
        'The routers reload the table at once.',
    ],
  },
  {
    name: 'routes rm',
    args: '<name>',
    summary: 'remove a routing rule',
    options: [],
    details: ["Removes rule.<name> from mesh_routes; the handlers' own declarations are not rules and stay."],
  },
  {
    name: 'send',
    args: '<type> <event-json> | <type> --file <path>',
    summary: 'send events to ingest over NATS (a request on mesh.in.<type>) and print its answer',
    options: [
      { flag: '--file', value: '<path>', help: 'read the events from this file (one JSON event, a JSON array, or NDJSON)' },
      { flag: '--timeout', value: '<ms>', help: 'how long to wait for the answer (default 5000)' },
    ],
    details: [
      "One ingest instance of the queue group answers; the event's type is taken from <type> when the event has none. " +
        'Exit code 0 when ingest answers 202 (stored), 1 otherwise, with its answer.',
    ],
  },
  {
    name: 'provision',
    args: '',
    summary: 'create or update the streams, buckets and partition consumers (admin credentials)',
    options: [
      { flag: '--partitions', value: '<n>', help: 'partition count P (default: $MESH_PARTITIONS, else 16); fixed once the mesh exists' },
      { flag: '--replicas', value: '<n>', help: 'stream and bucket replicas (default: $MESH_REPLICAS, else 1)' },
      {
        flag: '--handler-service',
        value: '<name,...>',
        help: 'also create the partition consumers of these handler services (those named in mesh_routes get theirs anyway)',
      },
    ],
    details: [
      'Idempotent: running it again changes nothing, or brings updatable settings in line. ' +
        'Services started with MESH_PROVISION=false create nothing and need this to have run. ' +
        'The duplicate window, lease TTL, max ack pending and ack wait come from $MESH_DUPLICATE_WINDOW, $MESH_LEASE_TTL, ' +
        '$MESH_MAX_ACK_PENDING and $MESH_ACK_WAIT as for the services.',
    ],
  },
  {
    name: 'nats-config',
    args: '--out <dir>',
    offline: true,
    summary: 'write a least-privilege nats-server config and credentials for the admin and each service',
    options: [
      { flag: '--out', value: '<dir>', help: 'directory to write into (created if missing; must be empty unless --force)' },
      { flag: '--tls', help: 'also write a CA, a server certificate and a client certificate per identity; clients must present one' },
      { flag: '--partitions', value: '<n>', help: 'partition count the permissions name consumers for (default: $MESH_PARTITIONS, else 16)' },
      { flag: '--hosts', value: '<h1,h2>', help: 'with --tls: more host names or IPs of the server certificate (127.0.0.1 and localhost are always in)' },
      { flag: '--force', help: 'write into a directory that is not empty, replacing its secrets' },
      {
        flag: '--handler-service',
        value: '<name,...>',
        help: 'also an identity per handler service (besides the processor), limited to its own consumers, keys and subjects',
      },
    ],
    details: [
      'Writes nats-server.conf (one nkey user per identity: admin may do everything, ingest, router, processor, aggregator and sink ' +
        'only their own subjects and JetStream API subjects), admin.env, ingest.env, router.env, processor.env, aggregator.env and sink.env ' +
        '(NATS_* variables with absolute paths) and the secret files they name (mode 0600). Needs no NATS connection.',
      'Then: nats-server -c <dir>/nats-server.conf -js -sd <store>; `mesh provision` with admin.env; each service with its env file and MESH_PROVISION=false.',
    ],
  },
  ...ApiKeyCommands,
];
