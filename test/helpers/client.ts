import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Element } from 'ltx';
import { StreamParser, type StreamHeader } from '../../src/xmpp/parser';
import { Inbox } from './inbox';
import { scramFinal } from './scram-client';

const STREAM_NS = 'http://etherx.jabber.org/streams';
export const SM_NS = 'urn:xmpp:sm:3';

/** An XEP-0199 ping from the server, as the watchdog sends it. */
export const isPing = (el: Element): boolean => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('ping', 'urn:xmpp:ping') !== undefined;

export const header = (to = 'localhost') => `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${STREAM_NS}' to='${to}' version='1.0'>`;

/**
 * A hand-driven XMPP client for tests: sends exactly the text it is given and parses what the server sends
 * with the same strict parser the server uses, so tests can wait for elements and assert on them.
 */
export class TestClient extends Inbox {
  headers: StreamHeader[] = [];
  streamEnded = false;
  parseError: string | undefined;
  socketClosed = false;
  /** Bytes received that were only whitespace (keepalives and whitespace probes). */
  whitespaceBytes = 0;
  jid = '';
  /** XEP-0198 from the client's side: stanzas received since <enabled/>, the h this client reports. */
  handled = 0;
  /** Answer the server's <r/> with <a h/> as it arrives. */
  answerAcks = false;
  private smOn = false;
  private socket: Socket | TLSSocket;
  private readonly parser: StreamParser;
  private idCounter = 0;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    this.parser = new StreamParser(
      {
        onStreamStart: (h) => {
          this.headers.push(h);
          this.wake();
        },
        onStanza: (el) => {
          if (el.name === 'enabled' && el.attrs.xmlns === SM_NS) this.smOn = true;
          if (this.smOn && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) this.handled++;
          if (this.answerAcks && el.name === 'r' && el.attrs.xmlns === SM_NS) this.send(`<a xmlns='${SM_NS}' h='${this.handled}'/>`);
          this.elements.push(el);
          this.wake();
        },
        onStreamEnd: () => {
          this.streamEnded = true;
          this.wake();
        },
        onError: (c, t) => {
          this.parseError = `${c}: ${t}`;
          this.wake();
        },
      },
      { maxStanzaSize: 10 * 1024 * 1024 },
    );
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.socketClosed = true;
        this.wake();
        resolve();
      });
    });
    this.attach(socket);
  }

  /** `localAddress` makes the client come from another loopback address (Linux routes all of 127/8 to lo). */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, localAddress }, () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connect, STARTTLS if asked (else the test server allows PLAIN in clear), PLAIN, bind, and initial presence. */
  static async login(port: number, user: string, password = 'secret', resource?: string, opts: { presence?: boolean; host?: string; tls?: boolean; domain?: string } = {}): Promise<TestClient> {
    const c = await TestClient.connect(port, opts.host);
    await c.open(opts.domain);
    if (opts.tls) {
      await c.startTls();
      await c.open(opts.domain);
    }
    await c.authPlain(user, password);
    await c.bind(resource);
    if (opts.presence !== false) c.send('<presence/>');
    return c;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (d: Buffer) => {
      if (/^\s+$/.test(d.toString())) {
        this.whitespaceBytes += d.length;
        this.wake();
      }
      this.parser.write(d);
    });
    socket.on('error', () => undefined);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The domain the stream was last opened to: restarts open to it again. */
  private domain = 'localhost';

  nextId(): string {
    return `t${++this.idCounter}`;
  }

  /** Send a stream header and wait for the server's header and features. */
  async open(to = this.domain): Promise<Element> {
    this.domain = to;
    return this.openWith(header(to));
  }

  /** Send this stream header (a server's, say) and wait for the answering header and features. */
  async openWith(streamHeader: string): Promise<Element> {
    this.parser.restart();
    const n = this.headers.length;
    this.send(streamHeader);
    await this.until(() => this.headers.length > n);
    return this.waitFor((el) => el.name === 'stream:features');
  }

  /** STARTTLS; `inject` is plaintext sent in the same write, as an attacker on the path would. */
  async startTls(inject = ''): Promise<void> {
    this.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>${inject}`);
    await this.waitFor((el) => el.name === 'proceed');
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    this.socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    this.attach(this.socket);
  }

  async authPlain(user: string, password: string): Promise<Element> {
    const data = Buffer.from(`\0${user}\0${password}`).toString('base64');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${data}</auth>`);
    const answer = await this.waitFor((el) => el.name === 'success' || el.name === 'failure');
    if (answer.name === 'success') await this.open();
    return answer;
  }

  /** SCRAM-SHA-1 or SCRAM-SHA-256 done by hand (RFC 5802), verifying the server's signature too. */
  async authScram(user: string, password: string, hash: 'sha1' | 'sha256', authzid = ''): Promise<Element> {
    const mech = hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256';
    const cnonce = randomBytes(12).toString('base64');
    const bare = `n=${user},r=${cnonce}`;
    const gs2 = authzid ? `n,a=${authzid},` : 'n,,';
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mech}'>${Buffer.from(`${gs2}${bare}`).toString('base64')}</auth>`);
    const challenge = await this.waitFor((el) => el.name === 'challenge' || el.name === 'failure');
    if (challenge.name === 'failure') return challenge;
    const { clientFinal, serverSignature } = scramFinal(hash, password, gs2, bare, Buffer.from(challenge.getText(), 'base64').toString());
    this.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${Buffer.from(clientFinal).toString('base64')}</response>`);
    const answer = await this.waitFor((el) => el.name === 'success' || el.name === 'failure');
    if (answer.name === 'success') {
      if (Buffer.from(answer.getText(), 'base64').toString() !== serverSignature) throw new Error('server signature mismatch');
      await this.open();
    }
    return answer;
  }

  async bind(resource?: string): Promise<Element> {
    const id = this.nextId();
    const res = resource ? `<resource>${resource}</resource>` : '';
    this.send(`<iq type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${res}</bind></iq>`);
    const reply = await this.waitFor((el) => el.name === 'iq' && el.attrs.id === id);
    this.jid = reply.getChild('bind')?.getChildText('jid') ?? '';
    return reply;
  }

  /** Send an iq (the id is filled in) and wait for its reply. */
  async iq(body: string, attrs = ''): Promise<Element> {
    const id = this.nextId();
    this.send(`<iq id='${id}' ${attrs}>${body}</iq>`);
    return this.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'));
  }

  protected received(): string {
    return `${this.elements.map((e) => e.toString()).join(' ').slice(0, 2000)}${this.parseError ? ` parse error ${this.parseError}` : ''}`;
  }

  /** Close politely and wait for the socket to go. */
  async close(): Promise<void> {
    if (!this.socketClosed) {
      this.send('</stream:stream>');
      this.socket.end();
      await this.closed;
    }
  }

  /** End the TCP connection (a FIN) without closing the stream: a connection lost, not a session closed. */
  async endSocket(): Promise<void> {
    this.socket.end();
    await this.closed;
  }

  /** Vanish without a word (RST). */
  destroy(): void {
    try {
      if (!this.socket.destroyed) this.socket.resetAndDestroy();
    } catch {
      // A TLS socket has no TCP handle of its own to reset; destroying it is the best we can do.
    }
    this.socket.destroy();
  }

  /** Answer every XMPP ping from the server (result, or an error reply when asked) until stopped. */
  answerPings(withError = false): { count: number; stop(): void } {
    const state = { count: 0, stopped: false, stop: () => (state.stopped = true) };
    const loop = async () => {
      while (!state.stopped && !this.socketClosed) {
        const ping = await this.waitFor(isPing, 60_000).catch(() => undefined);
        if (!ping || state.stopped) return;
        const type = withError ? 'error' : 'result';
        const body = withError ? "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>" : '';
        this.send(`<iq type='${type}' id='${ping.attrs.id}' to='${ping.attrs.from}'>${body}</iq>`);
        state.count++;
      }
    };
    void loop();
    return state;
  }

  /** XEP-0198 <enable/>; resolves with <enabled/> (or <failed/>). Counting starts at zero from here. */
  async enableSm(attrs = "resume='true'"): Promise<Element> {
    this.send(`<enable xmlns='${SM_NS}' ${attrs}/>`);
    const reply = await this.waitFor((el) => el.attrs.xmlns === SM_NS && (el.name === 'enabled' || el.name === 'failed'));
    if (reply.name === 'enabled') this.handled = 0;
    return reply;
  }

  /**
   * A new connection that authenticates and resumes `previd`, reporting `h` stanzas received; resolves with
   * the client and the server's <resumed/> or <failed/>. The new client counts on from `h`.
   */
  static async resume(port: number, user: string, previd: string, h: number): Promise<{ client: TestClient; reply: Element }> {
    const c = await TestClient.connect(port);
    await c.open();
    await c.authPlain(user, 'secret');
    c.smOn = true;
    c.handled = h;
    c.send(`<resume xmlns='${SM_NS}' previd='${previd}' h='${h}'/>`);
    const reply = await c.waitFor((el) => el.attrs.xmlns === SM_NS && (el.name === 'resumed' || el.name === 'failed'));
    if (reply.name === 'failed') c.smOn = false;
    return { client: c, reply };
  }

  /** Local port of the client socket, to find the server's side of it with ss. */
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** Stop reading from the socket: the kernel buffers fill and the server's writes stall. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }
}
