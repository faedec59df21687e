import { parse, type Element } from 'ltx';
import WebSocket from 'ws';
import { Inbox } from './inbox';

export const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

/**
 * A raw RFC 7395 client for the tests: one element per text message, each parsed on its own, so a test
 * sees exactly what the server framed. Pings are answered by ws itself unless `answerPings` is false.
 */
export class WsClient extends Inbox {
  /** Raw text of every message, in order. */
  readonly messages: string[] = [];
  pings = 0;
  closeCode: number | undefined;
  closeReason = '';
  jid = '';
  private idCounter = 0;
  readonly closed: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer, binary: boolean) => {
      const text = data.toString();
      this.messages.push(binary ? `(binary ${text})` : text);
      try {
        this.elements.push(parse(text) as Element);
      } catch {
        this.elements.push(parse('<unparsable/>') as Element);
      }
      this.wake();
    });
    ws.on('ping', () => {
      this.pings++;
      this.wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve();
      });
    });
  }

  /** `answerPings: false` leaves ws's automatic pong off, as a frozen peer would. */
  /** `ca`: the certificate to trust for wss:// (with servername localhost). */
  static connect(url: string, opts: { protocol?: string | null; answerPings?: boolean; headers?: Record<string, string>; localAddress?: string; ca?: string } = {}): Promise<WsClient> {
    const protocols = opts.protocol === null ? [] : [opts.protocol ?? 'xmpp'];
    return new Promise((resolve, reject) => {
      const tls = opts.ca ? { ca: opts.ca, servername: 'localhost' } : {};
      const ws = new WebSocket(url, protocols, { autoPong: opts.answerPings !== false, headers: opts.headers, localAddress: opts.localAddress, ...tls });
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  /** Connect, PLAIN (the test server allows it), bind, and initial presence unless told not to. */
  static async login(url: string, user: string, resource?: string, opts: { presence?: boolean; password?: string } = {}): Promise<WsClient> {
    const c = await WsClient.connect(url);
    await c.open();
    await c.authPlain(user, opts.password ?? 'secret');
    await c.bind(resource);
    if (opts.presence !== false) c.send("<presence xmlns='jabber:client'/>");
    return c;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  nextId(): string {
    return `w${++this.idCounter}`;
  }

  /** <open/>, then the server's <open/> and features. */
  async open(to = 'localhost'): Promise<Element> {
    this.send(`<open xmlns='${FRAMING}' to='${to}' version='1.0'/>`);
    await this.waitFor((el) => el.name === 'open' && el.attrs.xmlns === FRAMING);
    return this.waitFor((el) => el.name === 'stream:features');
  }

  async authPlain(user: string, password: string): Promise<Element> {
    const data = Buffer.from(`\0${user}\0${password}`).toString('base64');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${data}</auth>`);
    const answer = await this.waitFor((el) => el.name === 'success' || el.name === 'failure');
    if (answer.name === 'success') await this.open();
    return answer;
  }

  async bind(resource?: string): Promise<Element> {
    const id = this.nextId();
    const res = resource ? `<resource>${resource}</resource>` : '';
    this.send(`<iq xmlns='jabber:client' type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${res}</bind></iq>`);
    const reply = await this.waitFor((el) => el.name === 'iq' && el.attrs.id === id);
    this.jid = reply.getChild('bind')?.getChildText('jid') ?? '';
    return reply;
  }

  async iq(body: string, attrs = ''): Promise<Element> {
    const id = this.nextId();
    this.send(`<iq xmlns='jabber:client' id='${id}' ${attrs}>${body}</iq>`);
    return this.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'));
  }

  protected received(): string {
    return this.messages.join(' ').slice(-2000);
  }

  /** <close/>, then wait for the server's close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.send(`<close xmlns='${FRAMING}'/>`);
    await this.closed;
  }

  /** Vanish: the TCP connection is reset, no close frame. */
  destroy(): void {
    this.ws.terminate();
  }

  /** Stop reading: the server's writes back up. */
  pauseReading(): void {
    this.ws.pause();
  }
}
