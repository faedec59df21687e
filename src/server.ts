import './threadpool.js';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { SecureContext } from 'node:tls';
import { AuthThrottle } from './c2s/auth-throttle.js';
import { IpLimits } from './c2s/rate-limit.js';
import { C2SStream, type C2SHost, type ClientKind } from './c2s/stream.js';
import { CONNECTION_KINDS, type Config, type ConnectionKind } from './config/types.js';
import type { Context } from './context.js';
import { installCarbons } from './features/carbons.js';
import { installDisco } from './features/disco.js';
import { installOffline, type OfflineMessages } from './features/offline.js';
import { installPing } from './features/ping.js';
import { installPresence } from './features/presence.js';
import { installRegistration, type Registration } from './features/register.js';
import { installStreamManagement } from './features/stream-management.js';
import { installVersion } from './features/version.js';
import type { Logger } from './log.js';
import { adminRoutes } from './metrics/admin.js';
import { createHttpServer } from './metrics/http.js';
import { Metrics } from './metrics/metrics.js';
import { Router } from './router/router.js';
import { WATCHDOG_REASONS, type CloseReason, type LossReason } from './sessions/close-reason.js';
import { SessionEvents } from './sessions/events.js';
import type { Unconfirmed } from './sessions/ledger.js';
import { SessionRegistry } from './sessions/registry.js';
import type { Session } from './sessions/session.js';
import { Resumptions } from './sm/resumptions.js';
import { smSettings } from './sm/stream-management.js';
import type { Storage } from './storage/storage.js';
import { connectionOptions, type Connection } from './transport/connection.js';
import { TcpTransport } from './transport/tcp.js';
import type { Transport } from './transport/transport.js';
import { Watchdog } from './watchdog/watchdog.js';
import { WebSocketListener } from './websocket/listener.js';
import { Federation, type FederationHost } from './s2s/federation.js';

export interface ServerOptions {
  config: Config;
  log: Logger;
  storage: Storage;
  /** STARTTLS context; without one the server offers no STARTTLS (tests only). */
  tls?: SecureContext;
  /** Our certificate and key as PEM, for server-to-server TLS (presented both ways); without one no S2S TLS. */
  certificate?: { cert: string; key: string };
}

/**
 * The running server: listeners, registry, router, features, watchdog and metrics, wired once. It is the
 * SessionHost: every session's single close lands in sessionClosed(), which counts it and tells the
 * features that subscribed to the end of sessions.
 */
export class Server implements C2SHost, FederationHost {
  readonly ctx: Context;
  readonly tls: SecureContext | undefined;
  readonly watchdog: Watchdog;
  private readonly offline: OfflineMessages;
  readonly registration: Registration;
  readonly authThrottle: AuthThrottle;
  readonly resumptions = new Resumptions();
  private c2sListener: TcpServer | undefined;
  private websocketListener: WebSocketListener | undefined;
  /** Server-to-server streams, when s2s.enabled. */
  readonly federation: Federation | undefined;
  private httpListener: HttpServer | undefined;
  private readonly closedBytes = new Map<string, number>();
  private stopping = false;
  /** Every connection not yet gone, including those of sessions already closed and waiting out closeTimeout. */
  private readonly connections = new Set<Connection>();
  /** Per-address admission: connection rate and connections not yet bound. */
  private readonly ipLimits = new IpLimits(() => this.ctx.config);

  constructor(options: ServerOptions) {
    const registry = new SessionRegistry();
    const ctxConfig = { config: options.config };
    const metrics = new Metrics({
      sessions: () => this.sessionCounts(),
      sendQueueBytes: () => {
        let n = 0;
        for (const s of registry.all()) n += s.pendingBytes;
        return n;
      },
      bytes: () => this.byteTotals(),
      smSessions: () => {
        const n = { active: 0, hibernated: 0 };
        for (const s of registry.all()) {
          if (s.sm && s.hibernatedUntil > 0) n.hibernated++;
          else if (s.sm) n.active++;
        }
        return n;
      },
    });
    const router = new Router({ registry, log: options.log, get config() { return ctxConfig.config; } });
    this.ctx = {
      get config() { return ctxConfig.config; },
      set config(c: Config) { ctxConfig.config = c; },
      log: options.log,
      storage: options.storage,
      registry,
      sessions: new SessionEvents(),
      metrics,
      router,
    };
    this.tls = options.tls;
    installPing(this.ctx);
    installDisco(this.ctx);
    installVersion(this.ctx);
    this.offline = installOffline(this.ctx);
    const presence = installPresence(this.ctx, this.offline);
    this.registration = installRegistration(this.ctx, presence);
    installStreamManagement(this.ctx);
    installCarbons(this.ctx);
    if (options.config.s2s.enabled) this.federation = new Federation(this, options.certificate);
    this.authThrottle = new AuthThrottle(() => this.ctx.config.c2s.auth);
    this.watchdog = new Watchdog(this.ctx);
  }

  get config(): Config {
    return this.ctx.config;
  }

  /** Bound listening addresses, once started. */
  get addresses(): { c2s: number; websocket: number; s2s: number; http: number } {
    const port = (s: TcpServer | undefined) => {
      const a = s?.address();
      return a && typeof a === 'object' ? a.port : 0;
    };
    return { c2s: port(this.c2sListener), websocket: port(this.websocketListener?.listener), s2s: this.federation?.port ?? 0, http: port(this.httpListener) };
  }

  async start(): Promise<void> {
    const { config } = this;
    // Built first: a configuration it refuses (trusted proxies, wss without a certificate) stops the start
    // before anything listens.
    this.websocketListener = new WebSocketListener(this.ctx, this.tls, (transport) => this.accept(transport, 'websocket'));
    this.c2sListener = createTcpServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.acceptSocket(socket));
    await listen(this.c2sListener, config.listeners.c2s.port, config.listeners.c2s.host);
    await this.websocketListener.listen(config.listeners.websocket.port, config.listeners.websocket.host);
    await this.federation?.listen(config.listeners.s2s.port, config.listeners.s2s.host);
    this.httpListener = createHttpServer({ metrics: this.ctx.metrics, ready: () => !this.stopping && this.c2sListener?.listening === true, extra: adminRoutes(this.ctx) });
    await listen(this.httpListener, config.listeners.http.port, config.listeners.http.host);
    this.watchdog.start();
    this.ctx.log.info({ event: 'server.started', domain: config.domain, ...this.addresses }, 'Vigil is serving');
  }

  /** Apply a new configuration to everything live: policies, limits, the watchdog interval. */
  reload(config: Config): void {
    const old = this.ctx.config;
    this.ctx.config = config;
    for (const session of this.ctx.registry.all()) {
      session.policy = config.watchdog[session.kind];
      // c2s.maxStanzaSize applies to streams opened from now on: a parser keeps the limit it started with.
      session.conn?.setOptions(connectionOptions(session.policy));
      if (session.sm) session.sm.settings = smSettings(config);
      session.wake();
    }
    if (old.watchdog.interval !== config.watchdog.interval) this.watchdog.start();
    this.ctx.log.info({ event: 'config.reloaded' }, 'configuration reloaded');
  }

  /** Stop accepting, end every stream with <system-shutdown/>, keep what was unconfirmed, then close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.watchdog.stop();
    const closing = Promise.all([closeListener(this.c2sListener), this.websocketListener?.close(), this.federation?.stop()]);
    const sessions = [...this.ctx.registry.all()];
    for (const s of sessions) s.close('shutdown', { text: 'the server is shutting down' });
    await this.offline.flushed();
    // Sessions closed before the shutdown may still wait out their closeTimeout: they go too.
    await waitFor(() => [...this.connections].every((c) => c.closed), this.config.shutdown.timeout);
    for (const c of this.connections) c.reset();
    await closing;
    this.httpListener?.closeAllConnections();
    await closeListener(this.httpListener);
    this.ctx.metrics.close();
    this.ctx.log.info({ event: 'server.stopped' }, 'Vigil stopped');
  }

  // SessionHost

  stanzaCounter(kind: ConnectionKind, direction: 'in' | 'out'): { inc(): void } {
    return this.ctx.metrics.stanzaCount(kind, direction);
  }

  bound(session: Session): void {
    this.ipLimits.settled(session);
    this.ctx.log.info({ event: 'session.bound', session: session.id, jid: session.fullJid, ip: session.remoteAddress }, 'session bound');
  }

  connectionGone(conn: Connection): void {
    this.connections.delete(conn);
  }

  sessionHibernated(session: Session, reason: LossReason): void {
    const { metrics, registry, log, config } = this.ctx;
    metrics.smHibernations.inc({ reason });
    metrics.smQueueStanzas.observe(session.sm?.queue.length ?? 0);
    log.info({ event: 'sm.hibernated', session: session.id, jid: session.fullJid, reason, unacked: session.sm?.queue.length, until: new Date(session.hibernatedUntil).toISOString() }, 'session hibernated');
    // The user's oldest hibernated sessions go first, so a client that reconnects without resuming cannot pile them up.
    const waiting = [...registry.getByBareJid(session.bareJid!)].filter((s) => s.hibernatedUntil > 0).sort((a, b) => a.hibernatedUntil - b.hibernatedUntil);
    for (let i = 0; i < waiting.length - config.sm.maxHibernatedPerUser; i++) {
      waiting[i].close('hibernation-limit', { text: `more than ${config.sm.maxHibernatedPerUser} sessions of this account wait to be resumed` });
    }
  }

  resumedFrom(temporary: Session, resumed: Session): void {
    // Not a session that ended: the stream it authenticated now carries another one.
    this.ctx.registry.remove(temporary);
    this.ipLimits.settled(temporary);
    this.ctx.log.info({ event: 'sm.resuming', session: temporary.id, into: resumed.id, ip: temporary.remoteAddress }, 'stream resumes a session');
  }

  sessionClosed(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    const { metrics, registry, log } = this.ctx;
    registry.remove(session);
    this.resumptions.ended(session, session.closedAt, this.ctx.config.sm.resumeTimeout);
    this.ipLimits.settled(session);
    metrics.sessionsClosed.inc({ kind: session.kind, reason });
    if (WATCHDOG_REASONS.has(reason)) metrics.deadSessionLifetime.observe({ kind: session.kind, reason }, (session.closedAt - session.lastAliveAt) / 1000);
    this.addClosedBytes(session);
    log.info({ event: 'session.closed', session: session.id, jid: session.fullJid, kind: session.kind, reason, unconfirmed: unconfirmed.length }, 'session closed');
    this.ctx.sessions.ended(session, reason, unconfirmed);
  }

  // FederationHost

  admit(transport: Transport, kind: ConnectionKind): boolean {
    const refused = this.stopping ? 'shutdown' : this.ipLimits.admit(transport.remoteAddress, Date.now());
    if (!refused) return true;
    if (refused !== 'shutdown') this.ctx.metrics.connectionsRefused.inc({ kind, reason: refused });
    transport.reset();
    return false;
  }

  track(session: Session, conn: Connection, kind: ConnectionKind): void {
    if (kind === 's2sIn') this.ipLimits.opened(session, conn.transport.remoteAddress);
    this.connections.add(conn);
    this.ctx.registry.add(session);
    this.ctx.metrics.connectionsAccepted.inc({ kind });
  }

  settled(session: Session): void {
    this.ipLimits.settled(session);
  }

  /** A stream on any transport; the listeners call this, and tests drive it with transports of their own. */
  accept(transport: Transport, kind: ClientKind = 'c2s'): Session | undefined {
    if (this.stopping) {
      transport.reset();
      return undefined;
    }
    // Refused before any byte is read or any state is kept: what makes a flood of connections cheap to turn away.
    const refused = this.ipLimits.admit(transport.remoteAddress, Date.now());
    if (refused) {
      this.ctx.metrics.connectionsRefused.inc({ kind, reason: refused });
      transport.reset();
      return undefined;
    }
    const stream = new C2SStream(transport, this, kind);
    this.ipLimits.opened(stream.session, transport.remoteAddress);
    this.connections.add(stream.conn);
    this.ctx.registry.add(stream.session);
    this.ctx.metrics.connectionsAccepted.inc({ kind });
    return stream.session;
  }

  private acceptSocket(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.accept(new TcpTransport(socket));
  }

  private *sessionCounts(): Iterable<[string, string, number]> {
    const counts = new Map<string, number>();
    for (const s of this.ctx.registry.all()) {
      const key = `${s.kind} ${s.state}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const kind of CONNECTION_KINDS) for (const state of ['negotiating', 'active', 'detached']) if (!counts.has(`${kind} ${state}`)) counts.set(`${kind} ${state}`, 0);
    for (const [key, n] of counts) {
      const [kind, state] = key.split(' ');
      yield [kind, state, n];
    }
  }

  private *byteTotals(): Iterable<[string, 'in' | 'out', number]> {
    const totals = new Map(this.closedBytes);
    for (const s of this.ctx.registry.all()) {
      totals.set(`${s.kind} in`, (totals.get(`${s.kind} in`) ?? 0) + s.bytesIn);
      totals.set(`${s.kind} out`, (totals.get(`${s.kind} out`) ?? 0) + s.bytesOut);
    }
    for (const [key, n] of totals) {
      const [kind, direction] = key.split(' ');
      yield [kind, direction as 'in' | 'out', n];
    }
  }

  private addClosedBytes(s: Session): void {
    this.closedBytes.set(`${s.kind} in`, (this.closedBytes.get(`${s.kind} in`) ?? 0) + s.bytesIn);
    this.closedBytes.set(`${s.kind} out`, (this.closedBytes.get(`${s.kind} out`) ?? 0) + s.bytesOut);
  }
}

function listen(server: TcpServer | HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeListener(server: TcpServer | HttpServer | undefined): Promise<void> {
  return new Promise((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
}

async function waitFor(predicate: () => boolean, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
