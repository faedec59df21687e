import { createServer, connect, type Server, type Socket } from 'node:net';
import { Element } from 'ltx';
import { XmlStreamFraming } from '../../src/framing/xml-stream';
import { Connection, type ConnectionEvents } from '../../src/transport/connection';
import { TcpTransport } from '../../src/transport/tcp';

const ignore: ConnectionEvents = { onStreamStart: () => undefined, onStanza: () => undefined, onStreamEnd: () => undefined, onTransportEnd: () => undefined, onError: () => undefined, onReceived: () => undefined, onClosed: () => undefined };
const turn = () => new Promise((r) => setImmediate(r));

describe('a TCP connection whose reading paused below the socket high-water mark', () => {
  let server: Server;
  let peer: Socket;
  let conn: Connection;
  beforeAll(async () => {
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer({ allowHalfOpen: false }, resolve);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    peer = connect({ port, host: '127.0.0.1' });
    const socket = await accepted;
    // A pause threshold of 1 KiB, far under Node's 16 KiB: writes never return false, so Node sends no 'drain'.
    conn = new Connection(new TcpTransport(socket), new XmlStreamFraming(ignore, 1 << 16), ignore, { closeTimeout: 1000, tcpKeepAlive: 0, pauseReadingAt: 1024 }, { xmlns: 'jabber:client' });
  });
  afterAll(async () => {
    peer.destroy();
    conn.reset();
    await new Promise((r) => server.close(r));
  });

  it('resumes reading, and resolves drained(), once the peer has taken what waited', async () => {
    peer.pause();
    const payload = new Element('message').c('body').t('x'.repeat(1000)).root();
    // Fill the kernel's buffers, then queue a few KiB in Node: over the threshold, under the high-water mark.
    for (let i = 0; i < 100_000 && !conn.paused; i++) {
      conn.send(payload);
      await turn();
    }
    expect(conn.paused).toBe(true);
    expect(conn.pendingBytes).toBeLessThan(16 * 1024);
    const drained = conn.drained();
    peer.resume();
    await drained;
    expect(conn.paused).toBe(false);
  });
});

describe("a TCP connection's probe, written alone", () => {
  let server: Server;
  let peer: Socket;
  let conn: Connection;
  let received = '';
  const framing = new XmlStreamFraming(ignore, 1 << 16);
  const message = (body: string) => new Element('message', { to: 'a@localhost' }).c('body').t(body).root();
  const arrived = async (text: string) => {
    for (let i = 0; i < 1000 && !received.includes(text); i++) await new Promise((r) => setTimeout(r, 5));
    return received;
  };
  beforeAll(async () => {
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer({ allowHalfOpen: false }, resolve);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    peer = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
    peer.setEncoding('utf8');
    peer.on('data', (d: string) => (received += d));
    conn = new Connection(new TcpTransport(await accepted), framing, ignore, { closeTimeout: 1000, tcpKeepAlive: 0, pauseReadingAt: 1 << 20 }, { xmlns: 'jabber:client' });
  });
  afterAll(async () => {
    peer.destroy();
    conn.reset();
    await new Promise((r) => server.close(r));
  });

  it('keeps its place among stanzas written in the same turn', async () => {
    received = '';
    conn.send(message('before'));
    conn.ping('vigil-ping-order', 'localhost', 'a@localhost/phone');
    conn.send(message('after'));
    const expected = framing.element(message('before')) + framing.ping('vigil-ping-order', 'localhost', 'a@localhost/phone') + framing.element(message('after'));
    // Held for the turn's end, it counts as waiting: the session's send-queue bound sees it at once.
    expect(conn.pendingBytes).toBe(expected.length);
    expect(await arrived(framing.element(message('after')))).toBe(expected);
  });

  it('arrives whole on its own, and a stanza after it follows it', async () => {
    received = '';
    await turn();
    conn.ping('vigil-ping-alone', 'localhost', 'a@localhost/phone');
    expect(conn.pendingBytes).toBe(0);
    await turn();
    conn.send(message('next'));
    expect(await arrived(framing.element(message('next')))).toBe(framing.ping('vigil-ping-alone', 'localhost', 'a@localhost/phone') + framing.element(message('next')));
  });
});
