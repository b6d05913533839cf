/**
 * A lean HTTP client for ingest: node:http with a keep-alive agent, one
 * socket per concurrent request, so the load generator costs little CPU
 * next to the services it measures on the same cores.
 *
 * Like `postEvents` of @mesh/testing (a careful user's client), a 503 or a
 * dropped connection is retried with the same body, so the same event ids;
 * any other answer than 202 is an error.
 */
import { Agent, request } from 'node:http';
import type { CloudEvent } from '@mesh/contracts';
import { encodeRequest, type Format } from '@mesh/testing';

export class IngestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestError';
  }
}

interface Answer {
  status: number;
  body: string;
}

export class IngestClient {
  private readonly agent: Agent;
  private readonly url: URL;
  /** Requests sent again after a 503 or a dropped connection. */
  retries = 0;

  constructor(baseUrl: string, concurrency: number) {
    this.url = new URL('/v1/events', baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  }

  private send(contentType: string, body: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** POST the events until ingest answers 202; throws IngestError on any other answer or after `timeoutMs`. */
  async post(events: readonly CloudEvent[], timeoutMs = 60_000): Promise<void> {
    const { contentType, body } = encodeRequest(events, events.length === 1 ? 'single' : ('batch' satisfies Format));
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let answer: Answer | undefined;
      let failure = '';
      try {
        answer = await this.send(contentType, body);
      } catch (err) {
        failure = (err as Error).message;
      }
      if (answer?.status === 202) return;
      if (answer && answer.status !== 503) throw new IngestError(`POST /v1/events answered ${answer.status}: ${answer.body.slice(0, 500)}`);
      if (Date.now() > deadline) throw new IngestError(`events not accepted within ${timeoutMs} ms; last: ${answer ? `503 ${answer.body}` : failure}`);
      this.retries++;
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
