import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { checkServerIdentity, connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { makeTestCa, type TestCa } from '../helpers/test-ca';

/** The test CA's certificates verify over real TLS (loopback) as a server's and as a client's, and an expired one does not. */

let ca: TestCa;
beforeAll(() => {
  ca = makeTestCa();
});
afterAll(() => ca.cleanup());

interface Outcome {
  /** What the client made of the server's certificate. */
  authorized: boolean;
  authorizationError: string | null;
  peer: PeerCertificate;
  /** What the server made of the client's certificate (the same one: S2S SASL EXTERNAL presents it both ways). */
  serverSawClient: { authorized: boolean; authorizationError: string | null };
}

async function handshake(leaf: { cert: string; key: string }, servername: string): Promise<Outcome> {
  let resolveServerSide!: (v: Outcome['serverSawClient']) => void;
  const serverSide = new Promise<Outcome['serverSawClient']>((r) => (resolveServerSide = r));
  const server = createServer({ cert: leaf.cert, key: leaf.key, ca: ca.caPem, requestCert: true, rejectUnauthorized: false }, (s: TLSSocket) => {
    resolveServerSide({ authorized: s.authorized, authorizationError: s.authorizationError ? String(s.authorizationError) : null });
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const client = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername, ca: ca.caPem, cert: leaf.cert, key: leaf.key, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    const outcome: Outcome = {
      authorized: client.authorized,
      authorizationError: client.authorizationError ? String(client.authorizationError) : null,
      peer: client.getPeerCertificate(),
      serverSawClient: await serverSide,
    };
    client.destroy();
    return outcome;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe('test CA', () => {
  it('issues a leaf that verifies against the CA, both ways, and names exactly its domain', async () => {
    const leaf = ca.issue('a.example.org');
    const r = await handshake(leaf, 'a.example.org');
    expect({ authorized: r.authorized, error: r.authorizationError, server: r.serverSawClient }).toEqual({ authorized: true, error: null, server: { authorized: true, authorizationError: null } });
    expect(checkServerIdentity('a.example.org', r.peer)).toBeUndefined();
    expect(checkServerIdentity('b.example.org', r.peer)).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    const x = new X509Certificate(leaf.cert);
    expect(x.subjectAltName).toBe('DNS:a.example.org');
    expect(x.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])); // serverAuth, clientAuth
    expect(x.checkIssued(new X509Certificate(ca.caPem))).toBe(true);
  });

  it('names replaces the subjectAltName entries', async () => {
    const r = await handshake(ca.issue('example.org', { names: ['*.example.org'] }), 'a.example.org');
    expect(r.authorized).toBe(true);
    expect(checkServerIdentity('a.example.org', r.peer)).toBeUndefined();
    expect(checkServerIdentity('example.org', r.peer)).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('an expired leaf is not authorized', async () => {
    const leaf = ca.issue('a.example.org', { expired: true });
    expect(Date.parse(new X509Certificate(leaf.cert).validTo)).toBeLessThan(Date.now());
    const r = await handshake(leaf, 'a.example.org');
    expect({ authorized: r.authorized, error: r.authorizationError, server: r.serverSawClient }).toEqual({
      authorized: false, error: 'CERT_HAS_EXPIRED', server: { authorized: false, authorizationError: 'CERT_HAS_EXPIRED' },
    });
  });
});
