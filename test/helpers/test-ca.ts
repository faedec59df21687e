import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A throwaway certificate authority made with the openssl CLI, for tests that need certificates a peer
 * verifies (S2S with SASL EXTERNAL, XEP-0178) rather than self-signed ones. EC P-256 keys, so a CA and a
 * leaf take a few milliseconds. Leaves carry subjectAltName DNS entries and extendedKeyUsage serverAuth and
 * clientAuth: a server presents the same certificate when it dials out, as a client certificate.
 */
export interface TestCa {
  /** Where the files are. */
  dir: string;
  /** The CA certificate, PEM, to pass as `ca` (or in s2s.ca). */
  caPath: string;
  caPem: string;
  /**
   * A leaf for `domain` (its CN), signed by the CA. `names` replaces the subjectAltName DNS entries, which
   * are `[domain]` by default (so `{ names: ['*.example.org'] }` makes a wildcard one, `{ names: ['other'] }`
   * one that does not name the domain). `expired`: valid for a month that ended yesterday.
   */
  issue(domain: string, opts?: { expired?: boolean; names?: string[] }): { certPath: string; keyPath: string; cert: string; key: string };
  /** Remove what was made: the whole directory if makeTestCa made it, else only the files it wrote there. */
  cleanup(): void;
}

const DAY = 86_400_000;
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** openssl's GeneralizedTime for -startdate/-enddate: YYYYMMDDHHMMSSZ. */
function asn1Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

export function makeTestCa(dir?: string): TestCa {
  const own = dir === undefined;
  const root = dir ?? mkdtempSync(path.join(tmpdir(), 'vigil-test-ca-'));
  mkdirSync(root, { recursive: true });
  const work = path.join(root, 'ca-work');
  if (existsSync(work)) throw new Error(`${work} exists: another TestCa uses ${root}`);
  mkdirSync(path.join(work, 'issued'), { recursive: true });
  const written: string[] = [work];

  const caPath = path.join(root, 'ca.crt');
  const caKey = path.join(work, 'ca.key');
  openssl(['req', '-x509', '-new', ...EC, '-keyout', caKey, '-out', caPath, '-days', '3650', '-subj', '/CN=Vigil Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], work);
  written.push(caPath);
  const caPem = readFileSync(caPath, 'utf8');

  // `openssl ca` rather than `x509 -req`: only it takes explicit dates (OpenSSL 3.0), which an expired leaf needs.
  const cnf = path.join(work, 'ca.cnf');
  writeFileSync(path.join(work, 'index.txt'), '');
  writeFileSync(cnf, [
    '[ca]', 'default_ca = test', '[test]',
    `database = ${path.join(work, 'index.txt')}`, `new_certs_dir = ${path.join(work, 'issued')}`, `serial = ${path.join(work, 'serial')}`,
    'default_md = sha256', 'policy = any', 'unique_subject = no', 'email_in_dn = no',
    '[any]', 'commonName = supplied', '',
  ].join('\n'));

  let count = 0;
  return {
    dir: root,
    caPath,
    caPem,
    issue(domain, opts = {}) {
      const names = opts.names ?? [domain];
      const base = path.join(root, `${++count}-${domain.replace(/[^A-Za-z0-9.-]/g, '_')}`);
      const certPath = `${base}.crt`;
      const keyPath = `${base}.key`;
      const csr = path.join(work, `${count}.csr`);
      const ext = path.join(work, `${count}.ext`);
      openssl(['req', '-new', ...EC, '-keyout', keyPath, '-out', csr, '-subj', `/CN=${domain}`], work);
      writeFileSync(ext, [
        `subjectAltName = ${names.map((n) => `DNS:${n}`).join(',')}`,
        'extendedKeyUsage = serverAuth,clientAuth', 'keyUsage = critical,digitalSignature', 'basicConstraints = critical,CA:FALSE',
        'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid', '',
      ].join('\n'));
      const now = Date.now();
      const [start, end] = opts.expired ? [now - 31 * DAY, now - DAY] : [now - DAY, now + 365 * DAY];
      openssl(['ca', '-batch', '-config', cnf, '-name', 'test', '-cert', caPath, '-keyfile', caKey, '-in', csr, '-out', certPath,
        '-startdate', asn1Time(start), '-enddate', asn1Time(end), '-extfile', ext, '-notext', '-rand_serial'], work);
      written.push(certPath, keyPath);
      return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
    },
    cleanup() {
      if (own) rmSync(root, { recursive: true, force: true });
      else for (const p of written) rmSync(p, { recursive: true, force: true });
    },
  };
}
