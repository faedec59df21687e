import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import type { Router } from './router/router.js';
import type { SessionRegistry } from './sessions/registry.js';
import type { Storage } from './storage/storage.js';

/** What every layer may reach; config is replaced on reload, so read it each time rather than keeping it. */
export interface Context {
  config: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly registry: SessionRegistry;
  readonly metrics: Metrics;
  readonly router: Router;
}
