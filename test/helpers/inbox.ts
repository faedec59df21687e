import type { Element } from 'ltx';

/**
 * What a test client received, and waiting on it: every element in order, a wait for the first one that
 * matches (taken from the queue), and a wait for any condition, woken whenever something arrives.
 */
export abstract class Inbox {
  readonly elements: Element[] = [];
  private waiters: (() => void)[] = [];

  /** What a timeout shows of what did arrive. */
  protected abstract received(): string;

  /** Something arrived or changed: check every waiter again. */
  protected wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The first element received (or yet to come) that matches, removed from the queue. */
  async waitFor(match: (el: Element) => boolean, timeout = 5000): Promise<Element> {
    let found: Element | undefined;
    await this.until(() => {
      const i = this.elements.findIndex(match);
      if (i >= 0) [found] = this.elements.splice(i, 1);
      return found !== undefined;
    }, timeout);
    return found!;
  }

  /** The stream error the server sent, once it has sent one. */
  async streamError(timeout = 5000): Promise<{ condition: string; text: string }> {
    const el = await this.waitFor((e) => e.name === 'stream:error', timeout);
    const cond = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text');
    return { condition: cond?.name ?? '', text: el.getChildText('text') ?? '' };
  }

  async until(predicate: () => boolean, timeout = 5000): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const timer: NodeJS.Timeout = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out; received: ${this.received()}`));
      }, timeout);
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        }
      };
      this.waiters.push(check);
      timer.unref();
    });
  }
}
