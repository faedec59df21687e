import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, TLSSocket, type SecureContext } from 'node:tls';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { loadTls } from '../../src/transport/tls';

/** A loopback server that takes TLS in place, as STARTTLS does, says hello and ends. */
async function greeter(secureContext: SecureContext): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext });
    secure.on('error', () => undefined);
    secure.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe('the generated certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is ECDSA P-256 for the domain, and a client completes a TLS handshake with it', async () => {
    const config = loadConfig({ env: {}, overrides: { domain: 'chat.example', storage: { path: join(dir, 'vigil.sqlite') } } });
    const tls = await loadTls(config, createLogger('silent'));
    const cert = new X509Certificate(tls.cert);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkHost('chat.example')).toBe('chat.example');
    // Made once: a second start keeps the same certificate.
    expect((await loadTls(config, createLogger('silent'))).cert).toBe(tls.cert);

    const { server, port } = await greeter(tls.context);
    const greeting = await new Promise<string>((resolve, reject) => {
      const c = connect({ port, host: '127.0.0.1', ca: tls.cert, servername: 'chat.example' }, () => undefined);
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString()));
      c.on('end', () => resolve(got));
      c.on('error', reject);
    });
    server.close();
    expect(greeting).toBe('hello');
  });

  it('chooses AES-128-GCM over the AES-256 a Node client prefers, ChaCha20 for a client that puts it first, and still speaks TLS 1.2', async () => {
    const config = loadConfig({ env: {}, overrides: { domain: 'chat.example', storage: { path: join(dir, 'vigil.sqlite') } } });
    const tls = await loadTls(config, createLogger('silent'));
    const { server, port } = await greeter(tls.context);
    const negotiated = (options: { ciphers?: string; maxVersion?: 'TLSv1.2' }) =>
      new Promise<string>((resolve, reject) => {
        const c = connect({ port, host: '127.0.0.1', ca: tls.cert, servername: 'chat.example', ...options }, () => resolve(`${c.getProtocol()} ${c.getCipher().name}`));
        c.on('data', () => undefined);
        c.on('error', reject);
      });
    try {
      expect(await negotiated({})).toBe('TLSv1.3 TLS_AES_128_GCM_SHA256');
      expect(await negotiated({ ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256' })).toBe('TLSv1.3 TLS_CHACHA20_POLY1305_SHA256');
      expect(await negotiated({ maxVersion: 'TLSv1.2' })).toBe('TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
    } finally {
      server.close();
    }
  });
});
