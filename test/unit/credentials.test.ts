import { deriveUserRecord, makeUserRecord, verifyPassword } from '../../src/c2s/sasl/credentials';

describe('PLAIN verification against SCRAM credentials', () => {
  const user = makeUserRecord('alice', 'correct horse', 4096);

  it('accepts the password, first and repeated (remembered) times', async () => {
    await expect(verifyPassword(user, 'correct horse')).resolves.toBe(true);
    await expect(verifyPassword(user, 'correct horse')).resolves.toBe(true);
  });

  it('refuses another password even after the right one was remembered', async () => {
    await expect(verifyPassword(user, 'correct horse')).resolves.toBe(true);
    await expect(verifyPassword(user, 'Correct horse')).resolves.toBe(false);
    await expect(verifyPassword(user, '')).resolves.toBe(false);
  });

  it('forgets a remembered password once the credentials change', async () => {
    await expect(verifyPassword(user, 'correct horse')).resolves.toBe(true);
    const changed = makeUserRecord('alice', 'battery staple', 4096);
    await expect(verifyPassword(changed, 'correct horse')).resolves.toBe(false);
    await expect(verifyPassword(changed, 'battery staple')).resolves.toBe(true);
  });

  it('applies SASLprep: a non-ASCII space maps to a space, a prohibited character is refused', async () => {
    const spaced = makeUserRecord('bob', 'a b', 4096);
    await expect(verifyPassword(spaced, 'a\u00a0b')).resolves.toBe(true);
    await expect(verifyPassword(spaced, 'a\u0007b')).resolves.toBe(false);
  });
});

describe('deriveUserRecord (registration off the event loop)', () => {
  const salts = { sha1: Buffer.alloc(16, 1), sha256: Buffer.alloc(16, 2) };

  it('makes a record that verifies the password and nothing else', async () => {
    const user = await deriveUserRecord('carol', 'pa55 w0rd', 4096);
    expect(user.username).toBe('carol');
    expect(user.scram.sha1.iterations).toBe(4096);
    expect(user.scram.sha256.iterations).toBe(4096);
    await expect(verifyPassword(user, 'pa55 w0rd')).resolves.toBe(true);
    await expect(verifyPassword(user, 'pa55 w0rD')).resolves.toBe(false);
  });

  it('computes exactly what makeUserRecord does for the same salts', async () => {
    await expect(deriveUserRecord('dave', 'secret', 4096, salts)).resolves.toEqual(makeUserRecord('dave', 'secret', 4096, salts));
    await expect(deriveUserRecord('dave', 'a\u00a0b', 1000, salts)).resolves.toEqual(makeUserRecord('dave', 'a b', 1000, salts));
  });

  it('uses a fresh salt per hash and per call', async () => {
    const [a, b] = await Promise.all([deriveUserRecord('erin', 'x', 1000), deriveUserRecord('erin', 'x', 1000)]);
    expect(a.scram.sha1.salt).not.toBe(a.scram.sha256.salt);
    expect(a.scram.sha256.salt).not.toBe(b.scram.sha256.salt);
    expect(a.scram.sha256.storedKey).not.toBe(b.scram.sha256.storedKey);
  });

  it('rejects a password SASLprep refuses, as makeUserRecord throws', async () => {
    expect(() => makeUserRecord('frank', 'a\u0007b', 1000)).toThrow();
    await expect(deriveUserRecord('frank', 'a\u0007b', 1000)).rejects.toThrow();
  });

  it('lets the event loop run while it hashes', async () => {
    const order: string[] = [];
    const done = deriveUserRecord('gina', 'secret', 200_000).then(() => order.push('derived'));
    setImmediate(() => order.push('event loop turned'));
    await done;
    expect(order).toEqual(['event loop turned', 'derived']);
  });
});
