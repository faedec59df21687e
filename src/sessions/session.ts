import type { Element } from 'ltx';
import type { ConnectionKind, WatchdogPolicy } from '../config/types.js';
import type { Connection } from '../transport/connection.js';
import { streamError, type StreamErrorCondition } from '../xmpp/errors.js';
import type { Jid } from '../xmpp/jid.js';
import type { WatchState } from '../watchdog/decide.js';
import { request, type StreamManagement } from '../sm/stream-management.js';
import type { CloseReason, LossReason } from './close-reason.js';
import { CsiBuffer } from './csi.js';
import { SinceLastHeard, type Ledger, type Unconfirmed } from './ledger.js';
import { ResourceState } from './resource-state.js';
import { randomId } from '../xmpp/random-id.js';
import type { WatchTable, Watched } from './watch-table.js';

export type SessionState = 'negotiating' | 'active' | 'detached' | 'closing' | 'closed';

/** What a session needs from the server around it; keeps Session free of imports from every layer. */
export interface SessionHost {
  /** Called once, when the session has ended, with what its peer had not confirmed. */
  sessionClosed(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void;
  /** The vigil_stanzas_total child for a kind and direction, looked up once per session, not per stanza. */
  stanzaCounter(kind: ConnectionKind, direction: 'in' | 'out'): { inc(): void };
  /** The session lost its connection and waits to be resumed (stream management). */
  sessionHibernated(session: Session, reason: LossReason): void;
}

export interface CloseDetail {
  condition?: StreamErrorCondition;
  text?: string;
  /** Send the peer to another endpoint where the framing can say so (RFC 7395 <close see-other-uri/>). */
  seeOtherUri?: string;
}

/**
 * "No time" for a field that later holds a Date.now(). V8 gives a field the representation of the first value
 * stored: after a small-integer 0, the first time stored (a double) would deprecate Session's hidden class, so
 * every live session migrates, and the watchdog's optimised code is thrown away, at the first probe or close.
 * -0 is a double, and is 0 in every comparison and sum.
 */
const NO_TIME = -0;

const CONDITION_FOR: Partial<Record<CloseReason, StreamErrorCondition>> = {
  idle: 'connection-timeout',
  'probe-timeout': 'connection-timeout',
  unauthenticated: 'connection-timeout',
  'write-stall': 'connection-timeout',
  'send-queue-overflow': 'policy-violation',
  conflict: 'conflict',
  shutdown: 'system-shutdown',
  'policy-violation': 'policy-violation',
  'not-authorized': 'not-authorized',
  'ack-queue-overflow': 'policy-violation',
  error: 'internal-server-error',
};

/**
 * One peer from accept to close: who it is (a client's JID, a server's domain), the proof that it is alive,
 * the probe in flight, and what it has not confirmed. It usually rides on one Connection, but can detach
 * from it and be attached to another (stream resumption). close() is the only way out, whoever calls it,
 * so every close is counted once with one reason.
 */
export class Session implements WatchState {
  readonly id = randomId(9);
  readonly acceptedAt = Date.now();
  state: SessionState = 'negotiating';
  /** This session's place in the registry's WatchTable, while it is registered. */
  watchTable: WatchTable<Watched> | undefined;
  watchSlot = -1;
  closeReason: CloseReason | undefined;
  closedAt = NO_TIME;

  /** Identity: a client's account once authenticated, its full JID once bound; a server peer's domain. */
  authenticated = false;
  username: string | undefined;
  bareJid: string | undefined;
  jid: Jid | undefined;
  domain: string | undefined;
  /** RFC 6121 state of a bound client resource. */
  readonly im = new ResourceState();

  /**
   * The last proof that the peer is alive: bytes on its own connection, a reply matched by id through the
   * router (a server's answer comes on another stream), later a stream-management ack.
   */
  lastAliveAt: number;
  /** Probe in flight: when it was sent (0: none). */
  probeSentAt = NO_TIME;
  /** The XEP-0199 ping in flight on this session's own stream, and how many stanzas were written before it. */
  private pingId: string | undefined;
  private pingUpTo = 0;

  /** XEP-0198 state once the client enabled it. */
  sm: StreamManagement | undefined;
  /** While hibernated: when it ends unless resumed (0: not hibernated). */
  hibernatedUntil = NO_TIME;
  /** While hibernated and still shown available: when contacts are told it is gone (0: nothing to hide). */
  presenceGraceUntil = NO_TIME;
  /** XEP-0352: while the client is inactive, the presence held back from it. */
  csi: CsiBuffer | undefined;

  stanzasIn: { inc(): void };
  private stanzasOut: { inc(): void };
  /** Bytes of one oversized stanza still waiting, allowed beyond maxSendQueue (see send()). */
  private oversized = 0;
  private bytesInBefore = 0;
  private bytesOutBefore = 0;

  constructor(
    public kind: ConnectionKind,
    public conn: Connection | undefined,
    public policy: WatchdogPolicy,
    private readonly host: SessionHost,
    private ledger: Ledger = new SinceLastHeard(),
  ) {
    this.lastAliveAt = this.acceptedAt;
    this.stanzasIn = host.stanzaCounter(kind, 'in');
    this.stanzasOut = host.stanzaCounter(kind, 'out');
  }

  get fullJid(): string | undefined {
    return this.jid?.full;
  }

  get resource(): string | undefined {
    return this.jid?.resource;
  }

  /** Bound and not ending: stanzas may be delivered to it. */
  get isBound(): boolean {
    return (this.state === 'active' || this.state === 'detached') && this.jid !== undefined;
  }

  // WatchState, read by the watchdog on every tick.
  get bound(): boolean {
    return this.jid !== undefined || this.domain !== undefined;
  }
  get lastSentAt(): number {
    return this.conn?.lastSentAt ?? this.lastAliveAt;
  }
  get pendingBytes(): number {
    return this.conn?.pendingBytes ?? 0;
  }
  /** What is left of one oversized stanza, allowed beyond maxSendQueue until the peer has read it. */
  get sendAllowance(): number {
    return Math.min(this.oversized, this.pendingBytes);
  }
  get lastWriteProgressAt(): number {
    return this.conn?.lastWriteProgressAt ?? this.lastAliveAt;
  }
  get acksProbes(): boolean {
    return this.sm !== undefined;
  }
  /** What answers a probe: with stream management only an ack, otherwise any proof of life. */
  get lastAnswerAt(): number {
    return this.sm ? this.sm.lastAckAt : this.lastAliveAt;
  }
  /**
   * When a probe is due for what waits unconfirmed: with stream management, an ack once the oldest unacked
   * stanza has waited sm.ackAfter; to a peer server, a ping once one has waited s2s.confirmAfter (0: none due).
   */
  get ackDueAt(): number {
    const sm = this.sm;
    if (sm) return sm.queue.length > 0 ? sm.queue.oldestAt + sm.settings.ackAfter : 0;
    return this.ledger.dueAt ?? 0;
  }

  /** Stanzas written so far, and how many of them the peer has confirmed (see Ledger). */
  get writtenCount(): number {
    return this.ledger.writtenCount;
  }
  get confirmedCount(): number {
    return this.ledger.confirmedCount;
  }

  get remoteAddress(): string {
    return this.conn?.transport.remoteAddress ?? '';
  }
  get remotePort(): number {
    return this.conn?.transport.remotePort ?? 0;
  }
  get bytesIn(): number {
    return this.bytesInBefore + (this.conn?.bytesIn ?? 0);
  }
  get bytesOut(): number {
    return this.bytesOutBefore + (this.conn?.bytesOut ?? 0);
  }

  /**
   * Something changed that may bring the watchdog's verdict sooner than it last reckoned (see quietUntil()):
   * it looks again at its next tick.
   */
  wake(): void {
    this.watchAt = 0;
  }

  /**
   * The watchdog need not look at this session before then (ms; 0: at its next tick), kept in the registry's
   * WatchTable. See quietUntil() for what may move it and wake() for the rest.
   */
  get watchAt(): number {
    const table = this.watchTable;
    return table ? table.at[this.watchSlot] : 0;
  }

  set watchAt(at: number) {
    const table = this.watchTable;
    if (table) table.at[this.watchSlot] = at;
  }

  /** Proof of life from any source. */
  alive(now: number): void {
    if (now > this.lastAliveAt) this.lastAliveAt = now;
  }

  /** The peer answered a probe sent when `upTo` stanzas had been written: alive, and it read all of them. */
  answered(upTo: number, now: number): void {
    this.alive(now);
    this.ledger.confirm?.(upTo);
  }

  /** A ping is on its way to the peer, after `upTo` stanzas: its reply comes back on this session's stream. */
  expectPing(id: string, upTo: number): void {
    this.pingId = id;
    this.pingUpTo = upTo;
  }

  /**
   * Whether an iq from the peer answers our ping (a result or an error with its id, to the server): then it
   * proves everything written before the ping read, and needs no routing.
   */
  answersPing(iq: Element, domain: string, now: number): boolean {
    const { id, type, to } = iq.attrs as Record<string, string | undefined>;
    if (this.pingId === undefined || id !== this.pingId || (type !== 'result' && type !== 'error') || (to !== undefined && to !== domain)) return false;
    this.pingId = undefined;
    this.answered(this.pingUpTo, now);
    return true;
  }

  /** The watchdog's ping: to the peer now, outside the ledger (it is not the peer's to receive later) and any CSI hold. */
  ping(id: string, from: string, to: string): void {
    const conn = this.conn;
    if (this.state === 'closing' || this.state === 'closed' || !conn) return;
    this.stanzasOut.inc();
    const before = conn.pendingBytes;
    conn.ping(id, from, to);
    this.enforceSendQueue(conn, before);
  }

  /** Bytes from the peer on this session's own connection. */
  received(now: number): void {
    this.alive(now);
    this.ledger.heard();
  }

  send(stanza: Element): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    // While hibernated, presence is held as for an inactive client: the latest per contact, outside the
    // unacked queue, so a busy roster cannot fill sm.maxQueue before the phone is back.
    if (this.hibernatedUntil > 0 && stanza.name === 'presence') this.csi ??= new CsiBuffer();
    if (this.csi) {
      if (this.csi.hold(stanza)) return;
      if (this.csi.held > 0) for (const presence of this.csi.release()) this.write(presence);
    }
    this.write(stanza);
  }

  /** The client enabled stream management: from now on its acks are the ledger. */
  enableSm(sm: StreamManagement): void {
    this.sm = sm;
    this.ledger = sm.queue;
  }

  /** Ask for an ack unless one is outstanding; an unanswered request is the watchdog's probe. */
  requestAck(now: number): void {
    const sm = this.sm;
    if (!sm || !this.conn || (this.probeSentAt > 0 && this.lastAnswerAt < this.probeSentAt)) return;
    this.probeSentAt = now;
    sm.sinceRequest = 0;
    this.conn.send(request());
  }

  private write(stanza: Element): void {
    const now = Date.now();
    this.ledger.written(stanza, now);
    this.wake(); // an ack or a confirmation may now be due, even with no connection to write on
    const sm = this.sm;
    if (sm && sm.queue.length > sm.settings.maxQueue) {
      this.close('ack-queue-overflow', { text: `ack-queue-overflow: more than ${sm.settings.maxQueue} stanzas unacked` });
      return;
    }
    if (!this.conn) return;
    this.transmit(stanza);
    if (sm && ++sm.sinceRequest >= sm.settings.ackEvery) this.requestAck(now);
  }

  private transmit(stanza: Element): void {
    const conn = this.conn!;
    this.stanzasOut.inc();
    const before = conn.pendingBytes;
    conn.send(stanza);
    this.enforceSendQueue(conn, before);
  }

  private enforceSendQueue(conn: Connection, before: number): void {
    // Bounded as it is written, not at the next tick: one turn of the event loop can queue gigabytes. One
    // stanza larger than the whole queue (a big roster) may start on a drained queue; what is left of it is
    // allowed on top of maxSendQueue until it has been read, and everything else counts.
    const pending = conn.pendingBytes;
    this.oversized = Math.min(this.oversized, before);
    if (before === 0 && pending > this.policy.maxSendQueue) this.oversized = pending;
    if (pending > this.policy.maxSendQueue + this.oversized) {
      this.close('send-queue-overflow', { text: `send-queue-overflow: ${pending} bytes waiting, more than ${this.policy.maxSendQueue}` });
    }
  }

  /** Resolves when the peer has taken most of what waits for it; at once while detached. */
  drained(): Promise<void> {
    return this.conn ? this.conn.drained() : Promise.resolve();
  }

  /** The framing's keepalive: traffic for NATs and proxies that the peer's XMPP layer ignores. */
  keepalive(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.conn?.keepalive();
  }

  /** Leave the connection (gone, or about to be) but stay, for a resume to attach another one. */
  detach(): Connection | undefined {
    const conn = this.conn;
    if (!conn || (this.state !== 'active' && this.state !== 'negotiating')) return undefined;
    this.retire(conn);
    this.state = 'detached';
    return conn;
  }

  /** Ride on another connection from now on (a resumed stream). */
  attach(conn: Connection): void {
    if (this.state !== 'detached') throw new Error(`cannot attach a ${this.state} session`);
    this.conn = conn;
    this.state = 'active';
    this.hibernatedUntil = 0;
    this.presenceGraceUntil = 0;
    this.probeSentAt = 0;
    this.wake();
    this.alive(conn.lastReceivedAt);
  }

  /**
   * The connection is lost without a clean close: the peer vanished, reset, stopped answering or reading.
   * A resumable session hibernates, waiting for its client to resume it on a new connection; any other
   * closes. A connection still open gets the stream error that says why, as on a close.
   */
  lost(reason: LossReason, detail: CloseDetail = {}): void {
    const sm = this.sm;
    if (!sm?.resumable || this.state !== 'active' || !this.jid) return this.close(reason, detail);
    const now = Date.now();
    const conn = this.detach();
    const condition = detail.condition ?? CONDITION_FOR[reason];
    if (conn && !conn.closed) conn.close(condition ? streamError(condition, detail.text) : undefined);
    this.hibernatedUntil = now + sm.resumeTimeout;
    this.presenceGraceUntil = this.im.available ? now + sm.settings.presenceGrace : 0;
    this.probeSentAt = 0;
    this.wake();
    this.host.sessionHibernated(this, reason);
  }

  /**
   * A resume: leave whatever connection is still thought alive (the client knows better), take the new
   * one, take the client's ack, and re-send the rest of the queue in order, each stanza once more.
   */
  resume(conn: Connection, h: number, kind: ConnectionKind, policy: WatchdogPolicy): number {
    const sm = this.sm!;
    // A session may come back over another transport (TCP, WebSocket): it is watched as what it rides on now.
    if (kind !== this.kind) {
      this.kind = kind;
      this.stanzasIn = this.host.stanzaCounter(kind, 'in');
      this.stanzasOut = this.host.stanzaCounter(kind, 'out');
    }
    this.policy = policy;
    const old = this.detach();
    if (old && !old.closed) old.close(streamError('conflict', 'this session was resumed on another connection'));
    this.attach(conn);
    sm.queue.ack(h);
    sm.lastAckAt = Date.now();
    const rest = sm.queue.unacked();
    for (const { stanza } of rest) this.transmit(stanza);
    // A new stream starts active (XEP-0352): what an inactive client's old stream held goes out now.
    const held = this.csi?.release() ?? [];
    this.csi = undefined;
    for (const presence of held) this.send(presence);
    return rest.length;
  }

  /** The only way a session ends. Safe to call any number of times; only the first counts. */
  close(reason: CloseReason, detail: CloseDetail = {}): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.closeReason = reason;
    this.closedAt = Date.now();
    const condition = detail.condition ?? CONDITION_FOR[reason];
    if (this.conn && !this.conn.closed) this.conn.close(condition ? streamError(condition, detail.text) : undefined, detail.seeOtherUri);
    else this.state = 'closed';
    this.host.sessionClosed(this, reason, this.ledger.take());
  }

  /** The connection went away without the stream being closed: lost, unless we were closing it. */
  connectionClosed(conn: Connection): void {
    if (conn !== this.conn) return; // a connection this session already left
    if (this.state !== 'closing') this.lost('peer-closed');
    if (this.state === 'closing') this.state = 'closed';
  }

  private retire(conn: Connection): void {
    this.bytesInBefore += conn.bytesIn;
    this.bytesOutBefore += conn.bytesOut;
    this.conn = undefined;
  }
}
