import type { SrvRecord } from 'node:dns';
import { Element } from 'ltx';
import { orderSrv, parseRoutes, resolveDomain, type LookupResult, type ResolveDeps } from '../../src/s2s/resolve';
import { PeerLedger } from '../../src/s2s/peer-ledger';
import { dialbackKey, verifyDialbackKey } from '../../src/s2s/dialback-key';

const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({ name, port, priority, weight });
const nx = () => Object.assign(new Error('not found'), { code: 'ENOTFOUND' });

function deps(records: SrvRecord[] | Error, addresses: string[] | Error): ResolveDeps & { counts: LookupResult[] } {
  const counts: LookupResult[] = [];
  return {
    counts,
    resolveSrv: async () => {
      if (records instanceof Error) throw records;
      return records;
    },
    lookup: async () => {
      if (addresses instanceof Error) throw addresses;
      return addresses;
    },
    counted: (r) => counts.push(r),
  };
}

describe('finding a peer server (RFC 6120 §3.2)', () => {
  it('a static route wins over DNS, which is not asked', async () => {
    const d = deps([srv('xmpp.example.org', 5269)], ['192.0.2.1']);
    expect(await resolveDomain('example.org', parseRoutes('example.org=10.0.0.5:5270'), 1000, d)).toEqual({ ok: true, targets: [{ host: '10.0.0.5', port: 5270 }], via: 'route' });
    expect(d.counts).toEqual([]);
  });

  it('then the SRV records, lowest priority first', async () => {
    const d = deps([srv('b.example.org', 5270, 20), srv('a.example.org', 5269, 10)], ['192.0.2.1']);
    expect(await resolveDomain('example.org', new Map(), 1000, d)).toEqual({ ok: true, targets: [{ host: 'a.example.org', port: 5269 }, { host: 'b.example.org', port: 5270 }], via: 'srv' });
    expect(d.counts).toEqual(['srv']);
  });

  it('no SRV records, or a failed lookup: the domain itself on 5269', async () => {
    for (const records of [[], nx(), Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })]) {
      const d = deps(records, ['192.0.2.1', '2001:db8::1']);
      expect(await resolveDomain('example.org', new Map(), 1000, d)).toEqual({ ok: true, targets: [{ host: '192.0.2.1', port: 5269 }, { host: '2001:db8::1', port: 5269 }], via: 'address' });
    }
  });

  it('a domain that does not exist is definite; a resolver that did not answer is not', async () => {
    expect(await resolveDomain('nowhere.invalid', new Map(), 1000, deps(nx(), nx()))).toMatchObject({ ok: false, definite: true });
    const timeout = Object.assign(new Error('slow'), { code: 'TIMEOUT' });
    const d = deps(nx(), timeout);
    expect(await resolveDomain('slow.example', new Map(), 1000, d)).toMatchObject({ ok: false, definite: false });
    expect(d.counts).toEqual(['no-srv', 'timeout']);
  });

  it('a single SRV target "." says there is no service', async () => {
    expect(await resolveDomain('example.org', new Map(), 1000, deps([srv('.', 0)], ['192.0.2.1']))).toMatchObject({ ok: false, definite: true });
  });

  it('priority first, then a weighted random order within one (RFC 2782)', () => {
    const records = [srv('light', 1, 10, 1), srv('heavy', 2, 10, 99), srv('backup', 3, 20, 50)];
    expect(orderSrv(records, () => 0.5).map((r) => r.name)).toEqual(['heavy', 'light', 'backup']);
    expect(orderSrv(records, () => 0).map((r) => r.name)).toEqual(['light', 'heavy', 'backup']);
  });

  it('routes: IPv6 in brackets; a bad entry names itself', () => {
    expect(parseRoutes(' a.test=127.0.0.1:5269 , B.test=[::1]:5270 ')).toEqual(new Map([['a.test', { host: '127.0.0.1', port: 5269 }], ['b.test', { host: '::1', port: 5270 }]]));
    expect(() => parseRoutes('a.test=127.0.0.1')).toThrow("s2s.routes: 'a.test=127.0.0.1' is not domain=host:port");
  });
});

describe('what a peer server has not confirmed (PeerLedger)', () => {
  const msg = (n: number) => new Element('message', { id: `m${n}` });

  it('keeps every stanza until a ping sent after it is answered, and only up to that ping', () => {
    const ledger = new PeerLedger(() => ({ confirmAfter: 10_000, maxStanzas: 100 }));
    ledger.written(msg(1), 1000);
    ledger.written(msg(2), 2000);
    ledger.heard(); // bytes on our own stream prove nothing
    expect(ledger.dueAt).toBe(11_000);
    ledger.confirm(1);
    ledger.written(msg(3), 3000);
    expect(ledger.take().map((u) => u.stanza.attrs.id)).toEqual(['m2', 'm3']);
  });

  it('on a busy link a ping is due at once when maxStanzas wait', () => {
    const ledger = new PeerLedger(() => ({ confirmAfter: 10_000, maxStanzas: 2 }));
    ledger.written(msg(1), 1000);
    ledger.written(msg(2), 1500);
    expect(ledger.dueAt).toBe(1000);
  });
});

describe('dialback keys (XEP-0185)', () => {
  it('verify for the same domains and stream id only', () => {
    const key = dialbackKey('s3cret', 'b.test', 'a.test', 'stream1');
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyDialbackKey(key, 's3cret', 'b.test', 'a.test', 'stream1')).toBe(true);
    expect(verifyDialbackKey(key, 's3cret', 'b.test', 'a.test', 'stream2')).toBe(false);
    expect(verifyDialbackKey(key, 'other', 'b.test', 'a.test', 'stream1')).toBe(false);
    expect(verifyDialbackKey('short', 's3cret', 'b.test', 'a.test', 'stream1')).toBe(false);
  });
});
