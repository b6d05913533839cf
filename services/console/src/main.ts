/**
 * console: the mesh live in a browser. It reads the mesh over NATS with its
 * own least-privilege identity (service discovery, streams, consumers, KV,
 * the stages' metrics), pushes a new picture to every open page each
 * refresh interval (Server-Sent Events), and acts on the mesh in two ways:
 * redriving dead letters and editing route rules. Its page is built from
 * web/ by the Nx build and served by it, with nothing fetched elsewhere.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { ServiceNeeds } from '@mesh/contracts';
import { redactUrl } from '@mesh/messaging';
import { runService, type RunningService, type ServiceContext } from '@mesh/runtime';
import { loadConsoleConfig, type ConsoleConfig } from './config';
import { registerConsoleApi } from './console-api';
import { MeshPictureSource } from './mesh-picture';
import { loadPageAssets, servePage } from './static-page';

async function start(ctx: ServiceContext<ConsoleConfig>): Promise<RunningService> {
  const { config, log, nc, js, http } = ctx;
  const mesh = { nc, js, jsm: await jetstreamManager(nc), natsUrl: redactUrl(config.nats.url) };

  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') connected = true;
    }
  })();

  const assets = loadPageAssets();
  if (!assets.has('/')) throw new Error('the console page is not built (services/console/dist/public is missing): run npm run build');
  servePage(http, assets);

  const picture = new MeshPictureSource({
    ctx: mesh,
    self: ctx.service,
    refreshMs: config.console.refreshInterval,
    metricsKey: config.console.metricsKey || undefined,
    isConnected: () => connected && !nc.isClosed(),
    onError: (what, err) => log.warn(what, { error: err }),
  });
  const api = registerConsoleApi({ http, ctx: mesh, picture, log, apiKeys: config.apiKeys.file !== '', instance: config.instance.id });
  picture.start();
  log.info('console page ready', { port: ctx.httpPort, refresh_ms: config.console.refreshInterval, api_keys: config.apiKeys.file !== '' });

  return {
    readiness: () => ({ picture: picture.latest !== undefined }),
    async stop() {
      picture.stop();
      api.stop();
    },
  };
}

void runService({
  name: 'console',
  needs: ServiceNeeds.console,
  loadConfig: () => loadConsoleConfig(),
  start,
});
