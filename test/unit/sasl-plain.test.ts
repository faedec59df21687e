import * as credentials from '../../src/c2s/sasl/credentials';
import { makeUserRecord } from '../../src/c2s/sasl/credentials';
import { PlainMechanism } from '../../src/c2s/sasl/plain';
import type { SaslStep } from '../../src/c2s/sasl/mechanism';
import type { UserRecord } from '../../src/storage/storage';

/* PLAIN (RFC 4616) as a client sends it: authzid NUL authcid NUL password, and what the server answers. */

const USERS = new Map<string, UserRecord>([
  ['alice', makeUserRecord('alice', 'wonderland', 4096)],
  ['bob', makeUserRecord('bob', 'builder', 4096)],
]);
const plain = (authzid: string, authcid: string, password: string): Promise<SaslStep> =>
  new PlainMechanism(async (u) => USERS.get(u), 'localhost').step(Buffer.from(`${authzid}\0${authcid}\0${password}`));

describe('PLAIN', () => {
  test('logs in with or without the own bare JID as authzid', async () => {
    expect(await plain('', 'alice', 'wonderland')).toEqual({ kind: 'success', username: 'alice' });
    expect(await plain('alice@localhost', 'alice', 'wonderland')).toEqual({ kind: 'success', username: 'alice' });
    expect(await plain('ALICE@LocalHost', 'alice', 'wonderland')).toEqual({ kind: 'success', username: 'alice' });
  });

  test('a fullwidth or upper-case login name logs in as the account it normalises to', async () => {
    expect(await plain('', 'ｂｏｂ', 'builder')).toEqual({ kind: 'success', username: 'bob' });
    expect(await plain('', 'BOB', 'builder')).toEqual({ kind: 'success', username: 'bob' });
  });

  test('an authzid of another user, another domain or a full JID is invalid-authzid', async () => {
    for (const authzid of ['bob@localhost', 'alice@example.org', 'alice@localhost/phone', 'localhost', '@localhost']) {
      expect({ authzid, step: await plain(authzid, 'alice', 'wonderland') }).toEqual({ authzid, step: { kind: 'failure', condition: 'invalid-authzid', username: 'alice' } });
    }
  });

  test('a wrong password is not-authorized; a name no account can have too', async () => {
    // The failure names the account tried, which the brute-force limits count it against.
    expect(await plain('', 'alice', 'nope')).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'alice' });
    expect(await plain('', 'al ice', 'wonderland')).toEqual({ kind: 'failure', condition: 'not-authorized' });
  });
});

describe('PLAIN for a name with no account', () => {
  afterEach(() => jest.restoreAllMocks());

  test('pays a dummy PBKDF2 of the configured iterations before not-authorized, as a real account would', async () => {
    const dummy = jest.spyOn(credentials, 'dummyVerify');
    const verify = jest.spyOn(credentials, 'verifyPassword');
    const mech = new PlainMechanism(async (u) => USERS.get(u), 'localhost', { iterations: 10_000 });
    expect(await mech.step(Buffer.from('\0nobody\0guess'))).toEqual({ kind: 'failure', condition: 'not-authorized', username: 'nobody' });
    expect(dummy).toHaveBeenCalledWith('guess', 10_000);
    expect(verify).not.toHaveBeenCalled();
  });

  test('a real account takes the real check, not the dummy', async () => {
    const dummy = jest.spyOn(credentials, 'dummyVerify');
    expect(await plain('', 'alice', 'nope')).toMatchObject({ kind: 'failure', condition: 'not-authorized' });
    expect(dummy).not.toHaveBeenCalled();
  });
});

describe('PLAIN under the brute-force limits', () => {
  test('an account the throttle refuses is temporary-auth-failure, with no lookup and no password check', async () => {
    const lookup = jest.fn(async (u: string) => USERS.get(u));
    const admitted: string[] = [];
    const mech = new PlainMechanism(lookup, 'localhost', { admit: (u) => (admitted.push(u), false) });
    expect(await mech.step(Buffer.from('\0ALICE\0wonderland'))).toEqual({ kind: 'failure', condition: 'temporary-auth-failure', username: 'alice' });
    expect(admitted).toEqual(['alice']);
    expect(lookup).not.toHaveBeenCalled();
  });
});
