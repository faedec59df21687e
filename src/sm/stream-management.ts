import { Element } from 'ltx';
import type { Config } from '../config/types.js';
import { NS } from '../xmpp/ns.js';
import { AckQueue, H_MOD } from './ack-queue.js';
import { randomId } from '../xmpp/random-id.js';

/** The sm.* settings a session reads while it runs; refreshed on reload, except the window it negotiated. */
export interface SmSettings {
  maxQueue: number;
  ackEvery: number;
  ackAfter: number;
  presenceGrace: number;
}

export function smSettings(config: Config): SmSettings {
  const { maxQueue, ackEvery, ackAfter, presenceGrace } = config.sm;
  return { maxQueue, ackEvery, ackAfter, presenceGrace };
}

/**
 * One session's XEP-0198 state once the client enabled it: the unacked queue of what we sent, the count of
 * what we handled, and, when resumable, the id and window a resume needs. It lives on the Session, not the
 * stream, so it moves with the session to the connection that resumes it.
 */
export class StreamManagement {
  readonly queue = new AckQueue();
  /** Stanzas handled from the client, mod 2^32: the h we report. */
  inbound = 0;
  /** When the client last acked (enable counts): only an ack answers an <r/> probe. */
  lastAckAt: number;
  /** Counted stanzas written since our last <r/>: sm.ackEvery is measured on these. */
  sinceRequest = 0;
  /** Unguessable, and looked up only together with the account that enabled it. */
  readonly id: string | undefined;

  constructor(
    readonly resumable: boolean,
    /** The resume window this session negotiated, in ms. */
    readonly resumeTimeout: number,
    public settings: SmSettings,
    now: number,
  ) {
    this.lastAckAt = now;
    this.id = resumable ? randomId(18) : undefined;
  }

  /**
   * XEP-0198 §5: the client's preferred window (`max`, seconds) is taken when it is shorter than ours, and
   * up to sm.maxResumeTimeout when longer.
   */
  static window(config: Config, requested: unknown): number {
    const seconds = typeof requested === 'string' && /^\d{1,9}$/.test(requested) ? Number(requested) : undefined;
    if (seconds === undefined || seconds === 0) return config.sm.resumeTimeout;
    return Math.max(1000, Math.min(seconds * 1000, config.sm.maxResumeTimeout));
  }

  handled(): void {
    this.inbound = (this.inbound + 1) % H_MOD;
  }

  enabled(): Element {
    const attrs: Record<string, string> = { xmlns: NS.SM };
    if (this.id) Object.assign(attrs, { id: this.id, resume: 'true', max: String(Math.floor(this.resumeTimeout / 1000)) });
    return new Element('enabled', attrs);
  }

  answer(): Element {
    return new Element('a', { xmlns: NS.SM, h: String(this.inbound) });
  }
}

export function request(): Element {
  return new Element('r', { xmlns: NS.SM });
}

/** <failed/> with a condition, our h when we know one, and a text saying why. */
export function failed(condition: string, text: string, h?: number): Element {
  const el = new Element('failed', h === undefined ? { xmlns: NS.SM } : { xmlns: NS.SM, h: String(h) });
  el.c(condition, { xmlns: NS.STANZAS_ERR });
  el.c('text', { xmlns: NS.STANZAS_ERR, 'xml:lang': 'en' }).t(text);
  return el;
}
