import { Element } from 'ltx';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AckQueue, H_MOD, parseH } from '../../src/sm/ack-queue';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const msg = (n: number) => new Element('message', { id: `m${n}` });
const ids = (q: AckQueue) => q.unacked().map((u) => u.stanza.attrs.id);

describe('the XEP-0198 unacked queue', () => {
  it('keeps what was written until an h covers it, and refuses an h above what was sent', () => {
    const q = new AckQueue();
    for (let i = 1; i <= 4; i++) q.written(msg(i), i * 10);
    expect(q.h).toBe(4);
    expect(q.ack(1)).toBe(1);
    expect(ids(q)).toEqual(['m2', 'm3', 'm4']);
    expect(q.oldestAt).toBe(20);
    expect(q.ack(1)).toBe(0); // the same h again acks nothing new
    expect(q.acks(5)).toBe(-1);
    expect(q.ack(5)).toBe(-1);
    expect(ids(q)).toEqual(['m2', 'm3', 'm4']);
    expect(q.ack(4)).toBe(3);
    expect(q.length).toBe(0);
    expect(q.oldestAt).toBe(0);
    expect([q.writtenCount, q.confirmedCount]).toEqual([4, 4]);
  });

  it('wraps h at 2^32 on the wire while counting on underneath', () => {
    const q = new AckQueue();
    // As if 2^32 - 2 stanzas had been written and acked already.
    q.writtenCount = q.confirmedCount = H_MOD - 2;
    for (let i = 1; i <= 4; i++) q.written(msg(i), i);
    expect(q.h).toBe(2);
    // h = 2^32 - 1: one acked, just below the wrap.
    expect(q.ack(H_MOD - 1)).toBe(1);
    // h = 0: past the wrap, one more.
    expect(q.ack(0)).toBe(1);
    expect(ids(q)).toEqual(['m3', 'm4']);
    expect(q.acks(3)).toBe(-1);
    expect(q.ack(2)).toBe(2);
    expect(q.confirmedCount).toBe(H_MOD + 2);
  });

  it('gives everything unacked, in order, once, when the session ends', () => {
    const q = new AckQueue();
    for (let i = 1; i <= 3000; i++) q.written(msg(i), i);
    q.ack(2000);
    expect(q.take().map((u) => u.stanza.attrs.id)).toEqual(Array.from({ length: 1000 }, (_, i) => `m${2001 + i}`));
    expect(q.take()).toEqual([]);
  });

  it('lets go of what was acked at once, while stanzas after it still wait', async () => {
    const q = new AckQueue();
    const refs: WeakRef<Element>[] = [];
    for (let i = 1; i <= 20; i++) {
      const stanza = msg(i);
      refs.push(new WeakRef(stanza));
      q.written(stanza, i);
    }
    expect(q.ack(15)).toBe(15);
    // WeakRefs hold their targets until the current job ends.
    await new Promise((r) => setImmediate(r));
    collectGarbage();
    expect(refs.map((r) => r.deref() !== undefined)).toEqual([...Array(15).fill(false), ...Array(5).fill(true)]);
    expect(ids(q)).toEqual(['m16', 'm17', 'm18', 'm19', 'm20']);
  });

  it('reads h only as a decimal 32-bit count', () => {
    expect(parseH('0')).toBe(0);
    expect(parseH('4294967295')).toBe(H_MOD - 1);
    for (const bad of ['4294967296', '-1', '1.5', '', ' 1', '0x10', undefined]) expect(parseH(bad)).toBeUndefined();
  });
});
