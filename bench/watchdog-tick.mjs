// Issue 4 figure: the cost of one watchdog pass over N registered sessions (synthetic, no sockets), and
// whether it allocates per idle session. Runs the real Watchdog, registry and decide() from dist/.
//   node --expose-gc bench/watchdog-tick.mjs [sizes=10000,100000,1000000] [ticks=50]
import { load } from './lib/dist.mjs';
import { median } from './lib/server.mjs';

const { Watchdog } = await load('watchdog/watchdog.js');
const { SessionRegistry } = await load('sessions/registry.js');
const { Session } = await load('sessions/session.js');
const { Metrics } = await load('metrics/metrics.js');
const { loadConfig } = await load('config/load.js');

const sizes = (process.argv[2] ?? '10000,100000,1000000').split(',').map(Number);
const TICKS = Number(process.argv[3] ?? 50);
if (!sizes.every((n) => n > 0 && n <= 2_000_000) || !(TICKS > 0 && TICKS <= 1000)) {
  console.error('usage: node --expose-gc bench/watchdog-tick.mjs [sizes up to 2000000, comma-separated] [ticks 1..1000]');
  process.exit(2);
}
const config = loadConfig({ env: {}, overrides: { log: { level: 'silent' } } });
const policy = config.watchdog.c2s;

/** A session as the watchdog reads it, with Session's own watchAt, kept in the registry's table. */
class Synthetic {
  watchTable = undefined;
  watchSlot = -1;
}
Object.defineProperty(Synthetic.prototype, 'watchAt', Object.getOwnPropertyDescriptor(Session.prototype, 'watchAt'));

for (const n of sizes) {
  const registry = new SessionRegistry();
  const now = Date.now();
  // Idle sessions heard from a moment ago: the common case, where decide() says 'none' for everyone and the
  // tick then passes over each until its probe could be due.
  for (let i = 0; i < n; i++) {
    registry.add(Object.assign(new Synthetic(), { id: `s${i}`, kind: 'c2s', state: 'active', bound: true, policy, acceptedAt: now - 1000, lastAliveAt: now - 500, lastAnswerAt: now - 500, lastSentAt: now - 500, pendingBytes: 0, sendAllowance: 0, lastWriteProgressAt: now, probeSentAt: 0, acksProbes: false, ackDueAt: 0, hibernatedUntil: 0, presenceGraceUntil: 0 }));
  }
  const metrics = new Metrics({ sessions: () => [], sendQueueBytes: () => 0, bytes: () => [] });
  const watchdog = new Watchdog({ config, registry, metrics, log: undefined, storage: undefined, router: undefined });
  for (let i = 0; i < 5; i++) watchdog.tick(now);
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const times = [];
  for (let i = 0; i < TICKS; i++) {
    const t0 = process.hrtime.bigint();
    watchdog.tick(now);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  const us = median(times);
  // The same pass with every session woken, so decide() runs for each: the first tick after a reload.
  const sessions = [...registry.all()];
  const woken = [];
  for (let i = 0; i < TICKS; i++) {
    for (const session of sessions) session.watchAt = 0;
    const t0 = process.hrtime.bigint();
    watchdog.tick(now);
    woken.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  console.log(JSON.stringify({
    bench: 'watchdog-tick', sessions: n, ticks: TICKS,
    medianTickMicroseconds: Math.round(us),
    nanosecondsPerSession: Math.round((us * 1000) / n * 10) / 10,
    cpuPercentAtInterval1s: Math.round((us / 1e6) * 1000) / 10,
    heapBytesPerTickPerSession: Math.round((heapGrowth / TICKS / n) * 1000) / 1000,
    wokenTickMicroseconds: Math.round(median(woken)),
  }));
}
