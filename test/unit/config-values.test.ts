import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type LoadOptions } from '../../src/config/load';

/** What loadConfig accepts for durations, sizes and booleans, and the line it prints for what it does not. */

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-values-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(yaml: string): string {
  const f = path.join(dir, `c${n++}.yaml`);
  writeFileSync(f, yaml);
  return f;
}

/** The problems loadConfig names, one line each; [] when it accepts. */
function problems(options: LoadOptions): string[] {
  try {
    loadConfig({ env: {}, ...options });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

const yaml = (text: string) => problems({ file: file(text) });
const env = (vars: Record<string, string>) => problems({ env: vars });

describe('durations', () => {
  it('a bare number is an error naming the key and how to write it, not milliseconds', () => {
    expect(yaml('watchdog:\n  c2s:\n    probeAfter: 6\n')).toEqual(['watchdog.c2s.probeAfter: a bare number is not a duration: write the unit, e.g. "6s" or "6ms": value was 6']);
    expect(yaml('shutdown:\n  timeout: 2.5\n')).toEqual([expect.stringMatching(/^shutdown\.timeout: a bare number is not a duration/)]);
    expect(env({ VIGIL_WATCHDOG_C2S_PROBE_TIMEOUT: '30' })).toEqual(['watchdog.c2s.probeTimeout: "30" is not a duration such as "30s", "5m", "1h" or "0": value was "30"']);
  });

  it('0 and "0" are zero, the documented way to turn an option off', () => {
    const config = loadConfig({ file: file('watchdog:\n  c2s:\n    maxIdle: 0\n    tcpKeepAlive: "0"\n'), env: {} });
    expect([config.watchdog.c2s.maxIdle, config.watchdog.c2s.tcpKeepAlive]).toEqual([0, 0]);
  });

  it('strings with units become milliseconds, from the file, the environment and overrides', () => {
    const config = loadConfig({
      file: file('watchdog:\n  c2s:\n    probeAfter: 1h30m\n'),
      env: { VIGIL_WATCHDOG_C2S_PROBE_TIMEOUT: '250ms' },
      overrides: { watchdog: { c2s: { closeTimeout: '2s' } } },
    });
    expect([config.watchdog.c2s.probeAfter, config.watchdog.c2s.probeTimeout, config.watchdog.c2s.closeTimeout]).toEqual([5_400_000, 250, 2000]);
  });
});

describe('watchdog.interval', () => {
  it('is at least 100ms: below is an error naming the key and the minimum', () => {
    expect(yaml('watchdog:\n  interval: 50ms\n')).toEqual(['watchdog.interval: must be at least 100ms: value was "50ms"']);
    expect(env({ VIGIL_WATCHDOG_INTERVAL: '0' })).toEqual([expect.stringMatching(/^watchdog\.interval: must be at least 100ms/)]);
    expect(problems({ overrides: { watchdog: { interval: '99ms' } } })).toEqual([expect.stringMatching(/^watchdog\.interval: must be at least 100ms/)]);
  });

  it('100ms itself is accepted', () => {
    expect(loadConfig({ file: file('watchdog:\n  interval: 100ms\n'), env: {} }).watchdog.interval).toBe(100);
  });
});

describe('sizes', () => {
  it('a bare number is bytes', () => {
    expect(loadConfig({ file: file('c2s:\n  maxStanzaSize: 4096\n'), env: {} }).c2s.maxStanzaSize).toBe(4096);
    expect(loadConfig({ env: { VIGIL_WATCHDOG_C2S_MAX_SEND_QUEUE: '2MiB' } }).watchdog.c2s.maxSendQueue).toBe(2 * 1024 * 1024);
  });

  it('anything else is an error naming the key', () => {
    expect(yaml('c2s:\n  maxStanzaSize: -1\n')).toEqual([expect.stringMatching(/^c2s\.maxStanzaSize: must be a size/)]);
  });
});

describe('booleans', () => {
  it('true and false (YAML booleans) are taken', () => {
    const config = loadConfig({ file: file('c2s:\n  allowPlainWithoutTls: true\n  registration:\n    enabled: false\n'), env: {} });
    expect([config.c2s.allowPlainWithoutTls, config.c2s.registration.enabled]).toEqual([true, false]);
  });

  it('anything else in the file is an error naming the key, never taken as true', () => {
    expect(yaml('c2s:\n  allowPlainWithoutTls: yes\n')).toEqual(['c2s.allowPlainWithoutTls: must be true or false (unquoted): value written was "yes"']);
    expect(yaml('c2s:\n  allowPlainWithoutTls: "true"\n')).toEqual([expect.stringMatching(/^c2s\.allowPlainWithoutTls: must be true or false/)]);
    expect(yaml('c2s:\n  registration:\n    enabled: 1\n')).toEqual(['c2s.registration.enabled: must be true or false (unquoted): value written was 1']);
  });

  it('from the environment only the strings "true" and "false"', () => {
    expect(loadConfig({ env: { VIGIL_C2S_ALLOW_PLAIN_WITHOUT_TLS: 'true' } }).c2s.allowPlainWithoutTls).toBe(true);
    expect(loadConfig({ env: { VIGIL_C2S_ALLOW_PLAIN_WITHOUT_TLS: 'false' } }).c2s.allowPlainWithoutTls).toBe(false);
    for (const value of ['1', 'yes', 'on', 'TRUE', '']) {
      expect(env({ VIGIL_C2S_ALLOW_PLAIN_WITHOUT_TLS: value })).toEqual([`c2s.allowPlainWithoutTls: VIGIL_C2S_ALLOW_PLAIN_WITHOUT_TLS must be "true" or "false": value was ${JSON.stringify(value)}`]);
    }
  });

  it('in overrides too', () => {
    expect(problems({ overrides: { c2s: { registration: { enabled: 'no' as unknown as boolean } } } })).toEqual(['c2s.registration.enabled: must be true or false (unquoted): value given was "no"']);
  });
});

it('every problem of a file is listed at once, one line each', () => {
  expect(yaml('watchdog:\n  interval: 10ms\n  c2s:\n    probeAfter: 6\nc2s:\n  allowPlainWithoutTls: on\n')).toEqual([
    'c2s.allowPlainWithoutTls: must be true or false (unquoted): value written was "on"',
    'watchdog.interval: must be at least 100ms: value was "10ms"',
    expect.stringMatching(/^watchdog\.c2s\.probeAfter: a bare number/),
  ]);
});
