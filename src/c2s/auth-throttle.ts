
/** What the throttle reads from c2s.auth, in milliseconds and counts (see the schema for why each default). */
export interface ThrottlePolicy {
  freeFailures: number;
  ipFreeFailures: number;
  accountFreeFailures: number;
  window: number;
  lockoutBase: number;
  lockoutMax: number;
  maxTracked: number;
}

interface Failures {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
}

/**
 * Failures by key, oldest first. A Map keeps insertion order, so re-inserting on each failure makes the
 * first key the least recently failing one: the one to evict when the table is full, so that an attacker
 * spraying addresses or names cannot grow memory, only push out the oldest (and least dangerous) records.
 */
class Table {
  private readonly records = new Map<string, Failures>();

  get size(): number {
    return this.records.size;
  }

  /** The live record for a key, or undefined once its window has passed and no lockout holds. */
  get(key: string, now: number, p: ThrottlePolicy): Failures | undefined {
    const rec = this.records.get(key);
    if (rec && now - rec.lastFailureAt > p.window && now >= rec.lockedUntil) {
      this.records.delete(key);
      return undefined;
    }
    return rec;
  }

  locked(key: string, now: number, p: ThrottlePolicy): boolean {
    const rec = this.get(key, now, p);
    return rec !== undefined && now < rec.lockedUntil;
  }

  /**
   * One more failure; from the free-th on, each one locks the key for twice as long as the last did, so a
   * guesser's rate halves with every guess while a user who mistyped a few times never notices.
   */
  fail(key: string, now: number, free: number, p: ThrottlePolicy): void {
    const rec = this.get(key, now, p) ?? { failures: 0, lastFailureAt: now, lockedUntil: 0 };
    rec.failures++;
    rec.lastFailureAt = now;
    if (free > 0 && rec.failures >= free) {
      const doublings = Math.min(rec.failures - free, 30); // 2^30 s is past any sane lockoutMax; avoids Infinity
      rec.lockedUntil = now + Math.min(p.lockoutMax, p.lockoutBase * 2 ** doublings);
    }
    this.records.delete(key);
    this.records.set(key, rec);
    while (this.records.size > p.maxTracked) this.records.delete(this.records.keys().next().value!);
  }
}

/**
 * Brute-force limits for SASL, in three tables, so that an attack slows the attacker and not the victim:
 *
 * - per (account, IP): the account's own limit, applied only to the address that failed. Thirty wrong
 *   passwords for alice from one address lock alice out of that address only; alice on her phone elsewhere
 *   logs in as usual. A lockout for the whole account would hand any attacker a way to lock anyone out.
 * - per IP, all accounts together: an address that sprays guesses over many names is slowed as a whole.
 *   Its threshold is higher, since many honest users may share one address behind a NAT.
 * - per account, all addresses together, with a much higher threshold: a guesser spread over many
 *   addresses. Even then the lock applies only to addresses that have themselves failed for this account
 *   within the window, so the real user, who has not, still gets in.
 *
 * Attempts refused while locked are not counted here (no password was checked, nothing was learnt), so
 * a flood of them does not stretch a lockout; the stream still counts them against c2s.maxAuthAttempts.
 */
export class AuthThrottle {
  private readonly ips = new Table();
  private readonly pairs = new Table();
  private readonly accounts = new Table();

  constructor(private readonly policy: () => ThrottlePolicy, private readonly now: () => number = Date.now) {}

  /** Whether this address may try at all, before any account is named. */
  ipAllowed(ip: string): boolean {
    return !this.ips.locked(ip, this.now(), this.policy());
  }

  /** Whether this address may try a password for this account. */
  allowed(ip: string, account: string): boolean {
    const p = this.policy();
    const now = this.now();
    if (this.ips.locked(ip, now, p) || this.pairs.locked(pairKey(account, ip), now, p)) return false;
    return !(this.accounts.locked(account, now, p) && this.pairs.get(pairKey(account, ip), now, p) !== undefined);
  }

  /** A failed attempt from this address, for this account when the client named one. */
  failed(ip: string, account: string | undefined): void {
    const p = this.policy();
    const now = this.now();
    this.ips.fail(ip, now, p.ipFreeFailures, p);
    if (account === undefined) return;
    this.pairs.fail(pairKey(account, ip), now, p.freeFailures, p);
    this.accounts.fail(account, now, p.accountFreeFailures, p);
  }

  /** Records held, for tests that check memory stays bounded. */
  get tracked(): { ips: number; pairs: number; accounts: number } {
    return { ips: this.ips.size, pairs: this.pairs.size, accounts: this.accounts.size };
  }
}

// NUL cannot occur in a normalised username, so no account/IP pair can collide with another.
const pairKey = (account: string, ip: string): string => `${account}\0${ip}`;
