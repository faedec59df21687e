import type { IncomingMessage } from 'node:http';
import { generate } from 'selfsigned';
import { formatTable, sortSessions } from '../../src/cli/sessions';
import { checkCertificate } from '../../src/cli/checks/certificate';
import { checkFdLimit, FD_HEADROOM } from '../../src/cli/checks/fds';
import { formatFinding } from '../../src/cli/checks/finding';
import { kernelFindings, retransmitGiveUpSeconds, type KernelValues } from '../../src/cli/checks/kernel';
import { countStates, socketFindings } from '../../src/cli/checks/running';
import { loadConfig } from '../../src/config/load';
import { refuse, softFdLimit, type SessionInfo } from '../../src/metrics/admin';

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
    id: `id-${jid}`, kind: 'c2s', jid, state: jid ? 'active' : 'negotiating', authenticated: jid !== null, remoteAddress: '::ffff:192.0.2.1', remotePort: 40001,
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
