// A Vigil server in a child process of its own, so a benchmark can read its RSS and CPU from /proc while
// the load comes from elsewhere. Forked by bench/lib/server.mjs; speaks over the IPC channel:
//   parent -> {config, users, prefix, password, tls, federate}; child -> {port, wsPort, s2sPort, httpPort}
//   parent -> {gc: true}; child -> {rss}      parent -> {stop: true}; child exits
//   parent -> {gcStats: true}; child -> {minor: {count, ms}, major: {count, ms}, ...}: the collections so far
//   parent -> {profile: 'start'}; child -> {}     parent -> {profile: 'stop'}; child -> {profile}: a V8 CPU
//   profile of the main thread between the two
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { load } from './dist.mjs';

const { loadConfig } = await load('config/load.js');
const { Server } = await load('server.js');
const { SqliteStorage } = await load('storage/sqlite.js');
const { createLogger } = await load('log.js');
const { makeUserRecord } = await load('c2s/sasl/credentials.js');
const { loadTls } = await load('transport/tls.js');

// Every collection since the server started, by kind: a window's CPU figure is read with what the GC did in it.
const GC_KINDS = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
const gcStats = Object.fromEntries(Object.values(GC_KINDS).map((k) => [k, { count: 0, ms: 0 }]));
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const s = gcStats[GC_KINDS[e.detail?.kind]];
    if (s) {
      s.count++;
      s.ms += e.duration;
    }
  }
}).observe({ type: 'gc' });

/** An RSA 2048 certificate for localhost in `dir`, to compare with the generated ECDSA one. */
async function rsaCertificate(dir) {
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }] });
  const paths = { cert: join(dir, 'rsa.crt'), key: join(dir, 'rsa.key') };
  writeFileSync(paths.cert, pems.cert);
  writeFileSync(paths.key, pems.private);
  return paths;
}

// tls: 'ec' (the certificate Vigil generates) or 'rsa' offers STARTTLS; absent, the server offers none.
// federate: the tls.* certificate (or the generated one) also serves server-to-server TLS, both ways, as
// `vigil start` does; without it s2s streams have no TLS. The s2s listener is on loopback, on a port of its
// own unless config.listeners.s2s says otherwise.
let profiler;
process.once('message', async ({ config: overrides, users, prefix, password, tls: keyType, federate }) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const config = loadConfig({
    env: {},
    overrides: {
      domain: 'localhost',
      storage: { driver: 'sqlite', path: join(dir, 'vigil.sqlite') },
      c2s: { allowPlainWithoutTls: true },
      log: { level: 'silent' },
      ...(keyType === 'rsa' ? { tls: await rsaCertificate(dir) } : {}),
      ...overrides,
      listeners: Object.fromEntries(['c2s', 'websocket', 's2s', 'http'].map((k) => [k, { host: '127.0.0.1', port: 0, ...overrides?.listeners?.[k] }])),
    },
  });
  const material = keyType || federate ? await loadTls(config, createLogger('silent')) : undefined;
  const tls = keyType ? material.context : undefined;
  const certificate = federate ? { cert: material.cert, key: material.key } : undefined;
  const storage = new SqliteStorage(config.storage.path);
  // One credential derivation shared by every account: seeding is not what we measure, login cost is.
  const { scram } = makeUserRecord('x', password, config.c2s.scramIterations);
  for (let i = 0; i < users; i++) await storage.createUser({ username: `${prefix}${i}`, scram });
  const server = new Server({ config, log: createLogger('silent'), storage, tls, certificate });
  await server.start();
  globalThis.vigilServer = server;
  process.send({ port: server.addresses.c2s, wsPort: server.addresses.websocket, s2sPort: server.addresses.s2s, httpPort: server.addresses.http });
  process.on('message', async (msg) => {
    if (msg.gc) {
      for (let i = 0; i < 3; i++) global.gc?.();
      process.send({ rss: process.memoryUsage().rss, sessions: server.ctx.registry.size });
    } else if (msg.gcStats) {
      process.send(gcStats);
    } else if (msg.profile === 'start') {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      process.send({});
    } else if (msg.profile === 'stop') {
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      process.send({ profile });
    } else if (msg.stop) {
      await server.stop();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  });
});
