import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { generate } from 'selfsigned';
import { makeUserRecord } from '../../src/c2s/sasl/credentials';
import { loadConfig } from '../../src/config/load';
import type { Config, ConfigOverrides } from '../../src/config/types';
import { createLogger } from '../../src/log';
import { Server } from '../../src/server';
import { SqliteStorage } from '../../src/storage/sqlite';
import type { Storage } from '../../src/storage/storage';

export interface TestServer {
  server: Server;
  config: Config;
  storage: Storage;
  port: number;
  httpPort: number;
  s2sPort: number;
  dir: string;
  addUser(name: string, password?: string): Promise<void>;
  /** New accounts named prefix + a counter (password 'secret'), so tests sharing a server never collide: [name, bare JID]. */
  freshUsers(...prefixes: string[]): Promise<[string, string][]>;
  /** Mutual subscription (both), written straight into storage: how it came about is the subscription tests' business. */
  befriend(a: string, b: string): Promise<void>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

let tlsPems: { cert: string; key: string } | undefined;
let fresh = 0;

/** One self-signed certificate for the whole test run: generating RSA keys is slow. */
export async function testTls(): Promise<{ cert: string; key: string }> {
  if (!tlsPems) {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }] });
    tlsPems = { cert: pems.cert, key: pems.private };
  }
  return tlsPems;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/**
 * A real server on loopback, ephemeral ports, a fresh SQLite file, logs silent. `options.storage` replaces
 * the SQLite file (e.g. a PostgresStorage); either way stop() closes the storage.
 */
export async function startServer(overrides: ConfigOverrides = {}, options: { tls?: boolean; storage?: Storage; certificate?: { cert: string; key: string } } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-test-'));
  const base: ConfigOverrides = {
    domain: 'localhost',
    listeners: { c2s: { host: '127.0.0.1', port: 0 }, websocket: { host: '127.0.0.1', port: 0 }, s2s: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } },
    storage: { driver: 'sqlite', path: join(dir, 'vigil.sqlite') },
    c2s: { allowPlainWithoutTls: true },
    log: { level: process.env.VIGIL_TEST_LOG ?? 'silent' },
  };
  const config = loadConfig({ overrides: merge(base as Record<string, unknown>, overrides as Record<string, unknown>) as ConfigOverrides, env: {} });
  const storage = options.storage ?? new SqliteStorage(config.storage.path);
  let tls;
  let certificate = options.certificate;
  if (options.tls) {
    certificate ??= await testTls();
    tls = createSecureContext(certificate);
  }
  const server = new Server({ config, log: createLogger(config.log.level), storage, tls, certificate });
  await server.start();
  const { c2s, http, s2s } = server.addresses;
  const addUser = async (name: string, password = 'secret') => {
    await storage.createUser(makeUserRecord(name, password, 4096));
  };
  return {
    server,
    config,
    storage,
    port: c2s,
    httpPort: http,
    s2sPort: s2s,
    dir,
    addUser,
    async freshUsers(...prefixes) {
      const out: [string, string][] = [];
      for (const p of prefixes) {
        const name = `${p}${++fresh}`;
        await addUser(name);
        out.push([name, `${name}@${config.domain}`]);
      }
      return out;
    },
    async befriend(a, b) {
      const item = (jid: string) => ({ jid, name: '', subscription: 'both' as const, ask: false, pendingIn: null, approved: false, groups: [] });
      await storage.putRosterItem(a, item(`${b}@${config.domain}`));
      await storage.putRosterItem(b, item(`${a}@${config.domain}`));
    },
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${http}/metrics`);
      return res.text();
    },
    async stop() {
      await server.stop();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The value of one sample on /metrics, e.g. metricValue(text, 'vigil_sessions_closed_total', {reason: 'idle'}). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-z0-9_]+)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) have[k] = v;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}
