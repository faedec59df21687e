import { Element } from 'ltx';
import type { TLSSocket } from 'node:tls';
import type { Context } from '../context.js';
import { ServerStreamFraming } from '../framing/xml-stream.js';
import { Session, type SessionHost } from '../sessions/session.js';
import { Connection, connectionOptions } from '../transport/connection.js';
import { ServerStream } from './server-stream.js';
import type { Transport } from '../transport/transport.js';
import type { StreamErrorCondition } from '../xmpp/errors.js';
import { parseJid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';
import type { StreamHeader } from '../xmpp/parser.js';
import { certifiedFor, type S2sTls } from './certificates.js';
import { verifyDialbackKey } from './dialback-key.js';
import { dialbackElement, dialbackError, isDialback } from './dialback.js';
import { randomId } from '../xmpp/random-id.js';

export interface S2SInHost extends SessionHost {
  readonly ctx: Context;
  readonly s2sTls: S2sTls | undefined;
  readonly secret: string;
  /** XEP-0220 receiving role: ask `originating`'s authoritative server whether `key` is its key for our stream `id`. */
  verify(originating: string, streamId: string, key: string): Promise<boolean>;
  /** Whether a peer that did not prove its domain by certificate may still authenticate by dialback. */
  dialbackAllowed(domain: string): boolean;
  /** A peer proved `domain` on a stream to us (it is reachable: retry at once what waits for it). */
  authenticated(session: Session, domain: string): void;
  connectionGone(conn: Connection): void;
}

type Stage = 'pre-tls' | 'negotiating' | 'authenticated';

/**
 * A peer server's stream to us (RFC 6120): STARTTLS, then SASL EXTERNAL with its certificate (XEP-0178) or
 * dialback (XEP-0220), receiving role and authoritative role both. Stanzas come one way only: from the
 * domains the stream authenticated, to ours, and nothing may be asked back on it.
 */
export class S2SInStream extends ServerStream {
  readonly session: Session;
  readonly conn: Connection;
  private stage: Stage;
  private readonly id = randomId(12);
  /** The peer's `from` in its header, once it sent one. */
  private peer: string | undefined;
  private tlsSocket: TLSSocket | undefined;
  /** Domains this stream may send from: one by SASL, or several by dialback. */
  private readonly domains = new Set<string>();
  private verifying = 0;

  constructor(transport: Transport, protected readonly host: S2SInHost) {
    super();
    const { config } = host.ctx;
    const policy = config.watchdog.s2sIn;
    const framing = new ServerStreamFraming(this, config.s2s.maxStanzaSize);
    this.conn = new Connection(transport, framing, this, connectionOptions(policy), { xmlns: NS.SERVER, from: config.domain });
    this.session = new Session('s2sIn', this.conn, policy, host);
    this.stage = host.s2sTls && transport.startTls ? 'pre-tls' : 'negotiating';
  }

  private get ctx(): Context {
    return this.host.ctx;
  }

  onStreamStart(header: StreamHeader): void {
    const { domain } = this.ctx.config;
    this.conn.open({ xmlns: NS.SERVER, id: this.id, from: domain, to: header.attrs.from, dialback: true });
    if (header.local !== 'stream' || header.uri !== NS.STREAM) return this.fail('invalid-namespace', 'the stream opens with <stream:stream>');
    if (header.attrs.xmlns !== NS.SERVER) return this.fail('invalid-namespace', 'the default namespace of a server stream is jabber:server');
    const to = header.attrs.to?.toLowerCase();
    if (to !== domain) return this.fail('host-unknown', `this server serves ${domain}`);
    const version = header.attrs.version;
    if (version === undefined || !/^1\.\d+$/.test(version)) return this.fail('unsupported-version', 'XMPP 1.0 streams only');
    this.peer = header.attrs.from?.toLowerCase();
    this.conn.send(this.features());
  }

  onStanza(el: Element): void {
    this.session.stanzasIn.inc();
    if (el.attrs.xmlns === NS.TLS && el.name === 'starttls') return this.startTls();
    if (this.stage === 'pre-tls' && this.ctx.config.s2s.requireTls) return this.fail('policy-violation', 'use STARTTLS first: this server requires TLS');
    if (el.attrs.xmlns === NS.SASL && el.name === 'auth') return this.external(el);
    if (isDialback(el, 'result')) return void this.dialbackResult(el);
    if (isDialback(el, 'verify')) return this.dialbackVerify(el);
    if (el.attrs.xmlns !== NS.SERVER || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      return this.fail('unsupported-stanza-type', `<${el.name}/> is not a server stanza`);
    }
    if (this.domains.size === 0) return this.fail('not-authorized', 'authenticate first');
    this.stanza(el);
  }

  private features(): Element {
    const features = new Element('stream:features');
    if (this.stage === 'authenticated') return features;
    const { s2s } = this.ctx.config;
    if (this.stage === 'pre-tls') {
      const starttls = features.c('starttls', { xmlns: NS.TLS });
      if (s2s.requireTls) {
        starttls.c('required');
        return features;
      }
    }
    // EXTERNAL only where the certificate already proves the domain: offering it otherwise only costs a round trip.
    if (this.peer !== undefined && this.tlsSocket && certifiedFor(this.tlsSocket, this.peer)) {
      features.c('mechanisms', { xmlns: NS.SASL }).c('mechanism').t('EXTERNAL');
    }
    if (s2s.dialback || s2s.insecureDomains !== '') features.c('dialback', { xmlns: NS.DIALBACK_FEATURE }).c('errors');
    return features;
  }

  private startTls(): void {
    const tls = this.host.s2sTls;
    if (this.stage !== 'pre-tls' || !tls) {
      this.conn.send(new Element('failure', { xmlns: NS.TLS }));
      return this.session.close('error', { condition: 'undefined-condition', text: 'STARTTLS is not available now' });
    }
    this.conn.send(new Element('proceed', { xmlns: NS.TLS }));
    this.stage = 'negotiating';
    this.conn.startTls({ context: tls.server, requestCert: true, onSecure: (socket) => (this.tlsSocket = socket) });
  }

  /** XEP-0178: the certificate proves the domain; the authorization identity, if any, must be that domain. */
  private external(el: Element): void {
    const failure = (condition: string, text: string) => {
      const f = new Element('failure', { xmlns: NS.SASL });
      f.c(condition);
      f.c('text', { 'xml:lang': 'en' }).t(text);
      this.conn.send(f);
    };
    if (this.stage === 'authenticated' || el.attrs.mechanism !== 'EXTERNAL') return failure('invalid-mechanism', 'only EXTERNAL, once');
    const text = el.getText().trim();
    const authzid = text === '' || text === '=' ? this.peer : Buffer.from(text, 'base64').toString('utf8').toLowerCase();
    if (authzid === undefined || authzid !== this.peer) return failure('invalid-authzid', 'the authorization identity must be the domain in the stream header');
    if (!this.tlsSocket || !certifiedFor(this.tlsSocket, authzid)) return failure('not-authorized', `the certificate does not prove ${authzid}`);
    this.conn.send(new Element('success', { xmlns: NS.SASL }));
    this.stage = 'authenticated';
    this.conn.restart();
    this.accept(authzid, 'sasl-external');
  }

  /** XEP-0220 receiving role: the peer claims a domain with a key that only its authoritative server can confirm. */
  private async dialbackResult(el: Element): Promise<void> {
    const { config } = this.ctx;
    const from = el.attrs.from?.toLowerCase();
    const to = el.attrs.to?.toLowerCase();
    const answer = (type: 'valid' | 'invalid') => this.conn.send(new Element('db:result', { 'xmlns:db': NS.DIALBACK, from: to, to: from, type }));
    if (!from || parseJid(from)?.full !== from || from.includes('@') || from.includes('/')) return this.fail('improper-addressing', 'db:result needs a domain in from');
    if (to !== config.domain) return this.conn.send(dialbackError('result', config.domain, from, 'item-not-found', `this server serves ${config.domain}`));
    if (this.domains.has(from)) return answer('valid');
    if (this.domains.size + this.verifying >= config.s2s.maxDomainsPerStream) return this.conn.send(dialbackError('result', to, from, 'policy-violation', `at most ${config.s2s.maxDomainsPerStream} domains on one stream`));
    if (this.tlsSocket && certifiedFor(this.tlsSocket, from)) {
      // The certificate already proves the domain (XEP-0344): asking its server again would add nothing.
      answer('valid');
      return this.accept(from, 'dialback-certificate');
    }
    if (!this.host.dialbackAllowed(from)) return this.conn.send(dialbackError('result', to, from, 'not-acceptable', 'dialback is off here and the certificate does not prove the domain'));
    this.verifying++;
    let valid: boolean;
    try {
      valid = await this.host.verify(from, this.id, el.getText());
    } finally {
      this.verifying--;
    }
    if (this.session.state === 'closing' || this.session.state === 'closed') return;
    answer(valid ? 'valid' : 'invalid');
    if (valid) return this.accept(from, 'dialback');
    this.ctx.log.warn({ event: 's2s.dialback-invalid', session: this.session.id, domain: from, ip: this.session.remoteAddress }, 'dialback key did not verify');
    if (this.domains.size === 0) this.fail('not-authorized', `the dialback key for ${from} did not verify`);
  }

  /** XEP-0220 authoritative role: a server we connected to asks whether a key is ours; nothing is kept to answer. */
  private dialbackVerify(el: Element): void {
    const { config } = this.ctx;
    const from = el.attrs.from?.toLowerCase();
    const id = el.attrs.id;
    if (!from || !id || el.attrs.to?.toLowerCase() !== config.domain) return this.fail('improper-addressing', 'db:verify needs from, to and id');
    const valid = verifyDialbackKey(el.getText(), this.host.secret, from, config.domain, id);
    this.conn.send(dialbackElement('verify', { from: config.domain, to: from, id, type: valid ? 'valid' : 'invalid' }));
  }

  private accept(domain: string, method: string): void {
    const first = this.domains.size === 0;
    this.domains.add(domain);
    if (first) {
      this.session.domain = domain;
      this.session.authenticated = true;
      this.session.state = 'active';
      this.ctx.registry.bindDomain(this.session, domain);
    }
    this.ctx.log.info({ event: 's2s.in.authenticated', session: this.session.id, domain, method, ip: this.session.remoteAddress }, 'peer server authenticated');
    this.host.authenticated(this.session, domain);
  }

  /** RFC 6120 §8.1.1.2, §13.7.1.4: from a domain this stream proved, to ours; anything else ends the stream. */
  private stanza(el: Element): void {
    const from = parseJid(el.attrs.from ?? '');
    if (!from || !this.domains.has(from.domain)) return this.fail('invalid-from', `'${el.attrs.from ?? ''}' is not from a domain this stream authenticated`);
    const toText = el.attrs.to;
    if (toText === undefined) return this.fail('improper-addressing', 'a server stanza needs a to');
    const to = parseJid(toText);
    if (to && to.domain !== this.ctx.config.domain) return this.fail('host-unknown', `this server serves ${this.ctx.config.domain}`);
    el.attrs.from = from.full;
    el.attrs.xmlns = NS.CLIENT;
    this.ctx.router.route(el, this.session);
  }

  private fail(condition: StreamErrorCondition, text: string): void {
    const reason = condition === 'not-authorized' ? 'not-authorized' : condition === 'policy-violation' ? 'policy-violation' : 'error';
    this.session.close(reason, { condition, text });
  }
}
