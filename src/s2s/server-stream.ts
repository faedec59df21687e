import type { Element } from 'ltx';
import type { Session } from '../sessions/session.js';
import type { Connection, ConnectionEvents } from '../transport/connection.js';
import type { ParseErrorCondition, StreamHeader } from '../xmpp/parser.js';

/**
 * What a server stream does with its connection's events, either way: a peer that ends the stream or the
 * transport has closed it (a server stream is never resumed), a parse error is a stream error, and bytes
 * received are proof of life for the stream they came on.
 */
export abstract class ServerStream implements ConnectionEvents {
  abstract readonly session: Session;
  abstract readonly conn: Connection;
  protected abstract readonly host: { connectionGone(conn: Connection): void };

  abstract onStreamStart(header: StreamHeader): void;
  abstract onStanza(el: Element): void;

  onStreamEnd(): void {
    this.session.close('peer-closed');
  }

  onTransportEnd(): void {
    this.session.close('peer-closed');
  }

  onError(condition: ParseErrorCondition, text: string): void {
    this.session.close(condition === 'policy-violation' ? 'policy-violation' : 'error', { condition, text });
  }

  onReceived(now: number): void {
    this.session.received(now);
  }

  onClosed(): void {
    this.session.connectionClosed(this.conn);
    this.host.connectionGone(this.conn);
  }
}
