import { loadConfig } from '../../src/config/load';
import { SessionRegistry } from '../../src/sessions/registry';
import { Session } from '../../src/sessions/session';
import { parseJid } from '../../src/xmpp/jid';

const policy = loadConfig({ env: {} }).watchdog.c2s;
const host = { sessionClosed: () => undefined, sessionHibernated: () => undefined, stanzaCounter: () => ({ inc: () => undefined }) };

describe('SessionRegistry', () => {
  it('knows every session by id and kind from accept, by JID once bound, by domain for a server peer', () => {
    const registry = new SessionRegistry();
    const desk = new Session('c2s', undefined, policy, host);
    const phone = new Session('c2s', undefined, policy, host);
    const peer = new Session('c2s', undefined, policy, host);
    for (const s of [desk, phone, peer]) registry.add(s);
    expect(registry.size).toBe(3);
    expect(registry.ofKind('c2s').size).toBe(3);
    expect(registry.getByBareJid('bob@localhost').size).toBe(0); // accepted, not bound yet

    desk.jid = parseJid('bob@localhost/desk');
    phone.jid = parseJid('bob@localhost/phone');
    registry.bind(desk);
    registry.bind(phone);
    peer.domain = 'example.org';
    registry.bindDomain(peer, 'example.org');
    expect(registry.get(desk.id)).toBe(desk);
    expect(registry.getByFullJid('bob@localhost/phone')).toBe(phone);
    expect([...registry.getByBareJid('bob@localhost')]).toEqual([desk, phone]);
    expect([...registry.getByDomain('example.org')]).toEqual([peer]);

    registry.remove(phone);
    registry.remove(peer);
    registry.remove(phone); // leaving twice changes nothing
    expect([...registry.getByBareJid('bob@localhost')]).toEqual([desk]);
    expect(registry.getByFullJid('bob@localhost/phone')).toBeUndefined();
    expect(registry.getByDomain('example.org').size).toBe(0);
    expect([...registry.all()]).toEqual([desk]);
  });

  it('leaves a resource to the session that replaced it', () => {
    const registry = new SessionRegistry();
    const old = new Session('c2s', undefined, policy, host);
    const replacement = new Session('c2s', undefined, policy, host);
    for (const s of [old, replacement]) {
      s.jid = parseJid('bob@localhost/desk');
      registry.add(s);
      registry.bind(s);
    }
    registry.remove(old);
    expect(registry.getByFullJid('bob@localhost/desk')).toBe(replacement);
  });
});
