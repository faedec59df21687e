import type { Element } from 'ltx';
import type { WatchdogPolicy } from '../config/types.js';
import type { Framing, StreamOpen } from '../framing/framing.js';
import type { StreamHandler } from '../xmpp/parser.js';
import type { EndReason, TlsUpgrade, Transport } from './transport.js';

export interface ConnectionEvents extends StreamHandler {
  /** Bytes arrived from the peer, before they are parsed: the watchdog's proof of life. */
  onReceived(now: number): void;
  /**
   * The peer ended the transport (a FIN) without closing the stream first: the connection is lost, not
   * closed (a clean close is `</stream:stream>`, the parser's onStreamEnd).
   */
  onTransportEnd(): void;
  /** The transport is gone, for whatever reason; called exactly once. */
  onClosed(): void;
}

export interface ConnectionOptions {
  closeTimeout: number;
  tcpKeepAlive: number;
  /**
   * Stop reading while more than this many bytes wait to be written to the peer, until they are taken: a
   * peer that sends requests and never reads their replies cannot make us buffer without end.
   */
  pauseReadingAt: number;
  /** Input rate limits; fixed for the connection's life, like its parser's stanza limit (a reload applies to new ones). */
  shaper?: InputShaper;
}

/** What bounds how fast a connection reads: charged with each chunk after it is parsed. */
export interface InputShaper {
  /** `bytes` arrived (and whatever stanzas they held were counted): ms to stop reading, 0 to go on. */
  charge(bytes: number, now: number): number;
  /** Ms still to wait before reading again. */
  wait(now: number): number;
}

/** A quarter of maxSendQueue: a peer that reads slowly stays well clear of the overflow close. */
export function connectionOptions(policy: WatchdogPolicy): ConnectionOptions {
  return { closeTimeout: policy.closeTimeout, tcpKeepAlive: policy.tcpKeepAlive, pauseReadingAt: Math.floor(policy.maxSendQueue / 4) };
}

/** With a shaper, input is parsed this much at a time, so a rate limit bites within one read, not only after it. */
const SHAPED_SLICE = 1024;

/**
 * One XMPP stream: a framing on a transport, the counters the watchdog and metrics read, and a close that
 * always ends with no transport left behind. Negotiation and sessions work on this, never on a socket.
 */
export class Connection {
  lastReceivedAt: number;
  lastSentAt: number;
  bytesIn = 0;
  bytesOut = 0;
  closing = false;
  closed = false;
  private opened = false;
  private readingPaused = false;
  /** Over the input rate: reading resumes only once neither this nor readingPaused holds. */
  private ratePaused = false;
  private transportPaused = false;
  private rateTimer: NodeJS.Timeout | undefined;
  private readonly shaper: InputShaper | undefined;
  /** Input read but not parsed yet, because the rate limit was reached: parsed, in order, once under it again. */
  private held: Buffer | undefined;
  /** Bumped by STARTTLS: a slice loop under way must not feed the parser plaintext that came after <starttls/>. */
  private tlsEpoch = 0;
  private drainWaiters: (() => void)[] = [];
  private closeTimer: NodeJS.Timeout | undefined;

  /** `fallback` is the opening sent before a stream error when we never answered the peer's (RFC 6120 §4.9.1.1). */
  constructor(
    readonly transport: Transport,
    readonly framing: Framing,
    private readonly events: ConnectionEvents,
    private options: ConnectionOptions,
    private readonly fallback: StreamOpen,
  ) {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.lastSentAt = now;
    this.shaper = options.shaper;
    transport.setKeepAlive(options.tcpKeepAlive);
    transport.listen({ onData: this.onData, onEnd: this.onEnd, onClose: this.onClose, onDrain: this.onDrain, onAlive: this.onAlive, onUnusable: this.onUnusable });
  }

  get encrypted(): boolean {
    return this.transport.encrypted;
  }

  get pendingBytes(): number {
    return this.transport.pendingBytes;
  }

  get lastWriteProgressAt(): number {
    return this.transport.lastWriteProgressAt;
  }

  setOptions(options: ConnectionOptions): void {
    this.options = options;
    this.transport.setKeepAlive(options.tcpKeepAlive);
  }

  /** Our opening of the stream; each restart is answered by a new one. */
  open(attrs: StreamOpen): void {
    this.opened = true;
    this.write(this.framing.open(attrs));
  }

  send(el: Element): void {
    this.write(this.framing.element(el));
  }

  /** The watchdog's probe: its tick writes nothing else to this connection. */
  ping(id: string, from: string, to: string): void {
    this.write(this.framing.ping(id, from, to), true);
  }

  keepalive(): void {
    if (!this.writable) return;
    this.lastSentAt = Date.now();
    this.framing.keepalive(this.transport);
  }

  /** A new stream document on the same transport (after SASL success): the peer opens again, so do we. */
  restart(): void {
    this.opened = false;
    this.framing.restart(false);
  }

  /** STARTTLS; whatever plaintext came with <starttls/> is dropped (the CVE-2011-0411 family). */
  startTls(upgrade: TlsUpgrade): void {
    if (!this.transport.startTls) throw new Error('this transport cannot start TLS');
    this.opened = false;
    this.tlsEpoch++;
    this.held = undefined;
    this.framing.restart(true);
    this.transport.startTls(upgrade);
  }

  /**
   * End the stream (a stream error first if given), half-close, and reset the transport if the peer has not
   * closed within closeTimeout: a dead peer must not leave an orphan in FIN_WAIT1/FIN_WAIT2.
   */
  close(error?: Element, seeOtherUri?: string): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    if (this.writable) {
      // One write each: on a WebSocket each is a message of its own (RFC 7395 §3.3.3).
      if (!this.opened) this.write(this.framing.open(this.fallback));
      if (error) this.write(this.framing.element(error));
      this.write(this.framing.close(seeOtherUri));
      this.transport.end(endReason(error));
    }
    this.closeTimer = setTimeout(() => this.reset(), this.options.closeTimeout);
    this.closeTimer.unref();
  }

  /** Tear down now: nothing more is owed to a peer that does not answer. */
  reset(): void {
    if (!this.closed) this.transport.reset();
  }

  private get writable(): boolean {
    return !this.closed && !this.transport.ended;
  }

  private write(text: string, alone = false): void {
    if (!this.writable) return;
    this.lastSentAt = Date.now();
    this.bytesOut += Buffer.byteLength(text);
    if (alone) this.transport.writeAlone(text);
    else this.transport.write(text);
    if (!this.readingPaused && this.transport.pendingBytes > this.options.pauseReadingAt) {
      this.readingPaused = true;
      this.syncReading();
    }
  }

  /**
   * Resolves once the peer has taken what waits for it (at once if little does), or the connection is gone:
   * work that produces much output for one request goes on only at the pace the peer reads.
   */
  drained(): Promise<void> {
    if (this.closed || this.transport.pendingBytes <= this.options.pauseReadingAt) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Whether input waits because the peer has not taken our output. */
  get paused(): boolean {
    return this.readingPaused;
  }

  /** Whether input waits because the peer sent faster than its rate limits allow. */
  get throttled(): boolean {
    return this.ratePaused;
  }

  /** The transport reads only while nothing holds it: back-pressure and the rate limit pause independently. */
  private syncReading(): void {
    const pause = this.readingPaused || this.ratePaused;
    if (pause === this.transportPaused || this.closed) return;
    this.transportPaused = pause;
    if (pause) this.transport.pause();
    else this.transport.resume();
  }

  /** Stop reading for `ms`, then look again: bytes that arrived meanwhile (already in flight) were charged too. */
  private throttle(ms: number): void {
    if (ms <= 0 || this.rateTimer || this.closed) return;
    this.ratePaused = true;
    this.syncReading();
    this.rateTimer = setTimeout(this.onRateTimer, ms);
    this.rateTimer.unref();
  }

  private readonly onRateTimer = (): void => {
    this.rateTimer = undefined;
    const now = Date.now();
    const ms = this.shaper?.wait(now) ?? 0;
    if (ms > 0) return this.throttle(ms);
    this.ratePaused = false;
    const held = this.held;
    this.held = undefined;
    if (held && !this.closing) {
      // The silence was ours, not the peer's: a client held back by a low limit must not look dead to the watchdog.
      this.lastReceivedAt = now;
      this.events.onReceived(now);
      this.feed(held, now);
    }
    this.syncReading();
  };

  /** Parse in slices, charging each; once over the rate, hold the rest and pause until the debt is paid. */
  private feed(data: Buffer, now: number): void {
    const shaper = this.shaper!;
    const epoch = this.tlsEpoch;
    for (let at = 0; at < data.length; ) {
      const end = Math.min(data.length, at + SHAPED_SLICE);
      this.framing.parse(data.subarray(at, end));
      if (this.closing || this.closed || epoch !== this.tlsEpoch) return;
      const ms = shaper.charge(end - at, now);
      at = end;
      if (ms > 0) {
        if (at < data.length) this.held = data.subarray(at);
        return this.throttle(ms);
      }
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.bytesIn += chunk.length;
    this.events.onReceived(now);
    if (!this.shaper) return this.framing.parse(chunk);
    // Read before the pause took hold (or from a transport that cannot pause at once): parsed in its turn.
    if (this.ratePaused || this.held) this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    else this.feed(chunk, now);
  };

  private readonly onDrain = (): void => {
    this.wakeDrainWaiters();
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.syncReading();
  };

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return; // the common case: called after most writes
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private readonly onEnd = (): void => {
    if (!this.closing) this.events.onTransportEnd();
  };

  /** A pong: the peer is there, though it sent nothing to parse. */
  private readonly onAlive = (): void => {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.events.onReceived(now);
  };

  private readonly onUnusable = (text: string): void => {
    if (!this.closing) this.events.onError('unsupported-encoding', text);
  };

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.wakeDrainWaiters();
    this.events.onClosed();
  };
}

/** The WebSocket close code a stream error calls for: 1008 for a policy violation, 1000 otherwise. */
function endReason(error: Element | undefined): EndReason {
  if (!error) return 'normal';
  if (error.getChild('policy-violation')) return 'policy-violation';
  if (error.getChild('unsupported-encoding')) return 'unsupported-data';
  return 'normal';
}
