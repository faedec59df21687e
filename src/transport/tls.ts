import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { generate } from 'selfsigned';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  certPath: string;
  context: SecureContext;
}

/** Where the self-signed certificate lives when none is configured: beside the SQLite file. */
export function selfSignedPaths(config: Config): { cert: string; key: string } {
  const dir = join(dirname(config.storage.path), 'tls');
  return { cert: join(dir, `${config.domain}.crt`), key: join(dir, `${config.domain}.key`) };
}

/** The configured certificate, or a self-signed one for the domain made once and kept in the data directory. */
export async function loadTls(config: Config, log: Logger): Promise<TlsMaterial> {
  let certPath = config.tls.cert;
  let keyPath = config.tls.key;
  if (!certPath || !keyPath) {
    ({ cert: certPath, key: keyPath } = selfSignedPaths(config));
    if (!existsSync(certPath) || !existsSync(keyPath)) {
      const notAfterDate = new Date(Date.now() + 825 * 86_400_000);
      // ECDSA P-256: the server's signature in each handshake costs a fraction of an RSA 2048 one. At
      // 10,000 cold logins on 2 cores both come out near 725/s (bench/tls.mjs): the rest is the client's
      // side of the handshake and PBKDF2, and the key only matters once those are cheap.
      const pems = await generate([{ name: 'commonName', value: config.domain }], {
        keyType: 'ec',
        curve: 'P-256',
        algorithm: 'sha256',
        notAfterDate,
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: config.domain }] }],
      });
      mkdirSync(dirname(certPath), { recursive: true });
      writeFileSync(keyPath, pems.private, { mode: 0o600 });
      writeFileSync(certPath, pems.cert);
      log.info({ event: 'tls.self-signed', cert: certPath, domain: config.domain }, 'no tls.cert configured: generated a self-signed certificate');
    }
  }
  const cert = readFileSync(certPath, 'utf8');
  const key = readFileSync(keyPath, 'utf8');
  return { cert, key, certPath, context: createSecureContext({ cert, key, minVersion: 'TLSv1.2' }) };
}
