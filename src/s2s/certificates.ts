import { readFileSync } from 'node:fs';
import { checkServerIdentity, createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls';

/** Our certificate, and whom we trust for peers': the system's authorities plus s2s.ca. */
export interface S2sTls {
  /** Our side of a peer's STARTTLS to us: asks for its certificate (SASL EXTERNAL) without insisting. */
  server: SecureContext;
  /** Our side of our STARTTLS to a peer: presents ours as a client certificate for the same reason. */
  client: SecureContext;
}

export function s2sTls(certificate: { cert: string; key: string }, caFiles: string): S2sTls {
  const ca = [...rootCertificates, ...caFiles.split(',').map((f) => f.trim()).filter((f) => f !== '').map((f) => readFileSync(f, 'utf8'))];
  const options = { cert: certificate.cert, key: certificate.key, ca, minVersion: 'TLSv1.2' as const };
  return { server: createSecureContext(options), client: createSecureContext(options) };
}

/**
 * Whether the peer proved `domain` with its certificate: signed by an authority we trust, in date, and
 * naming the domain (RFC 6125, as for any TLS server name).
 */
export function certifiedFor(socket: TLSSocket, domain: string): boolean {
  if (!socket.authorized) return false;
  const cert = socket.getPeerCertificate();
  return cert !== null && Object.keys(cert).length > 0 && checkServerIdentity(domain, cert) === undefined;
}

/** s2s.insecureDomains as a set. */
export function domainSet(text: string): Set<string> {
  return new Set(text.split(',').map((d) => d.trim().toLowerCase()).filter((d) => d !== ''));
}
