import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import { selfSignedPaths } from '../../transport/tls.js';
import { advice, error, ok, type Finding } from './finding.js';

const DAY = 86_400_000;
/** A certificate expiring sooner than this is an error: renewal has failed or was forgotten. */
export const EXPIRY_MARGIN_DAYS = 14;

export interface CertificateInput {
  /** PEM text of the certificate (chain: the first one is the server's). */
  certPem: string;
  /** PEM private key, to check it matches; omitted when unreadable (reported separately). */
  keyPem?: string;
  domain: string;
  now: number;
  /** How to name it in messages, e.g. "tls.cert /etc/vigil/cert.pem". */
  source: string;
  /** The fix for a bad certificate, which differs for a configured one and the generated one. */
  fix: string;
}

/** Expiry, names and key of one certificate; pure but for the parsing, so tests can hand it any PEM. */
export function checkCertificate(input: CertificateInput): Finding[] {
  const { domain, now, source, fix } = input;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(input.certPem);
  } catch (err) {
    return [error(`${source}: not a PEM certificate (${(err as Error).message}): ${fix}`)];
  }
  const findings: Finding[] = [];
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  const days = Math.floor((notAfter - now) / DAY);
  if (notAfter <= now) {
    findings.push(error(`${source}: expired on ${cert.validTo}; clients refuse it: ${fix}`));
  } else if (notAfter - now < EXPIRY_MARGIN_DAYS * DAY) {
    findings.push(error(`${source}: expires in ${days} day${days === 1 ? '' : 's'} (${cert.validTo}), less than ${EXPIRY_MARGIN_DAYS}: renew it now: ${fix}`));
  } else if (notBefore > now) {
    findings.push(error(`${source}: not valid before ${cert.validFrom}; is the clock right? ${fix}`));
  } else {
    findings.push(ok(`${source}: valid until ${cert.validTo} (${days} days)`));
  }
  if (cert.checkHost(domain, { subject: 'default' }) === undefined) {
    findings.push(error(`${source}: does not name the domain ${domain} (${names(cert)}); clients will refuse it: ${fix}`));
  } else {
    findings.push(ok(`${source}: names ${domain}`));
  }
  if (input.keyPem !== undefined) {
    let matches: boolean;
    try {
      matches = cert.checkPrivateKey(createPrivateKey(input.keyPem));
    } catch {
      matches = false;
    }
    if (!matches) findings.push(error(`${source}: the private key does not belong to this certificate (or is not a PEM key): configure the matching tls.key`));
  }
  if (cert.issuer === cert.subject && cert.verify(cert.publicKey)) {
    // What it means for other servers (dialback only) is the S2S check's to say, and only when federation is on.
    findings.push(advice(`${source}: self-signed; clients warn or refuse it: use a CA-issued certificate (e.g. Let's Encrypt) in tls.cert and tls.key`));
  }
  return findings;
}

function names(cert: X509Certificate): string {
  const san = cert.subjectAltName ? `subjectAltName ${cert.subjectAltName}` : 'no subjectAltName';
  const cn = commonName(cert.subject);
  return cn ? `${san}, CN ${cn}` : san;
}

/** The CN of a distinguished name as X509Certificate prints it (one attribute a line). */
export function commonName(dn: string): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1];
}

/**
 * The certificate Vigil presents, as checkTls finds it: the configured tls.cert, else the generated one
 * (certPem null: not generated yet, `vigil start` will make a self-signed one). undefined when checkTls
 * reports a problem that leaves nothing to look at (half-configured, unreadable), so that other checks of
 * the same certificate need not say it again.
 */
export function presentedCertificate(config: Config): { certPem: string | null; source: string } | undefined {
  const { cert, key } = config.tls;
  if (cert && key) {
    const certPem = readOrNull(cert);
    return certPem === null || readOrNull(key) === null ? undefined : { certPem, source: `tls.cert ${cert}` };
  }
  if (cert || key) return undefined;
  const paths = selfSignedPaths(config);
  const source = `generated certificate ${paths.cert}`;
  if (!existsSync(paths.cert) || !existsSync(paths.key)) return { certPem: null, source };
  const certPem = readOrNull(paths.cert);
  return certPem === null || readOrNull(paths.key) === null ? undefined : { certPem, source };
}

/** The configured certificate, or the self-signed one `vigil start` generates (missing is fine: it will be). */
export function checkTls(config: Config, now = Date.now()): Finding[] {
  const { cert, key } = config.tls;
  if (cert && !key) return [error('tls.cert is set but tls.key is empty: Vigil would ignore tls.cert and use a self-signed certificate: set tls.key to its private key')];
  if (key && !cert) return [error('tls.key is set but tls.cert is empty: Vigil would ignore tls.key and use a self-signed certificate: set tls.cert to the certificate')];
  if (cert) {
    const certPem = readOrNull(cert);
    if (certPem === null) return [error(`tls.cert ${cert}: cannot read it: fix the path or the file's permissions (Vigil's user must read it)`)];
    const keyPem = readOrNull(key);
    const findings = checkCertificate({ certPem, keyPem: keyPem ?? undefined, domain: config.domain, now, source: `tls.cert ${cert}`, fix: `install a certificate for ${config.domain} in tls.cert and tls.key` });
    if (keyPem === null) findings.push(error(`tls.key ${key}: cannot read it: fix the path or the file's permissions (Vigil's user must read it)`));
    return findings;
  }
  const paths = selfSignedPaths(config);
  if (!existsSync(paths.cert) || !existsSync(paths.key)) {
    return [ok(`tls: no tls.cert configured and no certificate at ${paths.cert} yet: \`vigil start\` generates a self-signed one for ${config.domain}`)];
  }
  const certPem = readOrNull(paths.cert);
  const keyPem = readOrNull(paths.key);
  if (certPem === null || keyPem === null) return [error(`tls: cannot read ${paths.cert} or ${paths.key}: fix their permissions, or delete both and \`vigil start\` makes new ones`)];
  return checkCertificate({ certPem, keyPem, domain: config.domain, now, source: `generated certificate ${paths.cert}`, fix: `delete ${paths.cert} and ${paths.key} and restart: Vigil generates a new one, or configure tls.cert and tls.key` });
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
