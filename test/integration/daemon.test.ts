import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { TestClient } from '../helpers/client';
import { Daemon, freePort, requireBuiltCli, runCli, writeConfig } from '../helpers/daemon';
import { eventually } from '../helpers/sockets';

/**
 * The `vigil` command as operators run it: a real process started from a config file, signalled with
 * SIGTERM and SIGHUP, and `vigil doctor` / `vigil sessions` run beside it.
 */

jest.setTimeout(40_000);

const PASSWORD = 'x';
const dirs: string[] = [];
const daemons: Daemon[] = [];
const clients: TestClient[] = [];

interface Setup {
  dir: string;
  file: string;
  c2s: number;
  http: number;
  config: Record<string, unknown>;
  write(extra?: Record<string, unknown>): void;
}

/** A temp dir with a config on fixed free ports (the CLI finds the server through them), and users. */
async function setup(extra: Record<string, unknown> = {}, users: string[] = []): Promise<Setup> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-daemon-'));
  dirs.push(dir);
  const [c2s, websocket, s2s, http] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const file = path.join(dir, 'vigil.yaml');
  const base = {
    domain: 'localhost',
    listeners: { c2s: { host: '127.0.0.1', port: c2s }, websocket: { host: '127.0.0.1', port: websocket }, s2s: { host: '127.0.0.1', port: s2s }, http: { host: '127.0.0.1', port: http } },
    storage: { path: path.join(dir, 'vigil.sqlite') },
    c2s: { allowPlainWithoutTls: true, scramIterations: 4096 },
    limits: { maxSessions: 100 },
    shutdown: { timeout: '5s' },
    log: { level: 'info' },
  };
  const s: Setup = {
    dir, file, c2s, http, config: base,
    write(more = {}) {
      writeConfig(file, merge(base, { ...extra, ...more }));
    },
  };
  s.write();
  for (const user of users) {
    const r = await runCli(['user', 'add', `${user}@localhost`, '--password', PASSWORD, '--config', file]);
    expect({ user, code: r.code, err: r.err }).toEqual({ user, code: 0, err: '' });
  }
  return s;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = v && typeof v === 'object' && old && typeof old === 'object' ? merge(old as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

async function start(s: Setup): Promise<Daemon> {
  const d = await Daemon.start(s.file);
  daemons.push(d);
  return d;
}

async function login(s: Setup, user: string): Promise<TestClient> {
  const c = await TestClient.login(s.c2s, user, PASSWORD);
  clients.push(c);
  return c;
}

/** A round trip with the server: everything sent before it has been read by the server. */
async function roundTrip(c: TestClient): Promise<void> {
  const reply = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
  expect(reply.attrs.type).toBe('result');
}

const sessionsClosed = (d: Daemon) => d.events('session.closed');

beforeAll(() => requireBuiltCli());

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('SIGTERM', () => {
  it('sends <system-shutdown/> to every stream, exits 0, and the messages in flight wait in offline storage', async () => {
    const s = await setup({}, ['alice', 'silent']);
    const daemon = await start(s);
    const silent = await login(s, 'silent');
    await roundTrip(silent); // its last bytes: from here on it only receives
    const alice = await login(s, 'alice');
    const bodies = ['first', 'second', 'third'];
    for (const body of bodies) alice.send(`<message to='silent@localhost' type='chat' id='m-${body}'><body>${body}</body></message>`);
    for (const body of bodies) await silent.waitFor((el) => el.name === 'message' && el.getChildText('body') === body);

    daemon.signal('SIGTERM');
    expect(await alice.streamError()).toMatchObject({ condition: 'system-shutdown' });
    expect(await silent.streamError()).toMatchObject({ condition: 'system-shutdown' });
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    await Promise.all([alice.closed, silent.closed]);
    expect(sessionsClosed(daemon).map((l) => [String(l.jid).split('/')[0], l.reason, l.unconfirmed]).sort()).toEqual([
      ['alice@localhost', 'shutdown', 0],
      ['silent@localhost', 'shutdown', 3],
    ]);
    expect(daemon.events('server.stopped')).toHaveLength(1);

    const again = await start(s);
    const back = await login(s, 'silent'); // initial presence asks for the offline messages
    for (const body of bodies) {
      const msg = await back.waitFor((el) => el.name === 'message' && el.getChildText('body') === body);
      expect(msg.attrs).toMatchObject({ from: expect.stringMatching(/^alice@localhost\//), type: 'chat' });
      expect(msg.getChild('delay', 'urn:xmpp:delay')).toBeDefined();
    }
    await back.close();
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('SIGHUP', () => {
  const answering = (c: TestClient) => c.answerPings();

  it('applies a changed timeout to live sessions without dropping any; a bad file is rejected and the old config stays', async () => {
    const s = await setup({ watchdog: { interval: '100ms', c2s: { probeAfter: '1h', probeTimeout: '1h' } } }, ['a', 'b', 'c', 'd']);
    const daemon = await start(s);
    const a = await login(s, 'a');
    const b = await login(s, 'b');
    const c = await login(s, 'c'); // never answers a ping
    const pingsA = answering(a);
    const pingsB = answering(b);
    await Promise.all([a, b, c].map(roundTrip));

    s.write({ watchdog: { c2s: { probeAfter: '300ms', probeTimeout: '300ms' } } });
    daemon.signal('SIGHUP');
    await daemon.waitForLog((l) => l.event === 'config.reloaded');
    // The reload itself closed nothing: the same three sessions are there.
    const listed = await runCli(['sessions', '--json', '--config', s.file]);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as { count: number }).count).toBe(3);
    expect(sessionsClosed(daemon)).toEqual([]);

    // The same sessions are now probed: a and b answer and stay, c does not and is closed for it.
    expect(await c.streamError()).toMatchObject({ condition: 'connection-timeout', text: expect.stringContaining('probe-timeout') });
    await daemon.waitForLog((l) => l.event === 'session.closed' && String(l.jid).startsWith('c@'));
    await c.closed; // fully closed, so afterEach's destroy() (a reset) has nothing half-closed to trip on
    await eventually(() => pingsA.count >= 3 && pingsB.count >= 3, 10_000);
    expect([pingsA.count >= 3, pingsB.count >= 3]).toEqual([true, true]);
    expect([a.socketClosed, b.socketClosed]).toEqual([false, false]);
    expect(sessionsClosed(daemon).map((l) => [String(l.jid).split('/')[0], l.reason])).toEqual([['c@localhost', 'probe-timeout']]);

    // A file that does not validate: rejected with a log line, the server keeps serving with the old config.
    writeFileSync(s.file, 'watchdog:\n  c2s:\n    probeAfter: soon\n');
    daemon.signal('SIGHUP');
    const rejected = await daemon.waitForLog((l) => l.event === 'config.reload-rejected');
    expect(JSON.stringify(rejected.problems)).toContain('watchdog.c2s.probeAfter');
    expect(daemon.events('config.reloaded')).toHaveLength(1);
    const before = pingsA.count;
    const d = await login(s, 'd'); // a new session gets the 300 ms policy that stays in force
    expect(await d.streamError()).toMatchObject({ condition: 'connection-timeout', text: expect.stringContaining('probe-timeout') });
    await daemon.waitForLog((l) => l.event === 'session.closed' && String(l.jid).startsWith('d@'));
    await d.closed;
    await eventually(() => pingsA.count >= before + 2, 10_000);
    expect(pingsA.count).toBeGreaterThanOrEqual(before + 2);
    expect([a.socketClosed, b.socketClosed]).toEqual([false, false]);
    expect(sessionsClosed(daemon).map((l) => l.reason)).toEqual(['probe-timeout', 'probe-timeout']);
    pingsA.stop();
    pingsB.stop();
  });
});

describe('vigil doctor', () => {
  const errors = (lines: string[]) => lines.filter((l) => l.startsWith('error'));
  const doctor = (s: Setup, shell = 'ulimit -n 4096 2>/dev/null || true') => runCli(['doctor', '--config', s.file], { shell });

  async function pems(domain: string, notBeforeDate: Date, notAfterDate: Date): Promise<{ cert: string; key: string }> {
    const p = await generate([{ name: 'commonName', value: domain }], {
      keySize: 2048, algorithm: 'sha256', notBeforeDate, notAfterDate,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: domain }] }],
    });
    return { cert: p.cert, key: p.private };
  }

  async function withCert(domain: string, notBefore: Date, notAfter: Date): Promise<Setup> {
    const s = await setup();
    const { cert, key } = await pems(domain, notBefore, notAfter);
    writeFileSync(path.join(s.dir, 'cert.pem'), cert);
    writeFileSync(path.join(s.dir, 'key.pem'), key);
    s.write({ tls: { cert: path.join(s.dir, 'cert.pem'), key: path.join(s.dir, 'key.pem') } });
    return s;
  }

  const DAY = 86_400_000;

  it('passes a good setup: exit 0, no error line, every line ok / advice / error', async () => {
    const s = await setup();
    const r = await doctor(s);
    expect({ code: r.code, errors: errors(r.lines), err: r.err }).toEqual({ code: 0, errors: [], err: '' });
    for (const line of r.lines) expect(line).toMatch(/^(ok|advice|error) +\S/);
    expect(r.lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^ok +config .*vigil\.yaml: loads/),
      expect.stringMatching(/^ok +tls: .*generates a self-signed one/),
      expect.stringMatching(new RegExp(`^ok +listeners.c2s: 127.0.0.1:${s.c2s} is free`)),
      expect.stringMatching(new RegExp(`^ok +listeners.http: 127.0.0.1:${s.http} is free`)),
      expect.stringMatching(/^ok +file descriptors: /),
      expect.stringMatching(/(ok|advice) +kernel: net.ipv4.tcp_retries2 = \d+/),
    ]));
  });

  it('with the server running: its ports are ours, its certificate and sockets are checked', async () => {
    const s = await setup({}, ['alice']);
    const daemon = await start(s);
    await login(s, 'alice');
    const r = await doctor(s);
    expect({ code: r.code, errors: errors(r.lines) }).toEqual({ code: 0, errors: [] });
    expect(r.lines).toEqual(expect.arrayContaining([
      `ok     listeners.c2s: 127.0.0.1:${s.c2s} is held by the running Vigil (pid ${daemon.pid})`,
      `ok     listeners.http: 127.0.0.1:${s.http} is held by the running Vigil (pid ${daemon.pid})`,
      expect.stringMatching(new RegExp(`^ok +file descriptors: the running server \\(pid ${daemon.pid}\\)`)),
      expect.stringMatching(/^ok +generated certificate .*localhost.crt: names localhost/),
      expect.stringMatching(new RegExp(`^ok +sockets on :${s.c2s}: .*\\b1 ESTAB\\b`)),
    ]));
  });

  it('an expired certificate is an error that says so, exit 1', async () => {
    const s = await withCert('localhost', new Date(Date.now() - 400 * DAY), new Date(Date.now() - DAY));
    const r = await doctor(s);
    expect(r.code).toBe(1);
    expect(errors(r.lines)).toEqual([expect.stringMatching(/^error +tls.cert .*cert.pem: expired on .*: install a certificate for localhost in tls.cert and tls.key$/)]);
  });

  it('a certificate expiring within 14 days is an error too', async () => {
    const s = await withCert('localhost', new Date(Date.now() - DAY), new Date(Date.now() + 5 * DAY + 3_600_000));
    const r = await doctor(s);
    expect(r.code).toBe(1);
    expect(errors(r.lines)).toEqual([expect.stringMatching(/^error +tls.cert .*: expires in 5 days .*renew it now/)]);
  });

  it('a certificate for another domain is an error naming both, exit 1', async () => {
    const s = await withCert('example.org', new Date(Date.now() - DAY), new Date(Date.now() + 365 * DAY));
    const r = await doctor(s);
    expect(r.code).toBe(1);
    expect(errors(r.lines)).toEqual([expect.stringMatching(/^error +tls.cert .*: does not name the domain localhost \(subjectAltName DNS:example.org, CN example.org\)/)]);
  });

  it('a file-descriptor limit below limits.maxSessions is an error with the fix, exit 1', async () => {
    const s = await setup({ limits: { maxSessions: 100000 } });
    const r = await doctor(s, 'ulimit -n 1024');
    expect(r.code).toBe(1);
    expect(errors(r.lines)).toEqual([
      expect.stringMatching(/^error +file descriptors: this shell .* may open only 1024, below limits.maxSessions 100000 \+ 1024 = 101024; .*ulimit -n 101024.*LimitNOFILE/),
    ]);
  });

  it('a port held by another program is an error, exit 1', async () => {
    const s = await setup();
    const squatter: NetServer = createServer();
    await new Promise<void>((resolve) => squatter.listen({ port: s.c2s, host: '127.0.0.1' }, resolve));
    try {
      const r = await doctor(s);
      expect(r.code).toBe(1);
      expect(errors(r.lines)).toEqual([expect.stringMatching(new RegExp(`^error +listeners.c2s: 127.0.0.1:${s.c2s} is in use by another process: stop it .* or set listeners.c2s.port`))]);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('a config that does not load is an error naming the key, and nothing else is checked', async () => {
    const s = await setup();
    writeFileSync(s.file, 'watchdog:\n  c2s:\n    probeAfter: soon\n');
    const r = await doctor(s);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/^error +config .*vigil.yaml: watchdog.c2s.probeAfter: .*vigil config check/)]);
  });
});

describe('vigil sessions', () => {
  interface Listed {
    count: number;
    sessions: { jid: string | null; kind: string; remoteAddress: string; remotePort: number; idleSeconds: number; probePendingSeconds: number | null; sendQueueBytes: number; state: string }[];
  }

  it('lists what is connected: JID, kind, remote address, idle, probe, queue, state', async () => {
    const s = await setup({}, ['alice', 'bob']);
    await start(s);
    const bob = await login(s, 'bob');
    const alice = await login(s, 'alice');
    await Promise.all([alice, bob].map(roundTrip));

    const table = await runCli(['sessions', '--config', s.file]);
    expect({ code: table.code, err: table.err }).toEqual({ code: 0, err: '' });
    expect(table.lines[0].split(/\s+/)).toEqual(['JID', 'KIND', 'REMOTE', 'IDLE', 'PROBE', 'QUEUE', 'STATE']);
    for (const c of [alice, bob]) {
      const row = table.lines.find((l) => l.startsWith(c.jid));
      expect(row?.split(/\s+/)).toEqual([c.jid, 'c2s', `127.0.0.1:${c.localPort}`, expect.stringMatching(/^\d+\.\d+s$/), 'none', '0B', 'active']);
    }
    expect(table.lines.at(-1)).toBe('2 sessions');

    const byJid = await runCli(['sessions', '--sort', 'jid', '--json', '--config', s.file]);
    const listed = JSON.parse(byJid.out) as Listed;
    expect(listed.count).toBe(2);
    expect(listed.sessions.map((x) => [x.jid, x.kind, x.remotePort, x.state, x.probePendingSeconds, x.sendQueueBytes])).toEqual([
      [alice.jid, 'c2s', alice.localPort, 'active', null, 0],
      [bob.jid, 'c2s', bob.localPort, 'active', null, 0],
    ]);
  });

  it('with admin.token set, the endpoint wants exactly that bearer token, and the command sends it', async () => {
    const s = await setup({}, ['alice']);
    const daemon = await start(s);
    await login(s, 'alice');
    const url = `http://127.0.0.1:${s.http}/admin/sessions`;
    expect((await fetch(url)).status).toBe(200); // loopback, no token configured

    s.write({ admin: { token: 'right-token' } });
    daemon.signal('SIGHUP');
    await daemon.waitForLog((l) => l.event === 'config.reloaded');
    expect((await fetch(url)).status).toBe(403);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-token' } })).status).toBe(403);
    const right = await fetch(url, { headers: { authorization: 'Bearer right-token' } });
    expect(right.status).toBe(200);
    expect(((await right.json()) as Listed).sessions.map((x) => x.jid?.split('/')[0])).toEqual(['alice@localhost']);

    expect(await runCli(['sessions', '--config', s.file])).toMatchObject({ code: 0, out: expect.stringContaining('alice@localhost/') });
    const wrong = path.join(s.dir, 'wrong.yaml');
    writeConfig(wrong, merge(s.config, { admin: { token: 'wrong-token' } }));
    expect(await runCli(['sessions', '--config', wrong])).toMatchObject({ code: 1, err: expect.stringContaining('refused the request (403)') });
  });

  it('says so when no server runs', async () => {
    const s = await setup();
    const r = await runCli(['sessions', '--config', s.file]);
    expect(r).toMatchObject({ code: 1, err: expect.stringContaining(`no Vigil answers on http://127.0.0.1:${s.http}/admin/sessions`) });
  });
});
