import type { Element } from 'ltx';
import type { Transport, TransportEvents } from '../../src/transport/transport';
import { StreamParser, type StreamHeader } from '../../src/xmpp/parser';

/**
 * A transport with no socket under it: what the server writes is parsed as a client would parse it, and the
 * test pushes bytes as if the peer had sent them. `pending` simulates a peer that stops reading.
 */
export class MemoryTransport implements Transport {
  readonly remoteAddress = '192.0.2.7';
  readonly remotePort = 40000;
  encrypted = false;
  lastWriteProgressAt = Date.now();
  ended = false;
  wasReset = false;
  keepAliveMs = -1;
  written = '';
  readonly headers: StreamHeader[] = [];
  readonly received: Element[] = [];
  serverEnded = false;
  private events: TransportEvents | undefined;
  private readonly parser = new StreamParser(
    {
      onStreamStart: (h) => this.headers.push(h),
      onStanza: (el) => this.received.push(el),
      onStreamEnd: () => (this.serverEnded = true),
      onError: (condition, text) => {
        throw new Error(`the server wrote bad XML: ${condition}: ${text}`);
      },
    },
    { maxStanzaSize: 1 << 20 },
  );

  get pendingBytes(): number {
    return 0;
  }

  listen(events: TransportEvents): void {
    this.events = events;
  }

  write(text: string): void {
    this.written += text;
    this.parser.write(text);
  }

  writeAlone(text: string): void {
    this.write(text);
  }

  end(): void {
    this.ended = true;
  }

  reset(): void {
    this.wasReset = true;
    this.ended = true;
    this.events?.onClose();
  }

  readingPaused = false;

  pause(): void {
    this.readingPaused = true;
  }

  resume(): void {
    this.readingPaused = false;
  }

  setKeepAlive(ms: number): void {
    this.keepAliveMs = ms;
  }

  /** Bytes from the peer. */
  push(text: string): void {
    this.events?.onData(Buffer.from(text));
  }

  /** The server restarts its stream after SASL success: our reader of its output starts a new document too. */
  restartReader(): void {
    this.parser.restart();
  }

  /** The peer went away. */
  drop(): void {
    this.ended = true;
    this.events?.onClose();
  }

  last(name: string): Element | undefined {
    for (let i = this.received.length - 1; i >= 0; i--) if (this.received[i].name === name) return this.received[i];
    return undefined;
  }
}
