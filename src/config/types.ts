/** The validated configuration as the rest of the server sees it: durations in ms, sizes in bytes. */
export type ConnectionKind = 'c2s' | 's2sIn' | 's2sOut' | 'websocket';
export const CONNECTION_KINDS: readonly ConnectionKind[] = ['c2s', 's2sIn', 's2sOut', 'websocket'];

export type ProbeKind = 'xmpp-ping' | 'whitespace' | 'none';

export interface WatchdogPolicy {
  probeAfter: number;
  probe: ProbeKind;
  probeTimeout: number;
  maxIdle: number;
  keepaliveAfter: number;
  unauthenticatedTimeout: number;
  writeStallTimeout: number;
  maxSendQueue: number;
  closeTimeout: number;
  tcpKeepAlive: number;
}

export interface Config {
  domain: string;
  listeners: { c2s: { host: string; port: number }; http: { host: string; port: number } };
  tls: { cert: string; key: string };
  storage: { driver: 'sqlite' | 'postgres'; path: string; url: string };
  c2s: {
    maxStanzaSize: number;
    allowPlainWithoutTls: boolean;
    maxAuthAttempts: number;
    scramIterations: number;
    maxOfflineMessages: number;
    maxRosterItems: number;
    maxPendingSubscriptions: number;
    registration: { enabled: boolean; perIpPerHour: number };
  };
  watchdog: { interval: number } & Record<ConnectionKind, WatchdogPolicy>;
  limits: { maxSessions: number };
  admin: { token: string };
  shutdown: { timeout: number };
  log: { level: string };
}

/** Deep partial, for tests and callers that override a few options. */
export type ConfigOverrides = { [K in keyof Config]?: Config[K] extends object ? { [L in keyof Config[K]]?: Config[K][L] extends object ? Partial<Config[K][L]> : Config[K][L] } : Config[K] };
