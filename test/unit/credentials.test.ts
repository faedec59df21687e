import { makeUserRecord, verifyPassword } from '../../src/c2s/sasl/credentials';

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
