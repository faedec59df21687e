import convict from 'convict';
import { registerFormats } from './formats.js';

registerFormats();

/**
 * Every format an option may have. types.ts maps each to the type loadConfig returns (durations and sizes
 * to numbers, enumerations to their literals), so adding a format here means teaching it there too.
 */
export type Format = StringConstructor | BooleanConstructor | 'duration' | 'bytes' | 'port-number' | 'nat' | readonly string[];

/** One option: convict's leaf, plus `min` for durations that must not be shorter (checked by the format). */
export interface Option {
  readonly doc: string;
  readonly format: Format;
  readonly default: string | number | boolean;
  readonly env: string;
  readonly sensitive?: boolean;
  readonly min?: string;
  /** A file path: relative ones written in a config file are resolved against that file's directory. */
  readonly isPath?: true;
}

export interface OptionTree {
  readonly [key: string]: Option | OptionTree;
}

/** Probes each kind may use: whitespace only on XML streams (RFC 7395 forbids it on WebSocket), ping frames only on WebSocket. */
export const XML_STREAM_PROBES = ['xmpp-ping', 'whitespace', 'none'] as const;
export const WEBSOCKET_PROBES = ['websocket-ping', 'xmpp-ping', 'none'] as const;
/**
 * An incoming server stream carries stanzas one way only (RFC 6120 §8.1.1): nothing may be sent on it that
 * asks for an answer on it, so the peer is watched from its own side (its outgoing stream's probes) and here
 * only by TCP.
 */
export const S2S_IN_PROBES = ['whitespace', 'none'] as const;

interface PolicyDefaults<P extends readonly string[]> {
  probes: P;
  probeDoc: string;
  keepaliveDoc: string;
  /** Where a kind's reasons differ from a client's. */
  probeAfterDoc?: string;
  maxIdleDoc?: string;
  unauthenticatedDoc?: string;
  maxSendQueueDoc?: string;
  probeAfter: string;
  probe: P[number];
  probeTimeout: string;
  maxIdle: string;
  keepaliveAfter: string;
  unauthenticatedTimeout: string;
  writeStallTimeout: string;
  maxSendQueue: string;
  closeTimeout: string;
  tcpKeepAlive: string;
}

/**
 * Per-kind watchdog policy. The c2s defaults catch a dead mobile client within 150 s (probe at 120 s of
 * read silence, 30 s to answer): well inside the 1800 s a typical NAT keeps an idle flow, far below
 * Openfire's 6 min and Prosody's ~28 min, and slow enough that a phone on a bad link is not thrown out.
 * Only kinds that have a transport get a policy here: the docs are generated from this, and must not
 * promise a stream Vigil cannot accept yet.
 */
function policySchema<P extends readonly string[]>(kind: string, d: PolicyDefaults<P>) {
  const env = (key: string) => `VIGIL_WATCHDOG_${kind.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_${key}`;
  return {
    probeAfter: {
      doc: d.probeAfterDoc ?? 'Send one probe when nothing has been received from the peer for this long (with stream management: no ack for this long, whatever else arrives). Received bytes are the only proof of life; our own writes never count. Clients: 120 s, well inside the 1800 s a NAT typically keeps an idle flow and slow enough not to wake a phone often; with probeTimeout a dead client is gone within 151 s (Openfire: 6 min; Prosody: ~28 min).',
      format: 'duration', default: d.probeAfter, env: env('PROBE_AFTER'),
    },
    probe: {
      doc: d.probeDoc,
      format: d.probes, default: d.probe, env: env('PROBE'),
    },
    probeTimeout: {
      doc: 'Close with reason probe-timeout when nothing has been received within this long after an xmpp-ping probe was sent. 30 s lets a phone on a poor link answer (ejabberd waits 32 s).',
      format: 'duration', default: d.probeTimeout, env: env('PROBE_TIMEOUT'),
    },
    maxIdle: {
      doc: d.maxIdleDoc ?? 'Close with reason idle when nothing has been received for this long, whatever the probes did. 0 turns it off, the default for clients: an answered ping is received bytes, so the xmpp-ping probes decide. Set it with probe whitespace or none, where nothing else closes a silent peer.',
      format: 'duration', default: d.maxIdle, env: env('MAX_IDLE'),
    },
    keepaliveAfter: {
      doc: d.keepaliveDoc,
      format: 'duration', default: d.keepaliveAfter, env: env('KEEPALIVE_AFTER'),
    },
    unauthenticatedTimeout: {
      doc: d.unauthenticatedDoc ?? 'Close with reason unauthenticated a stream that has not authenticated and bound within this long of being accepted: half-finished negotiations are a cheap denial of service. 30 s: a real client needs well under a second (Prosody allows 5 min).',
      format: 'duration', default: d.unauthenticatedTimeout, env: env('UNAUTHENTICATED_TIMEOUT'),
    },
    writeStallTimeout: {
      doc: 'Close with reason write-stall when bytes wait to be written and the peer has taken none of them for this long (a peer that does not read). 30 s, as Openfire: long for a congested link, short enough that a frozen client does not hold memory.',
      format: 'duration', default: d.writeStallTimeout, env: env('WRITE_STALL_TIMEOUT'),
    },
    maxSendQueue: {
      doc: d.maxSendQueueDoc ?? 'Close with reason send-queue-overflow when more than this many bytes wait to be written to the peer. 1 MiB is four stanzas of the largest size; a client that reads never comes close. The check is made at every write, and reading from the peer pauses while more than a quarter of it waits, so a client that sends requests and never reads their replies stalls itself rather than the server.',
      format: 'bytes', default: d.maxSendQueue, env: env('MAX_SEND_QUEUE'),
    },
    closeTimeout: {
      doc: 'After sending </stream:stream>, reset the socket (RST) if the peer has not closed within this long, so the kernel keeps no orphan socket retransmitting to a dead peer. 5 s, as Prosody: plenty for a live peer to answer.',
      format: 'duration', default: d.closeTimeout, env: env('CLOSE_TIMEOUT'),
    },
    tcpKeepAlive: {
      doc: 'SO_KEEPALIVE initial delay; the kernel then probes on its own. 0 turns it off. 60 s: a second line of defence on streams whose probes are off.',
      format: 'duration', default: d.tcpKeepAlive, env: env('TCP_KEEPALIVE'),
    },
  } as const;
}

const SM_PROBE = ' With stream management enabled the probe is <r/> whatever is set here, and only <a/> answers it.';

const c2sDefaults: PolicyDefaults<typeof XML_STREAM_PROBES> = {
  probes: XML_STREAM_PROBES,
  probeDoc: 'How to probe: xmpp-ping (XEP-0199 iq; any reply, result or error, proves life; none within probeTimeout closes the stream), whitespace (a single space, which asks for no answer: it only makes TCP notice a dead peer, so probeTimeout does not apply and maxIdle bounds the wait), or none.' + SM_PROBE,
  keepaliveDoc: 'Send a keepalive (a single space) when nothing has been sent for this long, so NATs and L4 balancers keep the flow. 0 turns it off: the default, since TCP clients keep their own flows alive. A keepalive proves nothing about the peer; only received bytes do.',
  probeAfter: '120s', probe: 'xmpp-ping', probeTimeout: '30s', maxIdle: '0', keepaliveAfter: '0',
  unauthenticatedTimeout: '30s', writeStallTimeout: '30s', maxSendQueue: '1MiB', closeTimeout: '5s', tcpKeepAlive: '60s',
};

/**
 * Browsers behind proxies. keepaliveAfter 25 s sends a ping frame under every common proxy's idle limit
 * (nginx proxy_read_timeout 60 s, many balancers 30 s); each pong is received traffic, so a live page is never
 * probed, and a closed laptop lid (no pong) is probed at 60 s of silence and closed 30 s later.
 */
const websocketDefaults: PolicyDefaults<typeof WEBSOCKET_PROBES> = {
  probes: WEBSOCKET_PROBES,
  probeDoc: 'How to probe: websocket-ping (a ping frame, which the browser answers with a pong even when a background tab is throttled and its scripts sleep; no pong within probeTimeout closes the stream), xmpp-ping (XEP-0199, answered by the page\'s script), or none. Never whitespace: RFC 7395 forbids it.' + SM_PROBE,
  keepaliveDoc: 'Send a WebSocket ping frame when nothing has been sent for this long, so proxies that cut silent upgraded connections (nginx after proxy_read_timeout, 60 s by default) keep it. 25 s is under every common proxy\'s limit. 0 turns it off.',
  probeAfter: '60s', probe: 'websocket-ping', probeTimeout: '30s', maxIdle: '0', keepaliveAfter: '25s',
  unauthenticatedTimeout: '30s', writeStallTimeout: '30s', maxSendQueue: '1MiB', closeTimeout: '5s', tcpKeepAlive: '60s',
};

const S2S_KEEPALIVE = 'Send a single space when nothing has been sent for this long, so NATs and firewalls between the servers keep the flow. 0 turns it off.';
const S2S_UNAUTHENTICATED = 'Close with reason unauthenticated a server stream whose whole negotiation (TLS, then SASL EXTERNAL or dialback, which waits for a third connection to the authoritative server) has not finished within this long. 60 s: a real peer needs a few round trips, and a peer that accepts TCP and never answers holds nothing longer.';
const S2S_QUEUE = 'Close with reason send-queue-overflow when more than this many bytes wait to be written to the peer server. 4 MiB: one stream carries every user\'s traffic to that domain, so it gets four times a client\'s room; reading from the peer pauses while a quarter of it waits.';

/**
 * Our connection to another server. Its probe is an XEP-0199 ping to the remote domain, answered on the
 * peer's own stream to us and matched by id through the router: the only way to know that a server which
 * still holds the TCP connection open is reading it. ejabberd never probes a silent link and Prosody notices
 * one at its 840 s read timeout; at these defaults a frozen peer is closed within 91 s.
 */
const s2sOutDefaults: PolicyDefaults<typeof XML_STREAM_PROBES> = {
  probes: XML_STREAM_PROBES,
  probeDoc: 'How to probe the peer server: xmpp-ping (XEP-0199 to its domain; the reply comes back on its own stream to us and is matched by id; none within probeTimeout closes the stream and what it carried since the last answer is sent again on the next connection), whitespace (only makes TCP notice a dead peer), or none.',
  keepaliveDoc: S2S_KEEPALIVE,
  probeAfterDoc: 'Ping the peer server when it has proved nothing for this long (an answered ping, or bytes on this stream). 60 s: server links are few, so probing them is cheap, and stanzas sent into a frozen peer wait at most this plus probeTimeout before they are sent again on a new connection.',
  maxIdleDoc: 'Close with reason idle when the peer has proved nothing for this long. 1 h, as ejabberd: with the pings on, only a peer that answers nothing and still holds TCP open gets here.',
  unauthenticatedDoc: S2S_UNAUTHENTICATED,
  maxSendQueueDoc: S2S_QUEUE,
  probeAfter: '60s', probe: 'xmpp-ping', probeTimeout: '30s', maxIdle: '1h', keepaliveAfter: '0',
  unauthenticatedTimeout: '60s', writeStallTimeout: '30s', maxSendQueue: '4MiB', closeTimeout: '5s', tcpKeepAlive: '60s',
};

/** A peer server's connection to us: we may not send it stanzas, so it is watched by TCP and bounded by maxIdle. */
const s2sInDefaults: PolicyDefaults<typeof S2S_IN_PROBES> = {
  probes: S2S_IN_PROBES,
  probeDoc: 'How to probe a peer server on its stream to us: whitespace (a space, so TCP notices a dead peer; nothing may be asked on an incoming server stream) or none. The peer proves it is alive on our own stream to it, where the pings go.',
  keepaliveDoc: S2S_KEEPALIVE,
  probeAfterDoc: 'Send the whitespace probe when nothing has been received on this stream for this long. 60 s: enough to make TCP notice a peer that vanished well before maxIdle.',
  maxIdleDoc: 'Close with reason idle when nothing has been received on this stream for this long. 1 h, as ejabberd: a peer with nothing to send closes its own stream long before (Prosody after 5 min), and it opens a new one when it has.',
  unauthenticatedDoc: S2S_UNAUTHENTICATED,
  maxSendQueueDoc: S2S_QUEUE,
  probeAfter: '60s', probe: 'whitespace', probeTimeout: '30s', maxIdle: '1h', keepaliveAfter: '0',
  unauthenticatedTimeout: '60s', writeStallTimeout: '30s', maxSendQueue: '4MiB', closeTimeout: '5s', tcpKeepAlive: '60s',
};

export const schema = {
  domain: { doc: 'The XMPP domain this server serves (the part after @ in user JIDs).', format: String, default: 'localhost', env: 'VIGIL_DOMAIN' },
  listeners: {
    c2s: {
      host: { doc: 'Address the client listener binds; 0.0.0.0 or :: for every address.', format: String, default: '::', env: 'VIGIL_LISTENERS_C2S_HOST' },
      port: { doc: 'Client-to-server port (RFC 6120; STARTTLS on this port).', format: 'port-number', default: 5222, env: 'VIGIL_LISTENERS_C2S_PORT' },
    },
    websocket: {
      host: { doc: 'Address the WebSocket listener (RFC 7395, with XEP-0156 discovery) binds; 0.0.0.0 or :: for every address. Usually behind a TLS-terminating proxy such as nginx (deploy/nginx/vigil.conf).', format: String, default: '::', env: 'VIGIL_LISTENERS_WEBSOCKET_HOST' },
      port: { doc: 'WebSocket port. It also serves /.well-known/host-meta and /.well-known/host-meta.json.', format: 'port-number', default: 5281, env: 'VIGIL_LISTENERS_WEBSOCKET_PORT' },
      path: { doc: 'The path WebSocket clients connect to; anything else is 404.', format: String, default: '/xmpp-websocket', env: 'VIGIL_LISTENERS_WEBSOCKET_PATH' },
      tls: { doc: 'Serve wss:// with the tls.* certificate. Off by default: the proxy in front terminates TLS and says so with X-Forwarded-Proto (see websocket.trustedProxies).', format: Boolean, default: false, env: 'VIGIL_LISTENERS_WEBSOCKET_TLS' },
    },
    s2s: {
      host: { doc: 'Address the server-to-server listener binds; 0.0.0.0 or :: for every address.', format: String, default: '::', env: 'VIGIL_LISTENERS_S2S_HOST' },
      port: { doc: 'Server-to-server port (RFC 6120; STARTTLS on this port), where other servers deliver to this domain.', format: 'port-number', default: 5269, env: 'VIGIL_LISTENERS_S2S_PORT' },
    },
    http: {
      host: { doc: 'Address of the HTTP listener for /metrics, /healthz and /readyz. Loopback by default: metrics are not for the world.', format: String, default: '127.0.0.1', env: 'VIGIL_LISTENERS_HTTP_HOST' },
      port: { doc: 'HTTP port for /metrics, /healthz and /readyz.', format: 'port-number', default: 5280, env: 'VIGIL_LISTENERS_HTTP_PORT' },
    },
  },
  tls: {
    cert: { doc: 'PEM certificate (chain) for STARTTLS. Empty: a self-signed certificate for the domain is generated in the data directory on first start. A relative path written in the config file is relative to the directory of that file; one from VIGIL_TLS_CERT (or with no config file) is relative to the working directory.', format: String, default: '', env: 'VIGIL_TLS_CERT', isPath: true },
    key: { doc: 'PEM private key matching tls.cert; a relative path is resolved as for tls.cert.', format: String, default: '', env: 'VIGIL_TLS_KEY', isPath: true },
  },
  storage: {
    driver: { doc: 'Where users, rosters and offline messages live: sqlite (embedded, one file: storage.path) or postgres (a PostgreSQL server: storage.url).', format: ['sqlite', 'postgres'], default: 'sqlite', env: 'VIGIL_STORAGE_DRIVER' },
    path: { doc: 'SQLite database file; its directory is also the data directory (self-signed certificate), whichever the driver. A relative path written in the config file is relative to the directory of that file; one from VIGIL_STORAGE_PATH (or with no config file) is relative to the working directory.', format: String, default: 'data/vigil.sqlite', env: 'VIGIL_STORAGE_PATH', isPath: true },
    url: { doc: "PostgreSQL connection URL for driver postgres, e.g. postgres://vigil:secret@db.example.org:5432/vigil, or postgres://vigil@/vigil?host=/run/postgresql for a unix socket. Vigil creates and migrates its tables at start, so the role needs CREATE on the database's schema (owning the database is simplest).", format: String, default: '', env: 'VIGIL_STORAGE_URL', sensitive: true },
  },
  c2s: {
    maxStanzaSize: { doc: 'Largest stanza a client may send; a larger one ends the stream with <policy-violation/> before it is buffered whole.', format: 'bytes', default: '256KiB', env: 'VIGIL_C2S_MAX_STANZA_SIZE' },
    allowPlainWithoutTls: { doc: 'Let clients authenticate without STARTTLS, PLAIN included. Off: STARTTLS is required before any SASL. Only for tests on loopback.', format: Boolean, default: false, env: 'VIGIL_C2S_ALLOW_PLAIN_WITHOUT_TLS' },
    maxAuthAttempts: { doc: 'Failed SASL attempts allowed on one stream before it is closed with <policy-violation/>.', format: 'nat', default: 3, env: 'VIGIL_C2S_MAX_AUTH_ATTEMPTS' },
    auth: {
      freeFailures: {
        doc: 'Failed logins one IP address may make for one account within c2s.auth.window before each further failure locks that account for that address only (<temporary-auth-failure/>, no password checked), for c2s.auth.lockoutBase, doubling with each failure. 5: a user who mistypes a few times never notices, a guesser is down to a handful of guesses an hour. Keyed by account and address together, so an attacker cannot lock the real user out from elsewhere. 0 removes the limit.',
        format: 'nat', default: 5, env: 'VIGIL_C2S_AUTH_FREE_FAILURES',
      },
      ipFreeFailures: {
        doc: 'Failed logins one IP address may make within c2s.auth.window, whatever the accounts, before it is locked out the same way: slows an address that tries many names. 20, as ejabberd mod_fail2ban: higher than the per-account limit, since many honest users may share one address behind a NAT. 0 removes the limit.',
        format: 'nat', default: 20, env: 'VIGIL_C2S_AUTH_IP_FREE_FAILURES',
      },
      accountFreeFailures: {
        doc: 'Failed logins for one account within c2s.auth.window from all addresses together before the account is locked, the same way, for the addresses that have failed for it; an address that has not (the real user) still logs in. Slows a guesser spread over many addresses. 50: ten times the per-address limit, so one attacking address cannot reach it alone. 0 removes the limit.',
        format: 'nat', default: 50, env: 'VIGIL_C2S_AUTH_ACCOUNT_FREE_FAILURES',
      },
      window: {
        doc: 'How long failures are remembered: a key with no failure for this long (and no lockout running) starts again from zero. 15m, three times c2s.auth.lockoutMax, so that waiting out the longest lockout does not also wipe the count.',
        format: 'duration', default: '15m', env: 'VIGIL_C2S_AUTH_WINDOW',
      },
      lockoutBase: {
        doc: 'The first lockout, once a limit is reached; each further failure doubles it up to c2s.auth.lockoutMax. 1s: short enough that a user locked by a typo just tries again, and the doubling takes a guesser to the maximum within ten guesses past the free ones.',
        format: 'duration', default: '1s', env: 'VIGIL_C2S_AUTH_LOCKOUT_BASE',
      },
      lockoutMax: {
        doc: 'The longest lockout. 5m: a guesser gets twelve guesses an hour per address, and a user locked out by a stale password on another device waits at most this long once that device is fixed.',
        format: 'duration', default: '5m', env: 'VIGIL_C2S_AUTH_LOCKOUT_MAX',
      },
      maxTracked: {
        doc: 'Addresses, accounts and account-address pairs remembered, each table on its own; beyond it the one that failed longest ago is forgotten, so an attacker spraying addresses or names cannot grow memory. 100000: roughly 15 MB per full table, enough to remember every address of a large botnet.',
        format: 'nat', default: 100000, env: 'VIGIL_C2S_AUTH_MAX_TRACKED',
      },
    },
    rate: {
      stanzasPerSecond: {
        doc: 'Stanzas a second one client stream may send, sustained (a token bucket with c2s.rate.stanzaBurst). Over it the server stops reading from that stream until it is back under, as ejabberd\'s shapers do: nothing is dropped or refused, the client is only slowed, and everyone else is read in the meantime. 100: a person chatting sends a few a second at most, and a client catching up after login (roster, presence, a MAM page) stays well inside the burst; a flood of 200,000 messages takes half an hour instead of freezing other sessions. 0 removes the limit.',
        format: 'nat', default: 100, env: 'VIGIL_C2S_RATE_STANZAS_PER_SECOND',
      },
      stanzaBurst: {
        doc: 'Stanzas a client stream may send at once, above c2s.rate.stanzasPerSecond, before it is slowed. 200: twice the rate, room for a login\'s worth of presence, roster and disco requests pipelined together.',
        format: 'nat', default: 200, env: 'VIGIL_C2S_RATE_STANZA_BURST',
      },
      bytesPerSecond: {
        doc: 'Bytes a second one client stream may send, sustained (a token bucket with c2s.rate.byteBurst); over it reading pauses the same way. 256KiB: one stanza of the largest size (c2s.maxStanzaSize) a second, hundreds of times what chat needs; files go over HTTP upload, not the stream. 0 removes the limit.',
        format: 'bytes', default: '256KiB', env: 'VIGIL_C2S_RATE_BYTES_PER_SECOND',
      },
      byteBurst: {
        doc: 'Bytes a client stream may send at once before it is slowed. 1MiB: four stanzas of the largest size, so a client sending a few big stanzas (an avatar, a vCard) never waits.',
        format: 'bytes', default: '1MiB', env: 'VIGIL_C2S_RATE_BYTE_BURST',
      },
    },
    scramIterations: { doc: 'PBKDF2 iterations for newly stored SCRAM credentials (RFC 7677 asks for at least 4096).', format: 'nat', default: 4096, env: 'VIGIL_C2S_SCRAM_ITERATIONS' },
    maxOfflineMessages: { doc: 'Offline messages kept per user; beyond this, messages to the offline user bounce with <service-unavailable/>.', format: 'nat', default: 1000, env: 'VIGIL_C2S_MAX_OFFLINE_MESSAGES' },
    maxOfflineBytes: {
      doc: "Bytes of offline messages kept per user, beside the count limit; a message that would take the user past it bounces with <service-unavailable/>. Without it anyone could store maxOfflineMessages of the largest stanza (1000 x 256 KiB = 250 MB) for a victim. 10 MiB holds thousands of ordinary chat messages yet is delivered in seconds at the next login, a page at a time as the client reads.",
      format: 'bytes', default: '10MiB', env: 'VIGIL_C2S_MAX_OFFLINE_BYTES',
    },
    maxRosterItems: {
      doc: "Contacts one user's roster may hold, so no account can make the server store without bound. Adding one more (a roster set, a subscription request or a pre-approval) is refused with <not-allowed/>.",
      format: 'nat', default: 1000, env: 'VIGIL_C2S_MAX_ROSTER_ITEMS',
    },
    maxPendingSubscriptions: {
      doc: 'Subscription requests one user may have waiting for an answer. Beyond this, new requests to that user are dropped and their senders get <resource-constraint/>, so a flood of requests cannot bury an account or fill the database.',
      format: 'nat', default: 100, env: 'VIGIL_C2S_MAX_PENDING_SUBSCRIPTIONS',
    },
    registration: {
      enabled: {
        doc: 'Let anyone create an account from their client before logging in (XEP-0077 in-band registration). Off by default: an open server attracts spam accounts, and `vigil user add` is the usual way. Logged-in users can change their password and delete their account either way.',
        format: Boolean, default: false, env: 'VIGIL_C2S_REGISTRATION_ENABLED',
      },
      perIpPerHour: {
        doc: 'Accounts one IP address may create in-band within an hour; further attempts get <policy-violation/>. Keeps an open server from being a free source of bulk accounts. 0 removes the limit.',
        format: 'nat', default: 5, env: 'VIGIL_C2S_REGISTRATION_PER_IP_PER_HOUR',
      },
    },
  },
  websocket: {
    trustedProxies: {
      doc: 'Comma-separated addresses or CIDRs of the proxies in front of the WebSocket listener. Only from these peers do X-Forwarded-For (the client address: rate limits, logs) and X-Forwarded-Proto: https (the client reached the proxy over TLS, so PLAIN and SCRAM are offered) count; from anyone else they are ignored. Loopback by default, for nginx on the same host; empty trusts no one.',
      format: String, default: '127.0.0.0/8, ::1/128', env: 'VIGIL_WEBSOCKET_TRUSTED_PROXIES',
    },
    publicUrl: {
      doc: 'The URL clients use to reach the WebSocket endpoint, as the proxy publishes it; listed in /.well-known/host-meta (XEP-0156). Empty: wss://<domain>/xmpp-websocket.',
      format: String, default: '', env: 'VIGIL_WEBSOCKET_PUBLIC_URL',
    },
    seeOtherUri: {
      doc: 'When set, every new WebSocket stream is answered with <close see-other-uri=.../> (RFC 7395 §3.6.1), sending clients to another node: for draining this one. Empty: serve them.',
      format: String, default: '', env: 'VIGIL_WEBSOCKET_SEE_OTHER_URI',
    },
  },
  s2s: {
    enabled: {
      doc: 'Federate: listen on listeners.s2s and deliver to other domains. Off: nothing listens there, and stanzas to other domains bounce with <remote-server-not-found/>.',
      format: Boolean, default: true, env: 'VIGIL_S2S_ENABLED',
    },
    requireTls: {
      doc: 'Require STARTTLS on every server stream, both ways: a peer that does not offer it (or does not ask for it, on its stream to us) is refused. On by default, as Prosody 0.12 and every public server today.',
      format: Boolean, default: true, env: 'VIGIL_S2S_REQUIRE_TLS',
    },
    dialback: {
      doc: 'Accept and use server dialback (XEP-0220) for a peer whose certificate does not prove its domain (self-signed, expired, another name). Off: only peers with a certificate valid for their domain (SASL EXTERNAL, XEP-0178) federate. On by default, as Prosody\'s s2s_secure_auth = false: many small servers run self-signed certificates.',
      format: Boolean, default: true, env: 'VIGIL_S2S_DIALBACK',
    },
    secret: {
      doc: 'The secret dialback keys are derived from (XEP-0185: HMAC-SHA256 of the stream id and both domains). Empty: a random one at each start, which is right for one node; nodes that share a domain must share it.',
      format: String, default: '', env: 'VIGIL_S2S_SECRET', sensitive: true,
    },
    ca: {
      doc: 'Comma-separated PEM files of certificate authorities trusted for peer certificates, beside the system\'s. Absolute paths.',
      format: String, default: '', env: 'VIGIL_S2S_CA',
    },
    insecureDomains: {
      doc: 'Comma-separated peer domains whose certificates are not checked at all: they authenticate by dialback even with s2s.dialback off. For a known peer with a broken certificate, never as a habit.',
      format: String, default: '', env: 'VIGIL_S2S_INSECURE_DOMAINS',
    },
    routes: {
      doc: 'Comma-separated static routes, domain=host:port (an IPv6 address in brackets), which win over DNS: for peers inside a private network, or tests. Other domains are found by their _xmpp-server._tcp SRV records, then their own address on 5269 (RFC 6120 §3.2).',
      format: String, default: '', env: 'VIGIL_S2S_ROUTES',
    },
    dnsTimeout: {
      doc: 'How long one DNS lookup (the SRV records, then the addresses through the system resolver, so /etc/hosts counts) may take. 5 s: a resolver that has not answered by then rarely will, and the queue is waiting.',
      format: 'duration', default: '5s', env: 'VIGIL_S2S_DNS_TIMEOUT',
    },
    maxStanzaSize: {
      doc: 'Largest stanza a peer server may send; a larger one ends the stream with <policy-violation/>. 512 KiB, as Prosody: a server relays its clients\' largest stanzas, with its own stamps.',
      format: 'bytes', default: '512KiB', env: 'VIGIL_S2S_MAX_STANZA_SIZE',
    },
    maxDomainsPerStream: {
      doc: 'Domains one incoming stream may authenticate by dialback (XEP-0220 multiplexing), so one connection cannot make us verify without end. 64.',
      format: 'nat', default: 64, env: 'VIGIL_S2S_MAX_DOMAINS_PER_STREAM',
    },
    confirmAfter: {
      doc: 'Ping the peer server early when a stanza sent to it has waited this long without proof that the peer read it. Until then what was sent is kept, to be sent again if the stream dies. 10 s: each busy link costs one ping per 10 s, and at most 10 s of traffic is held.',
      format: 'duration', default: '10s', env: 'VIGIL_S2S_CONFIRM_AFTER',
    },
    queue: {
      maxStanzas: {
        doc: 'Stanzas waiting for a connection to one domain (being set up, or retried). One more bounces to its sender at once with <resource-constraint/>; presence is dropped instead. 1000.',
        format: 'nat', default: 1000, env: 'VIGIL_S2S_QUEUE_MAX_STANZAS',
      },
      maxBytes: {
        doc: 'Bytes waiting for a connection to one domain, beside the count; one more bounces the same way. 1 MiB.',
        format: 'bytes', default: '1MiB', env: 'VIGIL_S2S_QUEUE_MAX_BYTES',
      },
      timeout: {
        doc: 'How long a stanza waits for a connection to its domain before it bounces to its sender: <remote-server-not-found/> when the domain could not be resolved, <remote-server-timeout/> otherwise. Presence is dropped, and errors and IQ results are never bounced. 60 s: long enough for a peer restart, short enough that the sender learns while it still cares.',
        format: 'duration', default: '60s', env: 'VIGIL_S2S_QUEUE_TIMEOUT', min: '1s',
      },
    },
    retry: {
      initial: {
        doc: 'After a failed connection to a domain with stanzas waiting, try again after this long, doubling at each failure up to s2s.retry.max; the wait starts again from here as soon as the peer connects to us. 1 s.',
        format: 'duration', default: '1s', env: 'VIGIL_S2S_RETRY_INITIAL', min: '100ms',
      },
      max: {
        doc: 'The longest wait between two attempts. 30 s, so every stanza gets at least two tries within s2s.queue.timeout; a domain is never written off (ejabberd bounces everything to it for up to 300 s after one failure).',
        format: 'duration', default: '30s', env: 'VIGIL_S2S_RETRY_MAX', min: '100ms',
      },
    },
  },
  sm: {
    enabled: {
      doc: 'Offer XEP-0198 stream management to clients: acks that make delivery exact, and resumption, so a phone that loses its network for a moment gets back its session and every message sent meanwhile, once, in order. With it on, the watchdog probes with <r/> and only <a/> answers.',
      format: Boolean, default: true, env: 'VIGIL_SM_ENABLED',
    },
    resumeTimeout: {
      doc: 'How long a session whose connection was lost (no clean close: the peer vanished, an RST, a probe timeout) waits for its client to resume it; then it ends with reason resume-timeout and its unacked messages go to offline storage. A client may ask for less, or more up to sm.maxResumeTimeout. 300 s, as ejabberd: a phone moving between networks is back within seconds, one in a tunnel within minutes.',
      format: 'duration', default: '300s', env: 'VIGIL_SM_RESUME_TIMEOUT', min: '1s',
    },
    maxResumeTimeout: {
      doc: "The longest resume window a client may ask for with <enable max=.../>. 24h, for clients that rely on push and come back once a day; what they ask beyond it is cut to it.",
      format: 'duration', default: '24h', env: 'VIGIL_SM_MAX_RESUME_TIMEOUT', min: '1s',
    },
    maxHibernatedPerUser: {
      doc: 'Sessions of one account that may wait to be resumed at once; when one more connection is lost, the one that has waited longest ends first (reason hibernation-limit), its messages to offline storage. 10: a user has a few devices, and a client that reconnects without resuming must not pile up sessions.',
      format: 'nat', default: 10, env: 'VIGIL_SM_MAX_HIBERNATED_PER_USER',
    },
    presenceGrace: {
      doc: "How long a session waiting to be resumed still looks available to the user's contacts; after it they receive unavailable for that resource, and get the last presence again when it resumes. 60 s: a network switch is hidden, a phone that is really gone is not shown online for the whole resume window. Set it to sm.resumeTimeout to keep Prosody's behaviour.",
      format: 'duration', default: '60s', env: 'VIGIL_SM_PRESENCE_GRACE',
    },
    maxQueue: {
      doc: 'Stanzas sent to a client and not yet acked that one session may hold. A client that lets more pile up (it stopped acking) has its stream closed with <policy-violation/>; the queue is never cleared and stream management never turned off, so nothing in it is lost. 1000: a client acking every 5 stanzas never comes close, and a hibernated session holds a busy afternoon of chat.',
      format: 'nat', default: 1000, env: 'VIGIL_SM_MAX_QUEUE',
    },
    ackEvery: {
      doc: 'Ask the client for an ack (<r/>) once this many stanzas are unacked, never with one request already outstanding; an unanswered request is a probe and times out after watchdog.c2s.probeTimeout. 5: acks are cheap, and fewer unacked stanzas means less to re-send on resume.',
      format: 'nat', default: 5, env: 'VIGIL_SM_ACK_EVERY',
    },
    ackAfter: {
      doc: 'Ask for an ack when the oldest unacked stanza has waited this long, however few there are. 30 s: a quiet conversation is confirmed within half a minute without an ack per message.',
      format: 'duration', default: '30s', env: 'VIGIL_SM_ACK_AFTER',
    },
  },
  watchdog: {
    interval: {
      doc: 'How often the watchdog looks at every session. A dead peer is closed at most this much later than its policy says. At least 100ms: the tick walks every session, and more often than that costs CPU without closing anyone meaningfully sooner.',
      format: 'duration', default: '1s', env: 'VIGIL_WATCHDOG_INTERVAL', min: '100ms',
    },
    c2s: policySchema('c2s', c2sDefaults),
    websocket: policySchema('websocket', websocketDefaults),
    s2sIn: policySchema('s2sIn', s2sInDefaults),
    s2sOut: policySchema('s2sOut', s2sOutDefaults),
  },
  limits: {
    connectionsPerIp: {
      doc: 'New client connections a second from one IP address, sustained (a token bucket per address with limits.connectionsPerIpBurst); one more is refused at once, before any XML is read. A client reconnects every few seconds at the very most, so this only bites an address opening connections in a loop. 20 per second: after a network blip, a thousand users behind one NAT are all back within a minute (their clients retry). 0 removes the limit.',
      format: 'nat', default: 20, env: 'VIGIL_LIMITS_CONNECTIONS_PER_IP',
    },
    connectionsPerIpBurst: {
      doc: 'New client connections one IP address may open at once before limits.connectionsPerIp applies. 100: a campus or office NAT reconnecting everyone at the same moment gets its first hundred in straight away.',
      format: 'nat', default: 100, env: 'VIGIL_LIMITS_CONNECTIONS_PER_IP_BURST',
    },
    unauthenticatedPerIp: {
      doc: 'Connections one IP address may hold that have not yet authenticated and bound; a new one beyond it is refused at once, and the count drops as soon as one binds or closes. Unfinished negotiations are the cheapest way to hold a server\'s memory (watchdog.c2s.unauthenticatedTimeout closes each, this bounds how many at a time). 20: a client negotiates in well under a second, so even a large NAT rarely has more than a few in flight. 0 removes the limit.',
      format: 'nat', default: 20, env: 'VIGIL_LIMITS_UNAUTHENTICATED_PER_IP',
    },
    exemptLoopback: {
      doc: 'Connections from this host (127.0.0.0/8, ::1) skip the per-IP limits above and c2s.rate: behind a TLS terminator on the same host every client arrives from loopback, and one shared per-address budget would throttle them all together; a local gateway or bot may carry many users over one stream; and the rest are the operator\'s own tools (monitoring, load tests). Set false when nothing local relays clients; the tests do, to exercise the limits.',
      format: Boolean, default: true, env: 'VIGIL_LIMITS_EXEMPT_LOOPBACK',
    },
    maxSessions: {
      doc: 'Sessions the server is sized for; `vigil doctor` checks the file-descriptor limit against it (one descriptor per session plus 1024 for everything else). 0, the default: as many as the limit allows, the soft RLIMIT_NOFILE minus those 1024, so a default setup passes the check on any host whose limit leaves room; set a number to have the doctor insist on a limit that fits it.',
      format: 'nat', default: 0, env: 'VIGIL_LIMITS_MAX_SESSIONS',
    },
  },
  admin: {
    token: {
      doc: 'Bearer token for the admin endpoints on the HTTP listener (/admin/sessions, which `vigil sessions` reads, and /admin/status). Empty: only loopback peers may use them. Set: every request must carry `Authorization: Bearer <token>`, from loopback too, since a reverse proxy on the same host makes every peer look local; the vigil commands send it from this file.',
      format: String, default: '', env: 'VIGIL_ADMIN_TOKEN', sensitive: true,
    },
  },
  shutdown: {
    timeout: { doc: 'On SIGTERM, how long to wait for streams to close and messages to be stored before exiting anyway.', format: 'duration', default: '10s', env: 'VIGIL_SHUTDOWN_TIMEOUT' },
  },
  log: {
    level: { doc: 'Log level: fatal, error, warn, info, debug, trace, or silent for none. Logs are JSON lines on stdout.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'VIGIL_LOG_LEVEL' },
  },
} as const satisfies OptionTree;

/** A convict instance over the schema, reading `env` for the VIGIL_* variables (never the command line). */
export function makeConfig(env: NodeJS.ProcessEnv = process.env) {
  // convict's typings want a mutable schema; it only reads it.
  return convict(schema as unknown as convict.Schema<Record<string, unknown>>, { env, args: [] });
}
