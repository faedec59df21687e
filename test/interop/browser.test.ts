import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import puppeteer, { type Browser, type HTTPRequest, type Page } from 'puppeteer-core';
import { freePort } from '../helpers/daemon';
import { killDrivers, runDriver, type PyRun } from '../helpers/py-driver';
import { metricValue, startServer, testTls, type TestServer } from '../helpers/server';

/**
 * Converse.js (a web client nobody here wrote) in headless Chromium, against a real Vigil: it finds the
 * WebSocket endpoint through the host-meta Vigil serves (XEP-0156), logs in, chats with a slixmpp user on
 * TCP, and then loses its network: the watchdog must notice and the contact must see it go.
 * VIGIL_BROWSER_DEBUG=1 prints the page's console.
 */

const CHROMIUM = '/usr/bin/chromium';
const SLIX = join(__dirname, 'slix_client.py');
const ROOT = resolve(__dirname, '..', '..');
const DIST = join(ROOT, 'node_modules', 'converse.js', 'dist');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const DEBUG = Boolean(process.env.VIGIL_BROWSER_DEBUG);

jest.setTimeout(60000);

// The watchdog policy under test, short. SM (Converse enables it) turns the probe into <r/> and a lost
// connection into hibernation: unavailable after presenceGrace, ended after resumeTimeout.
const PROBE_AFTER = 2000;
const PROBE_TIMEOUT = 2000;
const INTERVAL = 100;
const PRESENCE_GRACE = 1000;
const RESUME_TIMEOUT = 5000;
/** Silence → probe → no answer → lost, plus the watchdog's tick and some slack for a loaded machine. */
const LOST_WITHIN = PROBE_AFTER + PROBE_TIMEOUT + INTERVAL + 2000;

/** Bounded: rejects after ms saying what it waited for. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function until(ms: number, what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What happened when, for a failure's message. */
const timeline: string[] = [];

/** The slixmpp contact: slix_client.py with a list of actions, its JSON events collected. */
function slix(port: number, jid: string, actions: Record<string, unknown>[]): PyRun {
  return runDriver(SLIX, ['--jid', jid, '--password', 'secret', '--port', String(port), '--host', '127.0.0.1', JSON.stringify(actions)], `slixmpp ${jid}`);
}

/** The page: Converse with nothing but a JID and a password, and the dist files it loads. */
function pageServer(jid: string): HttpServer {
  const settings = {
    authentication: 'login',
    auto_login: true,
    jid,
    password: 'secret',
    discover_connection_methods: true, // no websocket_url: host-meta is the only way to find the server
    assets_path: '/dist/',
    view_mode: 'fullscreen',
    i18n: 'en',
    loglevel: DEBUG ? 'debug' : 'info',
    play_sounds: false,
    show_desktop_notifications: false,
    whitelisted_plugins: ['browser-test'],
  };
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Vigil browser test</title>
<link rel="stylesheet" href="/dist/converse.min.css"><script type="module" src="/dist/converse.min.js"></script></head>
<body class="converse-fullscreen"><script type="module">
converse.plugins.add('browser-test', { initialize() { window.__converse = this._converse; } });
converse.initialize(${JSON.stringify(settings)});
</script></body></html>`;
  const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.map': 'application/json' };
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    if (path.startsWith('/dist/')) {
      const file = normalize(join(DIST, path.slice('/dist/'.length)));
      if (file.startsWith(DIST) && existsSync(file)) {
        return void res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
      }
    }
    res.writeHead(404).end();
  });
}

let srv: TestServer | undefined;
let web: HttpServer | undefined;
let watching: NodeJS.Timeout | undefined;
let browser: Browser | undefined;
let contact: PyRun | undefined;

afterAll(async () => {
  clearInterval(watching);
  const pid = browser?.process()?.pid;
  await within(5000, 'browser.close()', browser?.close() ?? Promise.resolve()).catch(() => undefined);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // closed already
    }
  }
  await killDrivers();
  await new Promise<void>((r) => (web ? web.close(() => r()) : r()));
  await srv?.stop();
});

describe('Converse.js in headless Chromium', () => {
  it('discovers the endpoint, chats with a slixmpp contact, and is closed by the watchdog when its network is cut', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`this test needs ${CHROMIUM}: apt-get install chromium (scripts/test-deps.sh does)`);
    // Converse only takes wss:// endpoints from host-meta (it drops ws:// ones): Vigil serves wss itself.
    const pems = await testTls();
    const wssPort = await freePort();
    const publicUrl = `wss://127.0.0.1:${wssPort}/xmpp-websocket`;
    srv = await startServer(
      {
        listeners: { websocket: { port: wssPort, tls: true } },
        websocket: { publicUrl },
        watchdog: { interval: `${INTERVAL}ms`, websocket: { probeAfter: `${PROBE_AFTER}ms`, probeTimeout: `${PROBE_TIMEOUT}ms`, keepaliveAfter: '1s' } },
        sm: { presenceGrace: `${PRESENCE_GRACE}ms`, resumeTimeout: `${RESUME_TIMEOUT}ms` },
      },
      { tls: true }, // STARTTLS for slixmpp
    );
    const [[webUser, webJid], [slixUser, slixJid]] = await srv.freshUsers('conv', 'slix');
    await srv.befriend(webUser, slixUser);

    // The contact: waits for the browser's message, answers, then waits to see the browser user go.
    contact = slix(srv.port, `${slixJid}/tcp`, [
      { do: 'wait_messages', count: 1, timeout: 40 },
      { do: 'send', to: webJid, body: 'pong from slixmpp over TCP' },
      { do: 'wait_presence', from: webJid, type: 'unavailable', timeout: 40 },
      { do: 'disconnect' },
    ]);
    await until(15000, 'slixmpp ready', () => contact!.events.some((e) => e.event === 'ready') || contact!.proc.exitCode !== null);
    expect(contact.events.filter((e) => e.event === 'ready')).toHaveLength(1);

    web = pageServer(webJid);
    await new Promise<void>((r) => web!.listen(0, '127.0.0.1', r));
    const pageUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}/`;

    // Trust exactly the test certificate (its public key), not every bad one.
    const spki = createHash('sha256').update(new X509Certificate(pems.cert).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', `--ignore-certificate-errors-spki-list=${spki}`],
    });
    const page: Page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 800 });
    const consoleLines: string[] = [];
    page.on('console', (m) => {
      consoleLines.push(`${m.type()}: ${m.text()}`);
      if (DEBUG) process.stderr.write(`[page] ${m.type()}: ${m.text()}\n`);
    });
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${String(e)}`));

    // Converse asks https://<domain>/.well-known/host-meta, and the domain is 'localhost' on port 443: the
    // browser itself fetches it from Vigil's WebSocket listener instead (the page cannot tell).
    const hostMeta: { url: string; status?: number; body?: string }[] = [];
    await page.setRequestInterception(true);
    page.on('request', (req: HTTPRequest) => {
      const u = new URL(req.url());
      if (u.hostname === 'localhost' && u.pathname.startsWith('/.well-known/host-meta')) {
        hostMeta.push({ url: req.url() });
        void req.continue({ url: `https://127.0.0.1:${wssPort}${u.pathname}` });
      } else {
        void req.continue();
      }
    });
    page.on('response', (res) => {
      const seen = hostMeta.find((h) => h.url === res.url() && h.status === undefined);
      if (seen) {
        seen.status = res.status();
        void res.text().then((t) => (seen.body = t), () => undefined);
      }
    });

    const failure = () => `\ntimeline:\n${timeline.join('\n')}\npage console:\n${consoleLines.slice(-40).join('\n')}\nslixmpp: ${JSON.stringify(contact!.events)}`;
    try {
      await page.goto(pageUrl, { waitUntil: 'load', timeout: 15000 });

      // Logged in over the discovered WebSocket: the session is on the server, and it is a WebSocket one.
      let fullJid = '';
      await until(20000, 'Converse bound a resource', () => {
        const mine = [...srv!.server.ctx.registry.getByBareJid(webJid)];
        fullJid = mine[0]?.jid?.full ?? '';
        return mine.length === 1 && mine[0].state === 'active';
      });
      const session = srv.server.ctx.registry.getByFullJid(fullJid)!;
      expect(session.kind).toBe('websocket');
      expect(hostMeta.map((h) => h.url)).toEqual(['https://localhost/.well-known/host-meta']);
      expect(hostMeta[0].status).toBe(200);
      expect(hostMeta[0].body).toContain(`href='${publicUrl}'`);
      expect(await page.evaluate(() => (window as unknown as { __converse: { api: { settings: { get(k: string): string } } } }).__converse.api.settings.get('websocket_url'))).toBe(publicUrl);

      // Converse turned on stream management (its default): a lost connection hibernates, it is not closed.
      // The page learns it from <enabled/>, which may still be on its way after the bind: wait for it.
      await page.waitForFunction(() => (window as unknown as { __converse: { session: { get(k: string): unknown } } }).__converse.session.get('smacks_enabled') === true, { timeout: 10000 });

      // The user opens the contact from the roster, types, and presses Enter.
      const contactLink = `converse-roster-contact a.open-chat[data-jid='${slixJid}']`;
      await page.waitForSelector(contactLink, { timeout: 15000 });
      await page.click(contactLink);
      await page.waitForFunction((jid) => document.querySelector('converse-chat .chat-head')?.textContent?.includes(jid), { timeout: 10000 }, slixJid);
      const textarea = 'converse-chat textarea.chat-textarea';
      await page.waitForSelector(textarea, { visible: true, timeout: 10000 });
      await page.type(textarea, 'ping from Converse over WebSocket');
      await page.keyboard.press('Enter');

      // The reply shows in the chat.
      await page.waitForFunction(() => [...document.querySelectorAll('converse-chat .chat-msg__text')].some((el) => el.textContent?.includes('pong from slixmpp over TCP')), { timeout: 15000 });
      const shown = await page.$$eval('converse-chat .chat-msg__text', (els) => els.map((el) => el.textContent?.trim()));
      expect(shown).toEqual(['ping from Converse over WebSocket', 'pong from slixmpp over TCP']);
      const got = contact.events.filter((e) => e.event === 'message');
      expect(got).toEqual([expect.objectContaining({ from: fullJid, body: 'ping from Converse over WebSocket', type: 'chat' })]);

      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, 'browser-chat.png');
      await page.screenshot({ path: shot });
      process.stdout.write(`screenshot: ${shot}\n`);

      // Cut the page's network. Nothing is closed: the WebSocket stops carrying anything to or from the page.
      // Chromium's network stack may still answer ping frames (it did in about one run in four), so what
      // the watchdog waits for is the ack to its <r/>, which only the page can send.
      const before = await srv.metrics();
      const cutAt = Date.now();
      await page.emulateNetworkConditions({ offline: true, download: -1, upload: -1, latency: 0 });
      timeline.push(`${cutAt} network cut`);
      let lastState = session.state;
      let lastAlive = session.lastAliveAt;
      watching = setInterval(() => {
        if (session.state !== lastState) timeline.push(`${Date.now()} session ${(lastState = session.state)}`);
        if (session.lastAliveAt !== lastAlive) timeline.push(`${(lastAlive = session.lastAliveAt)} received from the page; probe ${session.probeSentAt}`);
      }, 20);

      // The contact sees the browser user's resource go unavailable, within the bound (plus the grace
      // when the session hibernated for a resume).
      await until(LOST_WITHIN + PRESENCE_GRACE, 'slixmpp saw unavailable', () => contact!.events.some((e) => e.event === 'presence' && e.from === fullJid && e.type === 'unavailable'));
      const unavailable = contact.events.find((e) => e.event === 'presence' && e.from === fullJid && e.type === 'unavailable')!;
      expect(Number(unavailable.t) * 1000).toBeGreaterThan(cutAt - 100); // slixmpp's clock is the same machine's
      // The probe went unanswered: the session hibernated for a resume (nothing closed it on the way), ...
      const delta = (text: string, name: string, labels: Record<string, string>) => metricValue(text, name, labels) - metricValue(before, name, labels);
      const lost = await srv.metrics();
      expect(delta(lost, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' })).toBe(1);
      expect(delta(lost, 'vigil_sm_hibernations_total', { reason: 'peer-closed' })).toBe(0);
      expect(session.state).toBe('detached');
      // ... and the server holds nothing of it once the resume window passed.
      await until(RESUME_TIMEOUT + 2000, 'session gone from the registry', () => srv!.server.ctx.registry.getByFullJid(fullJid) === undefined);
      expect(session.state).toBe('closed');
      expect(delta(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'websocket', reason: 'resume-timeout' })).toBe(1);

      const { code } = await within(10000, 'slixmpp exit', contact.exited);
      expect(code).toBe(0);
      const presences = contact.events.filter((e) => e.event === 'presence' && e.from === fullJid).map((e) => e.type);
      expect(presences[0]).toBe('available');
      expect(presences[presences.length - 1]).toBe('unavailable');
      expect(presences.filter((t) => t === 'unavailable')).toHaveLength(1);
    } catch (err) {
      timeline.push(...contact.events.filter((e) => e.event === 'presence').map((e) => `${Math.round(Number(e.t) * 1000)} slixmpp got presence ${String(e.type)} from ${String(e.from)}`));
      timeline.sort();
      const now = srv.server.ctx.registry.getByBareJid(webJid);
      timeline.push(`now: ${[...now].map((x) => `${x.jid?.full} ${x.state}`).join(', ') || 'no session'}; metrics: ${(await srv.metrics().catch(() => '')).split('\n').filter((l) => /sessions_closed_total|hibernations_total|probes_total|vigil_sm_sessions/.test(l) && !l.startsWith('#')).join(' | ')}`);
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, 'browser-failure.png');
      await within(5000, 'failure screenshot', page.screenshot({ path: shot })).catch(() => undefined);
      (err as Error).message += `\nscreenshot: ${shot}${failure()}`;
      throw err;
    }
  });
});
