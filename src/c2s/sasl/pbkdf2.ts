import { pbkdf2 } from 'node:crypto';
import { createRequire } from 'node:module';

interface Binding {
  pbkdf2Sha256(password: Buffer, salt: Buffer, iterations: number, callback: (err: Error | null, key: Buffer) => void): void;
}

/** Our addon (native/pbkdf2, built by `npm ci`); a checkout that never built it falls back to Node's own. */
function loadBinding(): Binding | undefined {
  try {
    return createRequire(__filename)('#native-pbkdf2') as Binding;
  } catch {
    return undefined;
  }
}

const binding = loadBinding();

/** Which PBKDF2-HMAC-SHA-256 logins run: `vigil doctor` advises when it is Node's, which costs twice the CPU. */
export const pbkdf2Sha256Implementation: 'native' | 'node' = binding ? 'native' : 'node';

/**
 * SCRAM-SHA-256's SaltedPassword (32 bytes) of a SASLprepped password, on libuv's thread pool: thousands of
 * iterations per login must not stall the event loop every session shares.
 */
export function pbkdf2Sha256(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, key: Buffer): void => (err ? reject(err) : resolve(key));
    if (binding) binding.pbkdf2Sha256(Buffer.from(password, 'utf8'), salt, iterations, done);
    else pbkdf2(password, salt, iterations, 32, 'sha256', done);
  });
}
