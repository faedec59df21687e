import type { IncomingMessage } from 'node:http';
import { peerOf, trustedProxies } from '../../src/websocket/proxies';

const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress, remotePort: 40000 }, headers }) as unknown as IncomingMessage;

describe('who is behind a proxy', () => {
  const loopback = trustedProxies('127.0.0.0/8, ::1/128');

  it('believes the forwarded client and scheme from a trusted proxy only', () => {
    const headers = { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https' };
    expect(peerOf(req('127.0.0.1', headers), loopback, false)).toEqual({ remoteAddress: '198.51.100.7', remotePort: 0, encrypted: true });
    expect(peerOf(req('::ffff:127.0.0.1', headers), loopback, false)).toMatchObject({ remoteAddress: '198.51.100.7', encrypted: true });
    expect(peerOf(req('203.0.113.5', headers), loopback, false)).toEqual({ remoteAddress: '203.0.113.5', remotePort: 40000, encrypted: false });
  });

  it('takes the nearest address that is not itself a trusted proxy, so a client cannot choose its own', () => {
    const chain = { 'x-forwarded-for': '10.9.9.9, 198.51.100.7, 127.0.0.2' };
    expect(peerOf(req('127.0.0.1', chain), loopback, false).remoteAddress).toBe('198.51.100.7');
    expect(peerOf(req('127.0.0.1', { 'x-forwarded-for': 'not-an-address' }), loopback, false).remoteAddress).toBe('127.0.0.1');
  });

  it('trusts no one when the list is empty, and refuses a malformed entry by name', () => {
    expect(peerOf(req('127.0.0.1', { 'x-forwarded-proto': 'https' }), trustedProxies(''), false).encrypted).toBe(false);
    expect(peerOf(req('127.0.0.1'), trustedProxies(''), true).encrypted).toBe(true);
    expect(() => trustedProxies('127.0.0.1, nonsense')).toThrow("'nonsense' is not an address or CIDR");
    expect(() => trustedProxies('10.0.0.0/33')).toThrow('bad prefix length');
  });
});
