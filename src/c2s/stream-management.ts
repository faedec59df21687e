import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import { parseH } from '../sm/ack-queue.js';
import type { Resumptions } from '../sm/resumptions.js';
import { failed, smSettings, StreamManagement } from '../sm/stream-management.js';
import { NS } from '../xmpp/ns.js';
import type { Connection } from '../transport/connection.js';

/** What stream management needs from the server around a stream. */
export interface SmHost {
  readonly ctx: Context;
  readonly resumptions: Resumptions;
  /** `temporary`, the session a stream authenticated, gave way to `resumed`: it never was a session of its own. */
  resumedFrom(temporary: Session, resumed: Session): void;
}

/** What stream management needs from the stream it runs on. */
export interface SmStream {
  readonly session: Session;
  readonly conn: Connection;
  /** A resource is bound on this stream (enable may follow; resume may not). */
  readonly bound: boolean;
  /** From now on the stream carries this (resumed) session. */
  adopt(session: Session): void;
  /** End the stream with a stream error. */
  streamError(condition: 'undefined-condition' | 'unsupported-stanza-type', text: string): void;
}

/**
 * XEP-0198 on a client stream, after authentication: <enable/> once bound, <resume/> instead of binding,
 * then <r/> and <a/> both ways. Whatever is out of order is answered with <failed/> and changes nothing.
 */
export function handleSm(el: Element, stream: SmStream, host: SmHost): void {
  const session = stream.session;
  const sm = session.sm;
  switch (el.name) {
    case 'enable':
      if (!host.ctx.config.sm.enabled) return void stream.conn.send(failed('feature-not-implemented', 'stream management is off on this server'));
      if (!stream.bound) return void stream.conn.send(failed('unexpected-request', 'bind a resource before enabling stream management'));
      if (sm) return void stream.conn.send(failed('unexpected-request', 'stream management is already enabled'));
      return enable(el, session, host);
    case 'resume':
      if (!host.ctx.config.sm.enabled) return void stream.conn.send(failed('feature-not-implemented', 'stream management is off on this server'));
      if (stream.bound) return void stream.conn.send(failed('unexpected-request', 'a resource is already bound on this stream: resume instead of binding, not after'));
      return resume(el, stream, host);
    case 'r':
      if (!sm) return void stream.conn.send(failed('unexpected-request', 'stream management is not enabled'));
      return void stream.conn.send(sm.answer());
    case 'a': {
      if (!sm) return void stream.conn.send(failed('unexpected-request', 'stream management is not enabled'));
      const h = parseH(el.attrs.h);
      if (h === undefined) return stream.streamError('undefined-condition', `h='${String(el.attrs.h)}' is not a 32-bit count`);
      if (sm.queue.ack(h) < 0) return stream.streamError('undefined-condition', `h='${h}' acks more than the ${sm.queue.h} stanzas sent`);
      sm.lastAckAt = Date.now();
      return;
    }
    default:
      stream.streamError('unsupported-stanza-type', `<${el.name}/> is not a stream management element`);
  }
}

function enable(el: Element, session: Session, host: SmHost): void {
  const { config } = host.ctx;
  const resumable = el.attrs.resume === 'true' || el.attrs.resume === '1';
  const sm = new StreamManagement(resumable, StreamManagement.window(config, el.attrs.max), smSettings(config), Date.now());
  // <enabled/> goes before the ledger changes: it is not a stanza, and everything after it is counted.
  session.conn!.send(sm.enabled());
  session.enableSm(sm);
  if (resumable) host.resumptions.add(session);
}

function resume(el: Element, stream: SmStream, host: SmHost): void {
  const { metrics, log } = host.ctx;
  const temporary = stream.session;
  const previd = el.attrs.previd as string | undefined;
  const h = parseH(el.attrs.h);
  if (!previd || h === undefined) {
    metrics.smResumes.inc({ result: 'bad-request' });
    return void stream.conn.send(failed('bad-request', 'resume needs a previd and a 32-bit h'));
  }
  const now = Date.now();
  const old = host.resumptions.find(previd, temporary.username!);
  if (!old || !old.sm || (old.state !== 'active' && old.state !== 'detached')) {
    const last = host.resumptions.lastH(previd, temporary.username!, now);
    metrics.smResumes.inc({ result: last === undefined ? 'unknown' : 'expired' });
    return void stream.conn.send(failed('item-not-found', last === undefined ? 'no such session to resume' : 'that session has ended; its messages are in offline storage', last));
  }
  const sm = old.sm;
  if (sm.queue.acks(h) < 0) {
    metrics.smResumes.inc({ result: 'bad-h' });
    return void stream.conn.send(failed('undefined-condition', `h='${h}' acks more than the ${sm.queue.h} stanzas sent`, sm.inbound));
  }
  const wasHidden = old.im.hidden;
  host.resumedFrom(temporary, old);
  stream.adopt(old);
  stream.conn.send(new Element('resumed', { xmlns: NS.SM, previd, h: String(sm.inbound) }));
  const resent = old.resume(stream.conn, h, temporary.kind, temporary.policy);
  metrics.smResumes.inc({ result: 'ok' });
  metrics.smRedelivered.inc(resent);
  log.info({ event: 'sm.resumed', session: old.id, jid: old.fullJid, resent, hidden: wasHidden, ip: old.remoteAddress }, 'session resumed');
  host.ctx.sessions.resumed(old);
}
