import type { ServerResponse } from 'node:http';
import type { Config } from '../config/types.js';

export const WEBSOCKET_REL = 'urn:xmpp:alt-connections:websocket';

/** The WebSocket URL clients are told about: websocket.publicUrl, or the usual one behind a proxy. */
export function publicUrl(config: Config): string {
  return config.websocket.publicUrl || `wss://${config.domain}${config.listeners.websocket.path}`;
}

/**
 * XEP-0156 discovery on the WebSocket listener: /.well-known/host-meta (XRD) and /.well-known/host-meta.json
 * (JRD), readable from any page (CORS *), so a web client given only a JID finds the endpoint. True when the
 * path was one of them.
 */
export function serveHostMeta(path: string, config: Config, res: ServerResponse): boolean {
  const url = publicUrl(config);
  const headers = { 'access-control-allow-origin': '*', 'cache-control': 'max-age=300' };
  if (path === '/.well-known/host-meta') {
    const xrd = `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='${WEBSOCKET_REL}' href='${escape(url)}'/>\n</XRD>\n`;
    res.writeHead(200, { ...headers, 'content-type': 'application/xrd+xml; charset=utf-8' }).end(xrd);
    return true;
  }
  if (path === '/.well-known/host-meta.json') {
    res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(`${JSON.stringify({ links: [{ rel: WEBSOCKET_REL, href: url }] })}\n`);
    return true;
  }
  return false;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}
