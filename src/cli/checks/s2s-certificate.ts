import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { domainToASCII } from 'node:url';
import type { Config } from '../../config/types.js';
import { commonName, presentedCertificate } from './certificate.js';
import { advice, error, ok, type Finding } from './finding.js';
import { isLocalDomain } from './srv.js';

/**
 * The certificate as other servers see it. checkTls has already judged it for clients (readable, in date,
 * the key, a name by the client rules); this says only whether a peer can authenticate us with it (SASL
 * EXTERNAL, XEP-0178), which takes a name by the stricter server rules and a CA the peer trusts. When it
 * cannot, we are left with dialback (XEP-0220), which is advice while s2s.dialback is on.
 */

/** Every CERTIFICATE block of a PEM text, in order: the server's first, then its chain. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * One DNS-ID against the domain, as RFC 6125 §6.4 (and RFC 9525, which replaces it): case-insensitive, a
 * trailing dot ignored; a wildcard only as the whole left-most label, standing for exactly one label, and
 * never over a single label: `*.example.org` covers `a.example.org`, not `example.org` nor `a.b.example.org`.
 * Partial wildcards (`a*.example.org`) match nothing.
 */
export function dnsIdMatches(presented: string, domain: string): boolean {
  const p = presented.toLowerCase().replace(/\.$/, '');
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (!p.includes('*')) return p === d;
  if (!p.startsWith('*.')) return false;
  const base = p.slice(2);
  if (base.includes('*') || !base.includes('.')) return false;
  const dot = d.indexOf('.');
  return dot > 0 && d.slice(dot + 1) === base;
}

/**
 * Whether a peer server accepts the certificate for the domain (RFC 6120 §13.7.1.2): a subjectAltName DNS
 * entry (RFC 6125 wildcards), an SRVName `_xmpp-server.<domain>`, or an XmppAddr of exactly the domain. The
 * CN is not consulted: Node's checkHost and many clients fall back to it, servers do not. DNS and SRVName
 * entries hold A-labels (xn--), an XmppAddr the Unicode form.
 */
export function namesServerDomain(cert: X509Certificate, domain: string): boolean {
  const d = (domainToASCII(domain) || domain).toLowerCase();
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    const [kind, ...rest] = entry.split(':');
    const value = rest.join(':');
    if (kind === 'DNS' && dnsIdMatches(value, d)) return true;
    if (kind === 'othername' && [`xmppaddr:${d}`, `xmppaddr:${domain.toLowerCase()}`].includes(value.toLowerCase())) return true;
    if (kind === 'othername' && value.toLowerCase() === `srvname:_xmpp-server.${d}`) return true;
  }
  return false;
}

/** A certificate trusted to sign peers' certificates; origin names where it came from in messages. */
export interface Anchor {
  cert: X509Certificate;
  /** "the system's CAs", or "s2s.ca /etc/vigil/ca.pem". */
  origin: string;
  /** True for the system's store: trusted by other servers too, not only by us. */
  public: boolean;
}

export type Trust =
  | { kind: 'trusted'; anchor: Anchor }
  | { kind: 'self-signed' }
  /** The chain ends in a self-signed CA that is not an anchor. */
  | { kind: 'untrusted-root'; root: string }
  /** The last certificate's issuer is not in the chain nor among the anchors: an intermediate left out, or an unknown CA. */
  | { kind: 'unknown-issuer'; issuer: string };

const selfSigned = (c: X509Certificate) => c.issuer === c.subject && c.verify(c.publicKey);
const issuedBy = (c: X509Certificate, by: X509Certificate) => c.checkIssued(by) && c.verify(by.publicKey);
const dnName = (dn: string) => commonName(dn) ?? dn.replace(/\n/g, ', ');

/** Walk from the server's certificate through the rest of the file to an anchor (signatures checked, dates not). */
export function chainTrust(chain: X509Certificate[], anchors: Anchor[]): Trust {
  let current = chain[0];
  const used = new Set<X509Certificate>([current]);
  for (;;) {
    const anchor = anchors.find((a) => a.cert.fingerprint256 === current.fingerprint256 || issuedBy(current, a.cert));
    if (anchor) return { kind: 'trusted', anchor };
    const next = chain.find((c) => !used.has(c) && issuedBy(current, c));
    if (!next) break;
    used.add(next);
    current = next;
  }
  if (selfSigned(current)) return current === chain[0] ? { kind: 'self-signed' } : { kind: 'untrusted-root', root: dnName(current.subject) };
  return { kind: 'unknown-issuer', issuer: dnName(current.issuer) };
}

export interface S2sCertificateInput {
  /** PEM of the certificate Vigil presents and its chain; null when `vigil start` is yet to generate a self-signed one. */
  certPem: string | null;
  domain: string;
  now: number;
  anchors: Anchor[];
  /** s2s.dialback: whether Vigil falls back to dialback when its certificate does not do. */
  dialback: boolean;
  /** How to name it in messages, e.g. "tls.cert /etc/vigil/cert.pem". */
  source: string;
}

/** One finding: can a peer authenticate us by this certificate, and if not, why not and what that costs. */
export function checkS2sCertificate(input: S2sCertificateInput): Finding[] {
  const { domain, source } = input;
  const fix = `install a certificate for ${domain} from a CA other servers trust (e.g. Let's Encrypt) in tls.cert and tls.key`;
  if (input.certPem === null) return [dialbackOnly(`${source}, which \`vigil start\` will make, is self-signed`, fix, input.dialback)];
  let chain: X509Certificate[];
  try {
    chain = splitPem(input.certPem).map((pem) => new X509Certificate(pem));
  } catch {
    return []; // not PEM: checkTls says so
  }
  if (chain.length === 0) return [];
  const cert = chain[0];
  const reasons: string[] = [];
  let chainFix = fix;
  if (!namesServerDomain(cert, domain)) {
    reasons.push(`names ${domain} in no subjectAltName entry a server accepts (DNS, with a wildcard only as a whole first label; SRVName _xmpp-server.${domain}; XmppAddr) (${cert.subjectAltName ? `it has ${cert.subjectAltName}` : 'it has no subjectAltName'}; a CN does not count)`);
  }
  if (Date.parse(cert.validTo) <= input.now || Date.parse(cert.validFrom) > input.now) reasons.push('is not valid now');
  const trust = chainTrust(chain, input.anchors);
  if (trust.kind === 'self-signed') reasons.push('is self-signed');
  if (trust.kind === 'untrusted-root') reasons.push(`chains to ${trust.root}, which is neither among the system's CAs nor in s2s.ca`);
  if (trust.kind === 'unknown-issuer') {
    reasons.push(`is signed by ${trust.issuer}, which is not in the file nor among the system's CAs or s2s.ca`);
    chainFix = `if ${trust.issuer} is an intermediate CA, put its certificate after ours in tls.cert (the full chain, e.g. Let's Encrypt's fullchain.pem), as peers do not fetch it; else ${fix}`;
  }
  if (reasons.length > 0) return [dialbackOnly(`${source} ${reasons.join('; ')}`, chainFix, input.dialback)];
  if (trust.kind !== 'trusted') return []; // unreachable: every other kind gave a reason
  const ca = dnName(cert.issuer);
  if (trust.anchor.public) return [ok(`s2s: ${source} is signed by a CA the system trusts (${ca}) and names ${domain}: peers can authenticate us by certificate (SASL EXTERNAL)`)];
  return [ok(`s2s: ${source} is signed by ${ca} from ${trust.anchor.origin}, not a public CA: peers that trust it too authenticate us by certificate (SASL EXTERNAL), others ${input.dialback ? 'only by dialback' : 'not at all, as s2s.dialback is off'}`)];
}

function dialbackOnly(what: string, fix: string, dialback: boolean): Finding {
  if (!dialback) {
    return advice(`s2s: ${what}: peers cannot authenticate us by certificate (SASL EXTERNAL), only by dialback where they still accept it, while with s2s.dialback off this server asks certificates of them: ${fix}, or turn s2s.dialback on`);
  }
  return advice(`s2s: ${what}: peers can authenticate us only by dialback (XEP-0220), and those that insist on certificates (dialback off, as Prosody with s2s_secure_auth = true) refuse us: ${fix}`);
}

/** The system's CAs and those of s2s.ca; an s2s.ca file that cannot be used is an error. */
export function loadAnchors(config: Config, systemRoots: readonly string[] = rootCertificates): { anchors: Anchor[]; findings: Finding[] } {
  const anchors: Anchor[] = systemRoots.map((pem) => ({ cert: new X509Certificate(pem), origin: "the system's CAs", public: true }));
  const findings: Finding[] = [];
  for (const file of config.s2s.ca.split(',').map((f) => f.trim()).filter(Boolean)) {
    let pems: string[];
    try {
      pems = splitPem(readFileSync(file, 'utf8'));
    } catch (err) {
      findings.push(error(`s2s.ca ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): fix the path or the file's permissions (Vigil's user must read it), or remove it from s2s.ca`));
      continue;
    }
    let parsed: X509Certificate[];
    try {
      parsed = pems.map((pem) => new X509Certificate(pem));
    } catch (err) {
      parsed = [];
      findings.push(error(`s2s.ca ${file}: not a PEM certificate (${(err as Error).message}): give PEM files of CA certificates`));
    }
    if (pems.length === 0) findings.push(error(`s2s.ca ${file}: holds no PEM certificate: give PEM files of CA certificates`));
    for (const cert of parsed) anchors.push({ cert, origin: `s2s.ca ${file}`, public: false });
  }
  return { anchors, findings };
}

/** The check as `vigil doctor` runs it; nothing when federation is off (the s2s port line says so). */
export function checkS2sTls(config: Config, now = Date.now(), systemRoots: readonly string[] = rootCertificates): Finding[] {
  if (!config.s2s.enabled) return [];
  const { anchors, findings } = loadAnchors(config, systemRoots);
  if (isLocalDomain(config.domain)) {
    findings.push(ok(`s2s: domain ${config.domain}: no other server can reach it, so its certificate is not checked for federation`));
    return findings;
  }
  const presented = presentedCertificate(config);
  if (presented) findings.push(...checkS2sCertificate({ ...presented, domain: config.domain, now, anchors, dialback: config.s2s.dialback }));
  return findings;
}
