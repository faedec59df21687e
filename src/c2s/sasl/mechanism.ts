import type { UserRecord } from '../../storage/storage.js';

/** RFC 6120 §6.5 SASL failure conditions. */
export type SaslFailure =
  | 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required' | 'incorrect-encoding'
  | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request' | 'mechanism-too-weak' | 'not-authorized'
  | 'temporary-auth-failure';

/** One step of a SASL exchange, decided by the mechanism. */
export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; data?: Buffer }
  | { kind: 'failure'; condition: SaslFailure; text?: string };

export interface SaslMechanism {
  /** Client's initial response (may be empty), or each later response. */
  step(data: Buffer): Promise<SaslStep>;
}

export type UserLookup = (username: string) => Promise<UserRecord | undefined>;
