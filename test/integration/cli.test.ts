import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');
let dir: string;
let configFile: string;

function vigil(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-cli-'));
  configFile = join(dir, 'vigil.yaml');
  writeFileSync(configFile, `domain: localhost\nstorage:\n  path: ${join(dir, 'vigil.sqlite')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil config check', () => {
  it('accepts a good file', () => {
    const r = vigil(['config', 'check', '--config', configFile]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(': ok');
  });

  it('names each bad key and exits 78', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, "watchdog:\n  c2s:\n    probeAfter: soon\n    probe: telepathy\nlisteners:\n  c2s:\n    port: 70000\nnonsense: 1\n");
    const r = vigil(['config', 'check', '--config', bad]);
    expect(r.code).toBe(78);
    expect(r.err).toMatch(/^watchdog\.c2s\.probeAfter: /m);
    expect(r.err).toMatch(/^watchdog\.c2s\.probe: /m);
    expect(r.err).toMatch(/^listeners\.c2s\.port: /m);
    expect(r.err).toMatch(/^nonsense: unknown option$/m);
  });

  it('a bare number for a duration, a boolean that is not true or false, a watchdog.interval below 100ms: each named, exit 78', () => {
    const bad = join(dir, 'values.yaml');
    writeFileSync(bad, 'watchdog:\n  interval: 10ms\n  c2s:\n    probeAfter: 6\n    maxIdle: 0\nc2s:\n  allowPlainWithoutTls: yes\n  maxStanzaSize: 4096\n');
    const r = vigil(['config', 'check', '--config', bad]);
    expect({ code: r.code, out: r.out, lines: r.err.trim().split('\n') }).toEqual({
      code: 78,
      out: '',
      lines: [
        'c2s.allowPlainWithoutTls: must be true or false (unquoted): value written was "yes"',
        'watchdog.interval: must be at least 100ms: value was "10ms"',
        'watchdog.c2s.probeAfter: a bare number is not a duration: write the unit, e.g. "6s" or "6ms": value was 6',
      ],
    });
  });

  it('names a boolean environment variable that is not "true" or "false"', () => {
    const r = spawnSync(process.execPath, [cli, 'config', 'check', '--config', configFile], { encoding: 'utf8', env: { PATH: process.env.PATH, VIGIL_C2S_REGISTRATION_ENABLED: '1' } });
    expect({ code: r.status, err: r.stderr }).toEqual({ code: 78, err: 'c2s.registration.enabled: VIGIL_C2S_REGISTRATION_ENABLED must be "true" or "false": value was "1"\n' });
  });

  it('reports a file that is not YAML, and one that is missing', () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'domain: [unclosed\n');
    expect(vigil(['config', 'check', '--config', broken])).toMatchObject({ code: 78, err: expect.stringContaining('not valid YAML') });
    expect(vigil(['config', 'check', '--config', join(dir, 'nope.yaml')])).toMatchObject({ code: 78, err: expect.stringContaining('cannot read the config file') });
  });
});

describe('vigil user', () => {
  it('adds a user with the password on stdin, lists, changes the password, and deletes', () => {
    expect(vigil(['user', 'add', 'Alice@localhost', '--config', configFile], 'first secret\n')).toMatchObject({ code: 0, out: 'added alice@localhost\n' });
    expect(vigil(['user', 'add', 'bob@localhost', '--password', 'pw', '--config', configFile]).code).toBe(0);
    expect(vigil(['user', 'list', '--config', configFile]).out).toBe('alice@localhost\nbob@localhost\n');
    expect(vigil(['user', 'add', 'alice@localhost', '--password', 'x', '--config', configFile])).toMatchObject({ code: 73, err: expect.stringContaining('exists already') });
    expect(vigil(['user', 'passwd', 'alice@localhost', '--config', configFile], 'second secret\n').code).toBe(0);
    expect(vigil(['user', 'delete', 'bob@localhost', '--config', configFile]).code).toBe(0);
    expect(vigil(['user', 'delete', 'bob@localhost', '--config', configFile])).toMatchObject({ code: 67, err: expect.stringContaining('no such user') });
    expect(vigil(['user', 'list', '--config', configFile]).out).toBe('alice@localhost\n');
  });

  it('refuses a user of another domain and an invalid name', () => {
    expect(vigil(['user', 'add', 'eve@example.org', '--password', 'x', '--config', configFile])).toMatchObject({ code: 65, err: expect.stringContaining('serves localhost') });
    expect(vigil(['user', 'add', 'a b@localhost', '--password', 'x', '--config', configFile]).code).toBe(65);
  });

  it('uses VIGIL_CONFIG when --config is absent', () => {
    const r = spawnSync(process.execPath, [cli, 'user', 'list'], { encoding: 'utf8', env: { PATH: process.env.PATH, VIGIL_CONFIG: configFile } });
    expect(r.stdout).toBe('alice@localhost\n');
  });
});
