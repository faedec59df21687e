// Prosody and ejabberd for side-by-side figures, started by the harness's own start scripts (so they run
// exactly as in its RESULTS.md) in a run directory of their own, each with users u0..u(N-1) / bench-secret,
// like Vigil's bench users. Needs root: the scripts drop to the servers' system users.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { harnessDir, runJson } from './harness.mjs';
import { freePort, sleep } from './server.mjs';

const run = promisify(execFile);
const DOMAIN = 'bench.local';
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let base;
let serial = 0;

/**
 * A fresh Prosody or ejabberd on a port of its own with `users` registered. tls: STARTTLS required and
 * SCRAM-hashed storage (TLS=1 HASHED=1). Both probe idle sessions after 20 s, as the compare runs Vigil:
 * Prosody's read timeout writes a whitespace byte, ejabberd pings. Users are registered, then the server is
 * restarted, so that its RSS and CPU figures start from a process that has served no one. `prepare({port,
 * domain, pid})` runs against that first process, before the restart (e.g. scramLogins' prime pass).
 */
export async function startPeer(kind, { users, tls = false, prepare }) {
  if (!base) {
    base = mkdtempSync(join(tmpdir(), 'vigil-peers-'));
    // The scripts chown the run directory to the server's user, which must also be able to reach it.
    chmodSync(base, 0o755);
  }
  const rundir = join(base, `${kind}-${++serial}`);
  const env = {
    ...process.env,
    RUNDIR: rundir,
    PORT: String(await freePort()),
    DOMAIN,
    LISTEN: '127.0.0.1',
    ...(kind === 'prosody' ? { READ_TIMEOUT: '20' } : { PING_INTERVAL: '20', PING_TIMEOUT: '10', NODE: `vigilcmp${process.pid}x${serial}@localhost` }),
    ...(tls ? { TLS: '1', HASHED: '1' } : {}),
  };
  const script = `${harnessDir}/servers/${kind}/start-${kind}.sh`;
  const stopScript = () => run('bash', [`${harnessDir}/servers/stop.sh`, kind], { env, timeout: 30_000 }).catch(() => undefined);
  const start = async (fresh) => {
    // A server that came up but never listened (the script gives up then) must not outlive the failure.
    await run('bash', [script], { env: { ...env, FRESH: fresh ? '1' : '0' }, timeout: 60_000 }).catch(async (err) => {
      await stopScript();
      throw err;
    });
    return Number(readFileSync(join(rundir, 'server.pid'), 'utf8'));
  };
  const stop = async (pid) => {
    await stopScript();
    // stop.sh gives up after 10 s with a SIGKILL; a port still bound by a dying process would fail the restart.
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  };
  const port = Number(env.PORT);
  const firstPid = await start(true);
  try {
    const reg = await runJson('register.js', ['--port', port, '--domain', DOMAIN, '--user-pattern', 'u%d', '--password', 'bench-secret', '--first', 0, '--n', users, ...(tls ? ['--tls'] : [])], { timeoutMs: 300_000, quiet: true });
    if (reg.created + reg.exists !== users) throw new Error(`${kind}: registered ${reg.created} of ${users}`);
    await prepare?.({ port, domain: DOMAIN, pid: firstPid });
  } finally {
    await stop(firstPid);
  }
  const pid = await start(false);
  return {
    kind,
    pid,
    port,
    domain: DOMAIN,
    async stop() {
      await stop(pid);
      rmSync(rundir, { recursive: true, force: true });
    },
  };
}

/** Remove what is left of the run directories (call once, when no peer runs any more). */
export const cleanupPeers = () => base && rmSync(base, { recursive: true, force: true });
