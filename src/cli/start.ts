import { loadConfig, type LoadOptions } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';
import { Server } from '../server.js';
import { loadTls } from '../transport/tls.js';
import { openStorage } from './storage.js';

/**
 * `vigil start`: the one foreground process that listens, so systemd, Docker and shells signal it directly.
 * SIGHUP reloads the config file; SIGTERM/SIGINT shut down gracefully; a second one exits at once.
 */
export async function startCommand(config: Config, loadOptions: LoadOptions): Promise<void> {
  const log = createLogger(config.log.level);
  const storage = await openStorage(config);
  const tls = await loadTls(config, log);
  const server = new Server({ config, log, storage, tls: tls.context, certificate: { cert: tls.cert, key: tls.key } });
  await server.start();

  process.on('SIGHUP', () => {
    try {
      const next = loadConfig(loadOptions);
      log.level = next.log.level;
      server.reload(next);
    } catch (err) {
      log.error({ event: 'config.reload-rejected', problems: (err as Error).message.split('\n') }, 'new configuration rejected; the old one stays');
    }
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ event: 'server.exit-now', signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ event: 'server.stopping', signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      log.error({ event: 'server.shutdown-timeout' }, 'shutdown took too long: exiting');
      process.exit(1);
    }, config.shutdown.timeout + 2000);
    hardStop.unref();
    server
      .stop()
      .then(() => storage.close())
      .then(() => process.exit(0))
      .catch((err: Error) => {
        log.error({ event: 'server.shutdown-failed', err: err.message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
