/** Request counts and time of one endpoint, as NATS service discovery ($SRV.STATS) reports them. */
import type { DiscoveryEndpointStats } from '@mesh/telemetry';

export class EndpointStats {
  private requests = 0;
  private errors = 0;
  private timeMs = 0;
  private lastError?: string;

  constructor(readonly name: string) {}

  record(count: number, ms: number, failed = 0, error?: string): void {
    this.requests += count;
    this.timeMs += ms;
    this.errors += failed;
    if (error) this.lastError = error;
  }

  snapshot(data?: unknown): DiscoveryEndpointStats {
    return { name: this.name, numRequests: this.requests, numErrors: this.errors, processingTimeMs: this.timeMs, lastError: this.lastError, data };
  }
}
