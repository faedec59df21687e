import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

/**
 * The client's side of SCRAM's final step (RFC 5802 §3): from the server-first message, the client-final
 * message with its proof, and the server signature the client must then see.
 */
export function scramFinal(hash: 'sha1' | 'sha256', password: string, gs2: string, clientFirstBare: string, serverFirst: string): { clientFinal: string; serverSignature: string } {
  const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), hash === 'sha1' ? 20 : 32, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(gs2).toString('base64')},r=${attrs.r}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
  const serverKey = createHmac(hash, salted).update('Server Key').digest();
  return { clientFinal: `${withoutProof},p=${proof.toString('base64')}`, serverSignature: `v=${createHmac(hash, serverKey).update(authMessage).digest('base64')}` };
}
