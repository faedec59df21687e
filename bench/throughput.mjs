// Message throughput with the neutral harness (../shared/harness/throughput.js, or VIGIL_HARNESS): 50
// sender/receiver pairs on loopback, each pair windowed by receipts. A fresh server per run; medians of RUNS.
//   node bench/throughput.mjs [pairs=50] [seconds=20] [runs=3]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, startServer } from './lib/server.mjs';

const PAIRS = Number(process.argv[2] ?? 50);
const SECONDS = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 3);
if (!(PAIRS > 0 && PAIRS <= 500 && SECONDS > 0 && SECONDS <= 120 && RUNS > 0 && RUNS <= 9)) {
  console.error('usage: node bench/throughput.mjs [pairs 1..500] [seconds 1..120] [runs 1..9]');
  process.exit(2);
}
const harness = process.env.VIGIL_HARNESS ?? fileURLToPath(new URL('../../shared/harness/throughput.js', import.meta.url));
if (!existsSync(harness)) {
  console.error(`throughput.mjs skipped: no harness at ${harness} (set VIGIL_HARNESS)`);
  process.exit(0);
}

const runs = [];
for (let r = 0; r < RUNS; r++) {
  const server = await startServer({ users: 2 * PAIRS, prefix: 'u' });
  const args = [harness, '--port', String(server.port), '--domain', 'localhost', '--user-pattern', 'u%d', '--password', 'bench-secret',
    '--first', '0', '--pairs', String(PAIRS), '--duration', String(SECONDS), '--pid', String(server.pid), '--max-time', String(SECONDS + 60)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('{') && resolve(JSON.parse(l)));
    child.once('exit', (code) => code !== 0 && reject(new Error(`harness exited with ${code}`)));
  });
  await server.stop();
  runs.push(line);
  console.error(JSON.stringify(line));
}
const pick = (f) => median(runs.map(f));
console.log(JSON.stringify({ bench: 'throughput', pairs: PAIRS, seconds: SECONDS, runs: RUNS, messagesPerSecond: pick((x) => x.msgsPerSec), p99LatencyMs: pick((x) => x.latencyMs.p99), serverCpuPercent: pick((x) => x.serverCpuPct) }));
