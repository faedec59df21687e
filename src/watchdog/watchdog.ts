import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import type { LossReason } from '../sessions/close-reason.js';
import { decide, quietUntil } from './decide.js';
import { sendProbe } from './probe.js';

/**
 * Ticks every watchdog.interval over the registry and carries out decide()'s verdicts. It never touches a
 * socket itself: sessions probe and close themselves.
 */
export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  /** Sessions a tick judged due for a probe, not yet sent one; from `next` on. */
  private probes: Session[] = [];
  private next = 0;
  /** The `now` of the tick that judged them. */
  private probesAt = 0;
  private turn: NodeJS.Immediate | undefined;

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.tick(Date.now()), this.ctx.config.watchdog.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.turn) clearImmediate(this.turn);
    this.turn = undefined;
    this.probes = [];
    this.next = 0;
  }

  /** One pass; `now` is a parameter so tests and benchmarks can drive it. */
  tick(now: number): void {
    const started = process.hrtime.bigint();
    this.sendProbes(Infinity); // any left from the last tick go before anything is judged again
    this.probesAt = now;
    // Slots are read afresh each time round: a close or an accept in the pass may change them.
    const table = this.ctx.registry.watch;
    for (let slot = 0; slot < table.length; slot++) {
      if (now < table.at[slot]) continue;
      const session = table.sessions[slot]!;
      if (session.state === 'closing' || session.state === 'closed') continue;
      if (session.probeSentAt > 0 && session.lastAnswerAt >= session.probeSentAt) this.probeAnswered(session);
      const action = decide(now, session, session.policy);
      if (action === 'none') {
        session.watchAt = quietUntil(now, session, session.policy);
        continue;
      }
      if (action === 'probe') {
        this.probes.push(session);
      } else if (action === 'keepalive') {
        session.keepalive();
      } else if (action === 'presence-grace') {
        session.presenceGraceUntil = 0;
        this.ctx.sessions.hidden(session);
      } else if (LOSSES.has(action)) {
        // Lost, not necessarily over: a resumable session hibernates instead of closing.
        session.lost(action as LossReason, { text: explain(action, session, now) });
      } else {
        session.close(action, { text: explain(action, session, now) });
      }
    }
    this.sendProbes(PROBES_PER_TURN);
    this.ctx.metrics.ticks.inc();
    this.ctx.metrics.tickSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * Up to `limit` of the probes a tick judged due, then the rest in later turns of the event loop. Sessions
   * that logged in together fall due together: sent all at once, thousands of probes' garbage would be alive
   * at once, through the young-generation collections of the burst, and every reply would wait behind them.
   */
  private sendProbes(limit: number): void {
    const probes = this.probes;
    for (let sent = 0; this.next < probes.length && sent < limit; sent++) {
      const session = probes[this.next++];
      if (session.state === 'closing' || session.state === 'closed') continue;
      this.ctx.metrics.probeCount(session.kind, sendProbe(session, this.ctx.router, this.probesAt)).inc();
    }
    if (this.next < probes.length) {
      this.turn ??= setImmediate(this.nextTurn);
      return;
    }
    probes.length = 0;
    this.next = 0;
  }

  private readonly nextTurn = (): void => {
    this.turn = undefined;
    this.sendProbes(PROBES_PER_TURN);
  };

  private probeAnswered(session: Session): void {
    this.ctx.metrics.probeRtt.observe({ kind: session.kind }, Math.max(0, session.lastAliveAt - session.probeSentAt) / 1000);
    session.probeSentAt = 0;
  }
}

/** Probes sent in one turn of the event loop: what a turn allocates for them dies young. */
export const PROBES_PER_TURN = 128;

const LOSSES: ReadonlySet<string> = new Set<LossReason>(['probe-timeout', 'idle', 'write-stall']);

function explain(action: string, s: Session, now: number): string {
  const silent = Math.round((now - s.lastAliveAt) / 1000);
  switch (action) {
    case 'probe-timeout':
      return `probe-timeout: no answer to ${s.sm ? 'an ack request' : 'a ping'} within ${Math.round(s.policy.probeTimeout / 1000)} s; nothing received for ${silent} s`;
    case 'resume-timeout':
      return `resume-timeout: not resumed within ${Math.round((s.sm?.resumeTimeout ?? 0) / 1000)} s`;
    case 'idle':
      return `idle: nothing received for ${silent} s`;
    case 'unauthenticated':
      return `unauthenticated: not authenticated within ${Math.round(s.policy.unauthenticatedTimeout / 1000)} s`;
    case 'write-stall':
      return `write-stall: ${s.pendingBytes} bytes unread for ${Math.round((now - s.lastWriteProgressAt) / 1000)} s; nothing received for ${silent} s`;
    default:
      return `send-queue-overflow: ${s.pendingBytes} bytes waiting, more than ${s.policy.maxSendQueue}`;
  }
}
