// The TLS context `vigil start` makes on its defaults, for the benches that measure Node's TLS with no XMPP
// on top: the generated ECDSA P-256 certificate for localhost and Vigil's cipher order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from './dist.mjs';

export async function vigilTlsContext() {
  const { loadTls } = await load('transport/tls.js');
  const { loadConfig } = await load('config/load.js');
  const { createLogger } = await load('log.js');
  // The certificate is generated beside the storage file; the context holds it in memory once made.
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-tls-'));
  try {
    const config = loadConfig({ env: {}, overrides: { domain: 'localhost', storage: { driver: 'sqlite', path: join(dir, 'x.sqlite') } } });
    return (await loadTls(config, createLogger('silent'))).context;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
