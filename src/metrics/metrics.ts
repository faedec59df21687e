import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LoopDelay } from './loop-delay.js';

const LOOP_DELAY_RESOLUTION_MS = 100;
/**
 * prom-client's own event-loop figures come from monitorEventLoopDelay, which reports the time between its
 * samples (an idle loop reads as the resolution: 1 s at ours) and wakes the loop for each; they are dropped,
 * and the sampler they leave behind wakes once a day. nodejs_eventloop_lag_seconds, timed at each scrape, stays.
 */
const DROPPED_DEFAULTS = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `nodejs_eventloop_lag_${s}_seconds`);
const DAY_MS = 86_400_000;

/**
 * Every metric Vigil exports, defined in one place. One Metrics object per server, each with its own
 * prom-client registry, so tests can run several servers in one process.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly sessions: Gauge<'kind' | 'state'>;
  readonly connectionsAccepted: Counter<'kind'>;
  readonly sessionsClosed: Counter<'kind' | 'reason'>;
  readonly deadSessionLifetime: Histogram<'kind' | 'reason'>;
  private readonly probes = new Tallies('kind', 'probe');
  readonly probeRtt: Histogram<'kind'>;
  readonly tickSeconds: Histogram;
  readonly ticks: Counter;
  readonly messagesSalvaged: Counter<'kind'>;
  readonly bytes: Counter<'kind' | 'direction'>;
  readonly sendQueueBytes: Gauge;
  readonly authFailures: Counter<'mechanism' | 'reason'>;
  readonly offlineStored: Counter;
  readonly rateLimited: Counter<'kind' | 'limit'>;
  readonly connectionsRefused: Counter<'kind' | 'reason'>;
  readonly eventLoopDelay: Gauge<'quantile'>;
  readonly smSessions: Gauge<'state'>;
  readonly smResumes: Counter<'result'>;
  readonly smHibernations: Counter<'reason'>;
  readonly smQueueStanzas: Histogram;
  readonly smRedelivered: Counter;
  readonly carbons: Counter<'direction'>;
  readonly websocketHandshakes: Counter<'result'>;
  readonly s2sBounces: Counter<'reason'>;
  readonly s2sConnectSeconds: Histogram;
  readonly dnsLookups: Counter<'result'>;
  private readonly stanzas = new Tallies('kind', 'direction');
  private readonly loopDelay = new LoopDelay(LOOP_DELAY_RESOLUTION_MS);

  constructor(collect: {
    sessions(): Iterable<[string, string, number]>;
    sendQueueBytes(): number;
    bytes(): Iterable<[string, 'in' | 'out', number]>;
    smSessions(): { active: number; hibernated: number };
  }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: DAY_MS });
    for (const name of DROPPED_DEFAULTS) this.registry.removeSingleMetric(name);
    this.sessions = new Gauge({
      name: 'vigil_sessions', help: 'Live sessions by connection kind and state (negotiating, active, closing).',
      labelNames: ['kind', 'state'], registers,
      collect() {
        this.reset();
        for (const [kind, state, n] of collect.sessions()) this.set({ kind, state }, n);
      },
    });
    this.connectionsAccepted = new Counter({ name: 'vigil_connections_accepted_total', help: 'Connections accepted, by kind.', labelNames: ['kind'], registers });
    this.sessionsClosed = new Counter({ name: 'vigil_sessions_closed_total', help: 'Sessions closed, each exactly once, by kind and reason.', labelNames: ['kind', 'reason'], registers });
    this.deadSessionLifetime = new Histogram({
      name: 'vigil_dead_session_lifetime_seconds',
      help: 'For watchdog closes: seconds from the last byte received from the peer to the close.',
      labelNames: ['kind', 'reason'], registers,
      buckets: [1, 5, 10, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 600, 1800, 3600],
    });
    this.probes.counter({ name: 'vigil_watchdog_probes_total', help: 'Liveness probes sent, by kind and probe type.', registers });
    this.probeRtt = new Histogram({
      name: 'vigil_watchdog_probe_rtt_seconds', help: 'Seconds from a probe to the first byte received after it.',
      labelNames: ['kind'], registers, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.tickSeconds = new Histogram({
      name: 'vigil_watchdog_tick_seconds', help: 'Time one watchdog pass over every session takes.', registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    });
    this.ticks = new Counter({ name: 'vigil_watchdog_ticks_total', help: 'Watchdog passes.', registers });
    this.messagesSalvaged = new Counter({ name: 'vigil_messages_salvaged_total', help: 'Unconfirmed messages moved to offline storage when their session closed.', labelNames: ['kind'], registers });
    this.stanzas.counter({ name: 'vigil_stanzas_total', help: 'Stanzas by kind and direction (in: from the peer; out: to the peer).', registers });
    this.bytes = new Counter({
      name: 'vigil_bytes_total', help: 'Bytes by kind and direction, of sessions closed and open.', labelNames: ['kind', 'direction'], registers,
      collect() {
        this.reset();
        for (const [kind, direction, n] of collect.bytes()) this.inc({ kind, direction }, n);
      },
    });
    this.sendQueueBytes = new Gauge({
      name: 'vigil_send_queue_bytes', help: 'Bytes waiting to be written to peers, all sessions together.', registers,
      collect() {
        this.set(collect.sendQueueBytes());
      },
    });
    this.authFailures = new Counter({ name: 'vigil_auth_failures_total', help: 'SASL failures sent, by mechanism (none before one was chosen) and reason (the RFC 6120 SASL condition).', labelNames: ['mechanism', 'reason'], registers });
    this.rateLimited = new Counter({ name: 'vigil_rate_limited_total', help: 'Times a stream went over its input rate (limit: stanzas or bytes) and reading from it paused.', labelNames: ['kind', 'limit'], registers });
    this.connectionsRefused = new Counter({ name: 'vigil_connections_refused_total', help: 'Connections refused at accept, by kind and reason (connections-per-ip, unauthenticated-per-ip).', labelNames: ['kind', 'reason'], registers });
    this.smSessions = new Gauge({
      name: 'vigil_sm_sessions', help: 'Sessions with XEP-0198 stream management, by state: active (on a connection) or hibernated (waiting to be resumed).',
      labelNames: ['state'], registers,
      collect() {
        const n = collect.smSessions();
        this.set({ state: 'active' }, n.active);
        this.set({ state: 'hibernated' }, n.hibernated);
      },
    });
    this.smResumes = new Counter({ name: 'vigil_sm_resumes_total', help: 'Resume attempts, by result: ok, unknown (no such id for this account), expired (ended; <failed/> carried its h), bad-h, bad-request.', labelNames: ['result'], registers });
    this.smHibernations = new Counter({ name: 'vigil_sm_hibernations_total', help: 'Sessions that lost their connection and hibernated, by how it was lost (peer-closed, probe-timeout, write-stall, idle).', labelNames: ['reason'], registers });
    this.smQueueStanzas = new Histogram({ name: 'vigil_sm_queue_stanzas', help: 'Unacked stanzas a session held when it hibernated.', registers, buckets: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] });
    this.smRedelivered = new Counter({ name: 'vigil_sm_redelivered_total', help: 'Unacked stanzas sent again on a resumed stream.', registers });
    this.carbons = new Counter({ name: 'vigil_carbons_total', help: 'XEP-0280 carbon copies sent, by direction (received, sent).', labelNames: ['direction'], registers });
    this.websocketHandshakes = new Counter({ name: 'vigil_websocket_handshakes_total', help: 'WebSocket upgrade requests, by result: ok, no-subprotocol (no xmpp in Sec-WebSocket-Protocol), not-found (another path), bad-handshake, error.', labelNames: ['result'], registers });
    this.s2sBounces = new Counter({ name: 'vigil_s2s_bounces_total', help: 'Stanzas for another domain bounced to their local senders, by the stanza error: remote-server-not-found (the domain could not be resolved), remote-server-timeout (no stream within s2s.queue.timeout), resource-constraint (its queue was full).', labelNames: ['reason'], registers });
    this.s2sConnectSeconds = new Histogram({
      name: 'vigil_s2s_connect_seconds', help: 'Seconds from the first stanza for a domain with no stream to the stream being ready: resolution, TCP, TLS and authentication.',
      registers, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
    this.dnsLookups = new Counter({ name: 'vigil_dns_lookups_total', help: 'DNS lookups for peer servers, by result: srv (records found), no-srv (none: the address is tried), address (found), not-found (the domain does not exist), timeout, error.', labelNames: ['result'], registers });
    this.offlineStored = new Counter({ name: 'vigil_offline_messages_stored_total', help: 'Messages stored for offline users (including salvaged ones).', registers });
    // What every session waits for when one request holds the event loop: the figure that shows an abuse.
    const loopDelay = this.loopDelay;
    this.eventLoopDelay = new Gauge({
      name: 'vigil_event_loop_delay_seconds', help: 'Event-loop delay since the previous scrape: median, 99th percentile and maximum (quantile 1).',
      labelNames: ['quantile'], registers,
      collect() {
        this.set({ quantile: '0.5' }, loopDelay.percentile(50) / 1000);
        this.set({ quantile: '0.99' }, loopDelay.percentile(99) / 1000);
        this.set({ quantile: '1' }, loopDelay.max / 1000);
        loopDelay.reset();
      },
    });
  }

  /** The stanza count for one kind and direction, shared by every session of that kind. */
  stanzaCount(kind: string, direction: 'in' | 'out'): { inc(): void } {
    return this.stanzas.of(kind, direction);
  }

  /** The count of one kind of probe sent to one kind of session. */
  probeCount(kind: string, probe: string): { inc(): void } {
    return this.probes.of(kind, probe);
  }

  /** Stop sampling the event loop (the server stopped). */
  close(): void {
    this.loopDelay.stop();
  }
}

class Tally {
  n = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(): void {
    this.n++;
  }
}

/**
 * Counts by two labels in plain numbers, handed to a prom-client counter at each scrape: prom-client hashes
 * the labels on every inc, which cost 7 % of the time routing a message takes, and looking a count up here
 * allocates nothing.
 */
class Tallies {
  private readonly byFirst = new Map<string, Map<string, Tally>>();

  constructor(
    private readonly first: string,
    private readonly second: string,
  ) {}

  of(a: string, b: string): Tally {
    let inner = this.byFirst.get(a);
    if (!inner) this.byFirst.set(a, (inner = new Map()));
    let tally = inner.get(b);
    if (!tally) inner.set(b, (tally = new Tally({ [this.first]: a, [this.second]: b })));
    return tally;
  }

  counter(options: { name: string; help: string; registers: Registry[] }): Counter {
    const byFirst = this.byFirst;
    return new Counter({
      ...options,
      labelNames: [this.first, this.second],
      collect() {
        this.reset();
        for (const inner of byFirst.values()) for (const tally of inner.values()) this.inc(tally.labels, tally.n);
      },
    });
  }
}
