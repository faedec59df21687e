import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CloseReason } from '../../src/sessions/close-reason';
import type { Unconfirmed } from '../../src/sessions/ledger';
import type { Session } from '../../src/sessions/session';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually, lingeringOnPort } from '../helpers/sockets';
import { Netns } from './netns';

const GHOSTS = 20;
const LIVE = 5;
const policy = { probeAfter: 1000, probeTimeout: 1000, interval: 100 };
/** Timers fire late on a busy machine; the bound itself is proved exactly by decide()'s fake-clock tests. */
const TIMER_SLACK = 1000;

describe('chaos: clients behind a link that is cut (no FIN, no RST)', () => {
  const ns = new Netns(process.pid);
  let srv: TestServer | undefined;
  let child: ChildProcess | undefined;
  const live: TestClient[] = [];

  afterAll(async () => {
    for (const c of live) c.destroy();
    if (child?.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    ns.destroy();
    await srv?.stop();
  });

  it('closes every dead session within probeAfter + probeTimeout + interval, spares the live ones, and leaves no socket', async () => {
    const why = Netns.unavailable();
    if (why) throw new Error(why);
    ns.create();
    srv = await startServer({
      listeners: { c2s: { host: ns.hostIp } },
      watchdog: { interval: `${policy.interval}ms`, c2s: { probeAfter: `${policy.probeAfter}ms`, probeTimeout: `${policy.probeTimeout}ms`, closeTimeout: '500ms' } },
    } as never);
    for (let i = 0; i < GHOSTS; i++) await srv.addUser(`ghost${i}`);
    for (let i = 0; i < LIVE; i++) await srv.addUser(`live${i}`);

    const closes: { jid: string; reason: CloseReason; silentMs: number }[] = [];
    const original = srv.server.sessionClosed.bind(srv.server);
    srv.server.sessionClosed = (session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]) => {
      closes.push({ jid: session.fullJid ?? '', reason, silentMs: session.closedAt - session.lastAliveAt });
      original(session, reason, unconfirmed);
    };

    child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(__dirname, '..', 'helpers', 'plain-clients.cjs'), ns.hostIp, String(srv.port), String(GHOSTS), 'ghost', 'secret'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (l) => l === `ready ${GHOSTS}` && resolve());
      child!.once('exit', (code) => reject(new Error(`namespace clients exited with ${code}`)));
    });
    for (let i = 0; i < LIVE; i++) {
      const c = await TestClient.login(srv.port, `live${i}`, 'secret', undefined, { host: ns.hostIp });
      c.answerPings();
      live.push(c);
    }
    // Before the cut the namespace clients answer pings like anyone alive: nobody is closed.
    await new Promise((r) => setTimeout(r, policy.probeAfter + policy.probeTimeout + 500));
    expect(closes).toEqual([]);

    ns.cut();
    await eventually(() => closes.length >= GHOSTS, 20_000);
    expect(closes).toHaveLength(GHOSTS);
    for (const close of closes) {
      expect(close.jid).toMatch(/^ghost\d+@localhost\//);
      expect(close.reason).toBe('probe-timeout');
      expect(close.silentMs).toBeLessThanOrEqual(policy.probeAfter + policy.probeTimeout + policy.interval + TIMER_SLACK);
    }
    expect(metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(GHOSTS);

    // The live clients on the same listener went through the same probes and are all still there.
    for (const c of live) {
      expect(c.socketClosed).toBe(false);
      expect((await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'")).attrs.type).toBe('result');
    }
    // Our FINs went into the void; the resets after closeTimeout must have cleared every socket.
    await eventually(() => lingeringOnPort(srv!.port, ns.nsIp).length === 0, 5000);
    expect(lingeringOnPort(srv.port, ns.nsIp)).toEqual([]);
    expect(srv.server.ctx.registry.size).toBe(LIVE);
  });
});
