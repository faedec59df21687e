import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Element } from 'ltx';
import type { ConnectionKind } from '../config/types.js';
import type { Context } from '../context.js';
import type { Origin } from '../router/origin.js';
import type { CloseReason } from '../sessions/close-reason.js';
import type { Unconfirmed } from '../sessions/ledger.js';
import type { Session, SessionHost } from '../sessions/session.js';
import type { Connection } from '../transport/connection.js';
import { TcpTransport } from '../transport/tcp.js';
import type { Transport } from '../transport/transport.js';
import type { StanzaErrorCondition } from '../xmpp/errors.js';
import { parseJid, type Jid } from '../xmpp/jid.js';
import { domainSet, s2sTls, type S2sTls } from './certificates.js';
import { dialbackElement } from './dialback.js';
import { S2SInStream, type S2SInHost } from './incoming.js';
import { S2SOutStream, type S2SOutHost } from './outgoing.js';
import { parseRoutes, resolveDomain, systemResolver, type ResolveDeps, type Target } from './resolve.js';

/** What federation needs from the server around it. */
export interface FederationHost extends SessionHost {
  readonly ctx: Context;
  /** Whether a new connection from this address may be served (the per-IP limits); false: it was refused. */
  admit(transport: Transport, kind: ConnectionKind): boolean;
  /** A new stream, in or out: into the registry, and kept track of until its connection is gone. */
  track(session: Session, conn: Connection, kind: ConnectionKind): void;
  /** A peer's stream to us authenticated: it no longer counts against its address's unauthenticated limit. */
  settled(session: Session): void;
  connectionGone(conn: Connection): void;
}

interface Waiting {
  stanza: Element;
  bytes: number;
  deadline: number;
}

/** One remote domain as seen from here: our stream to it, what waits for that stream, and the retry state. */
class Peer {
  stream: S2SOutStream | undefined;
  /** Resolving or connecting: no stream exists yet. */
  connecting = false;
  queue: Waiting[] = [];
  queuedBytes = 0;
  /** db:verify requests waiting for a stream to this domain's authoritative server. */
  verifies: Element[] = [];
  failures = 0;
  retryTimer: NodeJS.Timeout | undefined;
  /** The last attempt could not resolve the domain: what waits bounces remote-server-not-found. */
  unresolved = false;
  lastError = '';
  connectStartedAt = 0;

  constructor(readonly domain: string) {}

  get idle(): boolean {
    return !this.stream && !this.connecting && !this.retryTimer && this.queue.length === 0 && this.verifies.length === 0;
  }
}

/** How often stanzas that waited out s2s.queue.timeout are bounced. */
const SWEEP_MS = 1000;

/**
 * Federation: the listener for peers' streams, one outgoing stream per remote domain (opened on demand,
 * shared by every stanza to that domain), the bounded queue in front of it, retries with capped backoff,
 * and the dialback verifications that cross between incoming and outgoing streams.
 *
 * Nothing is lost when a stream dies: what it carried since the peer last proved it had read it (an
 * answered ping, see PeerLedger) is queued again and sent once more on the next connection, or bounced if
 * s2s.queue.timeout runs out first. A stanza sent again is never sent a third time: if that stream dies
 * too, it bounces. Delivery is at least once: a peer that read a stanza and died before answering the next
 * ping gets it again, since server streams carry no acks.
 */
export class Federation implements S2SInHost, S2SOutHost {
  readonly s2sTls: S2sTls | undefined;
  readonly secret: string;
  private readonly peers = new Map<string, Peer>();
  private readonly pendingVerifies = new Map<string, { resolve(valid: boolean): void; timer: NodeJS.Timeout }>();
  private readonly resent = new WeakSet<Element>();
  private listener: TcpServer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly resolver: ResolveDeps;

  constructor(private readonly host: FederationHost, certificate: { cert: string; key: string } | undefined, resolver?: ResolveDeps) {
    const { config } = host.ctx;
    this.s2sTls = certificate ? s2sTls(certificate, config.s2s.ca) : undefined;
    this.secret = config.s2s.secret || randomBytes(32).toString('hex');
    parseRoutes(config.s2s.routes); // a bad route stops the start, naming it
    this.resolver = resolver ?? systemResolver((result) => host.ctx.metrics.dnsLookups.inc({ result }));
    host.ctx.sessions.onEnded((session, reason, unconfirmed) => {
      if (session.kind === 's2sOut') this.outgoingEnded(session, reason, unconfirmed);
    });
    host.ctx.router.handleRemote((stanza, to, origin) => this.send(stanza, to, origin));
  }

  get ctx(): Context {
    return this.host.ctx;
  }

  get port(): number {
    const a = this.listener?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async listen(port: number, host: string): Promise<void> {
    const listener = createTcpServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.acceptSocket(socket));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ port, host }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  }

  /** Stop accepting and retrying; what still waits bounces (the streams themselves close with every session). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    for (const peer of this.peers.values()) {
      clearTimeout(peer.retryTimer);
      peer.retryTimer = undefined;
      this.bounceAll(peer, 'remote-server-timeout', 'this server is shutting down');
    }
    for (const [key, v] of this.pendingVerifies) {
      clearTimeout(v.timer);
      v.resolve(false);
      this.pendingVerifies.delete(key);
    }
    const listener = this.listener;
    await new Promise<void>((resolve) => (listener?.listening ? listener.close(() => resolve()) : resolve()));
  }

  // SessionHost, handed on to the server

  sessionClosed(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    this.host.sessionClosed(session, reason, unconfirmed);
  }

  stanzaCounter(kind: ConnectionKind, direction: 'in' | 'out'): { inc(): void } {
    return this.host.stanzaCounter(kind, direction);
  }

  sessionHibernated(): void {
    // Server streams do not hibernate.
  }

  connectionGone(conn: Connection): void {
    this.host.connectionGone(conn);
  }

  // Sending to other domains

  /** The router's remote slot: a stanza from here for another domain. */
  send(stanza: Element, to: Jid, origin: Origin): void {
    const from = parseJid(stanza.attrs.from ?? '');
    if (!from || from.domain !== this.ctx.config.domain) {
      // Only our own users and the server itself speak for this domain; a peer's stanza never passes through.
      this.ctx.log.debug({ event: 's2s.refused-relay', from: stanza.attrs.from, to: to.full, origin: (origin as Session).id }, 'not relaying a stanza that is not from this domain');
      return;
    }
    const peer = this.peer(to.domain);
    const stream = peer.stream;
    if (stream?.isReady && peer.queue.length === 0) return stream.session.send(stanza);
    this.enqueue(peer, stanza, Date.now() + this.ctx.config.s2s.queue.timeout);
    this.connect(peer);
  }

  private peer(domain: string): Peer {
    let peer = this.peers.get(domain);
    if (!peer) this.peers.set(domain, (peer = new Peer(domain)));
    // Only while there are peers: an idle server is not woken every second for nothing.
    if (!this.sweeper && !this.stopping) {
      this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
      this.sweeper.unref();
    }
    return peer;
  }

  private enqueue(peer: Peer, stanza: Element, deadline: number, front = false): void {
    const { maxStanzas, maxBytes } = this.ctx.config.s2s.queue;
    const bytes = Buffer.byteLength(stanza.toString());
    if (peer.queue.length >= maxStanzas || peer.queuedBytes + bytes > maxBytes) {
      return this.reject(stanza, 'resource-constraint', `too much is waiting for ${peer.domain} already`);
    }
    const waiting = { stanza, bytes, deadline };
    if (front) peer.queue.unshift(waiting);
    else peer.queue.push(waiting);
    peer.queuedBytes += bytes;
  }

  /**
   * Bounce to the sender. Presence is dropped (an error for each broadcast to a dead domain would only be
   * noise), except a subscription request, whose sender waits for an answer.
   */
  private reject(stanza: Element, condition: StanzaErrorCondition, text: string): void {
    if (stanza.name === 'presence' && stanza.attrs.type !== 'subscribe') return;
    if (stanza.attrs.type === 'error' || (stanza.name === 'iq' && stanza.attrs.type === 'result')) return;
    this.ctx.metrics.s2sBounces.inc({ reason: condition });
    this.ctx.router.bounce(stanza, condition, text);
  }

  private bounceAll(peer: Peer, condition: StanzaErrorCondition, text: string): void {
    const queue = peer.queue;
    peer.queue = [];
    peer.queuedBytes = 0;
    for (const w of queue) this.reject(w.stanza, condition, text);
  }

  private sweep(now: number): void {
    for (const peer of this.peers.values()) {
      if (peer.queue.some((w) => w.deadline <= now)) {
        const expired = peer.queue.filter((w) => w.deadline <= now);
        peer.queue = peer.queue.filter((w) => w.deadline > now);
        peer.queuedBytes = peer.queue.reduce((n, w) => n + w.bytes, 0);
        const condition = peer.unresolved ? 'remote-server-not-found' : 'remote-server-timeout';
        const text = `could not deliver to ${peer.domain} within ${Math.round(this.ctx.config.s2s.queue.timeout / 1000)} s${peer.lastError ? `: ${peer.lastError}` : ''}`;
        for (const w of expired) this.reject(w.stanza, condition, text);
      }
      if (peer.idle) this.peers.delete(peer.domain);
    }
    if (this.peers.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  // Connecting

  private connect(peer: Peer): void {
    if (this.stopping || peer.stream || peer.connecting || peer.retryTimer) return;
    peer.connecting = true;
    peer.connectStartedAt = Date.now();
    void this.open(peer).catch((err: Error) => this.failed(peer, `could not connect: ${err.message}`, false));
  }

  private async open(peer: Peer): Promise<void> {
    const { config } = this.ctx;
    const resolution = await resolveDomain(peer.domain, parseRoutes(config.s2s.routes), config.s2s.dnsTimeout, this.resolver);
    if (!resolution.ok) {
      peer.connecting = false;
      peer.unresolved = true;
      peer.lastError = resolution.text;
      // A name that does not exist will not exist in a second either: what waits is told now, not in a minute.
      if (resolution.definite) {
        this.bounceAll(peer, 'remote-server-not-found', resolution.text);
        this.dropVerifies(peer);
        return;
      }
      return this.failed(peer, resolution.text, true);
    }
    peer.unresolved = false;
    const errors: string[] = [];
    for (const target of resolution.targets) {
      if (this.stopping) return;
      try {
        const socket = await this.tcp(target, config.watchdog.s2sOut.unauthenticatedTimeout);
        peer.connecting = false;
        return this.attach(peer, socket);
      } catch (err) {
        errors.push(`${target.host}:${target.port}: ${(err as Error).message}`);
      }
    }
    this.failed(peer, `could not connect to ${errors.join('; ')}`, false);
  }

  private tcp(target: Target, timeout: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: target.host, port: target.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer within ${Math.round(timeout / 1000)} s`));
      }, timeout);
      timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private attach(peer: Peer, socket: Socket): void {
    const stream = new S2SOutStream(socket, this, peer.domain);
    peer.stream = stream;
    this.host.track(stream.session, stream.conn, 's2sOut');
    for (const el of peer.verifies.splice(0)) stream.sendVerify(el);
  }

  /** An attempt failed before a stream was ready: try again after the backoff while anything waits. */
  private failed(peer: Peer, why: string, unresolved: boolean): void {
    peer.connecting = false;
    peer.unresolved = unresolved;
    peer.lastError = why;
    peer.failures++;
    this.ctx.log.warn({ event: 's2s.connect-failed', domain: peer.domain, failures: peer.failures, why }, 'could not reach peer server');
    this.dropVerifies(peer);
    this.scheduleRetry(peer);
  }

  private scheduleRetry(peer: Peer): void {
    if (this.stopping || peer.queue.length === 0 || peer.retryTimer) return;
    const { initial, max } = this.ctx.config.s2s.retry;
    const delay = Math.min(max, initial * 2 ** Math.min(peer.failures - 1, 30));
    peer.retryTimer = setTimeout(() => {
      peer.retryTimer = undefined;
      if (peer.queue.length > 0) this.connect(peer);
    }, delay);
    peer.retryTimer.unref();
  }

  // S2SOutHost

  dialbackAllowed(domain: string): boolean {
    const { s2s } = this.ctx.config;
    return s2s.dialback || domainSet(s2s.insecureDomains).has(domain);
  }

  ready(stream: S2SOutStream): void {
    const peer = this.peers.get(stream.domain);
    if (!peer || peer.stream !== stream) return;
    peer.failures = 0;
    peer.unresolved = false;
    peer.lastError = '';
    this.ctx.metrics.s2sConnectSeconds.observe((Date.now() - peer.connectStartedAt) / 1000);
    const queue = peer.queue;
    peer.queue = [];
    peer.queuedBytes = 0;
    for (const w of queue) stream.session.send(w.stanza);
  }

  verified(domain: string, id: string, valid: boolean): void {
    const key = `${domain} ${id}`;
    const pending = this.pendingVerifies.get(key);
    if (!pending) return;
    this.pendingVerifies.delete(key);
    clearTimeout(pending.timer);
    pending.resolve(valid);
  }

  /** Our stream to a domain ended, ready or not. What it carried unconfirmed goes back in front of the queue. */
  private outgoingEnded(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    const peer = [...this.peers.values()].find((p) => p.stream?.session === session);
    if (!peer) return;
    const stream = peer.stream!;
    peer.stream = undefined;
    if (this.stopping) {
      for (const u of unconfirmed) this.reject(u.stanza, 'remote-server-timeout', 'this server is shutting down');
      return;
    }
    const deadline = Date.now() + this.ctx.config.s2s.queue.timeout;
    const again = unconfirmed.map((u) => u.stanza).filter((stanza) => {
      if (!this.resent.has(stanza)) return true;
      this.reject(stanza, 'remote-server-timeout', `${peer.domain} did not confirm it on two connections`);
      return false;
    });
    for (let i = again.length - 1; i >= 0; i--) {
      this.resent.add(again[i]);
      this.enqueue(peer, again[i], deadline, true);
    }
    if (again.length > 0) this.ctx.log.info({ event: 's2s.requeued', domain: peer.domain, stanzas: again.length, reason }, 'stanzas the peer did not confirm wait for the next connection');
    const wasReady = session.domain !== undefined;
    if (wasReady && reason === 'peer-closed') {
      // A clean close of a working stream (the peer's idle timeout): nothing failed, reconnect if anything waits.
      if (peer.queue.length > 0) this.connect(peer);
      return;
    }
    this.failed(peer, stream.failure ?? `the stream closed (${reason})`, false);
  }

  // S2SInHost

  verify(originating: string, streamId: string, key: string): Promise<boolean> {
    const { config } = this.ctx;
    return new Promise((resolve) => {
      const id = `${originating} ${streamId}`;
      this.pendingVerifies.get(id)?.resolve(false);
      const timer = setTimeout(() => this.verified(originating, streamId, false), config.watchdog.s2sOut.unauthenticatedTimeout);
      timer.unref();
      this.pendingVerifies.set(id, { resolve, timer });
      const peer = this.peer(originating);
      const el = dialbackElement('verify', { from: config.domain, to: originating, id: streamId }, key);
      if (peer.stream) return peer.stream.sendVerify(el);
      peer.verifies.push(el);
      // The peer is talking to us right now: no reason to wait out a backoff.
      clearTimeout(peer.retryTimer);
      peer.retryTimer = undefined;
      this.connect(peer);
    });
  }

  /** Verifies waiting for a stream that will not come now: each answers invalid at once. */
  private dropVerifies(peer: Peer): void {
    for (const el of peer.verifies.splice(0)) this.verified(peer.domain, el.attrs.id as string, false);
  }

  authenticated(session: Session, domain: string): void {
    this.host.settled(session);
    const peer = this.peers.get(domain);
    if (!peer) return;
    // The peer is back: the backoff starts again, and what waits for it goes now.
    peer.failures = 0;
    if (peer.retryTimer) {
      clearTimeout(peer.retryTimer);
      peer.retryTimer = undefined;
      this.connect(peer);
    }
  }

  private acceptSocket(socket: Socket): void {
    const transport = new TcpTransport(socket);
    if (this.stopping || !this.host.admit(transport, 's2sIn')) return;
    const stream = new S2SInStream(transport, this);
    this.host.track(stream.session, stream.conn, 's2sIn');
  }
}
