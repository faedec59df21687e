import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { tcpOf } from './tcp.js';
import type { EndReason, Transport, TransportEvents } from './transport.js';

const CLOSE_CODE: Record<EndReason, number> = { normal: 1000, 'policy-violation': 1008, 'unsupported-data': 1003 };

const IGNORE: TransportEvents = {
  onData: () => undefined, onEnd: () => undefined, onClose: () => undefined, onDrain: () => undefined, onAlive: () => undefined, onUnusable: () => undefined,
};

/** Who is at the other end, as the listener worked it out (the proxy's headers count only from a trusted proxy). */
export interface WebSocketPeer {
  remoteAddress: string;
  remotePort: number;
  /** wss here, or https to a proxy we trust. */
  encrypted: boolean;
}

/**
 * One WebSocket (RFC 6455) carrying RFC 7395: each text message is handed on whole, a ping frame is the
 * keepalive and its pong proof of life, and the end is a close frame with the code the stream's end calls for.
 * A close frame or a dropped connection without <close/> first is a lost connection (onEnd), as a FIN is on TCP.
 */
export class WebSocketTransport implements Transport {
  lastWriteProgressAt = Date.now();
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly encrypted: boolean;
  private events: TransportEvents = IGNORE;
  private closing = false;
  private gone = false;

  constructor(private readonly ws: WebSocket, private readonly socket: Socket, peer: WebSocketPeer) {
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.encrypted = peer.encrypted;
    ws.on('message', this.onMessage);
    ws.on('pong', this.onPong);
    ws.on('close', this.onClose);
    ws.on('error', () => undefined); // 'close' follows
  }

  get pendingBytes(): number {
    return this.ws.bufferedAmount;
  }

  get ended(): boolean {
    return this.closing || this.gone;
  }

  listen(events: TransportEvents): void {
    this.events = events;
  }

  write(text: string): void {
    if (this.ended) return;
    if (this.ws.bufferedAmount === 0) this.lastWriteProgressAt = Date.now();
    this.ws.send(text, this.onWritten);
  }

  /** Each message leaves at once already. */
  writeAlone(text: string): void {
    this.write(text);
  }

  end(reason: EndReason = 'normal'): void {
    if (this.ended) return;
    this.closing = true;
    this.ws.close(CLOSE_CODE[reason]);
  }

  /** RST the TCP connection underneath, as the XML stream's transport does. */
  reset(): void {
    const raw = tcpOf(this.socket);
    if (!raw.destroyed && typeof raw.resetAndDestroy === 'function') raw.resetAndDestroy();
    this.ws.terminate();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  setKeepAlive(ms: number): void {
    const raw = tcpOf(this.socket);
    if (ms > 0) raw.setKeepAlive(true, ms);
    else raw.setKeepAlive(false);
  }

  ping(): void {
    if (!this.ended) this.ws.ping();
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (isBinary) return this.events.onUnusable('binary WebSocket frames do not carry XMPP; send text frames (RFC 7395 §3.2)');
    this.events.onData(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
  };

  private readonly onPong = (): void => this.events.onAlive();

  private readonly onWritten = (): void => {
    this.lastWriteProgressAt = Date.now();
    if (this.ws.bufferedAmount === 0) this.events.onDrain();
  };

  private readonly onClose = (): void => {
    if (this.gone) return;
    this.gone = true;
    // The peer's close frame (or the connection dropping) with no <close/> before it: a connection lost.
    if (!this.closing) this.events.onEnd();
    this.events.onClose();
  };
}
