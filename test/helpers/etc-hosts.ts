import { closeSync, constants, ftruncateSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';

/**
 * Names in /etc/hosts for the length of a test: federation peers (Prosody, ejabberd, Vigil) find each
 * other's domains there. Every line added carries a marker with this process's pid, so that the lines of
 * one worker are removed by it and no other, and lines left by a worker that died are cleaned up by the
 * next one. Several jest workers may do this at once: each change is made under a lock file (created with
 * O_EXCL) and written in place, because /etc/hosts may be a bind mount that rename() cannot replace.
 */

export const HOSTS_FILE = '/etc/hosts';
const LOCK = '/tmp/vigil-etc-hosts.lock';
const MARK = '# vigil-test pid=';
/** A lock older than this is left over by a process that died holding it. */
const STALE_LOCK_MS = 10_000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Who holds the lock and for how long (ms); undefined if there is no lock file (any more). */
function lockHolder(): { holder: number; age: number } | undefined {
  try {
    return { holder: Number(readFileSync(LOCK, 'utf8').trim()), age: Date.now() - statSync(LOCK).mtimeMs };
  } catch {
    return undefined;
  }
}

function withLock<T>(fn: () => T): T {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const fd = openSync(LOCK, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = lockHolder();
      if (!held) continue; // it went away meanwhile: try again at once
      const { holder, age } = held;
      if ((Number.isInteger(holder) && holder > 0 && !alive(holder)) || age > STALE_LOCK_MS) {
        try {
          unlinkSync(LOCK);
        } catch {
          // someone else removed it first
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${LOCK} is held by pid ${holder}; remove it if that process is gone`, { cause: err });
      sleepSync(20 + Math.random() * 30);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(LOCK);
    } catch {
      // nothing to do
    }
  }
}

/**
 * The same inode (bind mounts keep working), and never an empty or half-written file for a reader
 * (getaddrinfo, Prosody's libunbound) at any moment: no O_TRUNC; one write at offset 0 of the new content,
 * padded with newlines (blank lines are harmless in a hosts file) to the old length when it shrinks, and
 * only then the file cut to its new length.
 */
function writeInPlace(out: string, oldLength: number): void {
  const body = Buffer.from(out);
  const padded = body.length < oldLength ? Buffer.concat([body, Buffer.alloc(oldLength - body.length, '\n')]) : body;
  const fd = openSync(HOSTS_FILE, 'r+');
  try {
    writeSync(fd, padded, 0, padded.length, 0);
    if (padded.length !== body.length) ftruncateSync(fd, body.length);
  } finally {
    closeSync(fd);
  }
}

/** Rewrite /etc/hosts in place: `edit` gets its lines (stale tagged lines already dropped). */
function rewrite(edit: (lines: string[]) => string[]): void {
  withLock(() => {
    const text = readFileSync(HOSTS_FILE, 'utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const kept = lines.filter((line) => {
      const i = line.indexOf(MARK);
      if (i < 0) return true;
      const pid = Number.parseInt(line.slice(i + MARK.length), 10);
      return pid === process.pid || alive(pid);
    });
    const next = edit(kept);
    const out = next.length ? `${next.join('\n')}\n` : '';
    if (out !== text) writeInPlace(out, Buffer.byteLength(text));
  });
}

let counter = 0;

/**
 * Add `name -> IPv4` lines to /etc/hosts; the returned function removes exactly those lines (calling it
 * twice is harmless). Stale lines of processes that no longer exist are removed on the way.
 */
export function addHosts(entries: Record<string, string>): () => void {
  const tag = `${MARK}${process.pid} id=${++counter}`;
  const added = Object.entries(entries).map(([name, ip]) => {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`addHosts: ${ip} is not an IPv4 address`);
    if (!/^[A-Za-z0-9.-]+$/.test(name)) throw new Error(`addHosts: ${name} is not a host name`);
    return `${ip} ${name} ${tag}`;
  });
  rewrite((lines) => [...lines, ...added]);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    rewrite((lines) => lines.filter((line) => !line.endsWith(tag)));
  };
}
