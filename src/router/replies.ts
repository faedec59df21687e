import type { Element } from 'ltx';

interface Expected {
  from: string;
  resolve(reply: Element): void;
  reject(err: Error): void;
  deadline: number;
  timeout: number;
}

/** How often waits that ran out are rejected: one sweep for all of them, not a timer each. */
const SWEEP_MS = 250;

/**
 * IQ replies the server waits for, by id. A reply may come back on another stream than the request left on
 * (server-to-server streams are one-way), so replies are matched here, by id and sender, not per stream.
 */
export class PendingReplies {
  private readonly waiting = new Map<string, Expected>();
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * A reply to `id` from `from`, or a rejection once `timeout` ms have passed (within SWEEP_MS): the
   * watchdog asks this of every idle session, so a wait costs a map entry, not a timer.
   */
  expect(id: string, from: string, timeout: number): Promise<Element> {
    return new Promise((resolve, reject) => {
      this.waiting.get(id)?.reject(new Error(`${id} was asked again`));
      this.waiting.set(id, { from, resolve, reject, deadline: Date.now() + timeout, timeout });
      if (!this.sweeper) {
        this.sweeper = setInterval(this.sweep, SWEEP_MS);
        this.sweeper.unref();
      }
    });
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    for (const [id, e] of this.waiting) {
      if (e.deadline > now) continue;
      this.waiting.delete(id);
      e.reject(new Error(`no reply to ${id} from ${e.from} within ${e.timeout} ms`));
    }
    if (this.waiting.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  };

  /** A result or error addressed to the server; true when it answered a request we are waiting for. */
  match(iq: Element, from: string): boolean {
    const id = iq.attrs.id as string | undefined;
    const expected = id === undefined ? undefined : this.waiting.get(id);
    if (!expected || expected.from !== from) return false;
    this.waiting.delete(id!);
    expected.resolve(iq);
    return true;
  }

  get size(): number {
    return this.waiting.size;
  }
}
