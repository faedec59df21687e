import { connect, createServer, type Server, type Socket } from 'node:net';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

/** Counts the TLS records in a byte stream, as an observer on the wire sees them: a 5-byte header gives each one's length. */
class RecordCounter {
  records = 0;
  private buffered = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 5) {
      const end = 5 + this.buffered.readUInt16BE(3);
      if (this.buffered.length < end) break;
      this.records++;
      this.buffered = this.buffered.subarray(end);
    }
  }
}

/**
 * A TCP relay between one client and the server. Once armed, at a moment when neither side is writing, it
 * counts the records each way, and holds what the client sends until `burst` records have come, then lets
 * them go in one write: they reach the server in one segment, as a phone's burst after a radio wake-up does.
 */
class Relay {
  fromClient = new RecordCounter();
  fromServer = new RecordCounter();
  private armed = false;
  private burst = 0;
  private held: Buffer[] = [];
  private released: () => void = () => undefined;
  private readonly sockets: Socket[] = [];

  private constructor(private readonly listener: Server) {}

  static async start(serverPort: number): Promise<{ relay: Relay; port: number }> {
    const listener = createServer();
    const relay = new Relay(listener);
    listener.on('connection', (client) => relay.join(client, connect({ port: serverPort, host: '127.0.0.1' })));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    return { relay, port: (listener.address() as { port: number }).port };
  }

  /** Count from now on, and hold the client's next `burst` records; resolves once they have gone on together. */
  hold(burst: number): Promise<void> {
    this.armed = true;
    this.burst = burst;
    return new Promise((resolve) => (this.released = resolve));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.listener.close(r));
  }

  private join(client: Socket, server: Socket): void {
    this.sockets.push(client, server);
    client.on('data', (chunk: Buffer) => {
      if (!this.armed) return void server.write(chunk);
      this.fromClient.push(chunk);
      this.held.push(chunk);
      if (this.fromClient.records < this.burst) return;
      server.write(Buffer.concat(this.held));
      this.held = [];
      this.released();
    });
    server.on('data', (chunk: Buffer) => {
      if (this.armed) this.fromServer.push(chunk);
      client.write(chunk);
    });
    for (const s of [client, server]) s.on('error', () => undefined);
  }
}

describe('stanzas that reach the server together over TLS', () => {
  let t: TestServer;
  let relay: Relay;
  let c: TestClient;
  beforeAll(async () => {
    t = await startServer({}, { tls: true });
  });
  afterAll(async () => {
    c?.destroy();
    await relay?.stop();
    await t.stop();
  });

  it('are answered in one TLS record, however many records they came in', async () => {
    const [[user]] = await t.freshUsers('burst');
    const started = await Relay.start(t.port);
    relay = started.relay;
    c = await TestClient.login(started.port, user, 'secret', 'phone', { tls: true, presence: false });
    // A round trip first: the login's replies and the session tickets are all through, both ways are quiet.
    c.send(`<iq type='get' id='quiet'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await c.waitFor((el) => el.attrs.id === 'quiet');

    const burst = 10;
    const released = relay.hold(burst);
    for (let i = 0; i < burst; i++) {
      c.send(`<iq type='get' id='b${i}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      // A write of its own each, so each ping is a record of its own.
      await new Promise((r) => setImmediate(r));
    }
    await released;
    for (let i = 0; i < burst; i++) expect((await c.waitFor((el) => el.attrs.id === `b${i}`)).attrs.type).toBe('result');

    expect(relay.fromClient.records).toBe(burst);
    expect(relay.fromServer.records).toBe(1);
  });
});
