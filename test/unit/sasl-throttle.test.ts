import { AuthThrottle, type ThrottlePolicy } from '../../src/c2s/auth-throttle';

/* The brute-force limits on a fake clock: who may try a password, and when again. */

const S = 1000;
const POLICY: ThrottlePolicy = { freeFailures: 5, ipFreeFailures: 20, accountFreeFailures: 50, window: 900 * S, lockoutBase: S, lockoutMax: 300 * S, maxTracked: 1000 };

function setup(overrides: Partial<ThrottlePolicy> = {}) {
  const clock = { now: 1_000_000 };
  const policy = { ...POLICY, ...overrides };
  const throttle = new AuthThrottle(() => policy, () => clock.now);
  const failTimes = (n: number, ip: string, account?: string) => {
    for (let i = 0; i < n; i++) throttle.failed(ip, account);
  };
  return { clock, throttle, failTimes };
}

describe('AuthThrottle', () => {
  test('the first failures are free; the fifth for an account locks it for that address for lockoutBase', () => {
    const { clock, throttle, failTimes } = setup();
    failTimes(4, '198.51.100.1', 'alice');
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(true);
    failTimes(1, '198.51.100.1', 'alice');
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(false);
    clock.now += S - 1;
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(false);
    clock.now += 1;
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(true);
  });

  test('each further failure doubles the lockout, up to lockoutMax', () => {
    const { clock, throttle, failTimes } = setup();
    failTimes(5, '198.51.100.1', 'alice');
    const lockouts: number[] = [];
    for (let i = 0; i < 12; i++) {
      let waited = 0;
      while (!throttle.allowed('198.51.100.1', 'alice')) {
        clock.now += S;
        waited += S;
      }
      lockouts.push(waited / S);
      throttle.failed('198.51.100.1', 'alice');
    }
    expect(lockouts).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
  });

  test('thirty failures for alice from one address do not lock alice out of another', () => {
    const { throttle, failTimes } = setup();
    // The stream stops feeding failures once locked; feeding all thirty is the worst case for alice.
    failTimes(30, '198.51.100.1', 'alice');
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(false);
    expect(throttle.allowed('198.51.100.1', 'bob')).toBe(false); // past ipFreeFailures: the address itself is slowed
    expect(throttle.allowed('203.0.113.9', 'alice')).toBe(true);
    expect(throttle.ipAllowed('203.0.113.9')).toBe(true);
  });

  test('an address spraying many names is locked as a whole after ipFreeFailures, for every name', () => {
    const { throttle } = setup();
    for (let i = 0; i < 19; i++) throttle.failed('198.51.100.1', `user${i}`);
    expect(throttle.ipAllowed('198.51.100.1')).toBe(true);
    throttle.failed('198.51.100.1', 'user19');
    expect(throttle.ipAllowed('198.51.100.1')).toBe(false);
    expect(throttle.allowed('198.51.100.1', 'someone-new')).toBe(false);
    expect(throttle.allowed('198.51.100.2', 'user3')).toBe(true);
  });

  test('failures spread over many addresses lock the account for those addresses, not for one that never failed', () => {
    const { throttle } = setup();
    for (let i = 0; i < 50; i++) throttle.failed(`10.0.${i >> 8}.${i & 255}`, 'alice');
    expect(throttle.allowed('10.0.0.7', 'alice')).toBe(false);
    expect(throttle.allowed('10.0.0.7', 'bob')).toBe(true);
    expect(throttle.allowed('192.0.2.200', 'alice')).toBe(true);
  });

  test('failures are forgotten a window after the last one', () => {
    const { clock, throttle, failTimes } = setup();
    failTimes(4, '198.51.100.1', 'alice');
    clock.now += POLICY.window + 1;
    failTimes(4, '198.51.100.1', 'alice');
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(true);
  });

  test('0 turns a limit off', () => {
    const { throttle, failTimes } = setup({ freeFailures: 0, ipFreeFailures: 0, accountFreeFailures: 0 });
    failTimes(500, '198.51.100.1', 'alice');
    expect(throttle.allowed('198.51.100.1', 'alice')).toBe(true);
  });

  test('memory stays bounded: beyond maxTracked the record that failed longest ago is forgotten', () => {
    const { throttle, failTimes } = setup({ maxTracked: 100, ipFreeFailures: 1 });
    failTimes(1, 'first', 'alice');
    expect(throttle.ipAllowed('first')).toBe(false);
    for (let i = 0; i < 1000; i++) throttle.failed(`10.1.${i >> 8}.${i & 255}`, `user${i}`);
    expect(throttle.tracked).toEqual({ ips: 100, pairs: 100, accounts: 100 });
    expect(throttle.ipAllowed('first')).toBe(true);
  });
});
