// SCRAM-SHA-256 logins (SCRAM-SHA-1 where a server offers no SHA-256): N clients log in, bind, send initial
// presence; logins/s. The clients cache the keys derived from SaltedPassword per salt (RFC 5802 allows it).
// Vigil's bench users share one salt, so the timed run pays one derivation; a --server may salt every account
// apart, so its salts are fetched and the keys derived in an untimed pass first. --tls: STARTTLS first (Vigil
// with its generated ECDSA certificate). --server: that server instead (users u0.. must exist; SPEC in
// lib/harness.mjs).
//   node bench/scram.mjs [sessions=10000] [--tls] [--server SPEC]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scramLogins, serverArg } from './lib/harness.mjs';
import { startServer } from './lib/server.mjs';

const argv = process.argv.slice(2);
const TLS = argv.includes('--tls');
const { target, positional } = serverArg(argv.filter((a) => a !== '--tls'));
const N = Number(positional[0] ?? 10000);
if (!(N > 0 && N <= 19900)) {
  console.error('usage: node bench/scram.mjs [sessions 1..19900] [--tls] [--server host:port,domain,userPattern,pid[,password]]');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'vigil-scram-'));
const cache = join(dir, 'keys.json');
const server = target ? undefined : await startServer({ users: N, ...(TLS ? { tls: 'ec' } : {}) });
try {
  if (target) await scramLogins(target, N, { tls: TLS, mode: 'prime', cache });
  const run = await scramLogins(target ?? { port: server.port, domain: 'localhost', userPattern: 'u%d', password: 'bench-secret', pid: server.pid }, N, { tls: TLS, cache });
  console.log(JSON.stringify({ bench: 'scram', ...run }));
} finally {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
}
