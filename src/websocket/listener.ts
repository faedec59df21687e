import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type BlockList, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { Context } from '../context.js';
import { WebSocketTransport } from '../transport/websocket.js';
import { serveHostMeta } from './host-meta.js';
import { peerOf, trustedProxies } from './proxies.js';

/** Bytes a message may have beyond c2s.maxStanzaSize, so the parser (not ws) refuses one just over it, with <policy-violation/>. */
const MESSAGE_SLACK = 4096;

/**
 * The WebSocket listener (RFC 7395): an HTTP server that upgrades requests for listeners.websocket.path
 * that ask for the `xmpp` subprotocol, refuses the others with a status and a body that says why, and serves
 * XEP-0156 host-meta beside them. Each WebSocket goes to `accept` as a transport.
 */
export class WebSocketListener {
  /** What listens: the HTTP server itself, or for wss a TCP server that hands it each connection under TLS. */
  readonly listener: NetServer;
  private readonly http: HttpServer;
  private readonly wss: WebSocketServer;
  /** websocket.trustedProxies parsed once per value it has had (a reload may change it). */
  private proxies: { text: string; list: BlockList };

  constructor(private readonly ctx: Context, tls: SecureContext | undefined, private readonly accept: (transport: WebSocketTransport) => void) {
    const secure = ctx.config.listeners.websocket.tls;
    if (secure && !tls) throw new Error('listeners.websocket.tls is on but there is no TLS certificate');
    // Parsed now, so a wrong value stops the start with its reason rather than failing each client.
    this.proxies = { text: ctx.config.websocket.trustedProxies, list: trustedProxies(ctx.config.websocket.trustedProxies) };
    this.http = createHttpServer(this.onRequest);
    // https.createServer takes a certificate, not the SecureContext the server already holds (STARTTLS's):
    // each connection is wrapped in TLS with that context and handed to the HTTP server.
    this.listener = secure
      ? createNetServer((socket) => {
          const wrapped = new TLSSocket(socket, { isServer: true, secureContext: tls });
          wrapped.on('error', () => wrapped.destroy());
          this.http.emit('connection', wrapped);
        })
      : this.http;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false, // compression of attacker-chosen text beside secrets is what CRIME and BREACH use
      maxPayload: ctx.config.c2s.maxStanzaSize + MESSAGE_SLACK,
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
    this.wss.on('wsClientError', (_err, socket) => {
      this.count('bad-handshake');
      socket.destroy();
    });
    this.http.on('upgrade', this.onUpgrade);
    this.http.on('clientError', (_err, socket) => socket.destroy());
  }

  private get config() {
    return this.ctx.config;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const path = (req.url ?? '/').split('?')[0];
    const where = this.config.listeners.websocket.path;
    if (path !== where) return this.refuse(socket, 404, 'not-found', `no WebSocket endpoint at ${path}; XMPP is at ${where}`);
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes('xmpp')) {
      return this.refuse(socket, 400, 'no-subprotocol', 'this endpoint speaks XMPP over WebSocket (RFC 7395): ask for the subprotocol with Sec-WebSocket-Protocol: xmpp');
    }
    let proxies;
    try {
      proxies = this.trusted();
    } catch (err) {
      this.ctx.log.error({ event: 'websocket.config', err: (err as Error).message }, 'websocket.trustedProxies is wrong');
      return this.refuse(socket, 500, 'error', 'the server is misconfigured');
    }
    const peer = peerOf(req, proxies, this.config.listeners.websocket.tls);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.count('ok');
      this.accept(new WebSocketTransport(ws, socket, peer));
    });
  };

  /** The trusted proxies of the configuration now; a value a reload brought is parsed once. */
  private trusted(): BlockList {
    const text = this.config.websocket.trustedProxies;
    if (text !== this.proxies.text) this.proxies = { text, list: trustedProxies(text) };
    return this.proxies.list;
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && serveHostMeta(path, this.config, res)) return;
    if (path === this.config.listeners.websocket.path) {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('this is an XMPP WebSocket endpoint (RFC 7395): connect with a WebSocket and the xmpp subprotocol\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: XMPP over WebSocket is at ${this.config.listeners.websocket.path}, discovery at /.well-known/host-meta\n`);
  };

  private refuse(socket: Socket, status: number, result: string, body: string): void {
    this.count(result);
    const reason = status === 400 ? 'Bad Request' : status === 404 ? 'Not Found' : 'Internal Server Error';
    const text = `${body}\n`;
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  }

  private count(result: string): void {
    this.ctx.metrics.websocketHandshakes.inc({ result });
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen({ port, host }, () => {
        this.listener.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => (this.listener.listening ? this.listener.close(() => resolve()) : resolve()));
  }
}
