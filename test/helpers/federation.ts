import { generate } from 'selfsigned';
import type { ConfigOverrides } from '../../src/config/types';
import { TestClient } from './client';
import { freePort } from './daemon';
import { startServer, type TestServer } from './server';

export interface Pems {
  cert: string;
  key: string;
}

const selfSigned = new Map<string, Pems>();

/** A self-signed EC certificate for `domain`, made once per test file: a peer can only accept it through dialback. */
export async function selfSignedFor(domain: string): Promise<Pems> {
  let pems = selfSigned.get(domain);
  if (!pems) {
    const made = await generate([{ name: 'commonName', value: domain }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: domain }] }] });
    selfSigned.set(domain, (pems = { cert: made.cert, key: made.private }));
  }
  return pems;
}

export interface FederatedServer extends TestServer {
  domain: string;
  /** PLAIN login on this server's own domain. */
  login(user: string, resource?: string, presence?: boolean): Promise<TestClient>;
}

export interface PeerSpec {
  domain: string;
  overrides?: ConfigOverrides;
  certificate?: Pems;
}

function merge(a: ConfigOverrides, b: ConfigOverrides): ConfigOverrides {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && prev && typeof prev === 'object' ? merge(prev as ConfigOverrides, v as ConfigOverrides) : v;
  }
  return out as ConfigOverrides;
}

/**
 * Vigil servers on loopback, each its own domain, routed to one another by s2s.routes (their s2s ports
 * are chosen first, so each can be told where the others are before any starts). Certificates are
 * self-signed unless given.
 */
export async function startFederation(...specs: PeerSpec[]): Promise<FederatedServer[]> {
  const ports = await Promise.all(specs.map(() => freePort()));
  const routes = specs.map((s, i) => `${s.domain}=127.0.0.1:${ports[i]}`).join(', ');
  const servers: FederatedServer[] = [];
  for (const [i, spec] of specs.entries()) {
    const certificate = spec.certificate ?? (await selfSignedFor(spec.domain));
    const base: ConfigOverrides = {
      domain: spec.domain,
      listeners: { s2s: { host: '127.0.0.1', port: ports[i] } },
      s2s: { routes },
      limits: { exemptLoopback: true },
    };
    const srv = await startServer(merge(base, spec.overrides ?? {}), { certificate, tls: true });
    servers.push({
      ...srv,
      domain: spec.domain,
      login: (user, resource = 'r', presence = true) => TestClient.login(srv.port, user, 'secret', resource, { presence, domain: spec.domain }),
    });
  }
  return servers;
}
