// Logins and idle sessions over STARTTLS, with the neutral harness's idle.js (../shared/harness, or
// VIGIL_HARNESS_DIR): PLAIN over TLS, cold (PBKDF2 on each first login), for the certificate Vigil generates
// (ECDSA P-256) beside an RSA 2048 one, each on a fresh server in one sitting. With --server, once against
// that server instead (its users u0.. must exist; see lib/harness.mjs for SPEC).
//   node bench/tls.mjs [sessions=10000] [holdSeconds=30] [--server SPEC]
import { requireHarness, runJson, serverArg, targetArgs } from './lib/harness.mjs';
import { startServer } from './lib/server.mjs';

const { target, positional } = serverArg(process.argv.slice(2));
const N = Number(positional[0] ?? 10000);
const HOLD = Number(positional[1] ?? 30);
if (!(N > 0 && N <= 19900 && HOLD > 0 && HOLD <= 300)) {
  console.error('usage: node bench/tls.mjs [sessions 1..19900] [holdSeconds 1..300] [--server host:port,domain,userPattern,pid[,password]]');
  process.exit(2);
}
requireHarness('tls.mjs');

const idle = (t) => runJson('idle.js', ['--tls', ...targetArgs(t), '--n', N, '--hold', HOLD, '--rate', 100000, '--concurrency', 200, '--max-time', 600], { timeoutMs: 660_000 });
const figures = (run) => ({ loggedIn: run.ok, loginsPerSecond: Math.round(run.loginRate), rssPerSessionKiB: run.perSessionKiB, holdCpuSeconds: run.idleCpuS, pingsAnswered: run.pingsAnsweredDuringHold });

const result = { bench: 'tls', sessions: N, holdSeconds: HOLD };
for (const key of target ? ['server'] : (process.env.VIGIL_TLS_KEYS ?? 'rsa,ec').split(',')) {
  const server = target ? undefined : await startServer({ users: N, tls: key });
  const run = await idle(target ?? { port: server.port, domain: 'localhost', userPattern: 'u%d', password: 'bench-secret', pid: server.pid });
  await server?.stop();
  result[key] = figures(run);
  console.error(JSON.stringify({ key, ...result[key] }));
}
console.log(JSON.stringify(result));
