import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Framing } from '../framing/framing.js';
import { WebSocketFraming } from '../framing/websocket.js';
import { XmlStreamFraming } from '../framing/xml-stream.js';
import { Session, type SessionHost } from '../sessions/session.js';
import { Connection, connectionOptions, type ConnectionEvents } from '../transport/connection.js';
import type { Transport } from '../transport/transport.js';
import { iqResult, stanzaError, type StreamErrorCondition } from '../xmpp/errors.js';
import { makeJid, parseJid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';
import type { ParseErrorCondition, StreamHeader } from '../xmpp/parser.js';
import { CsiBuffer } from '../sessions/csi.js';
import { limitsElement, postAuthFeatures, preAuthFeatures, type Mechanism } from './features.js';
import { handleSm, type SmHost, type SmStream } from './stream-management.js';
import type { AuthThrottle } from './auth-throttle.js';
import { countingStanzas, SessionShaper } from './rate-limit.js';
import type { SaslFailure, SaslMechanism, SaslStep } from './sasl/mechanism.js';
import { decodeSaslBase64 } from './sasl/base64.js';
import { PlainMechanism } from './sasl/plain.js';
import { ScramMechanism } from './sasl/scram.js';
import { randomId } from '../xmpp/random-id.js';

const TOO_MANY = 'too many failed attempts: try again later';

type Stage = 'pre-tls' | 'pre-auth' | 'authenticating' | 'bind' | 'active';

/** XEP-0077 before authentication, as the registration feature provides it; the stream only hands it stanzas. */
export interface PreAuthRegistration {
  readonly enabled: boolean;
  /** Whether the stream should hand this pre-authentication stanza to preAuth(). */
  handles(el: Element): boolean;
  /** `secure` is false when credentials would travel in clear. */
  preAuth(iq: Element, session: Session, secure: boolean): Promise<void>;
}

/** The kinds of client stream: XML over TCP, or RFC 7395 over WebSocket. */
export type ClientKind = 'c2s' | 'websocket';

export interface C2SHost extends SessionHost, SmHost {
  readonly ctx: Context;
  readonly tls: import('node:tls').SecureContext | undefined;
  /** A session finished binding: it is in the registry under its JID and may route. */
  bound(session: Session): void;
  /** XEP-0077 before authentication (answers 'disabled' itself when c2s.registration.enabled is off). */
  readonly registration?: PreAuthRegistration;
  /** Failed logins per address and account, shared by every stream of this server. */
  readonly authThrottle: AuthThrottle;
  /** The connection is gone (the session may have ended long before, waiting for the peer to close). */
  connectionGone(conn: Connection): void;
}

/**
 * One client stream, RFC 6120 order: header, STARTTLS, SASL, restart, bind, then stanzas to the router.
 * Every step that fails ends in the stream or SASL error the RFC names for it. It works on a Connection,
 * whatever transport and framing carry it.
 */
export class C2SStream implements ConnectionEvents, SmStream {
  /** The session this stream carries; a resume swaps in the session it resumed. */
  session: Session;
  readonly conn: Connection;
  private stage: Stage;
  /** The exchange under way; `busy` while its mechanism works on a step (PBKDF2, a storage lookup). */
  private sasl: { mechanism: SaslMechanism; name: Mechanism; busy: boolean } | undefined;
  private authFailures = 0;

  /** `websocket`: RFC 7395 framing on a WebSocket transport; the negotiation after it is the same. */
  constructor(transport: Transport, private readonly host: C2SHost, readonly kind: ClientKind = 'c2s') {
    const { config } = host.ctx;
    const policy = config.watchdog[kind];
    const shaper = SessionShaper.for(config, transport.remoteAddress, Date.now(), (limit) => host.ctx.metrics.rateLimited.inc({ kind, limit }));
    const handler = shaper ? countingStanzas(this, shaper) : this;
    const framing: Framing = kind === 'websocket' ? new WebSocketFraming(handler, config.c2s.maxStanzaSize) : new XmlStreamFraming(handler, config.c2s.maxStanzaSize);
    const fallback = { xmlns: NS.CLIENT, from: config.domain };
    this.conn = new Connection(transport, framing, this, { ...connectionOptions(policy), shaper }, fallback);
    this.session = new Session(kind, this.conn, policy, host);
    this.stage = host.tls && transport.startTls ? 'pre-tls' : 'pre-auth';
  }

  private get ctx(): Context {
    return this.host.ctx;
  }

  // Stream callbacks

  onStreamStart(header: StreamHeader): void {
    const { domain, websocket } = this.ctx.config;
    const framing = this.conn.framing;
    this.openStream();
    if (header.local !== framing.opening.local || header.uri !== framing.opening.uri) return this.fail('invalid-namespace', `the stream opens with ${framing.opening.name}`);
    if (framing.declaresContent && header.attrs.xmlns !== NS.CLIENT) return this.fail('invalid-namespace', 'the default namespace of a client stream is jabber:client');
    const to = header.attrs.to;
    if (to !== undefined && to.toLowerCase() !== domain) return this.fail('host-unknown', `this server serves ${domain}`);
    const version = header.attrs.version;
    if (version === undefined || !/^1\.\d+$/.test(version)) return this.fail('unsupported-version', 'XMPP 1.0 streams only');
    // Draining this node (RFC 7395 §3.6.1): the client is sent to another before anything is negotiated.
    if (this.kind === 'websocket' && websocket.seeOtherUri) return this.session.close('redirected', { seeOtherUri: websocket.seeOtherUri });
    this.conn.send(this.features());
  }

  onStanza(el: Element): void {
    // The session was resumed on another connection: whatever still arrives here is from the past.
    if (this.session.conn !== this.conn) return;
    this.session.stanzasIn.inc();
    switch (this.stage) {
      case 'pre-tls':
      case 'pre-auth':
        return this.preAuth(el);
      case 'authenticating':
        return void this.saslContinue(el);
      case 'bind':
        return this.bind(el);
      case 'active':
        return this.active(el);
    }
  }

  onStreamEnd(): void {
    if (this.session.conn === this.conn) this.session.close('peer-closed');
  }

  onTransportEnd(): void {
    if (this.session.conn === this.conn) this.session.lost('peer-closed');
  }

  onError(condition: ParseErrorCondition, text: string): void {
    if (this.session.conn === this.conn) this.session.close(condition === 'policy-violation' ? 'policy-violation' : 'error', { condition, text });
  }

  onReceived(now: number): void {
    if (this.session.conn === this.conn) this.session.received(now);
  }

  // SmStream

  get bound(): boolean {
    return this.stage === 'active';
  }

  adopt(session: Session): void {
    this.session = session;
    this.stage = 'active';
  }

  streamError(condition: 'undefined-condition' | 'unsupported-stanza-type', text: string): void {
    this.fail(condition, text);
  }

  onClosed(): void {
    this.session.connectionClosed(this.conn);
    this.host.connectionGone(this.conn);
  }

  // Negotiation

  private openStream(): void {
    this.conn.open({ xmlns: NS.CLIENT, id: randomId(12), from: this.ctx.config.domain });
  }

  private features(): Element {
    const { config } = this.ctx;
    const limits = limitsElement(config.c2s.maxStanzaSize, this.session.policy);
    if (this.session.authenticated) return postAuthFeatures(limits, config.sm.enabled);
    const encrypted = this.conn.encrypted;
    const features = preAuthFeatures({
      tlsOffered: !encrypted && this.host.tls !== undefined && this.conn.transport.startTls !== undefined,
      tlsRequired: !config.c2s.allowPlainWithoutTls,
      mechanisms: this.mechanisms(),
      limits,
    });
    if (this.host.registration?.enabled && this.mechanisms().length > 0) features.c('register', { xmlns: NS.REGISTER_FEATURE });
    return features;
  }

  private mechanisms(): Mechanism[] {
    if (this.conn.encrypted || this.ctx.config.c2s.allowPlainWithoutTls) return ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
    return [];
  }

  private preAuth(el: Element): void {
    if (el.name === 'starttls' && el.attrs.xmlns === NS.TLS) return this.startTls();
    if (el.name === 'auth' && el.attrs.xmlns === NS.SASL) return void this.saslStart(el);
    // A step with no exchange to belong to: what a pipelining client sends once its exchange has failed.
    if (el.attrs.xmlns === NS.SASL) return this.saslFailure('malformed-request', { text: 'no authentication exchange is under way' });
    if (this.host.registration?.handles(el)) return void this.host.registration.preAuth(el, this.session, this.mechanisms().length > 0);
    this.fail('not-authorized', 'authenticate first');
  }

  private startTls(): void {
    if (!this.host.tls || this.conn.encrypted || !this.conn.transport.startTls) {
      this.conn.send(new Element('failure', { xmlns: NS.TLS }));
      this.session.close('error', { condition: 'undefined-condition', text: 'STARTTLS is not available' });
      return;
    }
    this.conn.send(new Element('proceed', { xmlns: NS.TLS }));
    this.conn.startTls({ context: this.host.tls });
    this.stage = 'pre-auth';
  }

  private async saslStart(el: Element): Promise<void> {
    const name = el.attrs.mechanism as Mechanism;
    if (!this.conn.encrypted && !this.ctx.config.c2s.allowPlainWithoutTls) return this.saslFailure('encryption-required', { text: 'use STARTTLS first' });
    if (!this.mechanisms().includes(name)) return this.saslFailure('invalid-mechanism');
    const ip = this.session.remoteAddress;
    const throttle = this.host.authThrottle;
    if (!throttle.ipAllowed(ip)) return this.saslFailure('temporary-auth-failure', { text: TOO_MANY, mechanism: name });
    const lookup = (username: string) => this.ctx.storage.getUser(username);
    const { domain, c2s } = this.ctx.config;
    const options = { iterations: c2s.scramIterations, admit: (username: string) => throttle.allowed(ip, username) };
    const mechanism = name === 'PLAIN' ? new PlainMechanism(lookup, domain, options) : new ScramMechanism(name === 'SCRAM-SHA-256' ? 'sha256' : 'sha1', lookup, domain, options);
    this.sasl = { mechanism, name, busy: false };
    this.stage = 'authenticating';
    await this.saslStep(el.getText());
  }

  private async saslContinue(el: Element): Promise<void> {
    // Only one step may be in flight: anything sent before its answer is a client that does not wait for
    // it, which no honest one does, and taken as a step it would be one more password guess, uncounted.
    if (this.sasl?.busy) return this.saslFailure('malformed-request', { text: 'wait for the answer to the previous step' });
    if (el.attrs.xmlns !== NS.SASL) return this.fail('not-authorized', 'finish authentication first');
    if (el.name === 'abort') return this.saslFailure('aborted');
    if (el.name !== 'response') return this.fail('not-authorized', 'finish authentication first');
    await this.saslStep(el.getText());
  }

  private async saslStep(text: string): Promise<void> {
    const sasl = this.sasl!;
    const data = decodeSaslBase64(text);
    if (!data) return this.saslFailure('incorrect-encoding');
    sasl.busy = true;
    let step: SaslStep;
    try {
      step = await sasl.mechanism.step(data);
    } catch (err) {
      this.ctx.log.warn({ event: 'c2s.auth-error', session: this.session.id, err }, 'authentication could not be checked');
      step = { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    // Abandoned meanwhile (pipelined input ended it, or the stream closed): its answer must reach no one.
    if (this.sasl !== sasl || this.session.state !== 'negotiating') return;
    sasl.busy = false;
    if (step.kind === 'challenge') {
      this.conn.send(new Element('challenge', { xmlns: NS.SASL }).t(step.data.toString('base64')));
      return;
    }
    if (step.kind === 'failure') {
      const text = step.condition === 'temporary-auth-failure' && step.username !== undefined ? TOO_MANY : step.text;
      return this.saslFailure(step.condition, { text, username: step.username });
    }
    const success = new Element('success', { xmlns: NS.SASL });
    if (step.data) success.t(step.data.toString('base64'));
    this.session.authenticated = true;
    this.session.username = step.username;
    this.session.bareJid = `${step.username}@${this.ctx.config.domain}`;
    this.sasl = undefined;
    this.stage = 'bind';
    this.conn.send(success);
    this.conn.restart();
    this.ctx.log.info({ event: 'c2s.authenticated', session: this.session.id, jid: this.session.bareJid, mechanism: sasl.name, ip: this.session.remoteAddress }, 'authenticated');
  }

  /**
   * Ends the exchange with <failure/>, and counts, logs and throttles every one. The client's own choices
   * (aborting, a mechanism we lack, no TLS yet) are not attempts; everything else is, ours included
   * (temporary-auth-failure), so a client hammering a lockout still meets c2s.maxAuthAttempts. The throttle
   * learns only of attempts it did not refuse itself: refusing checks nothing, so it teaches nothing.
   */
  private saslFailure(condition: SaslFailure, detail: { text?: string; username?: string; mechanism?: Mechanism } = {}): void {
    if (this.session.state !== 'negotiating') return;
    const mechanism = detail.mechanism ?? this.sasl?.name ?? 'none';
    this.sasl = undefined;
    this.stage = this.conn.encrypted || !this.host.tls || !this.conn.transport.startTls ? 'pre-auth' : 'pre-tls';
    const failure = new Element('failure', { xmlns: NS.SASL });
    failure.c(condition);
    if (detail.text) failure.c('text', { 'xml:lang': 'en' }).t(detail.text);
    this.conn.send(failure);
    this.ctx.metrics.authFailures.inc({ mechanism, reason: condition });
    const attempt = condition !== 'aborted' && condition !== 'encryption-required' && condition !== 'invalid-mechanism';
    if (attempt) this.authFailures++;
    const ip = this.session.remoteAddress;
    this.ctx.log.info({ event: 'c2s.auth-failed', session: this.session.id, ip, mechanism, condition, user: detail.username, failures: this.authFailures }, 'authentication failed');
    if (!attempt) return;
    if (condition !== 'temporary-auth-failure') this.host.authThrottle.failed(ip, detail.username);
    if (this.authFailures >= this.ctx.config.c2s.maxAuthAttempts) {
      this.session.close('policy-violation', { text: `${this.authFailures} failed authentication attempts` });
    }
  }

  private bind(el: Element): void {
    if (el.attrs.xmlns === NS.SM) return handleSm(el, this, this.host);
    const bindEl = el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('bind', NS.BIND) : undefined;
    if (!bindEl) {
      if (el.name === 'iq' && el.attrs.type !== 'result' && el.attrs.type !== 'error') {
        this.conn.send(stanzaError(el, 'not-authorized', 'bind a resource first'));
        return;
      }
      return this.fail('not-authorized', 'bind a resource first');
    }
    const requested = bindEl.getChildText('resource')?.trim();
    const jid = makeJid(this.session.username!, this.ctx.config.domain, requested || randomId(6));
    if (!jid) {
      this.conn.send(stanzaError(el, 'bad-request', 'that resource is not allowed'));
      return;
    }
    const holder = this.ctx.registry.getByFullJid(jid.full);
    if (holder && holder !== this.session) holder.close('conflict', { text: 'replaced by a new connection with the same resource' });
    this.session.jid = jid;
    this.session.state = 'active';
    this.stage = 'active';
    this.ctx.registry.bind(this.session);
    const result = iqResult(el, new Element('bind', { xmlns: NS.BIND }));
    result.getChild('bind')!.c('jid').t(jid.full);
    this.conn.send(result);
    this.host.bound(this.session);
  }

  private active(el: Element): void {
    if (el.attrs.xmlns === NS.SM) return handleSm(el, this, this.host);
    if (el.attrs.xmlns === NS.CSI && (el.name === 'active' || el.name === 'inactive')) return this.clientState(el.name);
    if (el.attrs.xmlns !== NS.CLIENT || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      return this.fail('unsupported-stanza-type', `<${el.name}/> in ${el.attrs.xmlns ?? 'no namespace'} is not a client stanza`);
    }
    this.session.sm?.handled();
    if (el.name === 'iq' && this.session.answersPing(el, this.ctx.config.domain, Date.now())) return;
    const from = el.attrs.from as string | undefined;
    if (from !== undefined && from !== this.session.fullJid && from !== this.session.bareJid) {
      const claimed = parseJid(from);
      if (claimed?.full !== this.session.fullJid && claimed?.full !== this.session.bareJid) return this.fail('invalid-from', 'from does not match the bound JID');
    }
    el.attrs.from = this.session.fullJid;
    if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.SESSION) && (el.attrs.to === undefined || el.attrs.to === this.ctx.config.domain)) {
      // RFC 3921 session establishment: a no-op kept for old clients.
      this.session.send(iqResult(el));
      return;
    }
    this.ctx.router.route(el, this.session);
  }

  /** XEP-0352: hold presence while the client is inactive; what was held goes out when it is active again. */
  private clientState(state: 'active' | 'inactive'): void {
    const session = this.session;
    if (state === 'inactive') {
      session.csi ??= new CsiBuffer();
      return;
    }
    const held = session.csi?.release() ?? [];
    session.csi = undefined;
    for (const presence of held) session.send(presence);
  }

  private fail(condition: StreamErrorCondition, text: string): void {
    const reason = condition === 'not-authorized' ? 'not-authorized' : condition === 'policy-violation' ? 'policy-violation' : 'error';
    this.session.close(reason, { condition, text });
  }
}
