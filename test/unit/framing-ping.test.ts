import fc from 'fast-check';
import { Element } from 'ltx';
import { WebSocketFraming } from '../../src/framing/websocket';
import { ServerStreamFraming, XmlStreamFraming } from '../../src/framing/xml-stream';
import type { StreamHandler } from '../../src/xmpp/parser';
import { NS } from '../../src/xmpp/ns';
import { xmlText } from '../helpers/fuzz-arbitraries';

const handler: StreamHandler = { onStreamStart: () => undefined, onStanza: () => undefined, onStreamEnd: () => undefined, onError: () => undefined };
const framings = [
  ['a client stream', new XmlStreamFraming(handler, 65536)],
  ['a server stream', new ServerStreamFraming(handler, 65536)],
  ['a WebSocket', new WebSocketFraming(handler, 65536)],
] as const;

const pingElement = (id: string, from: string, to: string) => new Element('iq', { type: 'get', id, from, to }).c('ping', { xmlns: NS.PING }).up();

describe("the watchdog's ping, written without building it", () => {
  it.each(framings)('is on %s the bytes element() writes for the same ping', (_, framing) => {
    fc.assert(
      fc.property(xmlText(20), xmlText(30), xmlText(60), (id, from, to) => {
        expect(framing.ping(id, from, to)).toBe(framing.element(pingElement(id, from, to)));
      }),
      { numRuns: 300 },
    );
    expect(framing.ping('vigil-ping-1', 'localhost', `a'b@localhost/<&>"`)).toContain(`to="a&apos;b@localhost/&lt;&amp;&gt;&quot;"`);
  });
});
