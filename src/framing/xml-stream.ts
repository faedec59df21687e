import type { Element } from 'ltx';
import { NS } from '../xmpp/ns.js';
import { StreamParser, type StreamHandler } from '../xmpp/parser.js';
import type { Transport } from '../transport/transport.js';
import { pingText, type Framing, type StreamOpen } from './framing.js';
import { escapeAttr, serialize } from '../xmpp/serialize.js';

/** RFC 6120 §4: one `<stream:stream>` document per direction, stanzas as its children. */
export class XmlStreamFraming implements Framing {
  readonly opening = { local: 'stream', uri: NS.STREAM, name: '<stream:stream>' };
  readonly declaresContent = true;
  private readonly parser: StreamParser;

  constructor(handler: StreamHandler, maxStanzaSize: number) {
    this.parser = new StreamParser(handler, { maxStanzaSize });
  }

  open(attrs: StreamOpen): string {
    let header = `<?xml version='1.0'?><stream:stream xmlns='${attrs.xmlns}' xmlns:stream='${NS.STREAM}'`;
    if (attrs.dialback) header += ` xmlns:db='${NS.DIALBACK}'`;
    if (attrs.id !== undefined) header += ` id='${attrs.id}'`;
    if (attrs.from !== undefined) header += ` from='${escapeAttr(attrs.from)}'`;
    if (attrs.to !== undefined) header += ` to='${escapeAttr(attrs.to)}'`;
    return `${header} version='1.0' xml:lang='en'>`;
  }

  element(el: Element): string {
    return serialize(el);
  }

  ping(id: string, from: string, to: string): string {
    return pingText('', id, from, to, '');
  }

  close(): string {
    return '</stream:stream>';
  }

  /** A single space between stanzas: allowed by RFC 6120 §4.6.1, ignored by every parser. */
  keepalive(transport: Transport): void {
    transport.writeAlone(' ');
  }

  parse(chunk: Buffer): void {
    this.parser.write(chunk);
  }

  restart(discardRest: boolean): void {
    this.parser.restart(discardRest);
  }
}

/**
 * A server stream (jabber:server). Stanzas are kept in jabber:client inside the server, whoever sent them,
 * so each is written here with the stream's namespace instead.
 */
export class ServerStreamFraming extends XmlStreamFraming {
  override element(el: Element): string {
    const xmlns = el.attrs.xmlns as string | undefined;
    if (xmlns !== undefined && xmlns !== NS.CLIENT) return serialize(el);
    el.attrs.xmlns = NS.SERVER;
    const text = serialize(el);
    el.attrs.xmlns = xmlns;
    if (xmlns === undefined) delete el.attrs.xmlns;
    return text;
  }

  override ping(id: string, from: string, to: string): string {
    return pingText('', id, from, to, ` xmlns="${NS.SERVER}"`);
  }
}

