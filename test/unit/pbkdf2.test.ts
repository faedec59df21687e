import { pbkdf2Sync } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { pbkdf2Sha256, pbkdf2Sha256Implementation } from '../../src/c2s/sasl/pbkdf2';
import { checkPbkdf2 } from '../../src/cli/checks/pbkdf2';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('native PBKDF2-HMAC-SHA-256 (native/pbkdf2)', () => {
  it('is what logins use: npm ci builds it', () => {
    expect(pbkdf2Sha256Implementation).toBe('native');
    expect(checkPbkdf2().level).toBe('ok');
  });

  // RFC 7914 §11, the first 32 bytes of each 64-byte key.
  it.each([
    ['passwd', 'salt', 1, '55 ac 04 6e 56 e3 08 9f ec 16 91 c2 25 44 b6 05 f9 41 85 21 6d de 04 65 e6 8b 9d 57 c2 0d ac bc'],
    ['Password', 'NaCl', 80000, '4d dc d8 f6 0b 98 be 21 83 0c ee 5e f2 27 01 f9 64 1a 44 18 d0 4c 04 14 ae ff 08 87 6b 34 ab 56'],
  ])('gives RFC 7914 key for %s / %s / %d', async (password, salt, iterations, key) => {
    expect(await pbkdf2Sha256(password, Buffer.from(salt), iterations)).toEqual(hex(key));
  });

  it("equals Node's PBKDF2 for any password (longer than a block too), salt and iteration count", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 90 }), fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 1, max: 3000 }), async (password, salt, iterations) => {
        const s = Buffer.from(salt);
        expect(await pbkdf2Sha256(password, s, iterations)).toEqual(pbkdf2Sync(password, s, iterations, 32, 'sha256'));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps many derivations in flight apart', async () => {
    const inputs = Array.from({ length: 64 }, (_, i) => ({ password: `pw-${i}`, salt: Buffer.from([i, i + 1, i + 2]) }));
    const keys = await Promise.all(inputs.map(({ password, salt }) => pbkdf2Sha256(password, salt, 500)));
    keys.forEach((key, i) => expect(key).toEqual(pbkdf2Sync(inputs[i].password, inputs[i].salt, 500, 32, 'sha256')));
  });

  it('copies its inputs: a buffer reused at once does not change the key', async () => {
    const salt = Buffer.from('NaCl');
    const pending = pbkdf2Sha256('Password', salt, 2000);
    salt.fill(0);
    expect(await pending).toEqual(pbkdf2Sync('Password', 'NaCl', 2000, 32, 'sha256'));
  });

  // The addon's TypeError is the main realm's, not jest's sandbox's: compare names and messages.
  it('refuses bad arguments with a TypeError instead of crashing', () => {
    const binding = createRequire(__filename)('#native-pbkdf2') as { pbkdf2Sha256: (...args: unknown[]) => void };
    const refusal = (...args: unknown[]) => {
      try {
        binding.pbkdf2Sha256(...args);
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`;
      }
      return 'accepted';
    };
    const cb = () => undefined;
    const one = Buffer.alloc(1);
    expect(refusal('pw', one, 1, cb)).toBe('TypeError: password must be a Buffer');
    expect(refusal(one, 'salt', 1, cb)).toBe('TypeError: salt must be a Buffer');
    for (const bad of [0, -1, 1.5, 2 ** 31, NaN, '9']) expect(refusal(one, one, bad, cb)).toBe('TypeError: iterations must be an integer from 1 to 2147483647');
    expect(refusal(one, one, 1)).toBe('TypeError: pbkdf2Sha256 takes 4 arguments');
    expect(refusal(one, one, 1, 'cb')).toBe('TypeError: callback must be a function');
  });

  it("doctor advises building it when logins fall back to Node's", () => {
    expect(checkPbkdf2('node')).toEqual({ level: 'advice', text: expect.stringContaining('npm run build:native') });
  });
});
