import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { SecureContext } from 'node:tls';
import { C2SStream, type C2SHost } from './c2s/stream.js';
import type { Config, ConnectionKind } from './config/types.js';
import type { Context } from './context.js';
import { installDisco } from './features/disco.js';
import { OfflineMessages } from './features/offline.js';
import { installPing } from './features/ping.js';
import { Presence } from './features/presence.js';
import { Registration } from './features/register.js';
import { installVersion } from './features/version.js';
import type { Logger } from './log.js';
import { adminRoutes } from './metrics/admin.js';
import { createHttpServer } from './metrics/http.js';
import { Metrics } from './metrics/metrics.js';
import { Router } from './router/router.js';
import { WATCHDOG_REASONS, type CloseReason } from './sessions/close-reason.js';
import { SessionRegistry } from './sessions/registry.js';
import type { Session, Unconfirmed } from './sessions/session.js';
import type { Storage } from './storage/storage.js';
import { NS } from './xmpp/ns.js';
import type { Connection } from './transport/connection.js';
import { Watchdog } from './watchdog/watchdog.js';

export interface ServerOptions {
  config: Config;
  log: Logger;
  storage: Storage;
  /** STARTTLS context; without one the server offers no STARTTLS (tests only). */
  tls?: SecureContext;
}

/**
 * The running server: listeners, registry, router, features, watchdog and metrics, wired once. It is the
 * SessionHost: every session's single close lands in sessionClosed().
 */
export class Server implements C2SHost {
  readonly ctx: Context;
  readonly tls: SecureContext | undefined;
  readonly watchdog: Watchdog;
  private readonly offline: OfflineMessages;
  private readonly presence: Presence;
  readonly registration: Registration;
  private c2sListener: TcpServer | undefined;
  private httpListener: HttpServer | undefined;
  private readonly closedBytes = new Map<string, number>();
  private stopping = false;
  private readonly pendingWrites = new Set<Promise<unknown>>();
  /** Every socket not yet gone, including those of sessions already closed and waiting out closeTimeout. */
  private readonly connections = new Set<Connection>();

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
    });
    const router = new Router({ registry, log: options.log, metrics, get config() { return ctxConfig.config; } });
    this.ctx = {
      get config() { return ctxConfig.config; },
      set config(c: Config) { ctxConfig.config = c; },
      log: options.log,
      storage: options.storage,
      registry,
      metrics,
      router,
    };
    this.tls = options.tls;
    installPing(router);
    installDisco(router);
    installVersion(router);
    this.offline = new OfflineMessages(this.ctx);
    this.presence = new Presence(this.ctx, this.offline);
    this.registration = new Registration(this.ctx, this.presence);
    this.watchdog = new Watchdog(this.ctx);
  }

  get config(): Config {
    return this.ctx.config;
  }

  /** Bound listening addresses, once started. */
  get addresses(): { c2s: number; http: number } {
    const port = (s: TcpServer | HttpServer | undefined) => {
      const a = s?.address();
      return a && typeof a === 'object' ? a.port : 0;
    };
    return { c2s: port(this.c2sListener), http: port(this.httpListener) };
  }

  async start(): Promise<void> {
    const { config } = this;
    this.c2sListener = createTcpServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.accept(socket));
    await listen(this.c2sListener, config.listeners.c2s.port, config.listeners.c2s.host);
    this.httpListener = createHttpServer({ metrics: this.ctx.metrics, ready: () => !this.stopping && this.c2sListener?.listening === true, extra: adminRoutes(this.ctx) });
    await listen(this.httpListener, config.listeners.http.port, config.listeners.http.host);
    this.watchdog.start();
    this.ctx.log.info({ event: 'server.started', domain: config.domain, c2s: this.addresses.c2s, http: this.addresses.http }, 'Vigil is serving');
  }

  /** Apply a new configuration to everything live: policies, limits, the watchdog interval. */
  reload(config: Config): void {
    const old = this.ctx.config;
    this.ctx.config = config;
    for (const session of this.ctx.registry.all()) {
      session.policy = config.watchdog[session.kind];
      session.conn.setOptions({ maxStanzaSize: config.c2s.maxStanzaSize, closeTimeout: session.policy.closeTimeout, tcpKeepAlive: session.policy.tcpKeepAlive });
    }
    if (old.watchdog.interval !== config.watchdog.interval) this.watchdog.start();
    this.ctx.log.info({ event: 'config.reloaded' }, 'configuration reloaded');
  }

  /** Stop accepting, end every stream with <system-shutdown/>, keep what was unconfirmed, then close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.watchdog.stop();
    const closing = closeListener(this.c2sListener);
    const sessions = [...this.ctx.registry.all()];
    for (const s of sessions) s.close('shutdown', { text: 'the server is shutting down' });
    await Promise.all([...this.pendingWrites]);
    // Sessions closed before the shutdown may still wait out their closeTimeout: they go too.
    await waitFor(() => [...this.connections].every((c) => c.closed), this.config.shutdown.timeout);
    for (const c of this.connections) c.reset();
    await closing;
    this.httpListener?.closeAllConnections();
    await closeListener(this.httpListener);
    this.ctx.log.info({ event: 'server.stopped' }, 'Vigil stopped');
  }

  // SessionHost

  streamHeader(): string {
    return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAM}' from='${this.config.domain}' version='1.0'>`;
  }

  stanzaCounter(kind: ConnectionKind, direction: 'in' | 'out'): { inc(): void } {
    return this.ctx.metrics.stanzas.labels(kind, direction);
  }

  bound(session: Session): void {
    this.ctx.log.info({ event: 'session.bound', session: session.id, jid: session.fullJid, ip: session.conn.remoteAddress }, 'session bound');
  }

  sessionClosed(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    const { metrics, registry, log } = this.ctx;
    registry.remove(session);
    metrics.sessionsClosed.inc({ kind: session.kind, reason });
    if (WATCHDOG_REASONS.has(reason)) metrics.deadSessionLifetime.observe({ kind: session.kind, reason }, (session.closedAt - session.lastReceivedAt) / 1000);
    this.addClosedBytes(session);
    log.info({ event: 'session.closed', session: session.id, jid: session.fullJid, kind: session.kind, reason, unconfirmed: unconfirmed.length }, 'session closed');
    if (session.fullJid) this.presence.sessionEnded(session);
    if (unconfirmed.length > 0 && session.username) this.salvage(session, unconfirmed);
  }

  private salvage(session: Session, unconfirmed: Unconfirmed[]): void {
    const username = session.username!;
    const job = (async () => {
      for (const { stanza, sentAt } of unconfirmed) {
        if (await this.offline.store(username, stanza, new Date(sentAt))) this.ctx.metrics.messagesSalvaged.inc({ kind: session.kind });
      }
    })().catch((err: Error) => this.ctx.log.error({ event: 'salvage.failed', session: session.id, err: err.message }, 'could not store unconfirmed messages'));
    this.pendingWrites.add(job);
    void job.finally(() => this.pendingWrites.delete(job));
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const stream = new C2SStream(socket, this);
    const conn = stream.session.conn;
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
    this.ctx.registry.add(stream.session);
    this.ctx.metrics.connectionsAccepted.inc({ kind: 'c2s' });
  }

  private *sessionCounts(): Iterable<[string, string, number]> {
    const counts = new Map<string, number>();
    for (const s of this.ctx.registry.all()) {
      const key = `${s.kind} ${s.state}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const kind of ['c2s'] as ConnectionKind[]) for (const state of ['negotiating', 'active']) if (!counts.has(`${kind} ${state}`)) counts.set(`${kind} ${state}`, 0);
    for (const [key, n] of counts) {
      const [kind, state] = key.split(' ');
      yield [kind, state, n];
    }
  }

  private *byteTotals(): Iterable<[string, 'in' | 'out', number]> {
    const totals = new Map(this.closedBytes);
    for (const s of this.ctx.registry.all()) {
      totals.set(`${s.kind} in`, (totals.get(`${s.kind} in`) ?? 0) + s.conn.bytesIn);
      totals.set(`${s.kind} out`, (totals.get(`${s.kind} out`) ?? 0) + s.conn.bytesOut);
    }
    for (const [key, n] of totals) {
      const [kind, direction] = key.split(' ');
      yield [kind, direction as 'in' | 'out', n];
    }
  }

  private addClosedBytes(s: Session): void {
    this.closedBytes.set(`${s.kind} in`, (this.closedBytes.get(`${s.kind} in`) ?? 0) + s.conn.bytesIn);
    this.closedBytes.set(`${s.kind} out`, (this.closedBytes.get(`${s.kind} out`) ?? 0) + s.conn.bytesOut);
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
