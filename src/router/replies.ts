import type { Element } from 'ltx';

interface Expected {
  from: string;
  resolve(reply: Element): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * IQ replies the server waits for, by id. A reply may come back on another stream than the request left on
 * (server-to-server streams are one-way), so replies are matched here, by id and sender, not per stream.
 */
export class PendingReplies {
  private readonly waiting = new Map<string, Expected>();

  expect(id: string, from: string, timeout: number): Promise<Element> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no reply to ${id} from ${from} within ${timeout} ms`));
      }, timeout);
      timer.unref();
      this.waiting.get(id)?.reject(new Error(`${id} was asked again`));
      this.waiting.set(id, { from, resolve, reject, timer });
    });
  }

  /** A result or error addressed to the server; true when it answered a request we are waiting for. */
  match(iq: Element, from: string): boolean {
    const id = iq.attrs.id as string | undefined;
    const expected = id === undefined ? undefined : this.waiting.get(id);
    if (!expected || expected.from !== from) return false;
    this.waiting.delete(id!);
    clearTimeout(expected.timer);
    expected.resolve(iq);
    return true;
  }

  get size(): number {
    return this.waiting.size;
  }
}
