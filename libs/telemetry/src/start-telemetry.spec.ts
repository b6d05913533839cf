import { execFile } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { context, trace } from '@opentelemetry/api';
import { RepoRoot } from '@mesh/testing';
import { startConsumerSpan } from './messaging-spans';
import { contextFromTraceparent, injectTraceparent } from './propagation';
import { startTelemetry } from './start-telemetry';
import { activeTraceIds } from './trace-ids';

const execFileAsync = promisify(execFile);
const identity = { serviceName: 'router', instanceId: 'router-test-1', version: '0.1.0' };
const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

interface Received {
  url?: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A stand-in OTLP collector on a loopback ephemeral port that records what it is sent. */
async function startCollector(): Promise<{ endpoint: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const otelVars = [
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_TRACES_SAMPLER',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
];
let savedEnv: Record<string, string | undefined>;
beforeEach(() => {
  savedEnv = Object.fromEntries(otelVars.map((v) => [v, process.env[v]]));
  for (const v of otelVars) delete process.env[v];
});
afterEach(() => {
  for (const v of otelVars) {
    if (savedEnv[v] === undefined) delete process.env[v];
    else process.env[v] = savedEnv[v];
  }
  jest.restoreAllMocks();
});

/** Starts a consumer span under the incoming trace, ends it, and gives its ids. */
function oneSpan() {
  const span = startConsumerSpan({ destination: 'mesh.ingest.3.order.created', messageId: 'order-1', parent: contextFromTraceparent(incoming) });
  const ids = span.spanContext();
  const recording = span.isRecording();
  span.end();
  return { ...ids, recording };
}

describe('startTelemetry', () => {
  it('without OTEL_TRACES_EXPORTER records nothing (no cost) but keeps the trace: new span ids under the incoming trace, and prints nothing', async () => {
    const printed = [
      jest.spyOn(process.stdout, 'write'),
      jest.spyOn(process.stderr, 'write'),
      ...(['log', 'info', 'warn', 'error', 'dir', 'debug'] as const).map((m) => jest.spyOn(console, m)),
    ];
    const telemetry = startTelemetry(identity);
    try {
      const span = oneSpan();
      expect(span.recording).toBe(false);
      expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(span.spanId).not.toBe('00f067aa0ba902b7');
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await telemetry.shutdown();
    }
    for (const spy of printed) expect(spy).not.toHaveBeenCalled();
  });

  it('makes the active span visible to activeTraceIds and to injectTraceparent of the active context', async () => {
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_always_on';
    const telemetry = startTelemetry(identity);
    try {
      expect(activeTraceIds()).toEqual({});
      const parent = contextFromTraceparent(incoming);
      const span = startConsumerSpan({ destination: 'mesh.routed.3.orders', parent });
      await context.with(trace.setSpan(parent, span), async () => {
        await new Promise((resolve) => setImmediate(resolve)); // the context survives an await
        expect(activeTraceIds()).toEqual({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: span.spanContext().spanId });
        expect(injectTraceparent(context.active()).traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${span.spanContext().spanId}-01`);
      });
      span.end();
    } finally {
      await telemetry.shutdown();
    }
  });

  it('refuses a second start while running, and starts again after shutdown', async () => {
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_always_on';
    const first = startTelemetry(identity);
    expect(() => startTelemetry({ ...identity, serviceName: 'ingest' })).toThrow(/already started in this process \(service router\)/);
    await first.shutdown();
    expect(oneSpan().recording).toBe(false); // back to the API's no-op tracer

    const second = startTelemetry(identity);
    expect(oneSpan().recording).toBe(true);
    await second.shutdown();
  });

  it('lets OTEL_TRACES_SAMPLER drop spans while the trace id still passes on', async () => {
    process.env.OTEL_TRACES_SAMPLER = 'always_off';
    const telemetry = startTelemetry(identity);
    try {
      const span = oneSpan();
      expect(span.recording).toBe(false);
      expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    } finally {
      await telemetry.shutdown();
    }
  });
});

/**
 * Export runs in a real service process (the built library, as a service
 * loads it): the OTLP exporter and the host resource detector load Node
 * modules with dynamic import(), which Jest's sandbox refuses without
 * --experimental-vm-modules.
 */
describe('startTelemetry in a service process', () => {
  const script = `
    const t = require('@mesh/telemetry');
    const telemetry = t.startTelemetry(${JSON.stringify(identity)});
    const span = t.startConsumerSpan({ destination: 'mesh.ingest.3.order.created', messageId: 'order-1', parent: t.contextFromTraceparent('${incoming}') });
    span.end();
    const sdkLoaded = Object.keys(require.cache).some((f) => f.includes('@opentelemetry/sdk-node'));
    telemetry.shutdown().then(() => process.stdout.write('SPAN ' + span.spanContext().spanId + '\\n' + (sdkLoaded ? 'SDK\\n' : '')));
  `;
  async function runService(env: Record<string, string>): Promise<{ stdout: string; spanId: string }> {
    // Nx runs tasks with FORCE_COLOR set: the console exporter would then print its spans with colour codes.
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_') && k !== 'FORCE_COLOR'));
    const { stdout } = await execFileAsync(process.execPath, ['-e', script], { cwd: RepoRoot, env: { ...clean, ...env }, timeout: 20_000 });
    const spanId = /^SPAN ([0-9a-f]{16})$/m.exec(stdout)?.[1];
    expect(spanId).toBeDefined();
    return { stdout, spanId: spanId! };
  }

  it.each([
    ['http/json', 'application/json'],
    ['http/protobuf', 'application/x-protobuf'],
  ])('exports spans with the service resource over OTLP %s to OTEL_EXPORTER_OTLP_ENDPOINT, flushed by shutdown', async (protocol, contentType) => {
    const collector = await startCollector();
    try {
      const { spanId } = await runService({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      });
      expect(collector.received).toHaveLength(1);
      const [request] = collector.received;
      expect(request.url).toBe('/v1/traces');
      expect(request.headers['content-type']).toBe(contentType);
      const body = request.body.toString('latin1');
      for (const text of ['router-test-1', 'service.instance.id', 'service.version', 'messaging.destination.name', 'process mesh.ingest.3.order.created']) {
        expect(body).toContain(text);
      }
      if (protocol === 'http/json') {
        const sent = JSON.parse(body);
        const attrs = Object.fromEntries(
          sent.resourceSpans[0].resource.attributes.map((a: { key: string; value: { stringValue?: string } }) => [a.key, a.value.stringValue]),
        );
        expect(attrs).toMatchObject({ 'service.name': 'router', 'service.instance.id': 'router-test-1', 'service.version': '0.1.0' });
        const span = sent.resourceSpans[0].scopeSpans[0].spans[0];
        expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
        expect(span.parentSpanId).toBe('00f067aa0ba902b7');
        expect(span.spanId).toBe(spanId);
      } else {
        // protobuf: the ids travel as raw bytes
        expect(request.body.includes(Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex'))).toBe(true);
        expect(request.body.includes(Buffer.from(spanId, 'hex'))).toBe(true);
      }
    } finally {
      await collector.close();
    }
  });

  it('prints ended spans with OTEL_TRACES_EXPORTER=console', async () => {
    const { stdout, spanId } = await runService({ OTEL_TRACES_EXPORTER: 'console' });
    expect(stdout).toContain("name: 'process mesh.ingest.3.order.created'");
    expect(stdout).toContain("traceId: '4bf92f3577b34da6a3ce929d0e0e4736'");
    expect(stdout).toContain(`id: '${spanId}'`);
    expect(stdout).toContain("'service.instance.id': 'router-test-1'");
  });

  it('prints nothing, sends nothing and does not load the Node SDK (12 MB) when OTEL_TRACES_EXPORTER is unset', async () => {
    const collector = await startCollector();
    try {
      const { stdout } = await runService({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint });
      expect(stdout).toMatch(/^SPAN [0-9a-f]{16}\n$/);
      const exporting = await runService({ OTEL_TRACES_EXPORTER: 'console' });
      expect(exporting.stdout).toMatch(/SDK\n$/);
      expect(collector.received).toEqual([]);
    } finally {
      await collector.close();
    }
  });
});
