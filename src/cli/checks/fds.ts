import { execFileSync } from 'node:child_process';
import { softFdLimit } from '../../metrics/admin.js';
import { error, ok, type Finding } from './finding.js';

/** Descriptors beyond one per session: listeners, storage, logs, s2s links, Node's own. */
export const FD_HEADROOM = 1024;

/**
 * The soft RLIMIT_NOFILE against limits.maxSessions: every session holds a socket, and past the limit accept()
 * fails with EMFILE, so clients are refused however healthy the server is. `whose` says which process the
 * limit is of; null means unlimited.
 */
export function checkFdLimit(limit: number | null, maxSessions: number, whose: string): Finding {
  const needed = maxSessions + FD_HEADROOM;
  if (limit === null) return ok(`file descriptors: ${whose} has no limit (limits.maxSessions ${maxSessions})`);
  if (limit >= needed) return ok(`file descriptors: ${whose} may open ${limit}, enough for limits.maxSessions ${maxSessions} + ${FD_HEADROOM}`);
  return error(
    `file descriptors: ${whose} may open only ${limit}, below limits.maxSessions ${maxSessions} + ${FD_HEADROOM} = ${needed}; ` +
      `past it new connections fail with EMFILE: raise it (\`ulimit -n ${needed}\` in the shell that starts Vigil, LimitNOFILE=1048576 in the systemd unit as ours has, ` +
      `\`docker run --ulimit nofile=${needed}\`) or lower limits.maxSessions`,
  );
}

/** This process's soft limit: /proc/self/limits, else `ulimit -n` from sh. null: unlimited or unknown. */
export function ownFdLimit(): number | null {
  const fromProc = softFdLimit();
  if (fromProc !== null) return fromProc;
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? null : Number(out) || null;
  } catch {
    return null;
  }
}
