/**
 * Every process the bench starts is registered here and stopped by its own
 * pid when the bench ends: normally, on an error and on Ctrl-C (a second
 * Ctrl-C kills at once). Nothing is ever stopped by name.
 */

export interface OwnedProcess {
  /** A label for messages: `nats-server`, `ingest`, `baseline relay 2`. */
  name: string;
  pid: number;
  /**
   * Stopped after every process of a lower tier has stopped: services (0)
   * go before the nats-server (1) they need for a graceful stop.
   */
  tier: number;
  /** Graceful stop; resolves once the process has exited. */
  stop(): Promise<unknown>;
  /** Hard stop; resolves once the process has exited. */
  kill(): Promise<unknown>;
  /** Last-resort synchronous clean-up when the bench exits anyway (remove a temporary store, say). */
  afterExitSync?(): void;
}

const StopTimeoutMs = 25_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.finally(() => clearTimeout(timer)), new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
}

export class OwnedProcesses {
  private readonly byPid = new Map<number, OwnedProcess>();

  constructor(private readonly say: (line: string) => void) {
    // Whatever happens, nothing the bench started outlives it.
    process.once('exit', () => this.killAllSync());
  }

  add(p: OwnedProcess): OwnedProcess {
    this.byPid.set(p.pid, p);
    return p;
  }

  list(): OwnedProcess[] {
    return [...this.byPid.values()];
  }

  /** Stop one process gracefully, killing it if it has not exited within the timeout. */
  async stop(p: OwnedProcess, timeoutMs = StopTimeoutMs): Promise<void> {
    if (!this.byPid.has(p.pid)) return;
    try {
      if ((await withTimeout(p.stop(), timeoutMs)) === 'timeout') {
        this.say(`${p.name} (pid ${p.pid}) did not stop within ${timeoutMs / 1000} s; killing it`);
        await withTimeout(p.kill(), 5_000);
      }
    } catch (err) {
      this.say(`stopping ${p.name} (pid ${p.pid}) failed: ${(err as Error).message}; killing it`);
      await withTimeout(
        p.kill().catch(() => undefined),
        5_000,
      );
    }
    this.byPid.delete(p.pid);
  }

  /** Stop everything, tier by tier. */
  async stopAll(): Promise<void> {
    const tiers = [...new Set(this.list().map((p) => p.tier))].sort((a, b) => a - b);
    for (const tier of tiers) {
      await Promise.all(
        this.list()
          .filter((p) => p.tier === tier)
          .map((p) => this.stop(p)),
      );
    }
  }

  killAllSync(): void {
    for (const p of this.byPid.values()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      try {
        p.afterExitSync?.();
      } catch {
        // best effort
      }
    }
    this.byPid.clear();
  }

  /**
   * Ctrl-C and SIGTERM: stop everything by pid, then exit 130. A second
   * signal while stopping kills what is left at once.
   */
  handleSignals(): void {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        this.say(`${signal} again: killing what is left`);
        this.killAllSync();
        process.exit(130);
      }
      stopping = true;
      this.say(`${signal}: stopping the processes the bench started (Ctrl-C again to kill them)`);
      void this.stopAll().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}
