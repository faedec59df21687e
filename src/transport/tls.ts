import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { constants } from 'node:crypto';
import { createSecureContext, DEFAULT_CIPHERS, type SecureContext } from 'node:tls';
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

/**
 * Node's own suites with AES-128-GCM first, in the server's order. It is TLS 1.3's mandatory suite and strong
 * enough for any attacker; its key schedule is SHA-256, which runs on the CPU's SHA instructions, where
 * AES-256-GCM's is SHA-384, which does not: both ends spend less on each handshake (bench/tls-floor.mjs).
 * A client that puts ChaCha20 first, a phone without AES instructions, still gets ChaCha20.
 */
const AES128_FIRST = 'TLS_AES_128_GCM_SHA256';
export const C2S_CIPHERS = [AES128_FIRST, ...DEFAULT_CIPHERS.split(':').filter((c) => c !== AES128_FIRST)].join(':');

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
  return { cert, key, certPath, context: createSecureContext({ cert, key, minVersion: 'TLSv1.2', ciphers: C2S_CIPHERS, honorCipherOrder: true, secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA }) };
}
