import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import type { ConnectionKind, WatchdogPolicy } from '../config/types.js';
import type { Connection } from '../transport/connection.js';
import { streamError, type StreamErrorCondition } from '../xmpp/errors.js';
import type { WatchState } from '../watchdog/decide.js';
import type { CloseReason } from './close-reason.js';

export type SessionState = 'negotiating' | 'active' | 'closing' | 'closed';

/** What a session needs from the server around it; keeps Session free of imports from every layer. */
export interface SessionHost {
  /** Called once, when the session has left the registry, with what it had not confirmed. */
  sessionClosed(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void;
  /** Opening of a stream we never answered, so a stream error can still be sent (RFC 6120 §4.9.1.1). */
  streamHeader(session: Session): string;
  /** The vigil_stanzas_total child for a kind and direction, looked up once per session, not per stanza. */
  stanzaCounter(kind: ConnectionKind, direction: 'in' | 'out'): { inc(): void };
}

/** A message written to the peer after the last byte it sent, and when it was written. */
export interface Unconfirmed {
  stanza: Element;
  sentAt: number;
}

export interface CloseDetail {
  condition?: StreamErrorCondition;
  text?: string;
}

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
  error: 'internal-server-error',
};

/**
 * One stream with a peer, from accept to close. Holds what the watchdog decides on (via its Connection),
 * the probe in flight, the identity once bound, and the messages written since the peer last proved alive.
 * close() is the only way out, whoever calls it, so every close is counted once with one reason.
 */
export class Session implements WatchState {
  readonly id = randomBytes(9).toString('base64url');
  readonly acceptedAt = Date.now();
  state: SessionState = 'negotiating';
  authenticated = false;
  username: string | undefined;
  bareJid: string | undefined;
  fullJid: string | undefined;
  resource: string | undefined;
  headerSent = false;
  closeReason: CloseReason | undefined;
  closedAt = 0;

  /** Probe in flight: when it was sent (0: none) and, for XEP-0199, its iq id. */
  probeSentAt = 0;
  probeId = '';

  /** Presence (RFC 6121 §4): available after initial presence, with the last broadcast presence. */
  available = false;
  priority = 0;
  presence: Element | undefined;
  rosterRequested = false;
  /** Full JIDs this session sent directed presence to, owed unavailable presence at the end. */
  directedTo: Set<string> | undefined;

  /** Messages written since the last byte received; lost with the peer unless saved on close. */
  private unconfirmed: Unconfirmed[] = [];
  /** conn.bytesIn when the first of them was written. */
  private unconfirmedMark = -1;

  constructor(
    readonly kind: ConnectionKind,
    readonly conn: Connection,
    public policy: WatchdogPolicy,
    private readonly host: SessionHost,
  ) {
    this.stanzasIn = host.stanzaCounter(kind, 'in');
    this.stanzasOut = host.stanzaCounter(kind, 'out');
  }

  readonly stanzasIn: { inc(): void };
  private readonly stanzasOut: { inc(): void };

  get isBound(): boolean {
    return this.state === 'active' && this.fullJid !== undefined;
  }

  // WatchState, read by the watchdog on every tick.
  get bound(): boolean {
    return this.fullJid !== undefined;
  }
  get lastReceivedAt(): number {
    return this.conn.lastReceivedAt;
  }
  get lastSentAt(): number {
    return this.conn.lastSentAt;
  }
  get pendingBytes(): number {
    return this.conn.pendingBytes;
  }
  get lastWriteProgressAt(): number {
    return this.conn.lastWriteProgressAt;
  }

  send(stanza: Element): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (stanza.name === 'message') this.trackUnconfirmed(stanza);
    this.stanzasOut.inc();
    this.conn.send(stanza);
  }

  sendRaw(text: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.conn.send(text);
  }

  /** The only way a session ends. Safe to call any number of times; only the first counts. */
  close(reason: CloseReason, detail: CloseDetail = {}): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.closeReason = reason;
    this.closedAt = Date.now();
    const condition = detail.condition ?? CONDITION_FOR[reason];
    let text = '';
    if (!this.conn.closed) {
      if (!this.headerSent) text += this.host.streamHeader(this);
      if (condition) text += streamError(condition, detail.text).toString();
      text += '</stream:stream>';
      this.conn.close(text);
    }
    const unconfirmed = this.takeUnconfirmed();
    this.host.sessionClosed(this, reason, unconfirmed);
  }

  /** The socket went away; whatever was still open is a close by the peer unless we started it. */
  socketClosed(): void {
    if (this.state === 'closing') this.state = 'closed';
    else this.close('peer-closed');
    this.state = 'closed';
  }

  private trackUnconfirmed(stanza: Element): void {
    if (this.unconfirmedMark !== this.conn.bytesIn) {
      // The peer spoke since these were written: it was alive after receiving them.
      this.unconfirmed.length = 0;
      this.unconfirmedMark = this.conn.bytesIn;
    }
    this.unconfirmed.push({ stanza, sentAt: Date.now() });
  }

  private takeUnconfirmed(): Unconfirmed[] {
    if (this.unconfirmed.length === 0 || this.unconfirmedMark !== this.conn.bytesIn) return [];
    const list = this.unconfirmed;
    this.unconfirmed = [];
    return list;
  }
}
