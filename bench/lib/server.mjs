import { fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const TICKS = 100; // USER_HZ on Linux
/** User + system CPU seconds in a /proc stat file (a process's, or one of its threads'). */
const statSeconds = (path) => {
  const fields = readFileSync(path, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
};
// Server children still running when the bench exits (it failed, or gave up at its time limit) go with it.
const children = new Set();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/**
 * Start the server child; resolves once it listens. `config`: overrides (domain, listeners.s2s, s2s.routes,
 * tls.cert/tls.key...); VIGIL_BENCH_NODE_ARGS adds node flags (--trace-gc, say); `federate`: hand the certificate to server-to-server TLS too, as `vigil start` does.
 */
export async function startServer({ config = {}, users = 0, prefix = 'u', password = 'bench-secret', tls, federate = false } = {}) {
  const child = fork(here('./serve.mjs'), [], { execArgv: ['--expose-gc', ...(process.env.VIGIL_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...(process.env.VIGIL_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.VIGIL_BENCH_PROF] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const reply = () => new Promise((resolve) => child.once('message', resolve));
  child.send({ config, users, prefix, password, tls, federate });
  // A server that dies while starting (a bad config) fails the bench instead of hanging it.
  const died = new Promise((_, reject) => child.once('exit', (code, signal) => reject(new Error(`the bench server exited while starting (${signal ?? code})`))));
  const { port, wsPort, s2sPort, httpPort } = await Promise.race([reply(), died]);
  died.catch(() => undefined);
  return {
    pid: child.pid,
    port,
    wsPort,
    s2sPort,
    httpPort,
    /** RSS after a full GC, and the live session count. */
    async measure() {
      child.send({ gc: true });
      return reply();
    },
    /** Collections so far, by kind (minor, major, incremental, weakcb): {count, ms} each, ms on the main thread. */
    async gcStats() {
      child.send({ gcStats: true });
      return reply();
    },
    /** Start a CPU profile of the server's main thread; profileStop() ends it and resolves with the profile. */
    async profileStart() {
      child.send({ profile: 'start' });
      await reply();
    },
    async profileStop() {
      child.send({ profile: 'stop' });
      return (await reply()).profile;
    },
    /** CPU seconds so far of the main thread and of all the others (the GC's helpers, the thread pool). */
    threadCpuSeconds() {
      let main = 0;
      let others = 0;
      for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
        const s = statSeconds(`/proc/${child.pid}/task/${tid}/stat`);
        if (Number(tid) === child.pid) main += s;
        else others += s;
      }
      return { main, others };
    },
    /** User + system CPU seconds the server has used so far. */
    cpuSeconds() {
      return statSeconds(`/proc/${child.pid}/stat`);
    },
    async stop() {
      child.send({ stop: true });
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/**
 * COUNT plain clients (test/helpers/plain-clients.cjs, or bench/lib/ws-clients.cjs over WebSocket) in a process of their own, optionally inside a
 * network namespace; resolves with their login time once all are bound.
 */
export async function startClients({ host = '127.0.0.1', port, count, prefix = 'u', password = 'bench-secret', concurrency = 100, netns, websocket = false }) {
  const argv = websocket
    ? [here('./ws-clients.cjs'), `ws://${host}:${port}/xmpp-websocket`, String(count), prefix, password, String(concurrency)]
    : [here('../../test/helpers/plain-clients.cjs'), host, String(port), String(count), prefix, password, String(concurrency)];
  const child = netns ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const result = await new Promise((resolve, reject) => {
    lines.on('line', (line) => line.startsWith('{') && resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`clients exited with ${code}`)));
  });
  return {
    ...result,
    pid: child.pid,
    kill() {
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    },
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A loopback port free a moment ago: for servers that must be told one another's s2s ports before either starts. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
