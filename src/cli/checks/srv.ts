import { promises as dns, type SrvRecord } from 'node:dns';
import type { Config } from '../../config/types.js';
import { advice, ok, type Finding } from './finding.js';

/** The port peers dial when a domain has no _xmpp-server._tcp SRV records (RFC 6120 §3.2.2). */
export const DEFAULT_S2S_PORT = 5269;

/** What the SRV check asks of DNS; tests hand it records, NXDOMAIN and timeouts without a network. */
export interface DnsAsker {
  /** SRV records of a name; rejects with the resolver's error, its code ENOTFOUND, ENODATA, ETIMEOUT, ECONNREFUSED, ... */
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** A host's addresses through the system resolver, as dns.lookup (so /etc/hosts counts), as peers find them. */
  lookup(host: string): Promise<string[]>;
}

/** A domain nothing outside this host can reach (RFC 6761): no lookups, nothing to federate with. */
export function isLocalDomain(domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return d === 'localhost' || d.endsWith('.localhost');
}

/** The codes that mean the name has no such records (NXDOMAIN, or no data of that type): an answer, not a failure. */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout?: () => void): Promise<T> {
  if (ms <= 0) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEOUT' }));
    }, ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * DNS as peers ask it, each lookup bounded by `timeoutMs` (s2s.dnsTimeout): SRV through a c-ares Resolver
 * with that timeout and one try, addresses through getaddrinfo, which has no timeout of its own and is only
 * raced (a stuck one keeps its thread until the system resolver gives up). `servers` replaces the system's
 * name servers for SRV (tests: one on loopback that never answers).
 */
export function systemDns(timeoutMs: number, servers?: string[]): DnsAsker {
  return {
    resolveSrv(name) {
      const resolver = new dns.Resolver({ timeout: timeoutMs > 0 ? timeoutMs : -1, tries: 1 });
      if (servers) resolver.setServers(servers);
      return withTimeout(resolver.resolveSrv(name), timeoutMs, () => resolver.cancel());
    },
    async lookup(host) {
      const found = await withTimeout(dns.lookup(host, { all: true }), timeoutMs);
      return found.map((a) => a.address);
    },
  };
}

type Outcome<T> = { ok: true; value: T } | { ok: false; code: string };

async function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

/** `priority weight target:port`, by priority then weight (heaviest first), as a peer would try them. */
export function formatSrv(records: SrvRecord[]): string {
  return [...records]
    .sort((a, b) => a.priority - b.priority || b.weight - a.weight)
    .map((r) => `${r.priority} ${r.weight} ${r.name || '.'}:${r.port}`)
    .join(', ');
}

/** RFC 2782: a single record with target "." says the service is decidedly not available at this domain. */
const refusesService = (records: SrvRecord[]) => records.length === 1 && (records[0].name === '' || records[0].name === '.');

/**
 * How other servers find this one: `_xmpp-server._tcp.<domain>` SRV records, else the domain's own address
 * on 5269; `_xmpps-server._tcp` (XEP-0368 direct TLS) for information. A DNS that cannot be asked is advice,
 * never an error: an offline host can still run Vigil. Nothing when federation is off.
 */
export async function checkSrv(config: Config, asker: DnsAsker = systemDns(config.s2s.dnsTimeout)): Promise<Finding[]> {
  const { domain } = config;
  const port = config.listeners.s2s.port;
  if (!config.s2s.enabled) return [];
  if (isLocalDomain(domain)) {
    return [ok(`s2s: domain ${domain}: nothing federates with ${domain}, so no SRV lookup: set domain to the name other servers know this one by, or s2s.enabled to false to turn federation off`)];
  }
  const name = `_xmpp-server._tcp.${domain}`;
  const srv = await settle(asker.resolveSrv(name));
  if (!srv.ok && !ABSENT.has(srv.code)) {
    return [advice(`s2s: could not ask DNS for ${name} (${srv.code}${srv.code === 'ETIMEOUT' ? `, s2s.dnsTimeout ${config.s2s.dnsTimeout} ms` : ''}), so cannot tell how other servers find this one; Vigil needs DNS to find them too: check /etc/resolv.conf and the network, or ask from another host: \`dig SRV ${name}\``)];
  }
  const findings: Finding[] = [];
  if (srv.ok && refusesService(srv.value)) {
    findings.push(advice(`s2s: ${name} SRV is "." (RFC 2782: no service here): other servers will not connect to this one at all: replace it with a record for this host and port ${port}, or set s2s.enabled to false if federation is not wanted`));
  } else if (srv.ok && srv.value.length > 0) {
    findings.push(ok(`s2s: ${name} SRV: ${formatSrv(srv.value)}: other servers connect there`));
    const ports = [...new Set(srv.value.map((r) => r.port))];
    if (!ports.includes(port)) {
      findings.push(advice(`s2s: the SRV records point to port ${ports.join(', ')} but listeners.s2s.port is ${port}: unless a port forward or proxy leads there, other servers cannot reach this one: make them agree`));
    }
  } else {
    findings.push(await fallbackFinding(domain, name, port, asker));
  }
  findings.push(await directTlsFinding(domain, asker));
  return findings;
}

/** No SRV records: peers dial the domain itself on 5269, if it resolves. */
async function fallbackFinding(domain: string, name: string, port: number, asker: DnsAsker): Promise<Finding> {
  const publish = `publish ${name}. SRV 0 5 ${port} <this host's name>.`;
  const addresses = await settle(asker.lookup(domain));
  if (!addresses.ok && !ABSENT.has(addresses.code)) {
    return advice(`s2s: no ${name} SRV records, so other servers connect to ${domain} on ${DEFAULT_S2S_PORT}, but the system resolver could not be asked for its address (${addresses.code}): check /etc/resolv.conf and the network`);
  }
  if (!addresses.ok || addresses.value.length === 0) {
    return advice(`s2s: no ${name} SRV records and ${domain} has no address (${addresses.ok ? 'none' : addresses.code}): other servers cannot find this one: ${publish}, or an A/AAAA record for ${domain} pointing to this host`);
  }
  const where = `no ${name} SRV records: other servers connect to ${domain} itself on port ${DEFAULT_S2S_PORT} (RFC 6120 §3.2.2), which resolves to ${addresses.value.join(', ')}`;
  if (port !== DEFAULT_S2S_PORT) return advice(`s2s: ${where}, but listeners.s2s.port is ${port}: ${publish}, or listen on ${DEFAULT_S2S_PORT}`);
  return ok(`s2s: ${where}`);
}

/** XEP-0368 records, for information: Vigil speaks STARTTLS only, so peers that try them first must fall back. */
async function directTlsFinding(domain: string, asker: DnsAsker): Promise<Finding> {
  const name = `_xmpps-server._tcp.${domain}`;
  const srv = await settle(asker.resolveSrv(name));
  if (!srv.ok && !ABSENT.has(srv.code)) return advice(`s2s: could not ask DNS for ${name} (${srv.code}): check /etc/resolv.conf and the network`);
  if (!srv.ok || srv.value.length === 0 || refusesService(srv.value)) return ok(`s2s: no ${name} SRV records (XEP-0368 direct TLS): none needed, Vigil offers other servers STARTTLS`);
  return ok(`s2s: ${name} SRV (XEP-0368 direct TLS): ${formatSrv(srv.value)}: Vigil offers other servers STARTTLS only, so unless something in front terminates TLS there, peers that try these first fail and fall back to _xmpp-server._tcp`);
}
