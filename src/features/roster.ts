import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import type { RosterItem } from '../storage/storage.js';
import { SERVER } from '../router/origin.js';
import { iqResult, stanzaError } from '../xmpp/errors.js';
import { parseJid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';
import { randomId } from '../xmpp/random-id.js';

/** RFC 6121 §2.3.3 lets the server bound names and groups; these keep one item under a few KiB. */
const MAX_TEXT_BYTES = 1023;
const MAX_GROUPS = 64;

/** The local part of a local bare JID: the account it belongs to. */
export function accountOf(bare: string): string {
  return bare.slice(0, bare.indexOf('@'));
}

export function newItem(jid: string): RosterItem {
  return { jid, name: '', subscription: 'none', ask: false, pendingIn: null, approved: false, groups: [], hidden: false };
}

/** The <item/> a client sees (RFC 6121 §2.1.2); a pending inbound request is never shown. */
export function itemElement(item: RosterItem | { jid: string; subscription: 'remove' }): Element {
  const el = new Element('item', { jid: item.jid, subscription: item.subscription });
  if ('name' in item) {
    if (item.name) el.attrs.name = item.name;
    if (item.ask) el.attrs.ask = 'subscribe';
    if (item.approved) el.attrs.approved = 'true';
    for (const g of item.groups) el.c('group').t(g);
  }
  return el;
}

/**
 * One user's roster in storage, and the pushes (RFC 6121 §2.1.6) that tell every resource which asked for
 * the roster about each change. Versions are the storage's per-user counter (XEP-0237 style `ver`).
 */
export class Rosters {
  constructor(private readonly ctx: Context) {}

  all(username: string): Promise<{ version: number; items: RosterItem[] }> {
    return this.ctx.storage.getRoster(username);
  }

  item(username: string, jid: string): Promise<RosterItem | undefined> {
    return this.ctx.storage.getRosterItem(username, jid);
  }

  /** Store an item; a visible one is pushed to the user's interested resources. */
  async put(username: string, item: RosterItem): Promise<void> {
    const version = await this.ctx.storage.putRosterItem(username, item);
    if (!item.hidden) this.push(username, itemElement(item), version);
  }

  async remove(username: string, item: RosterItem): Promise<void> {
    const version = await this.ctx.storage.deleteRosterItem(username, item.jid);
    if (version !== undefined && !item.hidden) this.push(username, itemElement({ jid: item.jid, subscription: 'remove' }), version);
  }

  /** True when one more visible item would go over c2s.maxRosterItems. */
  async full(username: string): Promise<boolean> {
    return (await this.ctx.storage.countRoster(username)).items >= this.ctx.config.c2s.maxRosterItems;
  }

  private push(username: string, item: Element, version: number): void {
    const bare = `${username}@${this.ctx.config.domain}`;
    for (const s of this.ctx.registry.getByBareJid(bare)) {
      if (!s.im.rosterRequested || !s.isBound) continue;
      const iq = new Element('iq', { xmlns: NS.CLIENT, type: 'set', id: `push-${randomId(6)}`, to: s.fullJid });
      iq.c('query', { xmlns: NS.ROSTER, ver: String(version) }).cnode(item);
      this.ctx.router.route(iq, SERVER);
    }
  }
}

/** What a roster remove does to the subscriptions on both sides (RFC 6121 §2.5.2); subscription.ts does it. */
export interface ContactRemover {
  removeContact(owner: Session | string, item: RosterItem): Promise<void>;
}

/**
 * RFC 6121 §2: roster get (with versioning), set and remove, for a client's own account. Every handler
 * runs through `serial` so it sees the roster as the presence and subscription logic left it.
 */
export function installRoster(ctx: Context, rosters: Rosters, remover: ContactRemover, serial: <T>(task: () => Promise<T>) => Promise<T>): void {
  const inTurn = (session: Session, task: () => Promise<Element | undefined>) =>
    serial(async () => (session.state === 'active' ? task() : undefined)); // ended (or its account was removed) while this waited
  ctx.router.handleAccountIq(NS.ROSTER, (iq, session, payload) => {
    if (payload.name !== 'query') return stanzaError(iq, 'bad-request');
    if (iq.attrs.type === 'get') return paced(session, () => inTurn(session, () => get(iq, session, payload)));
    return inTurn(session, () => set(iq, session, payload));
  });

  /**
   * A roster result can be megabytes, and a client can ask for it hundreds of times in one write. One
   * result per session at a time, each built only once the client has read the one before: a client that
   * never reads makes the server build one, not hundreds. The wait is outside `serial`, so nobody else waits.
   */
  const results = new WeakMap<Session, Promise<unknown>>();
  function paced(session: Session, produce: () => Promise<Element | undefined>): Promise<undefined> {
    const run = (results.get(session) ?? Promise.resolve())
      .then(() => session.drained())
      .then(produce)
      .then((reply) => {
        if (reply) ctx.router.route(reply, SERVER);
        return undefined;
      });
    results.set(session, run.catch(() => undefined));
    return run;
  }

  async function get(iq: Element, session: Session, payload: Element): Promise<Element> {
    session.im.rosterRequested = true;
    const { version, items } = await rosters.all(session.username!);
    const ver = String(version);
    if (payload.attrs.ver === ver) return iqResult(iq); // RFC 6121 §2.6.3: unchanged, no items
    const query = new Element('query', { xmlns: NS.ROSTER, ver });
    for (const item of items) if (!item.hidden) query.cnode(itemElement(item));
    return iqResult(iq, query);
  }

  async function set(iq: Element, session: Session, payload: Element): Promise<Element> {
    const items = payload.getChildElements();
    if (items.length !== 1 || items[0].name !== 'item') return stanzaError(iq, 'bad-request', 'a roster set carries exactly one <item/>');
    const el = items[0];
    const jidText = el.attrs.jid as string | undefined;
    if (jidText === undefined) return stanzaError(iq, 'bad-request', 'the item needs a jid');
    const parsed = parseJid(jidText);
    if (!parsed) return stanzaError(iq, 'jid-malformed', 'that is not a JID');
    if (parsed.resource) return stanzaError(iq, 'bad-request', 'roster items are bare JIDs');
    const jid = parsed.bare;
    if (jid === session.bareJid) return stanzaError(iq, 'not-allowed', 'your own account is not a contact');
    const username = session.username!;
    const existing = await rosters.item(username, jid);

    if (el.attrs.subscription === 'remove') {
      if (!existing) return stanzaError(iq, 'item-not-found');
      await remover.removeContact(session, existing);
      return iqResult(iq);
    }

    // RFC 6121 §2.1.2.5: any other 'subscription' (and any 'ask') from a client is ignored.
    const name = (el.attrs.name as string | undefined) ?? '';
    if (Buffer.byteLength(name) > MAX_TEXT_BYTES) return stanzaError(iq, 'not-acceptable', `the name is longer than ${MAX_TEXT_BYTES} bytes`);
    const groupEls = el.getChildElements().filter((c) => c.name === 'group');
    if (groupEls.length > MAX_GROUPS) return stanzaError(iq, 'not-acceptable', `at most ${MAX_GROUPS} groups per item`);
    const groups = groupEls.map((g) => g.getText());
    for (const g of groups) {
      if (g.length === 0) return stanzaError(iq, 'not-acceptable', 'a group name cannot be empty');
      if (Buffer.byteLength(g) > MAX_TEXT_BYTES) return stanzaError(iq, 'not-acceptable', `a group name is longer than ${MAX_TEXT_BYTES} bytes`);
    }
    if (new Set(groups).size !== groups.length) return stanzaError(iq, 'bad-request', 'a group is listed twice');
    if ((!existing || existing.hidden) && (await rosters.full(username))) {
      return stanzaError(iq, 'not-allowed', `the roster is full (${ctx.config.c2s.maxRosterItems} items)`);
    }
    const item: RosterItem = { ...(existing ?? newItem(jid)), name, groups, hidden: false };
    await rosters.put(username, item);
    return iqResult(iq);
  }
}
