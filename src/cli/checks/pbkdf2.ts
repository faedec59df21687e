import { pbkdf2Sha256Implementation } from '../../c2s/sasl/pbkdf2.js';
import { advice, ok, type Finding } from './finding.js';

/** Whether logins hash with our addon or fall back to Node's PBKDF2, which costs about twice the CPU. */
export function checkPbkdf2(implementation = pbkdf2Sha256Implementation): Finding {
  if (implementation === 'native') return ok('password hashing: PBKDF2-HMAC-SHA-256 by native/pbkdf2');
  return advice("password hashing: native/pbkdf2 is not built, so PLAIN logins and registrations use Node's PBKDF2 at about twice the CPU: run `npm run build:native` (needs python3, make and g++)");
}
