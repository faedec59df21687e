import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { softFdLimit } from '../../src/metrics/admin';
import { freePort, requireBuiltCli, runCli } from '../helpers/daemon';

/**
 * The `vigil` command as a newcomer meets it: no config file, a fresh directory, the defaults. What it
 * finds there, what it leaves behind (nothing, for commands that only read), and where relative paths of
 * a config file point.
 */

const dirs: string[] = [];
function tempDir(): string {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'vigil-cli-defaults-')));
  dirs.push(dir);
  return dir;
}

beforeAll(() => requireBuiltCli());
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Only PATH, and free ports: 5222, 5281, 5269 and 5280 may be taken on a machine that runs other tests, and a held port is an error by design. */
async function defaultEnv(): Promise<NodeJS.ProcessEnv> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    VIGIL_LISTENERS_C2S_PORT: String(await freePort()),
    VIGIL_LISTENERS_WEBSOCKET_PORT: String(await freePort()),
    VIGIL_LISTENERS_S2S_PORT: String(await freePort()),
    VIGIL_LISTENERS_HTTP_PORT: String(await freePort()),
  };
}

describe('vigil doctor on the defaults', () => {
  it('exits 0, sizing limits.maxSessions by the file-descriptor limit, and creates nothing', async () => {
    const cwd = tempDir();
    const r = await runCli(['doctor'], { cwd, env: await defaultEnv() });
    const limit = softFdLimit(); // the child inherits this process's limit
    expect({ code: r.code, errors: r.lines.filter((l) => l.startsWith('error')), err: r.err }).toEqual({ code: 0, errors: [], err: '' });
    expect(r.lines).toEqual(expect.arrayContaining([
      'ok     config (built-in defaults): loads (domain localhost)',
      limit === null
        ? 'ok     file descriptors: this shell (and a server started from it) has no limit, so limits.maxSessions 0 allows any number of sessions'
        : `ok     file descriptors: this shell (and a server started from it) may open ${limit}: room for ${limit - 1024} sessions (limits.maxSessions 0: the limit minus 1024)`,
    ]));
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('an explicit limits.maxSessions above the limit is still an error, exit 1', async () => {
    const cwd = tempDir();
    const r = await runCli(['doctor'], { cwd, env: { ...(await defaultEnv()), VIGIL_LIMITS_MAX_SESSIONS: '100000' }, shell: 'ulimit -n 4096' });
    expect(r.code).toBe(1);
    expect(r.lines.filter((l) => l.startsWith('error'))).toEqual([expect.stringMatching(/^error +file descriptors: this shell .* may open only 4096, below limits.maxSessions 100000 \+ 1024 = 101024/)]);
  });
});

describe('read-only commands never create a database', () => {
  it('user list without a database says so, exits 0, and leaves neither the file nor its directory', async () => {
    const cwd = tempDir();
    const r = await runCli(['user', 'list'], { cwd });
    expect(r).toMatchObject({ code: 0, out: '', err: `no database at ${path.join(cwd, 'data/vigil.sqlite')}: no users\n` });
    expect(existsSync(path.join(cwd, 'data'))).toBe(false);
  });

  it('the same with a configured storage.path in a directory that does not exist', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'nowhere', 'vigil.sqlite');
    writeFileSync(path.join(dir, 'vigil.yaml'), `storage:\n  path: ${db}\n`);
    const r = await runCli(['user', 'list', '--config', path.join(dir, 'vigil.yaml')]);
    expect(r).toMatchObject({ code: 0, out: '', err: `no database at ${db}: no users\n` });
    expect(existsSync(path.join(dir, 'nowhere'))).toBe(false);
  });

  it('user delete and user passwd find no such user, and create nothing either', async () => {
    const cwd = tempDir();
    for (const action of ['delete', 'passwd']) {
      const r = await runCli(['user', action, 'alice@localhost', '--password', 'x'], { cwd });
      expect({ action, code: r.code, err: r.err }).toEqual({ action, code: 67, err: `alice@localhost: no such user (no database at ${path.join(cwd, 'data/vigil.sqlite')})\n` });
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('vigil sessions with no server running creates nothing', async () => {
    const cwd = tempDir();
    const r = await runCli(['sessions'], { cwd, env: await defaultEnv() });
    expect(r.code).toBe(1);
    expect(r.err).toContain('no Vigil answers on');
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('relative paths in a config file', () => {
  it("storage.path is beside the config file, wherever the command runs; without one, data/ is in the working directory", async () => {
    const etc = path.join(tempDir(), 'etc');
    mkdirSync(etc);
    const file = path.join(etc, 'vigil.yaml');
    writeFileSync(file, 'storage:\n  path: db/vigil.sqlite\n');
    const elsewhere = tempDir();

    expect(await runCli(['user', 'add', 'alice@localhost', '--password', 'x', '--config', file], { cwd: elsewhere })).toMatchObject({ code: 0, out: 'added alice@localhost\n' });
    expect(existsSync(path.join(etc, 'db/vigil.sqlite'))).toBe(true);
    expect(readdirSync(elsewhere)).toEqual([]);
    // From yet another directory, with the file named relatively: the same database.
    expect(await runCli(['user', 'list', '--config', path.relative(etc, file)], { cwd: etc })).toMatchObject({ code: 0, out: 'alice@localhost\n' });

    const bare = tempDir();
    expect(await runCli(['user', 'add', 'bob@localhost', '--password', 'x'], { cwd: bare })).toMatchObject({ code: 0 });
    expect(existsSync(path.join(bare, 'data/vigil.sqlite'))).toBe(true);
  });

  it('a relative path from VIGIL_STORAGE_PATH stays relative to the working directory', async () => {
    const etc = tempDir();
    const file = path.join(etc, 'vigil.yaml');
    writeFileSync(file, 'storage:\n  path: db/vigil.sqlite\n');
    const cwd = tempDir();
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', VIGIL_STORAGE_PATH: 'mine.sqlite' };
    expect(await runCli(['user', 'add', 'carol@localhost', '--password', 'x', '--config', file], { cwd, env })).toMatchObject({ code: 0 });
    expect([existsSync(path.join(cwd, 'mine.sqlite')), existsSync(path.join(etc, 'db'))]).toEqual([true, false]);
  });
});
