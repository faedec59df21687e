import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Metrics } from './metrics.js';

export interface HttpRoutes {
  metrics: Metrics;
  /** Ready to serve clients: listeners bound, storage open, not shutting down. */
  ready(): boolean;
  /** Extra handlers (admin endpoints), tried before the 404. */
  extra?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** /metrics (Prometheus text format), /healthz (the process answers), /readyz (it serves clients). */
export function createHttpServer(routes: HttpRoutes): HttpServer {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      routes.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': routes.metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = routes.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    if (routes.extra?.(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
}
