// `npm run bench:compare` (issue 13): Vigil beside Debian's ejabberd 23.01 and Prosody 0.12 under the same
// neutral load (../shared/harness): idle sessions over plaintext PLAIN and over STARTTLS with hashed
// credentials, message throughput plain and over TLS, SCRAM logins over TLS. Every run on a freshly started
// server, one load at a time; medians of --reps. All three probe idle sessions after 20 s. Needs root (the
// peers drop to their system users). Prints a markdown table, then one JSON line with every run.
//   node bench/compare.mjs [--n 10000] [--hold 60] [--duration 20] [--pairs 50] [--reps 3]
//                          [--only vigil,ejabberd,prosody] [--figures plain,tls,throughput,scram]
//                          [--probe xmpp-ping|whitespace]
// --probe whitespace makes Vigil probe as Prosody does: a space, which asks for no answer (so proves nothing,
// and a dead peer goes unnoticed until TCP gives up), for the idle figures like for like.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { requireHarness, runJson, scramLogins, targetArgs } from './lib/harness.mjs';
import { cleanupPeers, startPeer } from './lib/peers.mjs';
import { median, startServer } from './lib/server.mjs';

const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    hold: { type: 'string', default: '60' },
    duration: { type: 'string', default: '20' },
    pairs: { type: 'string', default: '50' },
    reps: { type: 'string', default: '3' },
    only: { type: 'string', default: 'vigil,ejabberd,prosody' },
    figures: { type: 'string', default: 'plain,tls,throughput,scram' },
    probe: { type: 'string', default: 'xmpp-ping' },
  },
});
const N = Number(o.n), HOLD = Number(o.hold), DURATION = Number(o.duration), PAIRS = Number(o.pairs), REPS = Number(o.reps);
const SERVERS = ['vigil', 'ejabberd', 'prosody'].filter((s) => o.only.split(',').includes(s));
const LOADS = ['plain', 'tls', 'throughput', 'scram'].filter((f) => o.figures.split(',').includes(f));
// The harness client holds one fd per session, and the hard limit here is 20000.
if (!(N > 0 && N <= 19900 && HOLD > 0 && DURATION > 0 && PAIRS > 0 && PAIRS <= 500 && REPS > 0 && SERVERS.length && LOADS.length && ['xmpp-ping', 'whitespace'].includes(o.probe))) {
  console.error('usage: node bench/compare.mjs [--n 1..19900] [--hold s] [--duration s] [--pairs 1..500] [--reps k] [--only vigil,ejabberd,prosody] [--figures plain,tls,throughput,scram] [--probe xmpp-ping|whitespace]');
  process.exit(2);
}
requireHarness('compare.mjs');

// Vigil's c2s watchdog probes after 120 s by default; 20 s is what the peers are started with.
const VIGIL_CONFIG = { watchdog: { c2s: { probeAfter: '20s', probe: o.probe } } };
const USER = { userPattern: 'u%d', password: 'bench-secret' };
const STARTUP_MS = 300_000;

const bounded = (promise, ms, what) => {
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms).unref());
  return Promise.race([promise, late]);
};

// The peers run detached from us as their own users: an interrupted compare stops the one up first.
let current;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await current?.stop();
    cleanupPeers();
    process.exit(130);
  });
}

/** Run `fn(target)` against a fresh `kind` server with `users` accounts, then stop that server. */
async function withServer(kind, { users, tls, prepare }, fn) {
  const server = await bounded(
    kind === 'vigil' ? startServer({ config: VIGIL_CONFIG, users, ...(tls ? { tls: 'ec' } : {}) }) : startPeer(kind, { users, tls, prepare: prepare && ((t) => prepare({ ...USER, ...t })) }),
    STARTUP_MS,
    `starting ${kind}`,
  );
  current = server;
  try {
    return await fn({ ...USER, port: server.port, domain: server.domain ?? 'localhost', pid: server.pid });
  } finally {
    current = undefined;
    await server.stop();
  }
}

const idle = (tls) => (kind) =>
  withServer(kind, { users: N, tls }, (t) => runJson('idle.js', [...(tls ? ['--tls'] : []), ...targetArgs(t), '--n', N, '--hold', HOLD, '--rate', 100000, '--concurrency', 200, '--max-time', HOLD + 600], { timeoutMs: (HOLD + 630) * 1000 }));
const throughput = (tls) => (kind) =>
  withServer(kind, { users: 2 * PAIRS, tls }, (t) => runJson('throughput.js', [...(tls ? ['--tls'] : []), ...targetArgs(t), '--pairs', PAIRS, '--duration', DURATION, '--max-time', DURATION + 120], { timeoutMs: (DURATION + 150) * 1000, quiet: true }));
// Vigil's bench users share one salt, so only the peers need the untimed pass that derives every account's keys.
const scram = async (kind) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-compare-'));
  const cache = join(dir, 'keys.json');
  try {
    return await withServer(kind, { users: N, tls: true, prepare: (t) => scramLogins(t, N, { tls: true, mode: 'prime', cache }) }, (t) => scramLogins(t, N, { tls: true, cache }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const perMinute = (r) => (r.idleCpuS * 60) / r.holdSeconds;
const complete = (r) => r.ok === undefined || r.ok === r.n;
// [load, label, run, figures: [name, from a run's JSON, higher is better, decimals]]
const PLAN = [
  ['plain', 'plaintext PLAIN', idle(false), [['logins/s', (r) => r.loginRate, true, 0], ['RSS KiB/session', (r) => r.perSessionKiB, false, 1], ['CPU s per 60 s hold', perMinute, false, 2]]],
  ['tls', 'STARTTLS + hashed', idle(true), [['logins/s', (r) => r.loginRate, true, 0], ['RSS KiB/session', (r) => r.perSessionKiB, false, 1], ['CPU s per 60 s hold', perMinute, false, 2]]],
  ['throughput', 'throughput plain', throughput(false), [['msgs/s', (r) => r.msgsPerSec, true, 0], ['p99 ms', (r) => r.latencyMs.p99, false, 1]]],
  ['throughput', 'throughput TLS', throughput(true), [['msgs/s', (r) => r.msgsPerSec, true, 0], ['p99 ms', (r) => r.latencyMs.p99, false, 1]]],
  ['scram', 'SCRAM over TLS', scram, [['logins/s', (r) => r.loginRate, true, 0]]],
].filter(([load]) => LOADS.includes(load));

const runs = [];
try {
  for (let rep = 1; rep <= REPS; rep++) {
    for (const [, label, run] of PLAN) {
      for (const server of SERVERS) {
        const started = Date.now();
        // One failed run leaves a gap in the table rather than losing an hour of others.
        const outcome = await run(server).then((result) => ({ result }), (err) => ({ error: err.message }));
        runs.push({ server, rep, label, ...outcome });
        const note = outcome.error ?? (complete(outcome.result) ? '' : `only ${outcome.result.ok} of ${outcome.result.n} logged in`);
        console.error(`${label} ${server} rep ${rep}: ${Math.round((Date.now() - started) / 1000)} s${note ? `, ${note}` : ''}`);
      }
    }
  }
} finally {
  cleanupPeers();
}

const fmt = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const peers = SERVERS.filter((s) => s !== 'vigil');
const ratios = SERVERS.includes('vigil') ? peers : [];
const names = { vigil: 'Vigil', ejabberd: 'ejabberd', prosody: 'Prosody' };
const lines = [
  `${N} sessions, ${HOLD} s hold, ${PAIRS} pairs × ${DURATION} s, median of ${REPS}. Ratios: > 1 means Vigil is better (a higher rate, or less memory, CPU or latency). † = a run failed, or not every session logged in (see the JSON).`,
  'Vigil stores only SCRAM hashes, so its plaintext PLAIN logins pay PBKDF2 too; the peers store plaintext passwords there. SCRAM: the mechanism used is in brackets.',
  '',
  `| figure | ${SERVERS.map((s) => names[s]).join(' | ')} |${ratios.map((p) => ` Vigil/${names[p]} |`).join('')}`,
  `|---|${SERVERS.map(() => '---:|').join('')}${ratios.map(() => '---:|').join('')}`,
];
for (const [, label, , figures] of PLAN) {
  for (const [name, pick, higher, decimals] of figures) {
    const all = (server) => runs.filter((r) => r.server === server && r.label === label);
    const of = (server) => all(server).filter((r) => r.result);
    const value = (server) => median(of(server).map((r) => pick(r.result)));
    const cell = (server) => {
      const mine = of(server);
      const mechs = [...new Set(mine.flatMap((r) => Object.keys(r.result.mechanisms ?? {})))].map((m) => m.replace('SCRAM-', ''));
      return `${fmt(value(server), decimals)}${mechs.length ? ` (${mechs.join(', ')})` : ''}${all(server).some((r) => r.error || !complete(r.result)) ? ' †' : ''}`;
    };
    // A negative per-session RSS (the process gave memory back after the baseline, at small N) has no ratio.
    const ratio = (peer) => (Math.min(value('vigil'), value(peer)) < 0 ? NaN : higher ? value('vigil') / value(peer) : value(peer) / value('vigil'));
    lines.push(`| ${label}: ${name} | ${SERVERS.map(cell).join(' | ')} |${ratios.map((p) => ` ${fmt(ratio(p), 2)} |`).join('')}`);
  }
}
console.log(lines.join('\n'));
console.log(JSON.stringify({ bench: 'compare', n: N, holdSeconds: HOLD, pairs: PAIRS, durationSeconds: DURATION, reps: REPS, runs }));
