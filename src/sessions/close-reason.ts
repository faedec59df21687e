/** Why a session ended; each close is counted once under one of these. */
export type CloseReason =
  | 'idle' | 'probe-timeout' | 'write-stall' | 'send-queue-overflow' | 'unauthenticated'
  | 'peer-closed' | 'error' | 'conflict' | 'shutdown' | 'policy-violation' | 'not-authorized';

/** Reasons the watchdog decides; only these observe the dead-session lifetime. */
export const WATCHDOG_REASONS: ReadonlySet<CloseReason> = new Set(['idle', 'probe-timeout', 'write-stall', 'send-queue-overflow', 'unauthenticated']);
