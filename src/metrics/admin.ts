import { timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';

/** One live session as `GET /admin/sessions` reports it (and `vigil sessions` prints it). */
export interface SessionInfo {
  id: string;
  kind: string;
  /** Full JID once bound; null while negotiating, and for server streams. */
  jid: string | null;
  /** For a server stream (s2sIn, s2sOut), the peer's domain once authenticated; null otherwise. */
  domain: string | null;
  state: string;
  authenticated: boolean;
  remoteAddress: string;
  remotePort: number;
  /** Seconds since the last byte received from the peer: the only proof of life. */
  idleSeconds: number;
  /** Seconds since the peer was accepted. */
  connectedSeconds: number;
  /** Seconds the probe in flight has been waiting for an answer; null when none is. */
  probePendingSeconds: number | null;
  /** Bytes waiting to be written to the peer. */
  sendQueueBytes: number;
  /**
   * XEP-0198, once enabled: stanzas sent and not acked (all of them held for a resume while hibernated),
   * and for a hibernated session the seconds left to resume it. null without stream management.
   */
  sm: { resumable: boolean; unacked: number; resumeLeftSeconds: number | null } | null;
  bytesIn: number;
  bytesOut: number;
}

export interface SessionsReport {
  now: string;
  count: number;
  sessions: SessionInfo[];
}

/** `GET /admin/status`: enough for `vigil doctor` to know it is talking to this server and check its limits. */
export interface StatusReport {
  service: 'vigil';
  pid: number;
  domain: string;
  /** Listening ports; websocket absent from a Vigil older than the WebSocket listener. */
  listeners: { c2s: number; websocket?: number; s2s?: number; http: number };
  uptimeSeconds: number;
  sessions: number;
  maxSessions: number;
  /** Soft RLIMIT_NOFILE of the server process (null: unlimited or unreadable). */
  maxOpenFiles: number | null;
  /** Descriptors the server process holds now (null: unreadable). */
  openFiles: number | null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * The admin endpoints on the HTTP listener, for `createHttpServer({ extra })`. They show who is connected from
 * where, so they answer loopback peers only, or, when admin.token is set, only requests bearing it (from
 * loopback too: a reverse proxy on the same host makes every peer look local). Everyone else gets 403.
 */
export function adminRoutes(ctx: Context): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!path.startsWith('/admin/')) return false;
    const refusal = refuse(req, ctx.config.admin.token);
    if (refusal) {
      ctx.log.warn({ event: 'admin.refused', path, ip: req.socket.remoteAddress }, 'admin request refused');
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`${refusal}\n`);
      return true;
    }
    if (path === '/admin/sessions') {
      json(res, sessionsReport(ctx, Date.now()));
      return true;
    }
    if (path === '/admin/status') {
      json(res, statusReport(ctx, req));
      return true;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /admin/sessions, /admin/status\n');
    return true;
  };
}

/** Why this request may not see admin data, or '' when it may. */
export function refuse(req: IncomingMessage, token: string): string {
  if (token) {
    const given = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    return sameSecret(given, token) ? '' : 'forbidden: admin.token is set and this request does not carry it as `Authorization: Bearer <token>`';
  }
  return LOOPBACK.has(req.socket.remoteAddress ?? '') ? '' : 'forbidden: the admin endpoints answer loopback only; set admin.token to use them from elsewhere';
}

function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function sessionsReport(ctx: Context, now: number): SessionsReport {
  const sessions: SessionInfo[] = [];
  for (const s of ctx.registry.all()) sessions.push(sessionInfo(s, now));
  sessions.sort((a, b) => b.idleSeconds - a.idleSeconds);
  return { now: new Date(now).toISOString(), count: sessions.length, sessions };
}

function sessionInfo(s: Session, now: number): SessionInfo {
  const seconds = (ms: number) => Math.max(0, Math.round(ms / 100) / 10);
  return {
    id: s.id,
    kind: s.kind,
    jid: s.fullJid ?? null,
    domain: s.domain ?? null,
    state: s.state,
    authenticated: s.authenticated,
    remoteAddress: s.remoteAddress,
    remotePort: s.remotePort,
    idleSeconds: seconds(now - s.lastAliveAt),
    connectedSeconds: seconds(now - s.acceptedAt),
    probePendingSeconds: s.probeSentAt > 0 ? seconds(now - s.probeSentAt) : null,
    sendQueueBytes: s.pendingBytes,
    sm: s.sm ? { resumable: s.sm.resumable, unacked: s.sm.queue.length, resumeLeftSeconds: s.hibernatedUntil > 0 ? seconds(s.hibernatedUntil - now) : null } : null,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
  };
}

function statusReport(ctx: Context, req: IncomingMessage): StatusReport {
  const { config } = ctx;
  return {
    service: 'vigil',
    pid: process.pid,
    domain: config.domain,
    listeners: { c2s: config.listeners.c2s.port, websocket: config.listeners.websocket.port, ...(config.s2s.enabled ? { s2s: config.listeners.s2s.port } : {}), http: req.socket.localPort ?? config.listeners.http.port },
    uptimeSeconds: Math.round(process.uptime()),
    sessions: ctx.registry.size,
    maxSessions: config.limits.maxSessions,
    maxOpenFiles: softFdLimit(),
    openFiles: openFileCount(),
  };
}

/** Soft "Max open files" of this process from /proc/self/limits; null when unlimited or not on Linux. */
export function softFdLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

function openFileCount(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}
