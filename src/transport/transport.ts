import type { SecureContext, TLSSocket } from 'node:tls';

/** What a transport reports; each callback on the transport's own schedule, onClose exactly once. */
export interface TransportEvents {
  onData(chunk: Buffer): void;
  /** The peer ended its side; the transport answers with its own end. */
  onEnd(): void;
  onClose(): void;
  /** Everything written so far has been taken by the peer's side (the send buffer emptied). */
  onDrain(): void;
  /** The peer proved alive without sending data: a WebSocket pong. */
  onAlive(): void;
  /** The peer sent what cannot carry XMPP at all (a binary WebSocket frame): a stream error follows. */
  onUnusable(text: string): void;
}

/** How a transport becomes TLS. */
export interface TlsUpgrade {
  context: SecureContext;
  /** As the server: ask the peer for its certificate (a peer server's, for SASL EXTERNAL), not insisting on one. */
  requestCert?: boolean;
  /** As the client: the name we expect the peer to prove (SNI too). Absent: we are the server. */
  servername?: string;
  /** The handshake is done: the socket tells who the peer proved to be. */
  onSecure?(socket: TLSSocket): void;
}

/** Why we end a transport, where it can say so (a WebSocket close code: 1000, 1008, 1003). */
export type EndReason = 'normal' | 'policy-violation' | 'unsupported-data';

/**
 * Bytes to and from one peer (a TCP or TLS socket, or a WebSocket). It knows nothing of XML: the
 * framing on top of it decides what the bytes mean. A transport owns write, end, reset, the bytes still
 * waiting to be written and when the peer last took some.
 */
export interface Transport {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The bytes are protected in transit (TLS here, or a proxy this server trusts). */
  readonly encrypted: boolean;
  /** Bytes accepted by write() that the peer has not taken yet. */
  readonly pendingBytes: number;
  /** Last time the peer took bytes from our send queue, or when the queue last started from empty. */
  readonly lastWriteProgressAt: number;
  /** Nothing more can be written: ended, reset or gone. */
  readonly ended: boolean;
  listen(events: TransportEvents): void;
  /** What is written in one turn of the event loop may leave together, at the turn's end. */
  write(text: string): void;
  /** A write nothing else is likely to join in this turn (the watchdog's probe): it leaves at once, in order. */
  writeAlone(text: string): void;
  /** Half-close after what was written: a FIN on TCP, a close frame on a WebSocket. */
  end(reason?: EndReason): void;
  /** Tear down at once, with a RST where the transport has one. */
  reset(): void;
  /** Stop reading from the peer (its bytes wait in the kernel, and TCP's window tells it to slow down). */
  pause(): void;
  resume(): void;
  /** SO_KEEPALIVE initial delay in ms; 0 turns it off. Transports without one ignore it. */
  setKeepAlive(ms: number): void;
  /** Upgrade in place to TLS (STARTTLS), as the server or, with a servername, the client; absent where the transport cannot. */
  startTls?(upgrade: TlsUpgrade): void;
  /** A ping the peer must answer (onAlive); absent where the transport has none. */
  ping?(): void;
}
