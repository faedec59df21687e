import { spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

/** A third-party XMPP server a test started as a federation peer of Vigil. */
export interface PeerServer {
  /** Its XMPP domain (the one virtual host it serves). */
  domain: string;
  /** The IPv4 address it listens on (c2s and s2s), e.g. 127.0.0.2. */
  address: string;
  c2sPort: number;
  /** The server process (lua for Prosody, beam.smp for ejabberd). */
  pid: number;
  /** Its temp dir: config, certificate, data, logs, pid file. */
  dir: string;
  /** SIGTERM by PID, SIGKILL after a few seconds, then the temp dir is removed. */
  stop(): Promise<void>;
  /** Its log so far (debug level: every stanza and stream header it saw). */
  log(): string;
}

export interface PeerOptions {
  domain: string;
  address: string;
  users: { user: string; password: string }[];
}

export const C2S_PORT = 5222;
export const S2S_PORT = 5269;

/** Run as root, a server is run as its Debian system user (setpriv); otherwise as ourselves. */
export const asRoot = process.getuid?.() === 0;

export function systemUser(name: string): { uid: number; gid: number; home: string } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no system user ${name}: is the Debian package installed? (scripts/test-deps.sh)`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

/** chown -R */
export function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
}

/** A self-signed certificate (RSA 2048, SAN = domain) made with the openssl CLI: key and cert paths. */
export function makeCert(dir: string, domain: string): { key: string; crt: string } {
  const key = join(dir, `${domain}.key`);
  const crt = join(dir, `${domain}.crt`);
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`, '-keyout', key, '-out', crt],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { key, crt };
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Throw a clear error if something already listens on host:port (a stale server of an earlier run). */
export async function assertPortsFree(host: string, ports: number[], what: string): Promise<void> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (!free) {
      throw new Error(`${what}: ${host}:${port} is already in use (a server left over by an earlier run? find it with: ss -ltnp 'sport = :${port}')`);
    }
  }
}

/** A port nothing listens on at `host` just now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A server's log so far; empty before it wrote one. */
export function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last `lines` lines of a file ('' if absent). */
export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Servers started by this process and not stopped yet: SIGKILLed when the process exits without having
 * stopped them (a test that crashed before its afterAll), so that no peer outlives its test run.
 */
const started = new Set<number>();
process.on('exit', () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});
export const track = (pid: number) => started.add(pid);

/** SIGTERM `pid`, SIGKILL after `graceMs`; resolves once it is gone. `child` (if ours) is reaped too. */
export async function endPid(pid: number, child?: ChildProcess, graceMs = 4000): Promise<void> {
  const gone = () => (child ? child.exitCode !== null || child.signalCode !== null : !pidAlive(pid));
  started.delete(pid);
  if (gone()) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (!gone() && Date.now() < deadline) await sleep(50);
  if (!gone()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // went meanwhile
    }
    const hard = Date.now() + 3000;
    while (!gone() && Date.now() < hard) await sleep(50);
  }
}
