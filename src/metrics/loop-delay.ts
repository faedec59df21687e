import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * How late the event loop runs a timer due every `resolution` ms: what every session waits when one request
 * holds the loop. Node's monitorEventLoopDelay records the time between its timer's runs, so an idle loop
 * reads as the resolution itself: it is taken off here.
 *
 * Each sample is a wake-up, and waking an idle process costs 65-100 µs of CPU on a small VM: at 20 ms that
 * was 0.2 s a minute, more than a fifth of what probing 10,000 idle sessions costs (a timer of our own in
 * JavaScript costs half as much again as Node's). A block at least as long as the resolution is always
 * caught, at no less than its length minus the resolution; a shorter one in proportion to its length, so one
 * that recurs shows within a scrape. After a reset the first run only starts the count again: a block in the
 * first interval after a scrape is not seen.
 */
export class LoopDelay {
  private readonly histogram: IntervalHistogram;

  constructor(private readonly resolution: number) {
    this.histogram = monitorEventLoopDelay({ resolution });
    this.histogram.enable();
  }

  /** In ms, over the samples since the last reset (0 without any). */
  percentile(p: number): number {
    return this.delay(this.histogram.percentile(p));
  }

  get max(): number {
    return this.delay(this.histogram.max);
  }

  reset(): void {
    this.histogram.reset();
  }

  stop(): void {
    this.histogram.disable();
  }

  private delay(betweenRunsNs: number): number {
    return this.histogram.count > 0 ? Math.max(0, betweenRunsNs / 1e6 - this.resolution) : 0;
  }
}
