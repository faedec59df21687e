// Logins and idle sessions over STARTTLS, with the neutral harness's idle.js (../shared/harness, or
// VIGIL_HARNESS_DIR): PLAIN over TLS, cold (PBKDF2 on each first login), for the certificate Vigil generates
// (ECDSA P-256) beside an RSA 2048 one, each on a fresh server in one sitting.
//   node bench/tls.mjs [sessions=10000] [holdSeconds=30]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startServer } from './lib/server.mjs';

const N = Number(process.argv[2] ?? 10000);
const HOLD = Number(process.argv[3] ?? 30);
if (!(N > 0 && N <= 19900 && HOLD > 0 && HOLD <= 300)) {
  console.error('usage: node bench/tls.mjs [sessions 1..19900] [holdSeconds 1..300]');
  process.exit(2);
}
const dir = process.env.VIGIL_HARNESS_DIR ?? fileURLToPath(new URL('../../shared/harness/', import.meta.url));
if (!existsSync(`${dir}/idle.js`)) {
  console.error(`tls.mjs skipped: no harness at ${dir} (set VIGIL_HARNESS_DIR)`);
  process.exit(0);
}

const result = { bench: 'tls', sessions: N, holdSeconds: HOLD };
for (const key of (process.env.VIGIL_TLS_KEYS ?? 'rsa,ec').split(',')) {
  const server = await startServer({ users: N, tls: key });
  const args = [`${dir}/idle.js`, '--tls', '--port', String(server.port), '--domain', 'localhost', '--user-pattern', 'u%d', '--password', 'bench-secret',
    '--first', '0', '--n', String(N), '--hold', String(HOLD), '--rate', '100000', '--concurrency', '200', '--pid', String(server.pid), '--max-time', '600'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const run = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('{') && resolve(JSON.parse(l)));
    child.once('exit', (code) => code !== 0 && reject(new Error(`idle.js exited with ${code}`)));
  });
  await server.stop();
  result[key] = { loggedIn: run.ok, loginsPerSecond: Math.round(run.loginRate), rssPerSessionKiB: run.perSessionKiB, holdCpuSeconds: run.idleCpuS, pingsAnswered: run.pingsAnsweredDuringHold };
  console.error(JSON.stringify({ key, ...result[key] }));
}
console.log(JSON.stringify(result));
