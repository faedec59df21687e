import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

/**
 * A throwaway PostgreSQL cluster for one test file: initdb in a temp dir, listening only on a unix socket
 * in that dir (no TCP port at all), trust auth, fsync off; `stop()` kills it and deletes the dir.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: then the dir is given to the `postgres` system
 * user (Debian's postgresql package creates it) and initdb/pg_ctl run through `runuser -u postgres`.
 * Run as anyone else, the cluster simply belongs to that user.
 */
export interface TestPostgres {
  /** Where the socket and the data live. */
  dir: string;
  /** Connection URL for one database of the cluster (the socket dir goes in the host parameter). */
  url(database?: string): string;
  /** A new empty database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const MISSING = 'PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/<version>/bin: apt-get install postgresql';

/** Debian installs each major version side by side; take the newest (or VIGIL_TEST_PG_BINDIR). */
export function postgresBinDir(): string {
  const forced = process.env.VIGIL_TEST_PG_BINDIR;
  if (forced) {
    if (!existsSync(join(forced, 'initdb'))) throw new Error(`VIGIL_TEST_PG_BINDIR=${forced} has no initdb: ${MISSING}`);
    return forced;
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl'))) : [];
  if (versions.length === 0) throw new Error(MISSING);
  versions.sort((a, b) => Number(b) - Number(a));
  return join(base, versions[0], 'bin');
}

function idOf(user: string, flag: '-u' | '-g'): number {
  try {
    return Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error(`tests run as root, and PostgreSQL refuses root, but there is no \`${user}\` system user: apt-get install postgresql`);
  }
}

const live = new Set<() => void>();
// A test file that dies before afterAll still takes its cluster down with it.
process.once('exit', () => {
  for (const kill of live) kill();
});

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pg-'));
  if (asRoot) chownSync(dir, idOf('postgres', '-u'), idOf('postgres', '-g'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const run = (tool: string, args: string[]): string => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    return execFileSync(cmd, argv, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  };
  const stopNow = () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const fail = (what: string, err: unknown): Error => {
    const e = err as { stderr?: string; message: string };
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
    stopNow();
    return new Error(`${what} failed: ${e.stderr || e.message}\n${log}`);
  };

  try {
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  } catch (err) {
    throw fail('initdb', err);
  }
  // No TCP at all: the socket lives in our temp dir. Durability is worthless for a throwaway cluster.
  appendFileSync(
    join(data, 'postgresql.conf'),
    [`listen_addresses = ''`, `unix_socket_directories = '${dir}'`, 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off', ''].join('\n'),
  );
  try {
    run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', 'start']);
  } catch (err) {
    throw fail('pg_ctl start', err);
  }
  live.add(stopNow);

  const url = (database = 'postgres') => `postgresql://postgres@/${encodeURIComponent(database)}?host=${encodeURIComponent(dir)}`;
  return {
    dir,
    url,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const client = new Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      live.delete(stopNow);
      stopNow();
    },
  };
}
