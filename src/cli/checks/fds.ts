import { execFileSync } from 'node:child_process';
import { FD_HEADROOM, sessionCapacity } from '../../config/limits.js';
import { softFdLimit } from '../../metrics/admin.js';
import { error, ok, type Finding } from './finding.js';

export { FD_HEADROOM };

/**
 * The soft RLIMIT_NOFILE against limits.maxSessions: every session holds a socket, and past the limit accept()
 * fails with EMFILE, so clients are refused however healthy the server is. `whose` says which process the
 * limit is of; null means unlimited. limits.maxSessions 0 takes whatever the limit allows, so only a limit
 * that leaves no room at all for sessions is an error then.
 */
export function checkFdLimit(limit: number | null, maxSessions: number, whose: string): Finding {
  if (maxSessions === 0) return derivedFinding(limit, whose);
  const needed = maxSessions + FD_HEADROOM;
  if (limit === null) return ok(`file descriptors: ${whose} has no limit (limits.maxSessions ${maxSessions})`);
  if (limit >= needed) return ok(`file descriptors: ${whose} may open ${limit}, enough for limits.maxSessions ${maxSessions} + ${FD_HEADROOM}`);
  return error(
    `file descriptors: ${whose} may open only ${limit}, below limits.maxSessions ${maxSessions} + ${FD_HEADROOM} = ${needed}; ` +
      `past it new connections fail with EMFILE: raise it (\`ulimit -n ${needed}\` in the shell that starts Vigil, LimitNOFILE=1048576 in the systemd unit as ours has, ` +
      `\`docker run --ulimit nofile=${needed}\`) or lower limits.maxSessions`,
  );
}

function derivedFinding(limit: number | null, whose: string): Finding {
  const sessions = sessionCapacity(0, limit);
  if (limit === null || sessions === null) return ok(`file descriptors: ${whose} has no limit, so limits.maxSessions 0 allows any number of sessions`);
  if (sessions > 0) return ok(`file descriptors: ${whose} may open ${limit}: room for ${sessions} sessions (limits.maxSessions 0: the limit minus ${FD_HEADROOM})`);
  const wanted = 65536;
  return error(
    `file descriptors: ${whose} may open only ${limit}, no more than the ${FD_HEADROOM} Vigil keeps for itself: no room for sessions; ` +
      `raise it (\`ulimit -n ${wanted}\` in the shell that starts Vigil, LimitNOFILE=1048576 in the systemd unit as ours has, \`docker run --ulimit nofile=${wanted}\`)`,
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
