import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { SrvRecord } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { formatTable, sortSessions } from '../../src/cli/sessions';
import { checkCertificate } from '../../src/cli/checks/certificate';
import { checkPorts } from '../../src/cli/checks/ports';
import { chainTrust, checkS2sCertificate, checkS2sTls, dnsIdMatches, namesServerDomain, type Anchor, type S2sCertificateInput } from '../../src/cli/checks/s2s-certificate';
import { checkSrv, systemDns, type DnsAsker } from '../../src/cli/checks/srv';
import { checkFdLimit, FD_HEADROOM } from '../../src/cli/checks/fds';
import { formatFinding } from '../../src/cli/checks/finding';
import { kernelFindings, retransmitGiveUpSeconds, type KernelValues } from '../../src/cli/checks/kernel';
import { countStates, socketFindings } from '../../src/cli/checks/running';
import { loadConfig } from '../../src/config/load';
import type { ConfigOverrides } from '../../src/config/types';
import { refuse, softFdLimit, type SessionInfo } from '../../src/metrics/admin';
import { makeTestCa, type TestCa } from '../helpers/test-ca';

/** The pure parts of `vigil doctor`, `vigil sessions` and the admin endpoint's access rule. */

const config = loadConfig({ env: {} });
const DAY = 86_400_000;
const levels = (fs: { level: string }[]) => fs.map((f) => f.level);

describe('kernel TCP settings', () => {
  it('computes how long the kernel retransmits before giving up (RTO 200 ms doubling, capped at 120 s)', () => {
    expect(retransmitGiveUpSeconds(15)).toBe(924.6);
    expect(retransmitGiveUpSeconds(8)).toBe(102.2);
  });

  it("advises on stock kernel values, with the recommended value and why, and never errs", () => {
    const stock: KernelValues = {
      'net.ipv4.tcp_keepalive_time': 7200, 'net.ipv4.tcp_keepalive_intvl': 75, 'net.ipv4.tcp_keepalive_probes': 9,
      'net.ipv4.tcp_fin_timeout': 60, 'net.ipv4.tcp_retries2': 15, 'net.core.somaxconn': 128,
    };
    const lines = kernelFindings(stock, config).map(formatFinding);
    expect(lines).toEqual([
      expect.stringMatching(/^advice kernel: net.ipv4.tcp_keepalive_time = 7200 s: .*watchdog.c2s.tcpKeepAlive 60 s.*sysctl -w net.ipv4.tcp_keepalive_time=600/),
      expect.stringMatching(/^advice kernel: net.ipv4.tcp_keepalive_intvl = 75, tcp_keepalive_probes = 9: .*60 \+ 75 x 9 = 735 s.*sysctl -w net.ipv4.tcp_keepalive_intvl=10 net.ipv4.tcp_keepalive_probes=6/),
      expect.stringMatching(/^ok {5}kernel: net.ipv4.tcp_fin_timeout = 60 s/),
      expect.stringMatching(/^advice kernel: net.ipv4.tcp_retries2 = 15: .*~15 min \(924.6 s\).*sysctl -w net.ipv4.tcp_retries2=8 \(~102 s/),
      expect.stringMatching(/^advice kernel: net.core.somaxconn = 128: .*sysctl -w net.core.somaxconn=4096/),
    ]);
  });

  it('is content with tuned values', () => {
    const tuned: KernelValues = {
      'net.ipv4.tcp_keepalive_time': 600, 'net.ipv4.tcp_keepalive_intvl': 10, 'net.ipv4.tcp_keepalive_probes': 6,
      'net.ipv4.tcp_fin_timeout': 30, 'net.ipv4.tcp_retries2': 8, 'net.core.somaxconn': 4096,
    };
    expect(levels(kernelFindings(tuned, config))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });

  it('says what it could not read', () => {
    expect(levels(kernelFindings({}, config))).toEqual(['advice']);
    expect(kernelFindings({ 'net.ipv4.tcp_retries2': 8 }, config).filter((f) => f.level === 'advice').map((f) => f.text)).toHaveLength(5);
  });
});

describe('file-descriptor limit', () => {
  it('must cover limits.maxSessions plus headroom', () => {
    expect(checkFdLimit(1024, 100000, 'this shell')).toMatchObject({ level: 'error', text: expect.stringContaining(`only 1024, below limits.maxSessions 100000 + ${FD_HEADROOM} = 101024`) });
    expect(checkFdLimit(101024, 100000, 'this shell').level).toBe('ok');
    expect(checkFdLimit(null, 100000, 'this shell')).toMatchObject({ level: 'ok', text: expect.stringContaining('no limit') });
  });

  it('limits.maxSessions 0, the default, takes what the limit allows: ok with the derived figure', () => {
    expect(loadConfig({ env: {} }).limits.maxSessions).toBe(0);
    expect(formatFinding(checkFdLimit(20000, 0, 'this shell'))).toBe(`ok     file descriptors: this shell may open 20000: room for ${20000 - FD_HEADROOM} sessions (limits.maxSessions 0: the limit minus ${FD_HEADROOM})`);
    expect(formatFinding(checkFdLimit(null, 0, 'this shell'))).toBe('ok     file descriptors: this shell has no limit, so limits.maxSessions 0 allows any number of sessions');
  });

  it('limits.maxSessions 0 with a limit that leaves no room beyond the headroom is an error with the fix', () => {
    expect(checkFdLimit(FD_HEADROOM, 0, 'this shell')).toMatchObject({ level: 'error', text: expect.stringMatching(/may open only 1024, no more than the 1024 Vigil keeps for itself: no room for sessions; raise it \(`ulimit -n 65536`/) });
  });

  it('an explicit limits.maxSessions above the limit still errs', () => {
    expect(checkFdLimit(20000, 100000, 'this shell')).toMatchObject({ level: 'error', text: expect.stringContaining('may open only 20000, below limits.maxSessions 100000 + 1024 = 101024') });
  });

  it('reads the soft limit from /proc/self/limits', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n';
    expect(softFdLimit(text)).toBe(1024);
    expect(softFdLimit(text.replace('1024 ', 'unlimited'))).toBeNull();
  });
});

describe('socket states', () => {
  const ss = (states: Record<string, number>) =>
    Object.entries(states).flatMap(([s, n]) => Array.from({ length: n }, (_, i) => `${s} 0 0 127.0.0.1:5222 127.0.0.1:${40000 + i}`)).join('\n');

  it('counts states, LISTEN left out', () => {
    expect([...countStates(`LISTEN 0 511 127.0.0.1:5222 0.0.0.0:*\n${ss({ ESTAB: 3, 'TIME-WAIT': 1 })}\n`)]).toEqual([['ESTAB', 3], ['TIME-WAIT', 1]]);
  });

  it('calls CLOSE-WAIT or FIN-WAIT-2 piling up a bug, a few in passing fine', () => {
    expect(levels(socketFindings(countStates(ss({ ESTAB: 50, 'CLOSE-WAIT': 2, 'FIN-WAIT-2': 1 })), 5222))).toEqual(['ok']);
    const bad = socketFindings(countStates(ss({ ESTAB: 50, 'CLOSE-WAIT': 40, 'FIN-WAIT-2': 12 })), 5222);
    expect(bad.map(formatFinding)).toEqual([
      expect.stringMatching(/^error {2}sockets on :5222: 40 in CLOSE-WAIT: .*a bug in Vigil.*ss -tanpo state close-wait/),
      expect.stringMatching(/^error {2}sockets on :5222: 12 in FIN-WAIT-2: .*a bug in Vigil/),
    ]);
    // The threshold grows with the number of established sockets (1%).
    expect(levels(socketFindings(countStates(ss({ ESTAB: 5000, 'CLOSE-WAIT': 40 })), 5222))).toEqual(['ok']);
  });
});

describe('certificate', () => {
  let good: { cert: string; key: string };
  let other: { cert: string; key: string };
  beforeAll(async () => {
    const make = async (domain: string, cn = domain) => {
      const p = await generate([{ name: 'commonName', value: cn }], {
        keySize: 2048, algorithm: 'sha256', notBeforeDate: new Date(Date.now() - DAY), notAfterDate: new Date(Date.now() + 100 * DAY),
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: domain }] }],
      });
      return { cert: p.cert, key: p.private };
    };
    [good, other] = await Promise.all([make('chat.example.org'), make('example.net')]);
  });
  const input = (pems: { cert: string; key?: string }, domain: string, now = Date.now()) => ({ certPem: pems.cert, keyPem: pems.key, domain, now, source: 'tls.cert c.pem', fix: 'FIX' });

  it('a valid certificate for the domain: ok, with advice that it is self-signed', () => {
    const fs = checkCertificate(input(good, 'chat.example.org'));
    expect(fs.map(formatFinding)).toEqual([
      expect.stringMatching(/^ok {5}tls.cert c.pem: valid until .* \(99 days\)$/),
      'ok     tls.cert c.pem: names chat.example.org',
      expect.stringMatching(/^advice tls.cert c.pem: self-signed; .*CA-issued/),
    ]);
  });

  it('expired, expiring soon, another name, the wrong key, not PEM: each an error with the fix', () => {
    expect(checkCertificate(input(good, 'chat.example.org', Date.now() + 101 * DAY))[0]).toMatchObject({ level: 'error', text: expect.stringMatching(/expired on .*: FIX$/) });
    expect(checkCertificate(input(good, 'chat.example.org', Date.now() + 90 * DAY))[0]).toMatchObject({ level: 'error', text: expect.stringMatching(/expires in 9 days .*less than 14: renew it now: FIX$/) });
    expect(checkCertificate(input(good, 'example.net'))[1]).toMatchObject({ level: 'error', text: expect.stringContaining('does not name the domain example.net (subjectAltName DNS:chat.example.org, CN chat.example.org)') });
    expect(checkCertificate(input({ cert: good.cert, key: other.key }, 'chat.example.org'))).toContainEqual({ level: 'error', text: expect.stringContaining('the private key does not belong to this certificate') });
    expect(checkCertificate(input({ cert: 'nonsense' }, 'chat.example.org'))).toEqual([{ level: 'error', text: expect.stringMatching(/^tls.cert c.pem: not a PEM certificate .*: FIX$/) }]);
  });
});

describe('admin endpoint access', () => {
  const req = (remoteAddress: string, authorization?: string) => ({ socket: { remoteAddress }, headers: authorization ? { authorization } : {} }) as unknown as IncomingMessage;

  it('without admin.token: loopback only', () => {
    for (const ip of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) expect(refuse(req(ip), '')).toBe('');
    expect(refuse(req('192.0.2.7'), '')).toMatch(/^forbidden: .*loopback only/);
    expect(refuse(req('::ffff:192.0.2.7', 'Bearer anything'), '')).toMatch(/^forbidden/);
  });

  it('with admin.token: exactly that bearer token, from anywhere, loopback included', () => {
    expect(refuse(req('192.0.2.7', 'Bearer s3cret'), 's3cret')).toBe('');
    expect(refuse(req('127.0.0.1', 'bearer s3cret'), 's3cret')).toBe('');
    expect(refuse(req('127.0.0.1'), 's3cret')).toMatch(/^forbidden: admin.token is set/);
    expect(refuse(req('127.0.0.1', 'Bearer s3cre'), 's3cret')).toMatch(/^forbidden/);
    expect(refuse(req('127.0.0.1', 'Basic s3cret'), 's3cret')).toMatch(/^forbidden/);
  });
});

describe('vigil sessions output', () => {
  const session = (jid: string | null, idleSeconds: number, extra: Partial<SessionInfo> = {}): SessionInfo => ({
    id: `id-${jid}`, kind: 'c2s', jid, domain: null, state: jid ? 'active' : 'negotiating', authenticated: jid !== null, remoteAddress: '::ffff:192.0.2.1', remotePort: 40001,
    idleSeconds, connectedSeconds: 100, probePendingSeconds: null, sendQueueBytes: 0, sm: null, bytesIn: 10, bytesOut: 20, ...extra,
  });
  const list = [session('bob@x/1', 5), session(null, 12), session('alice@x/2', 130, { probePendingSeconds: 10, sendQueueBytes: 2048 })];
  const phone = session('carol@x/phone', 200, { state: 'detached', remoteAddress: '', remotePort: 0, sm: { resumable: true, unacked: 3, resumeLeftSeconds: 100 } });

  it('sorts by idle time (most idle first) or by JID (unbound last)', () => {
    expect(sortSessions(list, 'idle').map((s) => s.jid)).toEqual(['alice@x/2', null, 'bob@x/1']);
    expect(sortSessions(list, 'jid').map((s) => s.jid)).toEqual(['alice@x/2', 'bob@x/1', null]);
  });

  it('prints aligned columns and a count', () => {
    expect(formatTable(sortSessions(list, 'idle'))).toEqual([
      'JID                  KIND  REMOTE           IDLE    PROBE          QUEUE  STATE',
      'alice@x/2            c2s   192.0.2.1:40001  130.0s  pending 10.0s  2048B  active',
      '(not authenticated)  c2s   192.0.2.1:40001  12.0s   none           0B     negotiating',
      'bob@x/1              c2s   192.0.2.1:40001  5.0s    none           0B     active',
      '3 sessions',
    ]);
  });

  it('shows a hibernated session with its unacked stanzas and the time left to resume it', () => {
    expect(formatTable([phone, session('bob@x/1', 5, { sm: { resumable: false, unacked: 0, resumeLeftSeconds: null } })])).toEqual([
      'JID            KIND  REMOTE           IDLE    PROBE  QUEUE          STATE',
      'carol@x/phone  c2s   -                200.0s  none   0B, 3 unacked  hibernated, resumable for 100.0s',
      'bob@x/1        c2s   192.0.2.1:40001  5.0s    none   0B, 0 unacked  active',
      '2 sessions',
    ]);
  });
});

describe('s2s listener', () => {
  const ports = (s2s: number) => loadConfig({ env: {}, overrides: { listeners: { c2s: { port: 0 }, websocket: { port: 0 }, http: { port: 0 }, s2s: { host: '127.0.0.1', port: s2s } } } });

  it('federation off (s2s.enabled false) is said once', async () => {
    const config = ports(5269);
    config.s2s.enabled = false;
    const fs = await checkPorts(config, { kind: 'none' });
    expect(fs.filter((f) => f.text.startsWith('listeners.s2s'))).toEqual([{ level: 'ok', text: 'listeners.s2s: s2s.enabled is false, federation off: nothing listens for other servers and nothing is sent to other domains' }]);
  });

  it('is checked like the others: free, or held by another process (an error with the fix)', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      expect((await checkPorts(ports(port), { kind: 'none' })).find((f) => f.text.startsWith('listeners.s2s'))).toEqual({
        level: 'error', text: `listeners.s2s: 127.0.0.1:${port} is in use by another process: stop it (\`ss -ltnp '( sport = :${port} )'\` names it) or set listeners.s2s.port`,
      });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect((await checkPorts(ports(port), { kind: 'none' })).find((f) => f.text.startsWith('listeners.s2s'))).toEqual({ level: 'ok', text: `listeners.s2s: 127.0.0.1:${port} is free` });
  });
});

describe('s2s certificate', () => {
  let ca: TestCa;
  let caAnchor: Anchor;
  let selfSigned: string;
  let cnOnly: string;
  beforeAll(async () => {
    ca = makeTestCa();
    caAnchor = { cert: new X509Certificate(ca.caPem), origin: `s2s.ca ${ca.caPath}`, public: false };
    const ss = await generate([{ name: 'commonName', value: 'chat.example.org' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: new Date(Date.now() + 100 * DAY),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'chat.example.org' }] }],
    });
    selfSigned = ss.cert;
    // selfsigned adds a subjectAltName from the CN; openssl adds none unless asked.
    const cnPath = path.join(ca.dir, 'cn-only.crt');
    execFileSync('openssl', ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(ca.dir, 'cn-only.key'), '-out', cnPath, '-days', '100', '-subj', '/CN=chat.example.org'], { stdio: 'ignore' });
    cnOnly = readFileSync(cnPath, 'utf8');
  });
  afterAll(() => ca.cleanup());
  const input = (certPem: string | null, domain = 'chat.example.org', more: Partial<S2sCertificateInput> = {}): S2sCertificateInput => ({
    certPem, domain, now: Date.now(), anchors: [caAnchor], dialback: true, source: 'tls.cert c.pem', ...more,
  });

  it('DNS-IDs by RFC 6125: a wildcard is one whole first label, never more, never partial', () => {
    const cases: [string, string, boolean][] = [
      ['chat.example.org', 'chat.example.org', true], ['Chat.Example.ORG.', 'chat.example.org', true], ['example.org', 'chat.example.org', false],
      ['*.example.org', 'a.example.org', true], ['*.example.org', 'example.org', false], ['*.example.org', 'a.b.example.org', false],
      ['*.org', 'example.org', false], ['a*.example.org', 'ab.example.org', false], ['*b.example.org', 'ab.example.org', false], ['a.*.org', 'a.b.org', false],
    ];
    expect(cases.map(([p, d]) => [p, d, dnsIdMatches(p, d)])).toEqual(cases);
  });

  it('a certificate from a CA the system trusts that names the domain: ok, peers authenticate us by certificate', () => {
    const leaf = ca.issue('chat.example.org');
    expect(checkS2sCertificate(input(leaf.cert, 'chat.example.org', { anchors: [{ ...caAnchor, origin: "the system's CAs", public: true }] }))).toEqual([
      { level: 'ok', text: 's2s: tls.cert c.pem is signed by a CA the system trusts (Vigil Test CA) and names chat.example.org: peers can authenticate us by certificate (SASL EXTERNAL)' },
    ]);
  });

  it('one from an s2s.ca CA: ok, saying only peers that trust it too authenticate us so', () => {
    const leaf = ca.issue('chat.example.org');
    expect(checkS2sCertificate(input(leaf.cert)).map(formatFinding)).toEqual([
      `ok     s2s: tls.cert c.pem is signed by Vigil Test CA from s2s.ca ${ca.caPath}, not a public CA: peers that trust it too authenticate us by certificate (SASL EXTERNAL), others only by dialback`,
    ]);
  });

  it('a wildcard covers one label below it, not the domain itself nor deeper', () => {
    const leaf = ca.issue('example.org', { names: ['*.example.org'] });
    expect(levels(checkS2sCertificate(input(leaf.cert, 'chat.example.org')))).toEqual(['ok']);
    for (const domain of ['example.org', 'a.chat.example.org']) {
      expect(checkS2sCertificate(input(leaf.cert, domain))).toEqual([{ level: 'advice', text: expect.stringContaining(`names ${domain} in no subjectAltName entry a server accepts`) }]);
    }
  });

  it('self-signed: advice that peers can only authenticate us by dialback, and which peers then refuse us', () => {
    expect(checkS2sCertificate(input(selfSigned)).map(formatFinding)).toEqual([
      "advice s2s: tls.cert c.pem is self-signed: peers can authenticate us only by dialback (XEP-0220), and those that insist on certificates (dialback off, as Prosody with s2s_secure_auth = true) refuse us: install a certificate for chat.example.org from a CA other servers trust (e.g. Let's Encrypt) in tls.cert and tls.key",
    ]);
  });

  it('the same with s2s.dialback off is an error: then nothing authenticates us', () => {
    expect(checkS2sCertificate(input(selfSigned, 'chat.example.org', { dialback: false }))).toEqual([
      { level: 'advice', text: expect.stringMatching(/^s2s: tls.cert c.pem is self-signed: peers cannot authenticate us by certificate .*only by dialback where they still accept it.*, or turn s2s.dialback on$/) },
    ]);
  });

  it('not generated yet: the one `vigil start` makes will be self-signed', () => {
    expect(checkS2sCertificate(input(null, 'chat.example.org', { source: 'generated certificate data/tls/chat.example.org.crt' }))).toEqual([
      { level: 'advice', text: expect.stringMatching(/^s2s: generated certificate data\/tls\/chat.example.org.crt, which `vigil start` will make, is self-signed: peers can authenticate us only by dialback/) },
    ]);
  });

  it('a name only in the CN passes the client check but not a server: said, with what the certificate has', () => {
    expect(checkCertificate({ certPem: cnOnly, domain: 'chat.example.org', now: Date.now(), source: 'tls.cert c.pem', fix: 'FIX' })[1]).toEqual({ level: 'ok', text: 'tls.cert c.pem: names chat.example.org' });
    expect(checkS2sCertificate(input(cnOnly))).toEqual([
      { level: 'advice', text: expect.stringContaining('tls.cert c.pem names chat.example.org in no subjectAltName entry a server accepts (DNS, with a wildcard only as a whole first label; SRVName _xmpp-server.chat.example.org; XmppAddr) (it has no subjectAltName; a CN does not count); is self-signed: peers can authenticate us only by dialback') },
    ]);
  });

  it('an unknown issuer: advice to ship the full chain; a chain to a CA we do not trust: says which', () => {
    const leaf = ca.issue('chat.example.org');
    expect(checkS2sCertificate(input(leaf.cert, 'chat.example.org', { anchors: [] }))).toEqual([
      { level: 'advice', text: expect.stringMatching(/is signed by Vigil Test CA, which is not in the file nor among the system's CAs or s2s.ca: .*if Vigil Test CA is an intermediate CA, put its certificate after ours in tls.cert \(the full chain/) },
    ]);
    expect(checkS2sCertificate(input(leaf.cert + ca.caPem, 'chat.example.org', { anchors: [] }))).toEqual([
      { level: 'advice', text: expect.stringContaining("chains to Vigil Test CA, which is neither among the system's CAs nor in s2s.ca") },
    ]);
    expect(chainTrust([new X509Certificate(leaf.cert), new X509Certificate(ca.caPem)], [caAnchor])).toEqual({ kind: 'trusted', anchor: caAnchor });
  });

  it('an expired certificate cannot authenticate us (checkTls already calls it an error)', () => {
    const leaf = ca.issue('chat.example.org', { expired: true });
    expect(checkS2sCertificate(input(leaf.cert))).toEqual([{ level: 'advice', text: expect.stringContaining('tls.cert c.pem is not valid now: peers can authenticate us only by dialback') }]);
  });

  it('an SRVName or XmppAddr names the domain too', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-doctor-'));
    try {
      const make = (san: string) => {
        execFileSync('openssl', ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'c'), '-days', '2', '-subj', '/CN=x', '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
        return new X509Certificate(readFileSync(path.join(dir, 'c')));
      };
      expect(namesServerDomain(make('otherName:1.3.6.1.5.5.7.8.5;UTF8:chat.example.org'), 'chat.example.org')).toBe(true);
      expect(namesServerDomain(make('otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-server.chat.example.org'), 'chat.example.org')).toBe(true);
      expect(namesServerDomain(make('otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-client.chat.example.org'), 'chat.example.org')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checkS2sTls: nothing with federation off, one line for localhost, an error for an unreadable s2s.ca', () => {
    const cfg = (overrides: ConfigOverrides) => loadConfig({ env: {}, overrides });
    expect(checkS2sTls(cfg({ s2s: { enabled: false } }))).toEqual([]);
    expect(checkS2sTls(cfg({}))).toEqual([{ level: 'ok', text: 's2s: domain localhost: no other server can reach it, so its certificate is not checked for federation' }]);
    const leaf = ca.issue('chat.example.org');
    const fs = checkS2sTls(cfg({ domain: 'chat.example.org', tls: { cert: leaf.certPath, key: leaf.keyPath }, s2s: { ca: `/nonexistent/ca.pem,${ca.caPath}` } }), Date.now(), []);
    expect(fs).toEqual([
      { level: 'error', text: "s2s.ca /nonexistent/ca.pem: cannot read it (ENOENT): fix the path or the file's permissions (Vigil's user must read it), or remove it from s2s.ca" },
      { level: 'ok', text: expect.stringContaining(`s2s: tls.cert ${leaf.certPath} is signed by Vigil Test CA from s2s.ca ${ca.caPath}`) },
    ]);
  });
});

describe('SRV records', () => {
  const cfg = (domain = 'example.org', port = 5269) => loadConfig({ env: {}, overrides: { domain, listeners: { s2s: { port } } } });
  const rec = (priority: number, weight: number, name: string, port: number): SrvRecord => ({ priority, weight, name, port });
  const fail = (code: string) => Object.assign(new Error(code), { code });
  /** Answers from tables: a record list, or an error code to reject with. */
  const fake = (srv: Record<string, SrvRecord[] | string>, hosts: Record<string, string[] | string> = {}): DnsAsker & { asked: string[] } => {
    const asked: string[] = [];
    return {
      asked,
      resolveSrv: async (name) => {
        asked.push(name);
        const a = srv[name] ?? 'ENOTFOUND';
        if (typeof a === 'string') throw fail(a);
        return a;
      },
      lookup: async (host) => {
        asked.push(`lookup ${host}`);
        const a = hosts[host] ?? 'ENOTFOUND';
        if (typeof a === 'string') throw fail(a);
        return a;
      },
    };
  };

  it('records: listed as a peer tries them, with the XEP-0368 ones absent', async () => {
    const dns = fake({ '_xmpp-server._tcp.example.org': [rec(10, 0, 'b.example.org', 5269), rec(5, 10, 'a.example.org', 5269), rec(5, 60, 'c.example.org', 5269)] });
    expect((await checkSrv(cfg(), dns)).map(formatFinding)).toEqual([
      'ok     s2s: _xmpp-server._tcp.example.org SRV: 5 60 c.example.org:5269, 5 10 a.example.org:5269, 10 0 b.example.org:5269: other servers connect there',
      'ok     s2s: no _xmpps-server._tcp.example.org SRV records (XEP-0368 direct TLS): none needed, Vigil offers other servers STARTTLS',
    ]);
  });

  it('records to another port than listeners.s2s.port: advice', async () => {
    const fs = await checkSrv(cfg('example.org', 5270), fake({ '_xmpp-server._tcp.example.org': [rec(0, 5, 'xmpp.example.org', 5269)] }));
    expect(fs[1]).toEqual({ level: 'advice', text: 's2s: the SRV records point to port 5269 but listeners.s2s.port is 5270: unless a port forward or proxy leads there, other servers cannot reach this one: make them agree' });
  });

  it('"." (no service): advice that peers will not connect', async () => {
    const fs = await checkSrv(cfg(), fake({ '_xmpp-server._tcp.example.org': [rec(0, 0, '', 0)] }));
    expect(fs[0]).toEqual({ level: 'advice', text: expect.stringMatching(/^s2s: _xmpp-server._tcp.example.org SRV is "." \(RFC 2782: no service here\): other servers will not connect/) });
  });

  it('XEP-0368 records: information, with what Vigil does not offer', async () => {
    const fs = await checkSrv(cfg(), fake({ '_xmpp-server._tcp.example.org': [rec(0, 5, 'xmpp.example.org', 5269)], '_xmpps-server._tcp.example.org': [rec(0, 5, 'xmpp.example.org', 5270)] }));
    expect(fs[1]).toEqual({ level: 'ok', text: expect.stringMatching(/^s2s: _xmpps-server._tcp.example.org SRV \(XEP-0368 direct TLS\): 0 5 xmpp.example.org:5270: Vigil offers other servers STARTTLS only/) });
  });

  it('no records (NXDOMAIN or NODATA): peers use the domain itself on 5269, ok when it resolves', async () => {
    for (const code of ['ENOTFOUND', 'ENODATA']) {
      const fs = await checkSrv(cfg(), fake({ '_xmpp-server._tcp.example.org': code }, { 'example.org': ['192.0.2.1', '2001:db8::1'] }));
      expect(fs[0]).toEqual({ level: 'ok', text: 's2s: no _xmpp-server._tcp.example.org SRV records: other servers connect to example.org itself on port 5269 (RFC 6120 §3.2.2), which resolves to 192.0.2.1, 2001:db8::1' });
    }
  });

  it('no records and another port: advice to publish a record', async () => {
    const fs = await checkSrv(cfg('example.org', 15269), fake({}, { 'example.org': ['192.0.2.1'] }));
    expect(fs[0]).toEqual({ level: 'advice', text: expect.stringMatching(/resolves to 192.0.2.1, but listeners.s2s.port is 15269: publish _xmpp-server._tcp.example.org. SRV 0 5 15269 <this host's name>., or listen on 5269$/) });
  });

  it('no records and no address: advice that peers cannot find us, and how to fix it', async () => {
    const fs = await checkSrv(cfg(), fake({}));
    expect(fs[0]).toEqual({ level: 'advice', text: expect.stringMatching(/^s2s: no _xmpp-server._tcp.example.org SRV records and example.org has no address \(ENOTFOUND\): other servers cannot find this one: publish .* or an A\/AAAA record for example.org/) });
  });

  it('a DNS that cannot be asked (timeout, no server): one advice line, nothing more asked, never an error', async () => {
    for (const code of ['ETIMEOUT', 'ECONNREFUSED', 'ESERVFAIL']) {
      const dns = fake({ '_xmpp-server._tcp.example.org': code });
      const fs = await checkSrv(cfg(), dns);
      expect(fs).toEqual([{ level: 'advice', text: expect.stringMatching(new RegExp(`^s2s: could not ask DNS for _xmpp-server._tcp.example.org \\(${code}${code === 'ETIMEOUT' ? ', s2s.dnsTimeout 5000 ms' : ''}\\), so cannot tell how other servers find this one`)) }]);
      expect(dns.asked).toEqual(['_xmpp-server._tcp.example.org']);
    }
  });

  it('localhost: no lookup, one ok line; federation off: nothing', async () => {
    const dns = fake({});
    expect(await checkSrv(cfg('localhost'), dns)).toEqual([{ level: 'ok', text: expect.stringMatching(/^s2s: domain localhost: nothing federates with localhost, so no SRV lookup/) }]);
    const off = cfg('example.org');
    off.s2s.enabled = false;
    expect(await checkSrv(off, dns)).toEqual([]);
    expect(dns.asked).toEqual([]);
  });

  it('systemDns gives up after s2s.dnsTimeout on a server that never answers (loopback)', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      const fs = await checkSrv(loadConfig({ env: {}, overrides: { domain: 'example.org', s2s: { dnsTimeout: '300ms' } } }), systemDns(300, [`127.0.0.1:${silent.address().port}`]));
      expect(fs).toEqual([{ level: 'advice', text: expect.stringContaining('could not ask DNS for _xmpp-server._tcp.example.org (ETIMEOUT, s2s.dnsTimeout 300 ms)') }]);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      silent.close();
    }
  });
});
