/**
 * The `mesh apikey` commands as data (see commands.ts): they edit the API
 * key file the services read, and need no NATS connection.
 */
import type { CommandSpec, OptionSpec } from './commands';

export type ApiKeyCommandName = 'apikey create' | 'apikey ls' | 'apikey revoke';

const fileOption: OptionSpec = { flag: '--file', value: '<path>', help: 'the API key file (default: $MESH_API_KEYS_FILE)' };

export const ApiKeyCommands: CommandSpec[] = [
  {
    name: 'apikey create',
    args: '',
    summary: 'add an API key to the key file and print the key once',
    offline: true,
    options: [
      { flag: '--name', value: '<name>', help: "the key's name, unique in the file (letters, digits, '_', '.', '-')" },
      { flag: '--scopes', value: '<list>', help: 'comma-separated scopes: ingest (POST /v1/events), query (GET /v1/...), admin (everything)' },
      fileOption,
      { flag: '--sources', value: '<list>', help: 'comma-separated event sources the key may send (default: any)' },
      { flag: '--types', value: '<list>', help: 'comma-separated event types or patterns such as order.* the key may send (default: any)' },
    ],
    details: [
      'Creates the file (mode 0600) if it is missing. The file keeps only a SHA-256 hash of the key: ' +
        'the key is printed once, as the last line of the output, and cannot be shown again. ' +
        'Running services reload the file within about a second.',
    ],
  },
  {
    name: 'apikey ls',
    args: '',
    summary: 'list the API keys: names, scopes, restrictions, creation time',
    offline: true,
    options: [fileOption],
    details: ['Never shows keys or their hashes.'],
  },
  {
    name: 'apikey revoke',
    args: '<name>',
    summary: 'remove an API key from the key file',
    offline: true,
    options: [fileOption],
    details: ['Running services reload the file and refuse the key within about a second, without a restart.'],
  },
];
