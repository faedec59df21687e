import type { Element } from 'ltx';
import { TestClient } from '../../helpers/client';

/**
 * A client for a user on any server (Prosody, ejabberd, Vigil): our TestClient (raw TCP, SASL PLAIN without
 * TLS, strict parser, inbox with waitFor), with the stream addressed to the user's domain. TestClient
 * itself always opens its streams to 'localhost', which Prosody and ejabberd answer with host-unknown, so
 * this wraps it (its constructor is private: no subclass) and makes `open()` default to the JID's domain.
 */

const PING_NS = 'urn:xmpp:ping';
const ROSTER_NS = 'jabber:iq:roster';

export interface RosterItem {
  jid: string;
  subscription: string;
  ask?: string;
  name?: string;
}

export const bare = (jid: string) => jid.split('/')[0];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

export class PeerClient {
  /** The full JID the server bound. */
  readonly jid: string;

  private constructor(
    /** The TestClient underneath: everything it offers (iq(), elements, closed, destroy() ...). */
    readonly tc: TestClient,
    readonly domain: string,
  ) {
    this.jid = tc.jid;
  }

  /**
   * Connect to host:port, open a stream to the JID's domain, SASL PLAIN, bind (the JID's resource if it
   * has one), fetch the roster as real clients do (`roster: false` skips it) and send initial presence
   * (`presence: false` holds it back). The roster fetch matters: Prosody sends roster pushes and forwards
   * inbound `subscribed` presence only to "interested" resources, those that fetched the roster.
   */
  static async login(opts: { jid: string; password: string; host: string; port: number; presence?: boolean; roster?: boolean }): Promise<PeerClient> {
    const [local, rest] = opts.jid.split('@');
    if (!rest) throw new Error(`PeerClient.login: ${opts.jid} has no domain`);
    const [domain, resource] = rest.split('/');
    const tc = await TestClient.connect(opts.port, opts.host);
    tc.open = (to = domain) => TestClient.prototype.open.call(tc, to);
    try {
      const features = await tc.open();
      const mechs = features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText()) ?? [];
      if (!mechs.includes('PLAIN')) throw new Error(`${opts.host}:${opts.port} offers no SASL PLAIN without TLS (offered: ${mechs.join(', ') || 'none'}): ${features.toString()}`);
      const answer = await tc.authPlain(local, opts.password);
      if (answer.name !== 'success') throw new Error(`login ${opts.jid} failed: ${answer.toString()}`);
      const bound = await tc.bind(resource);
      if (bound.attrs.type !== 'result') throw new Error(`bind for ${opts.jid} failed: ${bound.toString()}`);
      // Prosody 0.12 and ejabberd still advertise the old session establishment; doing it is harmless
      const session = await tc.iq("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", "type='set'").catch(() => undefined);
      void session;
    } catch (err) {
      tc.destroy();
      throw err;
    }
    const c = new PeerClient(tc, domain);
    if (opts.roster !== false) {
      try {
        await c.roster();
      } catch (err) {
        tc.destroy();
        throw err;
      }
    }
    if (opts.presence !== false) c.presence();
    return c;
  }

  /** Raw XML, as is. */
  send(xml: string): void {
    this.tc.send(xml);
  }

  /** Initial (or updated) available presence. */
  presence(): void {
    this.send('<presence/>');
  }

  /** Ask for a subscription to `bareJid`'s presence. */
  subscribe(bareJid: string): void {
    this.send(`<presence to='${esc(bareJid)}' type='subscribe'/>`);
  }

  /** Approve `bareJid`'s subscription request (presence type subscribed). */
  approve(bareJid: string): void {
    this.send(`<presence to='${esc(bareJid)}' type='subscribed'/>`);
  }

  message(to: string, body: string, type = 'chat'): void {
    this.send(`<message to='${esc(to)}' type='${type}' id='${this.tc.nextId()}'><body>${esc(body)}</body></message>`);
  }

  /** XEP-0199 ping to `to` (a bare domain pings that server); the type of the answer. */
  async ping(to: string, timeoutMs = 15_000): Promise<'result' | 'error'> {
    const id = this.tc.nextId();
    this.send(`<iq type='get' to='${esc(to)}' id='${id}'><ping xmlns='${PING_NS}'/></iq>`);
    const reply = await this.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), timeoutMs);
    return reply.attrs.type as 'result' | 'error';
  }

  /** The first stanza received (or yet to come) that matches, taken from the inbox. */
  waitFor(pred: (stanza: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
    return this.tc.waitFor(pred, timeoutMs);
  }

  /** Presence from `from` (bare JID: any resource) of `type` (undefined: available). */
  waitForPresence(from: string, type?: string, timeoutMs = 10_000): Promise<Element> {
    return this.waitFor((el) => el.name === 'presence' && (el.attrs.from === from || bare(el.attrs.from ?? '') === from) && el.attrs.type === type, timeoutMs);
  }

  /** A message with a body from `from` (bare JID: any resource). */
  waitForMessage(from: string, timeoutMs = 10_000): Promise<Element> {
    return this.waitFor((el) => el.name === 'message' && bare(el.attrs.from ?? '') === bare(from) && el.getChild('body') !== undefined, timeoutMs);
  }

  /** The whole roster. */
  async roster(timeoutMs = 10_000): Promise<RosterItem[]> {
    const id = this.tc.nextId();
    this.send(`<iq type='get' id='${id}'><query xmlns='${ROSTER_NS}'/></iq>`);
    const reply = await this.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), timeoutMs);
    if (reply.attrs.type !== 'result') throw new Error(`roster get failed: ${reply.toString()}`);
    return (reply.getChild('query', ROSTER_NS)?.getChildren('item') ?? []).map((item) => ({
      jid: item.attrs.jid,
      subscription: item.attrs.subscription ?? 'none',
      ...(item.attrs.ask ? { ask: item.attrs.ask } : {}),
      ...(item.attrs.name ? { name: item.attrs.name } : {}),
    }));
  }

  /** Poll the roster until `pred` holds for the item of `jid` (subscriptions settle over s2s asynchronously). */
  async rosterUntil(jid: string, pred: (item: RosterItem | undefined) => boolean, timeoutMs = 15_000): Promise<RosterItem | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = (await this.roster()).find((i) => i.jid === jid);
      if (pred(item)) return item;
      if (Date.now() > deadline) throw new Error(`roster item ${jid} of ${this.jid} never got there: ${JSON.stringify(item)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Everything received and not yet taken by a waitFor. */
  get inbox(): Element[] {
    return this.tc.elements;
  }

  /** Close the stream and wait for the socket to go. */
  close(): Promise<void> {
    return this.tc.close();
  }
}
