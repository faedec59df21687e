import { randomBytes } from 'node:crypto';
import { makeUserRecord } from '../../src/c2s/sasl/credentials';
import type { SaslStep } from '../../src/c2s/sasl/mechanism';
import { ScramMechanism } from '../../src/c2s/sasl/scram';
import type { ScramHash, UserRecord } from '../../src/storage/storage';
import { scramFinal } from '../helpers/scram-client';

/*
 * SCRAM (RFC 5802, RFC 7677) as a client runs it against the server's mechanism: what the client is told at
 * each step, success with a server signature it can verify, or the failure condition.
 */

const DOMAIN = 'localhost';
const USERS = new Map<string, UserRecord>([
  ['alice', makeUserRecord('alice', 'wonderland', 4096)],
  ['bob', makeUserRecord('bob', 'builder', 4096)],
]);
const lookup = async (username: string): Promise<UserRecord | undefined> => USERS.get(username);

/** RFC 5802 saslname: "," and "=" escaped. */
const saslname = (name: string): string => name.replace(/=/g, '=3D').replace(/,/g, '=2C');

interface Outcome {
  /** The first failure, or the final step. */
  step: SaslStep;
  /** Whether the client could verify the server signature of a success. */
  serverVerified?: boolean;
}

async function login(hash: ScramHash, username: string, password: string, authzid?: string): Promise<Outcome> {
  const mech = new ScramMechanism(hash, lookup, DOMAIN);
  const gs2 = authzid === undefined ? 'n,,' : `n,a=${saslname(authzid)},`;
  const clientFirstBare = `n=${saslname(username)},r=${randomBytes(12).toString('base64')}`;
  const first = await mech.step(Buffer.from(gs2 + clientFirstBare));
  if (first.kind !== 'challenge') return { step: first };
  const { clientFinal, serverSignature } = scramFinal(hash, password.normalize('NFKC'), gs2, clientFirstBare, first.data.toString());
  const final = await mech.step(Buffer.from(clientFinal));
  if (final.kind !== 'success') return { step: final };
  return { step: final, serverVerified: final.data?.toString() === serverSignature };
}

const failure = (o: Outcome): string | undefined => (o.step.kind === 'failure' ? o.step.condition : undefined);

describe('SCRAM-SHA-256', () => {
  test('the right password logs in, and the client can verify the server', async () => {
    const o = await login('sha256', 'alice', 'wonderland');
    expect(o.step).toMatchObject({ kind: 'success', username: 'alice' });
    expect(o.serverVerified).toBe(true);
  });

  test('a wrong password, or an unknown user, is not-authorized', async () => {
    expect(failure(await login('sha256', 'alice', 'looking-glass'))).toBe('not-authorized');
    expect(failure(await login('sha256', 'carol', 'wonderland'))).toBe('not-authorized');
  });

  test('the username is normalised like a JID localpart: "ＡＬＩＣＥ" logs in as alice', async () => {
    expect((await login('sha256', 'ＡＬＩＣＥ', 'wonderland')).step).toMatchObject({ kind: 'success', username: 'alice' });
    expect((await login('sha256', 'Alice', 'wonderland')).step).toMatchObject({ kind: 'success', username: 'alice' });
  });

  test("an authzid of the user's own bare JID logs in, in any case or width", async () => {
    for (const authzid of ['alice@localhost', 'Alice@LocalHost', 'ａｌｉｃｅ@localhost', 'alice@localhost.']) {
      const o = await login('sha256', 'alice', 'wonderland', authzid);
      expect({ authzid, step: o.step }).toMatchObject({ authzid, step: { kind: 'success', username: 'alice' } });
      expect(o.serverVerified).toBe(true);
    }
  });

  test('an empty authzid (a=) is no authzid', async () => {
    expect((await login('sha256', 'alice', 'wonderland', '')).step).toMatchObject({ kind: 'success', username: 'alice' });
  });

  test('an authzid of another user is invalid-authzid, even with the right password', async () => {
    expect(failure(await login('sha256', 'alice', 'wonderland', 'bob@localhost'))).toBe('invalid-authzid');
    expect(failure(await login('sha256', 'bob', 'builder', 'alice@localhost'))).toBe('invalid-authzid');
  });

  test('an authzid of another domain is invalid-authzid', async () => {
    expect(failure(await login('sha256', 'alice', 'wonderland', 'alice@example.org'))).toBe('invalid-authzid');
    expect(failure(await login('sha256', 'alice', 'wonderland', 'localhost'))).toBe('invalid-authzid');
  });

  test('an authzid that is a full JID, or no JID at all, is invalid-authzid', async () => {
    for (const authzid of ['alice@localhost/phone', 'alice', '@localhost', 'alice@', 'al ice@localhost', 'alice@local,host']) {
      expect({ authzid, condition: failure(await login('sha256', 'alice', 'wonderland', authzid)) }).toEqual({ authzid, condition: 'invalid-authzid' });
    }
  });

  test('a badly escaped authzid is malformed-request', async () => {
    const mech = new ScramMechanism('sha256', lookup, DOMAIN);
    expect(await mech.step(Buffer.from('n,a=alice=40localhost,n=alice,r=abc'))).toMatchObject({ kind: 'failure', condition: 'malformed-request' });
  });
});

describe('SCRAM-SHA-1', () => {
  test('logs in, and refuses an authzid of another user', async () => {
    expect((await login('sha1', 'bob', 'builder', 'bob@localhost')).step).toMatchObject({ kind: 'success', username: 'bob' });
    expect(failure(await login('sha1', 'bob', 'builder', 'alice@localhost'))).toBe('invalid-authzid');
  });
});

describe('SCRAM for a name with no account', () => {
  const first = (mech: ScramMechanism, user: string) => mech.step(Buffer.from(`n,,n=${user},r=clientnonce`));
  const iterationsOf = (step: SaslStep) => (step.kind === 'challenge' ? /,i=(\d+)$/.exec(step.data.toString())?.[1] : undefined);

  test('is challenged with the configured iteration count, as real accounts are stored with', async () => {
    const real = new Map([['carol', makeUserRecord('carol', 'x', 5000)]]);
    const look = async (u: string) => real.get(u);
    const known = await first(new ScramMechanism('sha256', look, DOMAIN, { iterations: 5000 }), 'carol');
    const unknown = await first(new ScramMechanism('sha256', look, DOMAIN, { iterations: 5000 }), 'nobody');
    expect(iterationsOf(known)).toBe('5000');
    expect(iterationsOf(unknown)).toBe('5000');
  });

  test('gets the same salt on every try, so retrying does not tell it from a real one', async () => {
    const a = await first(new ScramMechanism('sha256', lookup, DOMAIN), 'nobody');
    const b = await first(new ScramMechanism('sha256', lookup, DOMAIN), 'nobody');
    const salt = (s: SaslStep) => (s.kind === 'challenge' ? /,s=([^,]+),/.exec(s.data.toString())?.[1] : undefined);
    expect(salt(a)).toBeDefined();
    expect(salt(a)).toBe(salt(b));
  });
});

describe('SCRAM under the brute-force limits', () => {
  test('an account the throttle refuses is temporary-auth-failure at the first message, before any challenge', async () => {
    const look = jest.fn(lookup);
    const mech = new ScramMechanism('sha256', look, DOMAIN, { admit: () => false });
    expect(await mech.step(Buffer.from('n,,n=alice,r=abc'))).toEqual({ kind: 'failure', condition: 'temporary-auth-failure', username: 'alice' });
    expect(look).not.toHaveBeenCalled();
  });

  test('a failed proof names the account, for the limits to count it', async () => {
    expect((await login('sha256', 'alice', 'wrong')).step).toMatchObject({ kind: 'failure', condition: 'not-authorized', username: 'alice' });
  });
});
