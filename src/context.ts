import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import type { Router } from './router/router.js';
import type { SessionEvents } from './sessions/events.js';
import type { SessionRegistry } from './sessions/registry.js';
import type { Storage } from './storage/storage.js';

/**
 * The named dependencies every layer and feature is installed with. `config` is replaced on reload: read it
 * through the context each time, never keep or destructure it.
 */
export interface Context {
  config: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly registry: SessionRegistry;
  readonly sessions: SessionEvents;
  readonly metrics: Metrics;
  readonly router: Router;
}
