import type { Socket } from 'node:net';
import type { Element } from 'ltx';
import { WebSocket } from 'ws';

// @xmpp/client's WebSocket transport wants a global WebSocket, which Node 20 has only behind a flag.
const g = globalThis as { WebSocket?: unknown };
if (typeof g.WebSocket === 'undefined') g.WebSocket = WebSocket;

/** The little of @xmpp/client (xmpp.js 0.14) the interop tests use: the package ships no types. */
export interface XmppClient {
  jid: { toString(): string } | null;
  status: string;
  socket: Socket | null;
  streamManagement: { enabled: boolean; id: string; inbound: number; outbound: number; outbound_q: unknown[]; requestAckInterval: number; on(event: 'ack' | 'fail', cb: (stanza: Element) => void): void; on(event: 'resumed', cb: () => void): void };
  reconnect: { delay: number; reconnect(): Promise<void>; stop(): void };
  on(event: 'stanza' | 'element' | 'send', cb: (el: Element) => void): void;
  on(event: 'online', cb: (jid: unknown) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  on(event: 'status', cb: (status: string) => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: Element): Promise<void>;
}
interface XmppModule {
  client(options: Record<string, unknown>): XmppClient;
  xml(name: string, attrs?: Record<string, string>, ...children: unknown[]): Element;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const { client, xml } = require('@xmpp/client') as XmppModule;
