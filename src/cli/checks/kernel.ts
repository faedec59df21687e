import { readFileSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import { advice, ok, type Finding } from './finding.js';

/** The kernel settings that decide how fast TCP itself gives up on a dead peer, by sysctl name. */
export const KERNEL_KEYS = [
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_retries2',
  'net.core.somaxconn',
] as const;
export type KernelKey = (typeof KERNEL_KEYS)[number];
export type KernelValues = Partial<Record<KernelKey, number>>;

/** Recommended values, and the bound beyond which a setting earns an advice line. */
export const RECOMMENDED = { keepaliveTime: 600, keepaliveIntvl: 10, keepaliveProbes: 6, keepaliveGiveUp: 120, finTimeout: 30, maxFinTimeout: 60, retries2: 8, somaxconn: 4096, listenBacklog: 511 };

const PERSIST = 'persist it in /etc/sysctl.d/90-vigil.conf; in a container use --sysctl';

export function readKernelValues(root = '/proc/sys'): KernelValues {
  const values: KernelValues = {};
  for (const key of KERNEL_KEYS) {
    try {
      const n = Number(readFileSync(`${root}/${key.replace(/\./g, '/')}`, 'utf8').trim());
      if (Number.isFinite(n)) values[key] = n;
    } catch {
      // not Linux, or hidden in this container: reported below
    }
  }
  return values;
}

/**
 * Seconds the kernel keeps retransmitting unacknowledged data before it fails the connection, for
 * tcp_retries2 = n: the RTO starts at 200 ms and doubles up to 120 s (Linux's tcp_model_timeout).
 */
export function retransmitGiveUpSeconds(retries: number): number {
  let total = 0;
  for (let i = 0; i <= retries; i++) total += Math.min(0.2 * 2 ** i, 120);
  return Math.round(total * 10) / 10;
}

/** Advice on each setting, named with its recommended value and why it matters here. Never an error. */
export function kernelFindings(values: KernelValues, config: Config): Finding[] {
  const out: Finding[] = [];
  const missing = KERNEL_KEYS.filter((k) => values[k] === undefined);
  if (missing.length === KERNEL_KEYS.length) return [advice('kernel: cannot read /proc/sys (not Linux?): check the TCP settings below by hand: ' + KERNEL_KEYS.join(', '))];
  for (const key of missing) out.push(advice(`kernel: cannot read ${key}: check it with \`sysctl ${key}\``));

  const ownKeepAlive = Math.round(config.watchdog.c2s.tcpKeepAlive / 1000);
  const time = values['net.ipv4.tcp_keepalive_time'];
  if (time !== undefined) {
    const own = ownKeepAlive > 0 ? `Vigil sets its own per socket (watchdog.c2s.tcpKeepAlive ${ownKeepAlive} s), so this is for the rest of the host` : 'watchdog.c2s.tcpKeepAlive is 0, so Vigil sockets use no TCP keepalive at all: set it to 60s';
    if (time > RECOMMENDED.keepaliveTime) {
      out.push(advice(`kernel: net.ipv4.tcp_keepalive_time = ${time} s: idle connections are first probed after ${Math.round(time / 60)} min, long after a NAT (often 300-1800 s) has forgotten them; ${own}: sysctl -w net.ipv4.tcp_keepalive_time=${RECOMMENDED.keepaliveTime} (${PERSIST})`));
    } else {
      out.push(ok(`kernel: net.ipv4.tcp_keepalive_time = ${time} s; ${own}`));
    }
  }

  const intvl = values['net.ipv4.tcp_keepalive_intvl'];
  const probes = values['net.ipv4.tcp_keepalive_probes'];
  if (intvl !== undefined && probes !== undefined) {
    const giveUp = intvl * probes;
    const first = ownKeepAlive > 0 ? ownKeepAlive : (time ?? 7200);
    const what = `Node sets only the idle time per socket, so these apply to Vigil's sockets: TCP keepalive finds a dead peer ${first} + ${intvl} x ${probes} = ${first + giveUp} s after it fell silent`;
    if (giveUp > RECOMMENDED.keepaliveGiveUp) {
      out.push(advice(`kernel: net.ipv4.tcp_keepalive_intvl = ${intvl}, tcp_keepalive_probes = ${probes}: ${what}; the watchdog's probes usually find it first, keepalive is the backstop for streams probed with none or whitespace: sysctl -w net.ipv4.tcp_keepalive_intvl=${RECOMMENDED.keepaliveIntvl} net.ipv4.tcp_keepalive_probes=${RECOMMENDED.keepaliveProbes} (${RECOMMENDED.keepaliveIntvl * RECOMMENDED.keepaliveProbes} s; ${PERSIST})`));
    } else {
      out.push(ok(`kernel: net.ipv4.tcp_keepalive_intvl = ${intvl}, tcp_keepalive_probes = ${probes}: ${what}`));
    }
  }

  const fin = values['net.ipv4.tcp_fin_timeout'];
  if (fin !== undefined) {
    if (fin > RECOMMENDED.maxFinTimeout) {
      out.push(advice(`kernel: net.ipv4.tcp_fin_timeout = ${fin} s: a closed socket whose peer vanished waits this long in FIN-WAIT-2; Vigil resets its own after watchdog.c2s.closeTimeout, but the kernel's orphans still hold memory: sysctl -w net.ipv4.tcp_fin_timeout=${RECOMMENDED.finTimeout} (${PERSIST})`));
    } else {
      out.push(ok(`kernel: net.ipv4.tcp_fin_timeout = ${fin} s (orphaned FIN-WAIT-2 sockets are dropped after it)`));
    }
  }

  const retries = values['net.ipv4.tcp_retries2'];
  if (retries !== undefined) {
    const s = retransmitGiveUpSeconds(retries);
    const human = s >= 120 ? `~${Math.round(s / 60)} min` : `~${Math.round(s)} s`;
    if (retries > RECOMMENDED.retries2) {
      out.push(advice(`kernel: net.ipv4.tcp_retries2 = ${retries}: data sent to a peer that vanished is retransmitted for ${human} (${s} s) before the kernel fails the connection, and the socket looks ESTABLISHED all that time; the watchdog closes such sessions sooner, but anything it does not watch (and orphaned sockets) waits it out: sysctl -w net.ipv4.tcp_retries2=${RECOMMENDED.retries2} (~${Math.round(retransmitGiveUpSeconds(RECOMMENDED.retries2))} s; ${PERSIST})`));
    } else {
      out.push(ok(`kernel: net.ipv4.tcp_retries2 = ${retries}: unacknowledged data to a vanished peer fails after ${human}`));
    }
  }

  const somaxconn = values['net.core.somaxconn'];
  if (somaxconn !== undefined) {
    if (somaxconn < RECOMMENDED.listenBacklog) {
      out.push(advice(`kernel: net.core.somaxconn = ${somaxconn}: caps the accept queue below the ${RECOMMENDED.listenBacklog} Node asks for; when thousands of clients reconnect at once (after a restart or a network blip) the excess SYNs are dropped and clients back off for seconds: sysctl -w net.core.somaxconn=${RECOMMENDED.somaxconn} (${PERSIST})`));
    } else {
      out.push(ok(`kernel: net.core.somaxconn = ${somaxconn} (the listen backlog of ${RECOMMENDED.listenBacklog} fits)`));
    }
  }
  return out;
}
