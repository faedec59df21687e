// Message throughput with the neutral harness's throughput.js (../shared/harness, or VIGIL_HARNESS_DIR): 50
// sender/receiver pairs on loopback, each pair windowed by receipts. A fresh server per run; medians of RUNS.
// With --server, against that server instead (its users u0..u(2*pairs-1) must exist; SPEC in lib/harness.mjs);
// --tls: STARTTLS first.
//   node bench/throughput.mjs [pairs=50] [seconds=20] [runs=3] [--server SPEC] [--tls]
import { requireHarness, runJson, serverArg, targetArgs } from './lib/harness.mjs';
import { median, startServer } from './lib/server.mjs';

const argv = process.argv.slice(2);
const TLS = argv.includes('--tls');
const { target, positional } = serverArg(argv.filter((a) => a !== '--tls'));
const PAIRS = Number(positional[0] ?? 50);
const SECONDS = Number(positional[1] ?? 20);
const RUNS = Number(positional[2] ?? 3);
if (!(PAIRS > 0 && PAIRS <= 500 && SECONDS > 0 && SECONDS <= 120 && RUNS > 0 && RUNS <= 9)) {
  console.error('usage: node bench/throughput.mjs [pairs 1..500] [seconds 1..120] [runs 1..9] [--server host:port,domain,userPattern,pid[,password]] [--tls]');
  process.exit(2);
}
requireHarness('throughput.mjs');

const runs = [];
for (let r = 0; r < RUNS; r++) {
  const server = target ? undefined : await startServer({ users: 2 * PAIRS, prefix: 'u', ...(TLS ? { tls: 'ec' } : {}) });
  const t = target ?? { port: server.port, domain: 'localhost', userPattern: 'u%d', password: 'bench-secret', pid: server.pid };
  const line = await runJson('throughput.js', [...(TLS ? ['--tls'] : []), ...targetArgs(t), '--pairs', PAIRS, '--duration', SECONDS, '--max-time', SECONDS + 60], { timeoutMs: (SECONDS + 90) * 1000, quiet: true });
  await server?.stop();
  runs.push(line);
  console.error(JSON.stringify(line));
}
const pick = (f) => median(runs.map(f));
console.log(JSON.stringify({ bench: 'throughput', tls: TLS, pairs: PAIRS, seconds: SECONDS, runs: RUNS, messagesPerSecond: pick((x) => x.msgsPerSec), p99LatencyMs: pick((x) => x.latencyMs.p99), serverCpuPercent: pick((x) => x.serverCpuPct) }));
