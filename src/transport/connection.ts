import type { Element } from 'ltx';
import type { SecureContext } from 'node:tls';
import type { WatchdogPolicy } from '../config/types.js';
import type { Framing, StreamOpen } from '../framing/framing.js';
import type { StreamHandler } from '../xmpp/parser.js';
import type { Transport } from './transport.js';

export interface ConnectionEvents extends StreamHandler {
  /** Bytes arrived from the peer, before they are parsed: the watchdog's proof of life. */
  onReceived(now: number): void;
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
}

/** A quarter of maxSendQueue: a peer that reads slowly stays well clear of the overflow close. */
export function connectionOptions(policy: WatchdogPolicy): ConnectionOptions {
  return { closeTimeout: policy.closeTimeout, tcpKeepAlive: policy.tcpKeepAlive, pauseReadingAt: Math.floor(policy.maxSendQueue / 4) };
}

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
  private drainWaiters: (() => void)[] = [];
  private closeTimer: NodeJS.Timeout | undefined;

  /** `fallback` is the opening sent before a stream error when we never answered the peer's (RFC 6120 §4.9.1.1). */
  constructor(
    readonly transport: Transport,
    private readonly framing: Framing,
    private readonly events: ConnectionEvents,
    private options: ConnectionOptions,
    private readonly fallback: StreamOpen,
  ) {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.lastSentAt = now;
    transport.setKeepAlive(options.tcpKeepAlive);
    transport.listen({ onData: this.onData, onEnd: this.onEnd, onClose: this.onClose, onDrain: this.onDrain });
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
  startTls(context: SecureContext): void {
    if (!this.transport.startTls) throw new Error('this transport cannot start TLS');
    this.opened = false;
    this.framing.restart(true);
    this.transport.startTls(context);
  }

  /**
   * End the stream (a stream error first if given), half-close, and reset the transport if the peer has not
   * closed within closeTimeout: a dead peer must not leave an orphan in FIN_WAIT1/FIN_WAIT2.
   */
  close(error?: Element): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    if (this.writable) {
      let text = this.opened ? '' : this.framing.open(this.fallback);
      if (error) text += this.framing.element(error);
      this.write(text + this.framing.close());
      this.transport.end();
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

  private write(text: string): void {
    if (!this.writable) return;
    this.lastSentAt = Date.now();
    this.bytesOut += Buffer.byteLength(text);
    this.transport.write(text);
    if (!this.readingPaused && this.transport.pendingBytes > this.options.pauseReadingAt) {
      this.readingPaused = true;
      this.transport.pause();
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

  private readonly onData = (chunk: Buffer): void => {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.bytesIn += chunk.length;
    this.events.onReceived(now);
    this.framing.parse(chunk);
  };

  private readonly onDrain = (): void => {
    this.wakeDrainWaiters();
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.transport.resume();
  };

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private readonly onEnd = (): void => {
    if (!this.closing) this.events.onStreamEnd();
  };

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.wakeDrainWaiters();
    this.events.onClosed();
  };
}
