import type { Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import type { TlsUpgrade, Transport, TransportEvents } from './transport.js';

const IGNORE: TransportEvents = { onData: () => undefined, onEnd: () => undefined, onClose: () => undefined, onDrain: () => undefined, onAlive: () => undefined, onUnusable: () => undefined };

/**
 * The flushes of every transport that opened a batch in this iteration of the event loop, run once all its
 * I/O callbacks have: a turn ends there, not after each callback as with process.nextTick. Over TLS the
 * records that arrive in one read come up in more than one callback, so the answers to one burst left as
 * several records, each its own encryption and syscall: TLS routing ran at three fifths of the rate.
 */
let dueFlushes: (() => void)[] = [];
const flushDue = (): void => {
  const due = dueFlushes;
  dueFlushes = [];
  for (const flush of due) flush();
};

/** One TCP socket, optionally upgraded to TLS by STARTTLS. */
export class TcpTransport implements Transport {
  lastWriteProgressAt = Date.now();
  readonly remoteAddress: string;
  readonly remotePort: number;
  private socket: Socket;
  private events: TransportEvents = IGNORE;
  /** What this turn of the event loop has written so far: it leaves as one write, in one syscall, at the turn's end (flushDue). */
  private batch: string | undefined;
  /**
   * Everything written has gone to the kernel. The watchdog reads pendingBytes of every session every tick;
   * for an idle one this answers without reaching into the socket's stream state, a third of a tick's time.
   */
  private drained = true;

  constructor(socket: Socket) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    this.attach(socket);
  }

  get encrypted(): boolean {
    return this.socket instanceof TLSSocket;
  }

  get pendingBytes(): number {
    return (this.batch?.length ?? 0) + (this.drained ? 0 : this.socket.writableLength);
  }

  get ended(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  listen(events: TransportEvents): void {
    this.events = events;
  }

  write(text: string): void {
    if (this.ended) return;
    // Everything written in one turn leaves together: a login's replies, a broadcast, a burst of routed
    // messages. Joined here, it is one write for Node's stream, where a corked socket queued each piece with
    // its own callback and handed them to writev.
    if (this.batch === undefined) {
      this.batch = text;
      if (dueFlushes.push(this.flush) === 1) setImmediate(flushDue);
    } else {
      this.batch += text;
    }
  }

  /**
   * Straight to the socket, or into the turn's batch if one is open. Held for the turn's end instead, each
   * probe of the watchdog's batch would stay alive until then, through any young-generation collection in
   * between, and be moved to the old generation as garbage for a major GC.
   */
  writeAlone(text: string): void {
    if (this.ended) return;
    if (this.batch !== undefined) this.batch += text;
    else this.send(text);
  }

  end(): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
  }

  reset(): void {
    const socket = this.socket;
    if (socket instanceof TLSSocket) {
      // The TLS layer has no resetAndDestroy of its own: reset the TCP handle underneath it.
      const raw = tcpOf(socket);
      if (raw !== socket && typeof raw.resetAndDestroy === 'function' && !raw.destroyed) raw.resetAndDestroy();
      socket.destroy();
    } else if (!socket.destroyed) {
      socket.resetAndDestroy();
    }
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  setKeepAlive(ms: number): void {
    const raw = tcpOf(this.socket);
    if (ms > 0) raw.setKeepAlive(true, ms);
    else raw.setKeepAlive(false);
  }

  startTls(upgrade: TlsUpgrade): void {
    const raw = this.socket;
    this.flush(); // <proceed/> must leave in plaintext, before the TLS layer takes the socket
    this.detach(raw);
    const { context: secureContext, onSecure } = upgrade;
    // Certificates are judged by the stream (SASL EXTERNAL, or dialback instead): never refused here.
    const tls = upgrade.servername !== undefined
      ? tlsConnect({ socket: raw, secureContext, servername: upgrade.servername, rejectUnauthorized: false })
      : new TLSSocket(raw, { isServer: true, secureContext, requestCert: upgrade.requestCert === true, rejectUnauthorized: false });
    if (upgrade.servername !== undefined) {
      if (onSecure) tls.once('secureConnect', () => onSecure(tls));
    } else if (upgrade.requestCert || onSecure) {
      tls.once('secure', () => {
        if (upgrade.requestCert) judgePeer(tls);
        onSecure?.(tls);
      });
    }
    this.socket = tls;
    this.attach(tls);
  }

  private send(text: string): void {
    if (this.socket.writableLength === 0) this.lastWriteProgressAt = Date.now();
    this.drained = false;
    this.socket.write(text, this.onWritten);
  }

  private readonly flush = (): void => {
    const text = this.batch;
    if (text === undefined) return;
    this.batch = undefined;
    if (!this.ended) this.send(text);
  };

  private readonly onWritten = (): void => {
    this.lastWriteProgressAt = Date.now();
    // Node's 'drain' comes only after a write past the stream's 16 KiB high-water mark; a pause threshold
    // below it (a small maxSendQueue) would then wait for ever. An empty queue is the drain, whatever its size.
    if (this.socket.writableLength === 0) {
      this.drained = true;
      this.events.onDrain();
    }
  };

  private readonly onData = (chunk: Buffer): void => this.events.onData(chunk);
  // allowHalfOpen is off: Node answers the peer's FIN with ours at once, so nothing waits in CLOSE_WAIT.
  private readonly onEnd = (): void => this.events.onEnd();
  private readonly onClose = (): void => this.events.onClose();
  // 'close' follows every socket error; the close path handles it.
  private readonly onError = (): void => undefined;

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

/**
 * Node sets `authorized` only on sockets a tls.Server accepted; ours are upgraded in place by STARTTLS, so
 * the same question is put to OpenSSL here, as tls.Server does: did the chain the peer sent verify against
 * our trusted authorities?
 */
interface TlsHandle {
  verifyError(): Error | null;
}

function judgePeer(socket: TLSSocket): void {
  const internals = socket as unknown as { _handle?: TlsHandle; ssl?: TlsHandle };
  const handle = internals._handle ?? internals.ssl;
  const error = handle ? handle.verifyError() : new Error('no TLS handle');
  const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  socket.authorized = presented && error === null;
  if (!socket.authorized) socket.authorizationError = error ?? new Error('no certificate');
}

/** The TCP socket under a TLS one (Node keeps it as _parent), or the socket itself. */
export function tcpOf(socket: Socket): Socket {
  return socket instanceof TLSSocket ? ((socket as unknown as { _parent?: Socket })._parent ?? socket) : socket;
}
