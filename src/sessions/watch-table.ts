/** What the table keeps a slot for. */
export interface Watched {
  watchTable: WatchTable<Watched> | undefined;
  watchSlot: number;
}

/**
 * When the watchdog next needs to look at each session, in one typed array indexed by a slot per session.
 * A tick passes the quiet ones by reading this in order, instead of reading the time from every session
 * object, spread over the heap: over 1,000,000 quiet synthetic sessions 1.3 ms a pass against 17 ms, and
 * 0.4 ms less a tick in a live server at 10,000. Free slots hold Infinity, so a pass skips them with the same
 * comparison.
 */
export class WatchTable<T extends Watched> {
  at = new Float64Array(1024).fill(Infinity);
  /** The session in each slot, up to `length`. */
  readonly sessions: (T | undefined)[] = [];
  length = 0;
  private readonly free: number[] = [];

  add(session: T): void {
    if (session.watchTable) return;
    const slot = this.free.pop() ?? this.length++;
    if (slot >= this.at.length) {
      const at = new Float64Array(this.at.length * 2).fill(Infinity);
      at.set(this.at);
      this.at = at;
    }
    this.sessions[slot] = session;
    this.at[slot] = 0; // looked at by the next tick
    session.watchTable = this;
    session.watchSlot = slot;
  }

  remove(session: T): void {
    if (session.watchTable !== this) return;
    const slot = session.watchSlot;
    this.at[slot] = Infinity;
    this.sessions[slot] = undefined;
    this.free.push(slot);
    session.watchTable = undefined;
    session.watchSlot = -1;
  }
}
