import type { Element } from 'ltx';
import type { Config } from '../config/types.js';
import type { InputShaper } from '../transport/connection.js';
import { TokenBucket } from '../transport/token-bucket.js';
import type { StreamHandler } from '../xmpp/parser.js';

export type RateLimit = 'stanzas' | 'bytes';
export type RefuseReason = 'connections-per-ip' | 'unauthenticated-per-ip';

/**
 * Addresses whose connection rate is remembered. Forgetting one only gives it a fresh burst, so this needs
 * to be large enough that an attacker must control more addresses than that to gain anything (and with that
 * many, a per-address limit is not what stops them); 65,536 buckets are a few MB.
 */
const MAX_TRACKED_IPS = 65_536;

/** IPv4 clients reach a dual-stack listener as ::ffff:a.b.c.d; one address must be one key. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

function exempt(config: Config, ip: string): boolean {
  return config.limits.exemptLoopback && isLoopback(normalizeIp(ip));
}

/**
 * Stanzas/s and bytes/s of one client stream (c2s.rate). Over either, the connection stops reading until the
 * debt is paid: nothing is dropped, TCP's window slows the client down, and everyone else's stanzas keep
 * being read in the meantime.
 */
export class SessionShaper implements InputShaper {
  private readonly stanzas: TokenBucket | undefined;
  private readonly bytes: TokenBucket | undefined;
  private stanzasSeen = 0;

  constructor(rate: Config['c2s']['rate'], now: number, private readonly onThrottle: (limit: RateLimit) => void) {
    if (rate.stanzasPerSecond > 0) this.stanzas = new TokenBucket(rate.stanzasPerSecond, Math.max(1, rate.stanzaBurst), now);
    if (rate.bytesPerSecond > 0) this.bytes = new TokenBucket(rate.bytesPerSecond, Math.max(1, rate.byteBurst), now);
  }

  /** The shaper for a new stream from `ip`, or none when no limit applies to it. */
  static for(config: Config, ip: string, now: number, onThrottle: (limit: RateLimit) => void): SessionShaper | undefined {
    const { rate } = config.c2s;
    if ((rate.stanzasPerSecond === 0 && rate.bytesPerSecond === 0) || exempt(config, ip)) return undefined;
    return new SessionShaper(rate, now, onThrottle);
  }

  /** Called by the framing's handler for each stanza parsed; charged with the bytes they came in. */
  stanza(): void {
    this.stanzasSeen++;
  }

  charge(bytes: number, now: number): number {
    const stanzas = this.stanzasSeen;
    this.stanzasSeen = 0;
    return Math.max(this.takeFrom(this.stanzas, stanzas, now, 'stanzas'), this.takeFrom(this.bytes, bytes, now, 'bytes'));
  }

  wait(now: number): number {
    return Math.max(this.stanzas?.waitMs(now) ?? 0, this.bytes?.waitMs(now) ?? 0);
  }

  /** Counted when a bucket goes into debt, once per episode, so the metric reads "times a client was slowed". */
  private takeFrom(bucket: TokenBucket | undefined, n: number, now: number, limit: RateLimit): number {
    if (!bucket || n === 0) return bucket?.waitMs(now) ?? 0;
    const before = bucket.waitMs(now);
    const after = bucket.take(n, now);
    if (before === 0 && after > 0) this.onThrottle(limit);
    return after;
  }
}

/** The stream's handler with each stanza counted first: the framing calls it, so no stanza escapes the count. */
export function countingStanzas(handler: StreamHandler, shaper: SessionShaper): StreamHandler {
  return {
    onStreamStart: (header) => handler.onStreamStart(header),
    onStanza: (el: Element) => {
      shaper.stanza();
      handler.onStanza(el);
    },
    onStreamEnd: () => handler.onStreamEnd(),
    onError: (condition, text) => handler.onError(condition, text),
  };
}

/**
 * Admission per client address: new connections a second (limits.connectionsPerIp, a token bucket per
 * address, the least recently seen forgotten first) and connections not yet bound
 * (limits.unauthenticatedPerIp). Over either, the connection is refused before any XML is read.
 */
export class IpLimits {
  private readonly rates = new Map<string, TokenBucket>();
  private readonly unbound = new Map<string, number>();
  /** Connections counted in `unbound`, each released exactly once (bound or closed, whichever comes first). */
  private readonly pending = new Map<object, string>();

  constructor(private readonly config: () => Config) {}

  /** Why a new connection from `ip` is refused, or undefined to accept it. */
  admit(ip: string, now: number): RefuseReason | undefined {
    const config = this.config();
    if (exempt(config, ip)) return undefined;
    const key = normalizeIp(ip);
    const { unauthenticatedPerIp } = config.limits;
    if (unauthenticatedPerIp > 0 && (this.unbound.get(key) ?? 0) >= unauthenticatedPerIp) return 'unauthenticated-per-ip';
    if (!this.takeConnection(key, now, config.limits)) return 'connections-per-ip';
    return undefined;
  }

  /** A connection from `ip` was accepted and is not bound yet. */
  opened(conn: object, ip: string): void {
    if (exempt(this.config(), ip)) return;
    const key = normalizeIp(ip);
    this.pending.set(conn, key);
    this.unbound.set(key, (this.unbound.get(key) ?? 0) + 1);
  }

  /** The connection bound or closed: it no longer counts against its address. */
  settled(conn: object): void {
    const key = this.pending.get(conn);
    if (key === undefined) return;
    this.pending.delete(conn);
    const n = (this.unbound.get(key) ?? 1) - 1;
    if (n > 0) this.unbound.set(key, n);
    else this.unbound.delete(key);
  }

  private takeConnection(key: string, now: number, limits: Config['limits']): boolean {
    if (limits.connectionsPerIp === 0) return true;
    let bucket = this.rates.get(key);
    if (bucket && (bucket.rate !== limits.connectionsPerIp || bucket.burst !== limits.connectionsPerIpBurst)) bucket = undefined; // reloaded
    if (bucket) this.rates.delete(key); // re-inserted below: Map order is then least recently seen first
    bucket ??= new TokenBucket(limits.connectionsPerIp, Math.max(1, limits.connectionsPerIpBurst), now);
    const ok = bucket.tryTake(now);
    this.rates.set(key, bucket);
    if (this.rates.size > MAX_TRACKED_IPS) this.rates.delete(this.rates.keys().next().value as string);
    return ok;
  }
}
