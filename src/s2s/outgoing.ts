import type { Socket } from 'node:net';
import { Element } from 'ltx';
import type { Context } from '../context.js';
import { ServerStreamFraming } from '../framing/xml-stream.js';
import { Session, type SessionHost } from '../sessions/session.js';
import { Connection, connectionOptions } from '../transport/connection.js';
import { ServerStream } from './server-stream.js';
import { TcpTransport } from '../transport/tcp.js';
import type { StreamErrorCondition } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';
import type { ParseErrorCondition, StreamHeader } from '../xmpp/parser.js';
import { certifiedFor, type S2sTls } from './certificates.js';
import { dialbackKey } from './dialback-key.js';
import { dialbackElement, isDialback } from './dialback.js';
import { PeerLedger } from './peer-ledger.js';

export interface S2SOutHost extends SessionHost {
  readonly ctx: Context;
  readonly s2sTls: S2sTls | undefined;
  readonly secret: string;
  /** Whether the peer may stay unproven by its certificate (dialback on, or an insecure domain). */
  dialbackAllowed(domain: string): boolean;
  /** The peer accepted us: stanzas may flow. */
  ready(stream: S2SOutStream): void;
  /** The peer's answer to one of our db:verify requests. */
  verified(domain: string, id: string, valid: boolean): void;
  connectionGone(conn: Connection): void;
}

type Stage = 'opening' | 'starttls' | 'sasl' | 'dialback' | 'ready';

/**
 * Our stream to a peer server: open, STARTTLS (required unless s2s.requireTls is off), then SASL EXTERNAL
 * where the peer offers it, else dialback. Once ready it carries every stanza for that domain; the peer
 * answers on its own stream to us, so its proof of life comes back through the router (see PeerLedger).
 */
export class S2SOutStream extends ServerStream {
  readonly session: Session;
  readonly conn: Connection;
  private stage: Stage = 'opening';
  private streamId: string | undefined;
  private offersDialback = false;
  private saslDone = false;
  private triedExternal = false;
  private canVerify = false;
  private readonly verifies: Element[] = [];
  /** Why the negotiation failed, for the log and the bounces. */
  failure: string | undefined;
  readonly startedAt = Date.now();

  constructor(socket: Socket, protected readonly host: S2SOutHost, readonly domain: string) {
    super();
    const { config } = host.ctx;
    const policy = config.watchdog.s2sOut;
    const framing = new ServerStreamFraming(this, config.s2s.maxStanzaSize);
    this.conn = new Connection(new TcpTransport(socket), framing, this, connectionOptions(policy), { xmlns: NS.SERVER, from: config.domain, to: domain });
    this.session = new Session('s2sOut', this.conn, policy, host, new PeerLedger(() => ({ confirmAfter: host.ctx.config.s2s.confirmAfter, maxStanzas: host.ctx.config.s2s.queue.maxStanzas })));
    this.openStream();
  }

  private get ctx(): Context {
    return this.host.ctx;
  }

  get isReady(): boolean {
    return this.stage === 'ready' && this.session.state === 'active';
  }

  /** A db:verify for the peer's authoritative server: sent once the stream is secure, whether or not we are authenticated. */
  sendVerify(el: Element): void {
    if (this.canVerify) this.conn.send(el);
    else this.verifies.push(el);
  }

  private openStream(): void {
    this.conn.open({ xmlns: NS.SERVER, from: this.ctx.config.domain, to: this.domain, dialback: true });
  }

  onStreamStart(header: StreamHeader): void {
    if (header.local !== 'stream' || header.uri !== NS.STREAM || header.attrs.xmlns !== NS.SERVER) return this.fail('invalid-namespace', 'a server stream in jabber:server was expected');
    const version = header.attrs.version;
    if (version === undefined || !/^1\.\d+$/.test(version)) return this.fail('unsupported-version', 'XMPP 1.0 streams only');
    this.streamId = header.attrs.id;
    this.offersDialback = header.attrs['xmlns:db'] === NS.DIALBACK;
  }

  onStanza(el: Element): void {
    this.session.stanzasIn.inc();
    if (el.getNS() === NS.STREAM && el.getName() === 'features') return this.features(el);
    if (el.getNS() === NS.STREAM && el.getName() === 'error') return this.streamError(el);
    if (el.attrs.xmlns === NS.TLS && el.name === 'proceed' && this.stage === 'starttls') return this.startTls();
    if (el.attrs.xmlns === NS.TLS && el.name === 'failure') return this.fail('undefined-condition', 'the peer refused STARTTLS');
    if (el.attrs.xmlns === NS.SASL && this.stage === 'sasl') return this.saslAnswer(el);
    if (isDialback(el, 'result') && this.stage === 'dialback') return this.dialbackAnswer(el);
    if (isDialback(el, 'verify')) return this.verifyAnswer(el);
    // Stanzas travel one way: the peer has its own stream to us for whatever it wants to send.
  }

  override onError(condition: ParseErrorCondition, text: string): void {
    this.failure ??= `the peer sent what is not XML: ${text}`;
    super.onError(condition, text);
  }

  private features(features: Element): void {
    const { s2s } = this.ctx.config;
    const tls = this.host.s2sTls;
    if (this.saslDone) return this.becomeReady();
    if (!this.conn.encrypted) {
      if (features.getChild('starttls', NS.TLS) && tls) {
        this.stage = 'starttls';
        this.conn.send(new Element('starttls', { xmlns: NS.TLS }));
        return;
      }
      if (s2s.requireTls) return this.fail('policy-violation', tls ? `${this.domain} does not offer STARTTLS, which this server requires` : 'this server has no certificate for TLS, which it requires');
    }
    this.canVerify = true;
    for (const el of this.verifies.splice(0)) this.conn.send(el);
    const mechanisms = features.getChild('mechanisms', NS.SASL)?.getChildren('mechanism').map((m) => m.getText().trim()) ?? [];
    if (this.conn.encrypted && mechanisms.includes('EXTERNAL') && !this.triedExternal) {
      this.triedExternal = true;
      this.stage = 'sasl';
      this.conn.send(new Element('auth', { xmlns: NS.SASL, mechanism: 'EXTERNAL' }).t('='));
      return;
    }
    this.dialback(features);
  }

  private dialback(features: Element | undefined): void {
    if (!this.offersDialback && !features?.getChild('dialback', NS.DIALBACK_FEATURE)) return this.fail('undefined-condition', `${this.domain} offers neither SASL EXTERNAL for our certificate nor dialback`);
    if (this.streamId === undefined) return this.fail('invalid-xml', 'the peer\'s stream header has no id to derive a dialback key from');
    const { domain } = this.ctx.config;
    this.stage = 'dialback';
    this.conn.send(dialbackElement('result', { from: domain, to: this.domain }, dialbackKey(this.host.secret, this.domain, domain, this.streamId)));
  }

  private startTls(): void {
    this.conn.startTls({
      context: this.host.s2sTls!.client,
      servername: this.domain,
      onSecure: (socket) => {
        if (!certifiedFor(socket, this.domain) && !this.host.dialbackAllowed(this.domain)) {
          return this.fail('policy-violation', `the certificate of ${this.domain} does not prove it (${socket.authorizationError ?? 'wrong name'}), and dialback is off`);
        }
        this.stage = 'opening';
        this.openStream();
      },
    });
  }

  private saslAnswer(el: Element): void {
    if (el.name === 'success') {
      this.saslDone = true;
      this.stage = 'opening';
      this.conn.restart();
      this.openStream();
      return;
    }
    // Refused: our certificate did not convince the peer; dialback may still.
    this.dialback(undefined);
  }

  private dialbackAnswer(el: Element): void {
    const type = el.attrs.type;
    if (type === 'valid') return this.becomeReady();
    const why = el.getChild('error')?.getChildElements()[0]?.name;
    this.fail('not-authorized', `${this.domain} refused our dialback key${type === 'error' && why ? ` (${why})` : ''}`);
  }

  private verifyAnswer(el: Element): void {
    const id = el.attrs.id;
    if (id !== undefined) this.host.verified(this.domain, id, el.attrs.type === 'valid');
  }

  private becomeReady(): void {
    this.stage = 'ready';
    const { session } = this;
    session.domain = this.domain;
    session.authenticated = true;
    session.state = 'active';
    session.alive(Date.now());
    this.ctx.registry.bindDomain(session, this.domain);
    this.ctx.log.info({ event: 's2s.out.ready', session: session.id, domain: this.domain, tls: this.conn.encrypted, external: this.saslDone, ms: Date.now() - this.startedAt }, 'stream to peer server ready');
    this.host.ready(this);
  }

  private streamError(el: Element): void {
    const condition = el.getChildElements().find((c) => c.name !== 'text')?.name ?? 'undefined-condition';
    const text = el.getChildText('text', NS.STREAMS_ERR) ?? '';
    this.failure ??= `${this.domain} sent <${condition}/>${text ? `: ${text}` : ''}`;
    this.session.close('peer-closed');
  }

  private fail(condition: StreamErrorCondition, text: string): void {
    this.failure ??= text;
    this.ctx.log.warn({ event: 's2s.out.failed', session: this.session.id, domain: this.domain, condition, text }, 'stream to peer server failed');
    this.session.close(condition === 'not-authorized' ? 'not-authorized' : condition === 'policy-violation' ? 'policy-violation' : 'error', { condition, text });
  }
}
