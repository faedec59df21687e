import { authzidAllowed } from './authzid.js';
import { verifyPassword } from './credentials.js';
import type { SaslMechanism, SaslStep, UserLookup } from './mechanism.js';
import { normalizeUsername } from './username.js';

/** RFC 4616 PLAIN: authzid NUL authcid NUL password. */
export class PlainMechanism implements SaslMechanism {
  constructor(private readonly lookup: UserLookup, private readonly domain: string) {}

  async step(data: Buffer): Promise<SaslStep> {
    const parts = data.toString('utf8').split('\0');
    if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return { kind: 'failure', condition: 'malformed-request' };
    const [authzid, authcid, password] = parts;
    const username = normalizeUsername(authcid);
    if (username === undefined) return { kind: 'failure', condition: 'not-authorized' };
    if (!authzidAllowed(authzid, username, this.domain)) return { kind: 'failure', condition: 'invalid-authzid' };
    const user = await this.lookup(username);
    if (!user || !(await verifyPassword(user, password))) return { kind: 'failure', condition: 'not-authorized' };
    return { kind: 'success', username };
  }
}
