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

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.tick(Date.now()), this.ctx.config.watchdog.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass; `now` is a parameter so tests and benchmarks can drive it. */
  tick(now: number): void {
    const started = process.hrtime.bigint();
    for (const session of this.ctx.registry.all()) {
      if (now < session.watchAt) continue;
      if (session.state === 'closing' || session.state === 'closed') continue;
      if (session.probeSentAt > 0 && session.lastAnswerAt >= session.probeSentAt) this.probeAnswered(session);
      const action = decide(now, session, session.policy);
      if (action === 'none') {
        session.watchAt = quietUntil(now, session, session.policy);
        continue;
      }
      if (action === 'probe') {
        this.ctx.metrics.probeCount(session.kind, sendProbe(session, this.ctx.router, now)).inc();
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
    this.ctx.metrics.ticks.inc();
    this.ctx.metrics.tickSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  private probeAnswered(session: Session): void {
    this.ctx.metrics.probeRtt.observe({ kind: session.kind }, Math.max(0, session.lastAliveAt - session.probeSentAt) / 1000);
    session.probeSentAt = 0;
  }
}

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
