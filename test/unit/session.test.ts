import { parse, type Element } from 'ltx';
import { loadConfig } from '../../src/config/load';
import { XmlStreamFraming } from '../../src/framing/xml-stream';
import type { CloseReason } from '../../src/sessions/close-reason';
import type { Unconfirmed } from '../../src/sessions/ledger';
import { Session } from '../../src/sessions/session';
import { Connection, type ConnectionEvents } from '../../src/transport/connection';
import { MemoryTransport } from '../helpers/memory-transport';

const policy = loadConfig({ env: {} }).watchdog.c2s;
const ignore: ConnectionEvents = { onStreamStart: () => undefined, onStanza: () => undefined, onStreamEnd: () => undefined, onTransportEnd: () => undefined, onError: () => undefined, onReceived: () => undefined, onClosed: () => undefined };

function connection(events: Partial<ConnectionEvents> = {}): { conn: Connection; t: MemoryTransport } {
  const t = new MemoryTransport();
  const handler = { ...ignore, ...events };
  const conn = new Connection(t, new XmlStreamFraming(handler, 1 << 16), handler, { closeTimeout: 1000, tcpKeepAlive: 0, pauseReadingAt: 1 << 20 }, { xmlns: 'jabber:client' });
  conn.open({ xmlns: 'jabber:client', from: 'localhost' });
  return { conn, t };
}

function session() {
  const ended: { reason: CloseReason; unconfirmed: Unconfirmed[] }[] = [];
  const host = { sessionClosed: (_s: Session, reason: CloseReason, unconfirmed: Unconfirmed[]) => ended.push({ reason, unconfirmed }), sessionHibernated: () => undefined, stanzaCounter: () => ({ inc: () => undefined }) };
  const first = connection({ onReceived: (now: number) => s.received(now) });
  const s: Session = new Session('c2s', first.conn, policy, host);
  s.state = 'active';
  return { s, ended, first };
}

const message = (body: string) => parse(`<message xmlns='jabber:client' to='a@localhost/r'><body>${body}</body></message>`) as Element;
const bodies = (list: Unconfirmed[]) => list.map((u) => u.stanza.getChildText('body'));

describe('Session', () => {
  it('keeps as unconfirmed only the messages written after the peer last spoke', () => {
    const { s, ended, first } = session();
    s.send(message('before'));
    first.t.push(' '); // the peer spoke: it was alive to read "before"
    s.send(message('after-1'));
    s.send(message('after-2'));
    s.close('probe-timeout');
    expect(ended).toHaveLength(1);
    expect(bodies(ended[0].unconfirmed)).toEqual(['after-1', 'after-2']);
  });

  it('takes the reply to its own ping, by id, once; any other iq is not its to take', () => {
    const { s } = session();
    const iq = (attrs: string) => parse(`<iq xmlns='jabber:client' ${attrs}/>`) as Element;
    expect(s.answersPing(iq("type='result' id='p1'"), 'localhost', 1)).toBe(false); // no ping in flight
    s.expectPing('p1', 0);
    expect(s.answersPing(iq("type='result' id='p2'"), 'localhost', 2)).toBe(false);
    expect(s.answersPing(iq("type='get' id='p1'"), 'localhost', 2)).toBe(false);
    expect(s.answersPing(iq("type='result' id='p1' to='someone@localhost'"), 'localhost', 2)).toBe(false);
    const before = s.lastAliveAt;
    expect(s.answersPing(iq("type='error' id='p1' to='localhost'"), 'localhost', before + 1000)).toBe(true);
    expect(s.lastAliveAt).toBe(before + 1000);
    expect(s.answersPing(iq("type='result' id='p1'"), 'localhost', before + 2000)).toBe(false); // answered already
  });

  it('takes its liveness from any proof, never from its own writes', () => {
    const { s, first } = session();
    const start = s.lastAliveAt;
    s.send(message('x'));
    expect(s.lastAliveAt).toBe(start);
    s.alive(start + 5000); // a reply matched by id, on another stream
    expect(s.lastAliveAt).toBe(start + 5000);
    s.alive(start + 10); // proofs never move it back
    expect(s.lastAliveAt).toBe(start + 5000);
    first.t.push(' ');
    expect(s.lastAliveAt).toBeGreaterThanOrEqual(start);
  });

  it('detaches from its connection, keeps what it could not send, and rides on another one', () => {
    const { s, ended, first } = session();
    const old = s.detach();
    expect(old).toBe(first.conn);
    expect(s.state).toBe('detached');
    expect(s.pendingBytes).toBe(0);
    s.send(message('while-away'));
    expect(first.t.received.filter((e) => e.name === 'message')).toHaveLength(0);
    // The old connection going away is no longer this session's end.
    s.connectionClosed(first.conn);
    expect(ended).toHaveLength(0);

    const second = connection();
    s.attach(second.conn);
    expect(s.state).toBe('active');
    s.send(message('back'));
    expect(second.t.last('message')!.getChildText('body')).toBe('back');
    s.close('shutdown');
    expect(second.t.last('stream:error')!.getChild('system-shutdown')).toBeDefined();
    expect(bodies(ended[0].unconfirmed)).toEqual(['while-away', 'back']);
  });

  it('closes once, whoever asks and however often', () => {
    const { s, ended, first } = session();
    s.close('idle', { text: 'idle: nothing received for 9 s' });
    s.close('peer-closed');
    s.connectionClosed(first.conn);
    expect(ended.map((e) => e.reason)).toEqual(['idle']);
    expect(s.state).toBe('closed');
    expect(first.t.last('stream:error')!.getChildText('text')).toBe('idle: nothing received for 9 s');
  });

  it('ends a detached session without a connection to write to', () => {
    const { s, ended } = session();
    s.detach();
    s.close('shutdown');
    expect(s.state).toBe('closed');
    expect(ended.map((e) => e.reason)).toEqual(['shutdown']);
  });
});
