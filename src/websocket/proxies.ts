import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { WebSocketPeer } from '../transport/websocket.js';

/** websocket.trustedProxies, parsed: comma-separated addresses or CIDRs. Throws with the entry that is wrong. */
export function trustedProxies(text: string): BlockList {
  const list = new BlockList();
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [address, bits] = entry.split('/');
    const family = isIP(address);
    if (family === 0) throw new Error(`websocket.trustedProxies: '${entry}' is not an address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`websocket.trustedProxies: '${entry}' has a bad prefix length`);
    list.addSubnet(address, prefix, type);
  }
  return list;
}

function trusted(list: BlockList, address: string): boolean {
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Who the client is. From a trusted proxy, X-Forwarded-For (the address nearest us that is not itself a
 * trusted proxy) and X-Forwarded-Proto; from anyone else, the socket alone, whatever headers it sends.
 */
export function peerOf(req: IncomingMessage, proxies: BlockList, tls: boolean): WebSocketPeer {
  const socket = req.socket;
  const direct = { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, encrypted: tls };
  if (!trusted(proxies, direct.remoteAddress)) return direct;
  const forwarded = headerList(req.headers['x-forwarded-for']);
  let client = direct.remoteAddress;
  for (let i = forwarded.length - 1; i >= 0; i--) {
    if (isIP(forwarded[i]) === 0) break;
    client = forwarded[i];
    if (!trusted(proxies, client)) break;
  }
  const proto = headerList(req.headers['x-forwarded-proto'])[0]?.toLowerCase();
  return { remoteAddress: client, remotePort: client === direct.remoteAddress ? direct.remotePort : 0, encrypted: tls || proto === 'https' || proto === 'wss' };
}

function headerList(value: string | string[] | undefined): string[] {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return joined.split(',').map((v) => v.trim()).filter(Boolean);
}
