/** Descriptors beyond one per session: listeners, storage, logs, certificates, Node's own. */
export const FD_HEADROOM = 1024;

/**
 * The sessions limits.maxSessions stands for: the number itself, or for 0 (the default) what a soft
 * RLIMIT_NOFILE of `fdLimit` leaves after the headroom. The default follows the host rather than naming a
 * figure that is wrong on most of them (the former 100,000 is above what most shells get).
 * null: no limit on descriptors, so none on sessions either.
 */
export function sessionCapacity(maxSessions: number, fdLimit: number | null): number | null {
  if (maxSessions > 0) return maxSessions;
  return fdLimit === null ? null : Math.max(0, fdLimit - FD_HEADROOM);
}
