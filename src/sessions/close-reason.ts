/** Why a session ended; each close is counted once under one of these. */
export type CloseReason =
  | 'idle' | 'probe-timeout' | 'write-stall' | 'send-queue-overflow' | 'unauthenticated'
  | 'peer-closed' | 'error' | 'conflict' | 'shutdown' | 'policy-violation' | 'not-authorized'
  // Stream management: the unacked queue overflowed, a hibernated session was not resumed in time, or
  // its user had too many hibernated sessions.
  | 'ack-queue-overflow' | 'resume-timeout' | 'hibernation-limit'
  // A WebSocket stream sent to another node (websocket.seeOtherUri).
  | 'redirected';

/** How a connection can be lost without a clean close: a resumable session hibernates instead of closing. */
export type LossReason = 'peer-closed' | 'probe-timeout' | 'idle' | 'write-stall';

/** Reasons the watchdog decides; only these observe the dead-session lifetime. */
export const WATCHDOG_REASONS: ReadonlySet<CloseReason> = new Set(['idle', 'probe-timeout', 'write-stall', 'send-queue-overflow', 'unauthenticated', 'resume-timeout']);
