import { createServer } from 'node:net';
import type { Config } from '../../config/types.js';
import { error, ok, type Finding } from './finding.js';
import type { Running } from './running.js';

/** Bind the address for a moment: 'free', or the errno code (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...). */
export function tryListen(host: string, port: number): Promise<'free' | string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

type ListenerName = 'c2s' | 'websocket' | 's2s' | 'http';

function where(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Each listener: free, held by the running Vigil (fine), or held by something else (error), with the fix. */
export async function checkPorts(config: Config, running: Running): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const name of ['c2s', 'websocket', 's2s', 'http'] as const) {
    const { host, port } = config.listeners[name];
    const key = `listeners.${name}`;
    if (name === 's2s' && !config.s2s.enabled) {
      findings.push(ok(`${key}: s2s.enabled is false, federation off: nothing listens for other servers and nothing is sent to other domains`));
      continue;
    }
    if (port === 0) {
      findings.push(ok(`${key}: port 0, the kernel picks a free port at each start (clients and \`vigil sessions\` cannot find it)`));
      continue;
    }
    const result = await tryListen(host, port);
    const at = where(host, port);
    if (result === 'free') {
      findings.push(ok(`${key}: ${at} is free`));
    } else if (result === 'EADDRINUSE') {
      findings.push(inUse(name, at, port, running));
    } else if (result === 'EACCES') {
      findings.push(error(`${key}: may not bind ${at} (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in the systemd unit); or set ${key}.port to 1024 or above`));
    } else if (result === 'EADDRNOTAVAIL') {
      findings.push(error(`${key}: ${host} is not an address of this host (EADDRNOTAVAIL): set ${key}.host to one of its addresses, or 0.0.0.0 / :: for all`));
    } else if (result === 'EAFNOSUPPORT') {
      findings.push(error(`${key}: this host has no IPv6 for ${host} (EAFNOSUPPORT): set ${key}.host to 0.0.0.0`));
    } else {
      findings.push(error(`${key}: cannot bind ${at} (${result}): fix ${key}.host / ${key}.port`));
    }
  }
  return findings;
}

function inUse(name: ListenerName, at: string, port: number, running: Running): Finding {
  const key = `listeners.${name}`;
  const other = error(`${key}: ${at} is in use by another process${running.kind === 'other' ? ` (${running.detail})` : ''}: stop it (\`ss -ltnp '( sport = :${port} )'\` names it) or set ${key}.port`);
  if (running.kind !== 'vigil') return other;
  const pid = running.status ? ` (pid ${running.status.pid})` : '';
  // The HTTP port answered as Vigil; the c2s port is ours if that Vigil says it listens there (or cannot tell us).
  const reported: Partial<Record<ListenerName, number>> | undefined = running.status?.listeners;
  const theirs = name === 'http' ? undefined : reported?.[name];
  if (theirs !== undefined && theirs !== port) {
    return error(`${key}: ${at} is in use by another process: the Vigil on this HTTP port${pid} listens for ${name} on ${theirs}; stop the other one (\`ss -ltnp '( sport = :${port} )'\` names it) or set ${key}.port`);
  }
  return ok(`${key}: ${at} is held by the running Vigil${pid}`);
}
