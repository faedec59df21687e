import { WatchTable, type Watched } from '../../src/sessions/watch-table';

const watched = (): Watched => ({ watchTable: undefined, watchSlot: -1 });

describe('the watchdog table', () => {
  it('keeps every session its own slot through growth, removals and reuse', () => {
    const table = new WatchTable<Watched>();
    const sessions = Array.from({ length: 1500 }, watched); // past the first 1,024 slots
    sessions.forEach((s, i) => {
      table.add(s);
      table.at[s.watchSlot] = 1000 + i;
    });
    expect(new Set(sessions.map((s) => s.watchSlot)).size).toBe(1500);
    // Growing the array kept every time already set.
    expect(sessions.every((s, i) => table.at[s.watchSlot] === 1000 + i)).toBe(true);

    const gone = sessions.filter((_, i) => i % 3 === 0);
    for (const s of gone) table.remove(s);
    expect(gone.every((s) => s.watchTable === undefined && s.watchSlot === -1)).toBe(true);
    expect(gone.length).toBe(500);

    // New sessions take the freed slots: due at the next tick, and the table does not grow.
    const newcomers = Array.from({ length: 500 }, watched);
    for (const s of newcomers) table.add(s);
    expect(table.length).toBe(1500);
    expect(newcomers.every((s) => table.at[s.watchSlot] === 0 && table.sessions[s.watchSlot] === s)).toBe(true);
    const kept = sessions.filter((_, i) => i % 3 !== 0);
    expect(kept.every((s) => table.sessions[s.watchSlot] === s)).toBe(true);
    expect(new Set([...kept, ...newcomers].map((s) => s.watchSlot)).size).toBe(1500);
  });

  it('leaves a free slot at Infinity, so a pass skips it, and ignores a session twice added or removed', () => {
    const table = new WatchTable<Watched>();
    const a = watched();
    table.add(a);
    const slot = a.watchSlot;
    table.add(a);
    expect(table.length).toBe(1);
    table.remove(a);
    table.remove(a);
    expect(table.at[slot]).toBe(Infinity);
    expect(table.sessions[slot]).toBeUndefined();
    const b = watched();
    table.add(b);
    expect(b.watchSlot).toBe(slot);
  });
});
