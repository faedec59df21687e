import { authzidAllowed } from './authzid.js';
import { dummyVerify, verifyPassword } from './credentials.js';
import { DEFAULT_ITERATIONS, type MechanismOptions, type SaslMechanism, type SaslStep, type UserLookup } from './mechanism.js';
import { normalizeUsername } from './username.js';

/** RFC 4616 PLAIN: authzid NUL authcid NUL password. */
export class PlainMechanism implements SaslMechanism {
  constructor(private readonly lookup: UserLookup, private readonly domain: string, private readonly options: MechanismOptions = {}) {}

  async step(data: Buffer): Promise<SaslStep> {
    const parts = data.toString('utf8').split('\0');
    if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return { kind: 'failure', condition: 'malformed-request' };
    const [authzid, authcid, password] = parts;
    const username = normalizeUsername(authcid);
    if (username === undefined) return { kind: 'failure', condition: 'not-authorized' };
    if (!authzidAllowed(authzid, username, this.domain)) return { kind: 'failure', condition: 'invalid-authzid', username };
    if (this.options.admit && !this.options.admit(username)) return { kind: 'failure', condition: 'temporary-auth-failure', username };
    const user = await this.lookup(username);
    // An unknown name pays the PBKDF2 a real one does, so the answer's timing does not say which exist.
    const ok = user ? await verifyPassword(user, password) : await dummyVerify(password, this.options.iterations ?? DEFAULT_ITERATIONS);
    if (!ok) return { kind: 'failure', condition: 'not-authorized', username };
    return { kind: 'success', username };
  }
}
