import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Element } from 'ltx';
import type { CloseReason, LossReason } from '../../src/sessions/close-reason';
import type { Unconfirmed } from '../../src/sessions/ledger';
import type { Session } from '../../src/sessions/session';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';
import { Netns } from './netns';

/** Bob's numbered messages: one every SEND_EVERY ms, never more than MAX_MESSAGES (20 s of flow). */
const SEND_EVERY = 50;
const MAX_MESSAGES = 400;
/** Messages alice must have had before the link is cut: the cut comes in the middle of the flow. */
const BEFORE_CUT = 20;
/** Messages alice handles but leaves unacked just before the cut: her resume must ack them, not get them again. */
const UNACKED_AT_CUT = 5;

interface ClientEvent {
  ev: string;
  [k: string]: unknown;
}

/** The SM client running inside the namespace (sm-client.cjs): commands on its stdin, JSON events on its stdout. */
class NsClient {
  readonly events: ClientEvent[] = [];
  exited: number | null | undefined;
  private waiters: (() => void)[] = [];

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ClientEvent);
      } catch {
        this.events.push({ ev: 'garbage', line });
      }
      this.wake();
    });
    child.once('exit', (code) => {
      this.exited = code;
      this.wake();
    });
  }

  command(cmd: 'mute' | 'resume' | 'ping' | 'report' | 'close'): void {
    this.child.stdin!.write(`${cmd}\n`);
  }

  /** The first event from index `from` on that matches; fails on the client's death or after `timeout`. */
  async next(match: (e: ClientEvent) => boolean, from = 0, timeout = 10_000): Promise<ClientEvent> {
    const find = () => this.events.slice(from).find(match);
    const fatal = () => this.events.find((e) => e.ev === 'fatal');
    if (find()) return find()!;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`namespace client: timed out; events: ${JSON.stringify(this.events.slice(-10))}`)), timeout);
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (find()) return done();
        const f = fatal();
        if (f) return done(new Error(`namespace client failed: ${String(f.message)}`));
        if (this.exited !== undefined) done(new Error(`namespace client exited with ${this.exited}`));
      };
      this.waiters.push(check);
      check();
    });
    return find()!;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isPresence = (from: string, type: string | undefined) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;

describe('chaos: a stream-management client whose link is cut while messages flow', () => {
  const ns = new Netns(process.pid + 7);
  let srv: TestServer | undefined;
  let child: ChildProcess | undefined;
  let bob: TestClient | undefined;

  afterAll(async () => {
    bob?.destroy();
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    ns.destroy();
    await srv?.stop();
  });

  it('hibernates on the unanswered <r/>, hides it after the grace, and resumes through the restored link with nothing lost or doubled', async () => {
    const why = Netns.unavailable();
    if (why) throw new Error(why);
    ns.create();
    srv = await startServer({
      listeners: { c2s: { host: '0.0.0.0' } },
      watchdog: { interval: '100ms', c2s: { probeAfter: '2s', probeTimeout: '2s', closeTimeout: '500ms' } },
      sm: { presenceGrace: '1s', resumeTimeout: '60s', ackEvery: 1 },
    } as never);
    const s = srv;
    const [[a], [b, bJid]] = await s.freshUsers('alice', 'bob');
    await s.befriend(a, b);

    const hibernations: { jid: string; reason: LossReason; confirmed: number }[] = [];
    const hibernated = s.server.sessionHibernated.bind(s.server);
    s.server.sessionHibernated = (session: Session, reason: LossReason) => {
      hibernations.push({ jid: session.fullJid ?? '', reason, confirmed: session.sm?.queue.confirmedCount ?? -1 });
      hibernated(session, reason);
    };
    const closes: { jid: string; reason: CloseReason }[] = [];
    const closed = s.server.sessionClosed.bind(s.server);
    s.server.sessionClosed = (session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]) => {
      closes.push({ jid: session.fullJid ?? '', reason });
      closed(session, reason, unconfirmed);
    };

    bob = await TestClient.login(s.port, b, 'secret', 'desk');
    const contact = bob;
    child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(__dirname, 'sm-client.cjs'), ns.hostIp, String(s.port), a, 'secret', 'phone'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const alice = new NsClient(child);
    const enabled = await alice.next((e) => e.ev === 'enabled');
    const full = String(enabled.jid);
    expect(full).toBe(`${a}@localhost/phone`);
    await contact.waitFor(isPresence(full, undefined));
    // What the resume does with the queue: the h it was given, what was written by then, what went out again.
    const resumes: { h: number; written: number; resent: number }[] = [];
    const aliceSession = s.server.ctx.registry.getByFullJid(full)!;
    const resume = aliceSession.resume.bind(aliceSession);
    aliceSession.resume = (conn, h, kind, policy) => {
      const written = aliceSession.sm!.queue.writtenCount;
      const resent = resume(conn, h, kind, policy);
      resumes.push({ h, written, resent });
      return resent;
    };

    // Bob talks to alice's full JID without pause, bounded in count, until told to stop.
    const sent: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 1; i <= MAX_MESSAGES && sending; i++) {
        contact.send(`<message to='${full}' type='chat' id='m${i}'><body>m${i}</body></message>`);
        sent.push(`m${i}`);
        await sleep(SEND_EVERY);
      }
    })();
    const received = async () => {
      const at = alice.events.length;
      alice.command('report');
      return (await alice.next((e) => e.ev === 'report', at)) as ClientEvent & { h: number; bodies: string[] };
    };
    await eventually(async () => (await received()).bodies.length >= BEFORE_CUT, 10_000, 100);
    expect((await received()).bodies.length).toBeGreaterThanOrEqual(BEFORE_CUT);
    // Alice goes on handling messages without acking them, then her link goes: the server holds stanzas
    // she has and stanzas she never got, and cannot tell which are which until she resumes.
    const mutedAt = alice.events.length;
    alice.command('mute');
    const muted = (await alice.next((e) => e.ev === 'muted', mutedAt)) as ClientEvent & { h: number };
    await eventually(async () => (await received()).h >= muted.h + UNACKED_AT_CUT, 5000, 20);
    ns.cut();
    const sentAtCut = sent.length;
    // At least this much: a segment that reached alice's kernel just before the cut may be read later.
    const hAtCut = (await received()).h;
    expect(hAtCut).toBeGreaterThanOrEqual(muted.h + UNACKED_AT_CUT);
    // Nothing comes back from alice: the outstanding <r/> times out, and the session hibernates instead of closing.
    await eventually(() => hibernations.length > 0, 15_000);
    expect(hibernations).toMatchObject([{ jid: full, reason: 'probe-timeout' }]);
    // The server had acks for no more than alice had when she went quiet, short of what she had at the cut.
    expect(hibernations[0].confirmed).toBeLessThanOrEqual(muted.h);
    expect(hibernations[0].confirmed).toBeLessThan(hAtCut);
    let metrics = await s.metrics();
    expect(metricValue(metrics, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' })).toBe(1);
    expect(metricValue(metrics, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(0);
    // After the grace bob sees alice's resource go, yet the session waits for its resume.
    await contact.waitFor(isPresence(full, 'unavailable'), 10_000);
    expect(s.server.ctx.registry.getByFullJid(full)?.state).toBe('detached');
    expect(closes.filter((c) => c.jid === full)).toEqual([]);
    // Messages kept coming while alice was away.
    expect(sent.length).toBeGreaterThan(sentAtCut);

    // The link is back; the old connection is dead on both ends, so alice resumes on a new one from the namespace.
    ns.exec(['ip', 'link', 'set', ns.nsIf, 'up']);
    const at = alice.events.length;
    alice.command('resume');
    const resumed = await alice.next((e) => e.ev === 'resumed' || e.ev === 'failed', at, 20_000);
    // The server has handled nothing from alice since <enabled/>: <a/> is not a stanza.
    expect(resumed).toMatchObject({ ev: 'resumed', previd: enabled.id, h: '0' });
    const resumedWith = resumed.sentH as number;
    expect(resumedWith).toBeGreaterThanOrEqual(hAtCut);
    // The resume acked what alice handled while muted and re-sent exactly the rest, in one go.
    expect(resumes).toHaveLength(1);
    expect(resumes[0].h).toBe(resumedWith);
    expect(resumes[0].h).toBeGreaterThan(muted.h);
    expect(resumes[0].resent).toBe(resumes[0].written - resumedWith);
    expect(resumes[0].resent).toBeGreaterThan(0);
    expect(s.server.ctx.registry.getByFullJid(full)?.state).toBe('active');
    // Past the grace, the resume shows alice to bob again, and alice learns bob's presence again.
    await contact.waitFor(isPresence(full, undefined), 10_000);
    await alice.next((e) => e.ev === 'presence' && e.from === `${bJid}/desk` && e.type === null, at);

    sending = false;
    await sender;
    // Everything bob sent has been routed (the server answers bob's iq after them), then has reached alice
    // (the server answers alice's iq after them).
    expect((await contact.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'")).attrs.type).toBe('result');
    await eventually(async () => (await received()).bodies.length >= sent.length, 10_000, 100);
    const pongAt = alice.events.length;
    alice.command('ping');
    expect(await alice.next((e) => e.ev === 'pong', pongAt)).toMatchObject({ type: 'result' });
    const report = await received();

    // Every message exactly once, in the order bob sent it.
    expect(report.bodies).toEqual(sent);
    expect(new Set(report.bodies).size).toBe(report.bodies.length);
    // The h alice counted is every stanza the server wrote to her session, once each.
    const session = s.server.ctx.registry.getByFullJid(full);
    expect(session?.state).toBe('active');
    expect(report.h).toBe(session?.sm?.queue.writtenCount);
    // Some of it travelled twice on the wire: what the dead link swallowed and what waited for the resume.
    metrics = await s.metrics();
    expect(metricValue(metrics, 'vigil_sm_redelivered_total')).toBe(resumes[0].resent);
    expect(metricValue(metrics, 'vigil_sm_resumes_total', { result: 'ok' })).toBe(1);
    expect(metricValue(metrics, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' })).toBe(1);
    // Nothing bounced back to bob, and the session never ended.
    expect(contact.elements.filter((el) => el.name === 'message')).toEqual([]);
    expect(closes.filter((c) => c.jid === full)).toEqual([]);
    // And alice's client never saw malformed XML or a stream error on either connection.
    expect(alice.events.filter((e) => ['parse-error', 'stream-error', 'fatal', 'unknown-command', 'garbage'].includes(e.ev))).toEqual([]);

    alice.command('close');
    await eventually(() => alice.exited !== undefined, 5000);
  }, 40_000);
});
