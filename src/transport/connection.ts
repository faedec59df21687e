import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Element } from 'ltx';
import { StreamParser, type StreamHandler } from '../xmpp/parser.js';

export interface ConnectionOptions {
  maxStanzaSize: number;
  closeTimeout: number;
  tcpKeepAlive: number;
}

export interface ConnectionEvents extends StreamHandler {
  /** The socket is gone, for whatever reason; called exactly once. */
  onSocketClosed(): void;
  /** Any bytes from the peer; called before they are parsed. */
  onReceived?(): void;
}

/**
 * One TCP (optionally TLS-upgraded) socket carrying one XMPP stream: the parser, the counters the watchdog
 * reads, and a close that always ends with no socket left behind. It knows nothing about XMPP semantics.
 */
export class Connection {
  lastReceivedAt: number;
  lastSentAt: number;
  /** Last time the kernel took bytes from our send queue, or when the queue last started from empty. */
  lastWriteProgressAt: number;
  bytesIn = 0;
  bytesOut = 0;
  closing = false;
  closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private socket: Socket;
  private readonly parser: StreamParser;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly onWritten = (): void => {
    this.lastWriteProgressAt = Date.now();
  };

  constructor(socket: Socket, private readonly events: ConnectionEvents, private options: ConnectionOptions) {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.lastSentAt = now;
    this.lastWriteProgressAt = now;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.parser = new StreamParser(events, { maxStanzaSize: options.maxStanzaSize });
    socket.setNoDelay(true);
    this.applyKeepAlive();
    this.attach(socket);
  }

  get encrypted(): boolean {
    return this.socket instanceof TLSSocket;
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  /** Bytes accepted by send() that the kernel has not taken yet. */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  setOptions(options: ConnectionOptions): void {
    this.options = options;
    this.applyKeepAlive();
  }

  send(data: Element | string): void {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) return;
    const text = typeof data === 'string' ? data : data.toString();
    const now = Date.now();
    if (this.socket.writableLength === 0) this.lastWriteProgressAt = now;
    this.lastSentAt = now;
    this.bytesOut += Buffer.byteLength(text);
    if (!this.corked) {
      // Everything sent in one turn of the event loop leaves in one write: a login's replies, a broadcast.
      this.corked = this.socket;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(text, this.onWritten);
  }

  private corked: Socket | undefined;
  private readonly uncork = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };

  /** Start a new stream document on the same socket (after SASL success). */
  restartStream(): void {
    this.parser.restart();
  }

  /** Upgrade to TLS as the server side (STARTTLS); the parser starts a new document. */
  startTls(context: SecureContext): void {
    const raw = this.socket;
    this.uncork(); // <proceed/> must leave in plaintext, before the TLS layer takes the socket
    this.detach(raw);
    this.parser.restart(true);
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = tls;
    this.attach(tls);
  }

  /**
   * Send the closing text (stream error and/or </stream:stream>), half-close, and reset the socket if the peer
   * has not closed within closeTimeout: a dead peer must not leave us an orphan in FIN_WAIT1/FIN_WAIT2.
   */
  close(finalText: string): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    if (finalText && !this.socket.destroyed && !this.socket.writableEnded) {
      this.lastSentAt = Date.now();
      this.socket.write(finalText);
    }
    if (!this.socket.destroyed) this.socket.end();
    this.closeTimer = setTimeout(() => this.reset(), this.options.closeTimeout);
    this.closeTimer.unref();
  }

  /** Tear the socket down now with RST: nothing more is owed to a peer that does not answer. */
  reset(): void {
    if (this.closed) return;
    const socket = this.socket;
    if (socket instanceof TLSSocket) {
      // The TLS layer has no resetAndDestroy of its own: reset the TCP handle underneath it.
      const handle = (socket as unknown as { _parent?: Socket })._parent;
      if (handle && typeof handle.resetAndDestroy === 'function' && !handle.destroyed) handle.resetAndDestroy();
      socket.destroy();
    } else if (!socket.destroyed) {
      socket.resetAndDestroy();
    }
  }

  private applyKeepAlive(): void {
    const raw = this.socket instanceof TLSSocket ? ((this.socket as unknown as { _parent?: Socket })._parent ?? this.socket) : this.socket;
    if (this.options.tcpKeepAlive > 0) raw.setKeepAlive(true, this.options.tcpKeepAlive);
    else raw.setKeepAlive(false);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastReceivedAt = Date.now();
    this.bytesIn += chunk.length;
    this.events.onReceived?.();
    this.parser.write(chunk);
  };

  private readonly onEnd = (): void => {
    // allowHalfOpen is off: Node answers the peer's FIN with ours at once, so nothing waits in CLOSE_WAIT.
    if (!this.closing) this.events.onStreamEnd();
  };

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.events.onSocketClosed();
  };

  private readonly onError = (): void => {
    // 'close' follows every socket error; the close path handles it.
  };

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
  }
}
