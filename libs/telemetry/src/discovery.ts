/**
 * NATS service discovery: answers $SRV.PING, $SRV.INFO and $SRV.STATS (each
 * also as .<name> and .<name>.<id>) as the NATS micro protocol defines
 * (schemas io.nats.micro.v1.*), so `nats micro ls`, `nats micro info ingest`
 * and `nats micro stats ingest` list every mesh instance.
 *
 * Why not @nats-io/services (3.0.0-25, the latest, a pre-release)? It speaks
 * the protocol fine with @nats-io/transport-node 3.4.0, nats-server 2.9 and
 * Node 20 (checked), but it does not fit the mesh:
 * - every endpoint it lists is a subscription it makes and serves itself; it
 *   cannot describe an endpoint served elsewhere. Listing ingest's `mesh.in.>`
 *   would add a second member to the `mesh-ingest` queue group that takes
 *   requests away from the real handler, and the HTTP API cannot be listed;
 * - it counts requests only through its own handler wrapper; a service cannot
 *   report the numbers it keeps (its stats hook only fills `data`);
 * - it pins @nats-io/nats-core 3.0.0-50 exactly, a second, pre-release copy
 *   of the core client next to our 3.4.0.
 * The protocol part we need is three JSON answers on nine plain
 * subscriptions, written here.
 */
import { headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { DiscoveryOptionError } from './errors';
import type { Discovery, DiscoveryEndpoint, DiscoveryEndpointStats, DiscoveryOptions } from './types';

export const ServiceApiPrefix = '$SRV';
export const ServiceResponseType = {
  ping: 'io.nats.micro.v1.ping_response',
  info: 'io.nats.micro.v1.info_response',
  stats: 'io.nats.micro.v1.stats_response',
} as const;
/** Headers of an error answer, as the micro protocol names them. */
export const ServiceErrorHeader = 'Nats-Service-Error';
export const ServiceErrorCodeHeader = 'Nats-Service-Error-Code';

type Verb = 'PING' | 'INFO' | 'STATS';

const NamePattern = /^[A-Za-z0-9_-]+$/;
// semver.org's pattern, as the protocol requires a semantic version.
const SemVerPattern =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** The control subjects one instance answers: all services, its name, its name and id. */
export function controlSubjects(verb: Verb, name: string, id: string): string[] {
  return [`${ServiceApiPrefix}.${verb}`, `${ServiceApiPrefix}.${verb}.${name}`, `${ServiceApiPrefix}.${verb}.${name}.${id}`];
}

function validate(options: DiscoveryOptions): void {
  const check = (option: string, value: string, ok: boolean, accepted: string) => {
    if (!ok) throw new DiscoveryOptionError(option, value, accepted);
  };
  check('name', options.name, NamePattern.test(options.name), "one or more letters, digits, '-' or '_'");
  check('id', options.id, NamePattern.test(options.id), "one or more letters, digits, '-' or '_'");
  check('version', options.version, SemVerPattern.test(options.version), 'a semantic version such as 1.2.3');
  const seen = new Set<string>();
  options.endpoints.forEach((e, i) => {
    check(`endpoints[${i}].name`, e.name, NamePattern.test(e.name), "one or more letters, digits, '-' or '_'");
    check(`endpoints[${i}].name`, e.name, !seen.has(e.name), 'a name no other endpoint has');
    check(`endpoints[${i}].subject`, e.subject, e.subject !== '' && !/\s/.test(e.subject), 'a NATS subject (no spaces)');
    seen.add(e.name);
  });
}

function endpointInfo(e: DiscoveryEndpoint) {
  return { name: e.name, subject: e.subject, queue_group: e.queueGroup ?? '', metadata: { ...e.metadata } };
}

function endpointStats(e: DiscoveryEndpoint, s: DiscoveryEndpointStats | undefined) {
  const numRequests = s?.numRequests ?? 0;
  // The protocol counts time in nanoseconds (Go's time.Duration), as integers.
  const processingTime = Math.round((s?.processingTimeMs ?? 0) * 1e6);
  return {
    name: e.name,
    subject: e.subject,
    queue_group: e.queueGroup ?? '',
    num_requests: numRequests,
    num_errors: s?.numErrors ?? 0,
    processing_time: processingTime,
    average_processing_time: numRequests > 0 ? Math.round(processingTime / numRequests) : 0,
    last_error: s?.lastError ?? '',
    ...(s?.data !== undefined ? { data: s.data } : {}),
  };
}

/**
 * Starts answering discovery requests for one service instance. Every
 * instance answers (no queue group), as the protocol wants. Throws
 * DiscoveryOptionError for an invalid name, id, version or endpoint.
 */
export function startDiscovery(nc: NatsConnection, options: DiscoveryOptions): Discovery {
  validate(options);
  const { name, id, version } = options;
  const metadata = { ...options.metadata };
  const started = (options.started ?? new Date()).toISOString();
  const onError = options.onError ?? (() => undefined);

  // PING and INFO never change: encode them once.
  const ping = JSON.stringify({ type: ServiceResponseType.ping, name, id, version, metadata });
  const info = JSON.stringify({
    type: ServiceResponseType.info,
    name,
    id,
    version,
    description: options.description ?? '',
    metadata,
    endpoints: options.endpoints.map(endpointInfo),
  });

  const stats = async (): Promise<string> => {
    const given = (await options.stats?.()) ?? [];
    const byName = new Map(given.map((s) => [s.name, s]));
    return JSON.stringify({
      type: ServiceResponseType.stats,
      name,
      id,
      version,
      started,
      metadata,
      endpoints: options.endpoints.map((e) => endpointStats(e, byName.get(e.name))),
    });
  };

  const answerStats = (msg: Msg) => {
    stats().then(
      (body) => msg.respond(body),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        onError(new Error(`discovery: the stats callback of ${name} failed: ${error.message}`, { cause: error }));
        const h = headers();
        h.set(ServiceErrorHeader, error.message);
        h.set(ServiceErrorCodeHeader, '500');
        msg.respond(undefined, { headers: h });
      },
    );
  };

  const handlers: Record<Verb, (msg: Msg) => void> = {
    PING: (msg) => msg.respond(ping),
    INFO: (msg) => msg.respond(info),
    STATS: answerStats,
  };

  let stopping = false;
  const subs: Subscription[] = [];
  for (const verb of Object.keys(handlers) as Verb[]) {
    for (const subject of controlSubjects(verb, name, id)) {
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => (err ? onError(err) : handlers[verb](msg)),
      });
      void sub.closed.then((err) => {
        if (!stopping && !nc.isClosed() && !nc.isDraining()) onError(err ?? new Error(`discovery: subscription ${subject} closed`));
      });
      subs.push(sub);
    }
  }

  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopping = true;
      // allSettled: a subscription the connection already closed has nothing left to drain.
      stopped ??= Promise.allSettled(subs.map((s) => (nc.isClosed() ? Promise.resolve() : s.drain()))).then(() => undefined);
      return stopped;
    },
  };
}
