// Running load scripts of the neutral harness (../shared/harness, or VIGIL_HARNESS_DIR) and our own load
// clients as children, and naming the server they target.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Load clients still running when the bench exits (it failed, or was interrupted) go with it.
const children = new Set();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export const harnessDir = process.env.VIGIL_HARNESS_DIR ?? fileURLToPath(new URL('../../../shared/harness', import.meta.url));

/** Exit quietly (as `npm run bench` expects of a bench with nothing to run against) when the harness is missing. */
export function requireHarness(bench) {
  if (existsSync(`${harnessDir}/idle.js`)) return;
  console.error(`${bench} skipped: no harness at ${harnessDir} (set VIGIL_HARNESS_DIR)`);
  process.exit(0);
}

/**
 * Run a Node script (a harness script by bare name, e.g. 'idle.js', or an absolute path) and resolve the JSON
 * line it prints; reject on a non-zero exit or after timeoutMs, killing it. The client holds one fd per
 * session, so it runs with the soft fd limit raised to the hard one.
 */
export function runJson(script, args, { timeoutMs = 600_000, quiet = false } = {}) {
  const path = script.startsWith('/') ? script : `${harnessDir}/${script}`;
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, path, ...args.map(String)], { stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'inherit'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    let result;
    const timer = setTimeout(() => {
      process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${script} killed after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('{')) result = JSON.parse(l);
    });
    child.once('close', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      if (code === 0 && result) resolve(result);
      else reject(new Error(`${script} exited with ${code ?? signal}`));
    });
  });
}

/**
 * A server the bench did not start: `host:port,domain,userPattern,pid[,password]`, users from index 0, e.g.
 * `127.0.0.1:15222,bench.local,u%d,4242,bench-secret`. The pid is where RSS and CPU are read.
 */
export function parseServer(spec) {
  const [hostPort, domain, userPattern, pid, password = 'bench-secret'] = spec.split(',');
  const [host, port] = hostPort.split(':');
  if (!(host && Number(port) > 0 && domain && userPattern?.includes('%d') && Number(pid) > 0)) throw new Error(`bad --server ${spec}: want host:port,domain,userPattern,pid[,password]`);
  return { host, port: Number(port), domain, userPattern, pid: Number(pid), password };
}

/** The harness's connection options for `target` ({host, port, domain, userPattern, pid, password}). */
export const targetArgs = (t) => ['--host', t.host ?? '127.0.0.1', '--port', t.port, '--domain', t.domain, '--user-pattern', t.userPattern, '--password', t.password, '--first', 0, '--pid', t.pid];

/** `--server SPEC` out of argv: the target (or undefined) and the remaining, positional arguments. */
export function serverArg(argv) {
  const i = argv.indexOf('--server');
  if (i < 0) return { positional: argv };
  return { target: parseServer(argv[i + 1] ?? ''), positional: [...argv.slice(0, i), ...argv.slice(i + 2)] };
}

/**
 * `n` SCRAM logins (lib/scram-clients.cjs) against `target`, over STARTTLS when `tls`. mode 'prime' only
 * collects the accounts' salts and writes the derived keys to `cache`, which a 'login' run then reuses.
 */
export const scramLogins = (t, n, { tls = false, mode = 'login', cache = '', timeoutMs = 600_000 } = {}) =>
  runJson(fileURLToPath(new URL('./scram-clients.cjs', import.meta.url)), [t.host ?? '127.0.0.1', t.port, t.domain, n, t.userPattern, t.password, 0, 200, tls ? 1 : 0, t.pid, mode, cache], { timeoutMs });
