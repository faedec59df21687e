import type { UserRecord } from '../../storage/storage.js';

/** RFC 6120 §6.5 SASL failure conditions. */
export type SaslFailure =
  | 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required' | 'incorrect-encoding'
  | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request' | 'mechanism-too-weak' | 'not-authorized'
  | 'temporary-auth-failure';

/**
 * One step of a SASL exchange, decided by the mechanism. A failure names the account the client tried
 * when it got that far, so the brute-force limits can count it against that account.
 */
export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; data?: Buffer }
  | { kind: 'failure'; condition: SaslFailure; text?: string; username?: string };

export interface SaslMechanism {
  /** Client's initial response (may be empty), or each later response. */
  step(data: Buffer): Promise<SaslStep>;
}

export type UserLookup = (username: string) => Promise<UserRecord | undefined>;

/** What a mechanism needs beyond the user store, each with a default that keeps unit tests short. */
export interface MechanismOptions {
  /** c2s.scramIterations: what a real account's PBKDF2 costs, so an unknown one can cost the same. */
  readonly iterations?: number;
  /** Asked once the account is named, before any password is checked: false is <temporary-auth-failure/>. */
  readonly admit?: (username: string) => boolean;
}

export const DEFAULT_ITERATIONS = 4096;
