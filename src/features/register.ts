import { Element } from 'ltx';
import type { Context } from '../context.js';
import { deriveUserRecord, prepPassword } from '../c2s/sasl/credentials.js';
import { normalizeUsername } from '../c2s/sasl/username.js';
import type { PreAuthRegistration } from '../c2s/stream.js';
import type { Session } from '../sessions/session.js';
import { iqResult, stanzaError } from '../xmpp/errors.js';
import { makeJid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';
import type { Presence } from './presence.js';

const HOUR = 3600_000;
const MAX_PASSWORD_BYTES = 1023;
/** IP addresses remembered by the rate limit at most; the oldest are forgotten first. */
const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * XEP-0077 in-band registration. Before authentication, and only with c2s.registration.enabled: the form,
 * and account creation limited to c2s.registration.perIpPerHour per address. After authentication, always:
 * what is registered, a password change, and cancelling the account (which undoes its subscriptions, then
 * closes every session of it).
 */
export class Registration implements PreAuthRegistration {
  /** Per IP address, when accounts were created from it in the last hour, oldest first. */
  private readonly created = new Map<string, number[]>();

  constructor(private readonly ctx: Context, private readonly presence: Presence) {}

  get enabled(): boolean {
    return this.ctx.config.c2s.registration.enabled;
  }

  /** Whether the stream should hand this pre-authentication stanza to preAuth(). */
  handles(el: Element): boolean {
    return el.name === 'iq' && el.getChild('query', NS.REGISTER) !== undefined;
  }

  /** An iq on a stream that has not authenticated; `secure` is false when credentials would go in clear. */
  async preAuth(iq: Element, session: Session, secure: boolean): Promise<void> {
    session.send(await this.unauthenticated(iq, session, secure));
  }

  private async unauthenticated(iq: Element, session: Session, secure: boolean): Promise<Element> {
    const type = iq.attrs.type;
    if (type !== 'get' && type !== 'set') return stanzaError(iq, 'bad-request', 'iq type must be get or set');
    if (!this.enabled) return stanzaError(iq, 'service-unavailable', 'in-band registration is disabled on this server');
    if (!secure) return stanzaError(iq, 'not-authorized', 'use STARTTLS first');
    const query = iq.getChild('query', NS.REGISTER)!;
    if (type === 'get') {
      const form = new Element('query', { xmlns: NS.REGISTER });
      form.c('instructions').t('Choose a username and password for an account on this server.');
      form.c('username');
      form.c('password');
      return iqResult(iq, form);
    }
    if (query.getChild('remove')) return stanzaError(iq, 'not-authorized', 'log in to cancel an account');
    const fields = this.fields(iq, query);
    if (fields instanceof Element) return fields;
    const ip = session.remoteAddress || 'unknown';
    if (!this.allowed(ip)) {
      this.ctx.log.info({ event: 'register.limited', ip }, 'in-band registration rate limit reached');
      return stanzaError(iq, 'policy-violation', 'too many accounts created from your address; try again later', 'wait');
    }
    const stamp = this.record(ip); // before any await, so parallel attempts count too
    const created = !(await this.ctx.storage.getUser(fields.username)) && (await this.ctx.storage.createUser(await deriveUserRecord(fields.username, fields.password, this.ctx.config.c2s.scramIterations)));
    if (!created) {
      this.unrecord(ip, stamp);
      return stanzaError(iq, 'conflict', 'that username is taken');
    }
    this.ctx.log.info({ event: 'register.created', username: fields.username, ip }, 'account created in-band');
    return iqResult(iq);
  }

  async authenticated(iq: Element, session: Session, query: Element): Promise<Element | undefined> {
    const username = session.username!;
    if (query.name !== 'query') return stanzaError(iq, 'bad-request');
    if (iq.attrs.type === 'get') {
      const info = new Element('query', { xmlns: NS.REGISTER });
      info.c('registered');
      info.c('username').t(username);
      return iqResult(iq, info);
    }
    if (query.getChild('remove')) {
      session.send(iqResult(iq));
      await this.presence.accountRemoved(username, () => {
        for (const s of [...this.ctx.registry.getByBareJid(session.bareJid!)]) s.close('not-authorized', { text: 'the account was removed' });
      });
      this.ctx.log.info({ event: 'register.removed', username }, 'account removed in-band');
      return undefined;
    }
    const fields = this.fields(iq, query);
    if (fields instanceof Element) return fields;
    if (fields.username !== username) return stanzaError(iq, 'bad-request', 'you can change the password of your own account only');
    if (!(await this.ctx.storage.setCredentials(await deriveUserRecord(username, fields.password, this.ctx.config.c2s.scramIterations)))) return stanzaError(iq, 'item-not-found', 'the account no longer exists');
    this.ctx.log.info({ event: 'register.password-changed', username }, 'password changed in-band');
    return iqResult(iq);
  }

  /** Username and password from a set, checked; or the error to send back. */
  private fields(iq: Element, query: Element): { username: string; password: string } | Element {
    const rawUser = query.getChildText('username');
    const password = query.getChildText('password');
    if (rawUser === null || password === null) return stanzaError(iq, 'not-acceptable', 'both <username/> and <password/> are required');
    const username = normalizeUsername(rawUser);
    const jid = username === undefined ? undefined : makeJid(username, this.ctx.config.domain);
    if (username === undefined || !jid || jid.local !== username) return stanzaError(iq, 'not-acceptable', 'that username cannot be a JID localpart');
    if (password.length === 0 || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return stanzaError(iq, 'not-acceptable', `the password must have 1 to ${MAX_PASSWORD_BYTES} bytes`);
    try {
      prepPassword(password); // SASLprep refuses some characters: nobody could log in with them
    } catch {
      return stanzaError(iq, 'not-acceptable', 'the password contains characters SASLprep does not allow');
    }
    return { username, password };
  }

  // Rate limit: a sliding hour per address.

  private recent(ip: string): number[] {
    const cutoff = Date.now() - HOUR;
    const list = (this.created.get(ip) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.created.delete(ip);
    else this.created.set(ip, list);
    return list;
  }

  private allowed(ip: string): boolean {
    const limit = this.ctx.config.c2s.registration.perIpPerHour;
    return limit === 0 || this.recent(ip).length < limit;
  }

  private record(ip: string): number {
    const list = this.recent(ip);
    const stamp = Date.now();
    list.push(stamp);
    this.created.delete(ip);
    this.created.set(ip, list);
    while (this.created.size > MAX_TRACKED_ADDRESSES) this.created.delete(this.created.keys().next().value!);
    return stamp;
  }

  private unrecord(ip: string, stamp: number): void {
    const list = this.created.get(ip);
    const i = list?.lastIndexOf(stamp) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }
}

/** XEP-0077: the logged-in half through the router; the stream asks for the pre-authentication half. */
export function installRegistration(ctx: Context, presence: Presence): Registration {
  const registration = new Registration(ctx, presence);
  ctx.router.handleClientIq(NS.REGISTER, (iq, session, payload) => registration.authenticated(iq, session, payload));
  return registration;
}
