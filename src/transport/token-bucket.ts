/**
 * A token bucket on a clock the caller passes in (ms), so it is tested without waiting. It refills at
 * `rate` tokens a second up to `burst`. take() may go into debt: what has already been read cannot be
 * un-read, so the bucket says how long to wait instead of refusing, the way ejabberd's shapers pause a
 * socket. tryTake() is for admission, where refusing is the point.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Take `n` tokens, into debt if need be; returns the ms until the debt is paid (0: none). */
  take(n: number, now: number): number {
    this.refill(now);
    this.tokens -= n;
    return this.debtMs();
  }

  /** Take one token if there is a whole one; false (and nothing taken) otherwise. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Ms until the bucket is out of debt, 0 if it is not in debt. */
  waitMs(now: number): number {
    this.refill(now);
    return this.debtMs();
  }

  private debtMs(): number {
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }

  private refill(now: number): void {
    // A clock that steps back must not drain the bucket.
    const elapsed = Math.max(0, now - this.at);
    this.at = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }
}
