import { execFileSync } from 'node:child_process';

/** States in which a socket the server abandoned would linger. */
export const LINGERING = ['ESTAB', 'CLOSE-WAIT', 'FIN-WAIT-1', 'FIN-WAIT-2', 'LAST-ACK', 'CLOSING'];

/**
 * TCP states of the server's sockets towards one client port, read from the kernel with ss (iproute2).
 * An empty list means the server holds nothing for that client (TIME-WAIT is the kernel's, and harmless).
 */
export function serverSocketStates(serverPort: number, clientPort: number): string[] {
  const out = execFileSync('ss', ['-tanH', 'state', 'all', `( sport = :${serverPort} and dport = :${clientPort} )`], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((state) => state && LINGERING.includes(state));
}

/** Every lingering server-side socket on a port, optionally only those towards one peer address. */
export function lingeringOnPort(serverPort: number, peerIp?: string): string[] {
  const filter = peerIp ? `( sport = :${serverPort} and dst ${peerIp} )` : `( sport = :${serverPort} )`;
  const out = execFileSync('ss', ['-tanH', 'state', 'all', filter], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((cols) => cols[0] && LINGERING.includes(cols[0]) && cols[0] !== 'LISTEN')
    .map((cols) => `${cols[0]} ${cols[4] ?? ''}`);
}

/** Poll until the predicate holds or the time is up; the caller asserts afterwards, so a failure shows the state. */
export async function eventually(predicate: () => boolean | Promise<boolean>, timeout = 3000, every = 50): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await predicate()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, every));
}
