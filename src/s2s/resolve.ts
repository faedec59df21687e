import type { SrvRecord } from 'node:dns';
import { lookup as dnsLookup, Resolver } from 'node:dns/promises';

export interface Target {
  host: string;
  port: number;
}

/** Where a domain's server is, or why that could not be known. */
export type Resolution =
  | { ok: true; targets: Target[]; via: 'route' | 'srv' | 'address' }
  /** `definite`: the name does not exist (NXDOMAIN), as opposed to a resolver that did not answer. */
  | { ok: false; definite: boolean; text: string };

/** The outcome of each lookup, as vigil_dns_lookups_total counts them. */
export type LookupResult = 'srv' | 'no-srv' | 'address' | 'not-found' | 'timeout' | 'error';

export interface ResolveDeps {
  resolveSrv(name: string, timeout: number): Promise<SrvRecord[]>;
  lookup(host: string, timeout: number): Promise<string[]>;
  counted(result: LookupResult): void;
}

const XMPP_SERVER_PORT = 5269;

/** `domain=host:port, ...` (an IPv6 host in brackets) as written in s2s.routes; a bad entry throws, naming it. */
export function parseRoutes(text: string): Map<string, Target> {
  const routes = new Map<string, Target>();
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const m = entry.match(/^([^=\s]+)\s*=\s*(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/);
    const port = m ? Number(m[4]) : 0;
    if (!m || port < 1 || port > 65535) throw new Error(`s2s.routes: '${entry}' is not domain=host:port`);
    routes.set(m[1].toLowerCase(), { host: m[2] ?? m[3], port });
  }
  return routes;
}

/**
 * RFC 6120 §3.2: a static route wins; then the _xmpp-server._tcp SRV records, by priority and, within one,
 * weighted at random (RFC 2782); then the domain's own addresses on 5269, through the system resolver so
 * /etc/hosts counts. A lookup that fails or finds nothing falls through to the next; a single SRV record
 * with target "." says the domain offers no service at all.
 */
export async function resolveDomain(domain: string, routes: ReadonlyMap<string, Target>, timeout: number, deps: ResolveDeps): Promise<Resolution> {
  const route = routes.get(domain);
  if (route) return { ok: true, targets: [route], via: 'route' };
  try {
    const records = await deps.resolveSrv(`_xmpp-server._tcp.${domain}`, timeout);
    if (records.length === 1 && records[0].name === '.') {
      deps.counted('srv');
      return { ok: false, definite: true, text: `${domain} says it has no XMPP server (SRV target ".")` };
    }
    if (records.length > 0) {
      deps.counted('srv');
      return { ok: true, targets: orderSrv(records).map((r) => ({ host: r.name, port: r.port })), via: 'srv' };
    }
    deps.counted('no-srv');
  } catch (err) {
    deps.counted(lookupResult(err, 'no-srv'));
  }
  try {
    const addresses = await deps.lookup(domain, timeout);
    deps.counted('address');
    return { ok: true, targets: addresses.map((host) => ({ host, port: XMPP_SERVER_PORT })), via: 'address' };
  } catch (err) {
    const result = lookupResult(err, 'not-found');
    deps.counted(result);
    const definite = result === 'not-found';
    return { ok: false, definite, text: definite ? `${domain} does not exist in DNS` : `${domain} could not be resolved: ${(err as Error).message}` };
  }
}

/** Lowest priority first; within a priority, a weighted random order (RFC 2782). */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...byPriority.get(priority)!];
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      let pick = random() * total;
      let i = 0;
      while (i < left.length - 1 && (pick -= left[i].weight) >= 0) i++;
      out.push(left.splice(total === 0 ? 0 : i, 1)[0]);
    }
  }
  return out;
}

function lookupResult(err: unknown, absent: LookupResult): LookupResult {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'NXDOMAIN') return absent;
  if (code === 'ETIMEOUT' || code === 'TIMEOUT') return 'timeout';
  return 'error';
}

/** The real resolvers: c-ares for SRV (one try, bounded), getaddrinfo for addresses (bounded by a race). */
export function systemResolver(counted: (result: LookupResult) => void): ResolveDeps {
  return {
    async resolveSrv(name, timeout) {
      const resolver = new Resolver({ timeout, tries: 1 });
      return resolver.resolveSrv(name);
    },
    async lookup(host, timeout) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeout} ms`), { code: 'TIMEOUT' })), timeout);
      });
      try {
        const found = await Promise.race([dnsLookup(host, { all: true, verbatim: true }), expired]);
        return found.map((a) => a.address);
      } finally {
        clearTimeout(timer);
      }
    },
    counted,
  };
}
