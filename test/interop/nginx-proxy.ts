import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { canConnect } from './peers/peer';
import { join } from 'node:path';

/**
 * Debian's nginx (nginx-light) as a process a test starts and ends itself, with everything it writes in a
 * temp dir, fed the location blocks of deploy/nginx/vigil.conf so that what ships is what is tested.
 */

export const NGINX = '/usr/sbin/nginx';
export const SHIPPED = join(__dirname, '..', '..', 'deploy', 'nginx', 'vigil.conf');
/** Where the shipped file sends requests: Vigil's default WebSocket listener. */
export const SHIPPED_UPSTREAM = 'http://127.0.0.1:5281';

/** Replace every match of `pattern` (global) in `text`, and throw unless it matched exactly `times` times. */
export function replaceCounted(text: string, pattern: RegExp, replacement: string, times: number, what: string): string {
  const found = text.match(pattern)?.length ?? 0;
  if (found !== times) throw new Error(`deploy/nginx/vigil.conf: expected ${what} ${times} time(s), found ${found}`);
  return text.replace(pattern, replacement);
}

/** The `location ... { ... }` blocks of an nginx config, comments removed, in order. */
export function locationBlocks(text: string): string[] {
  const clean = text.replace(/#[^\n]*/g, '');
  const blocks: string[] = [];
  const start = /(^|[\s;{}])location\s[^{;]*\{/g;
  let m: RegExpExecArray | null;
  while ((m = start.exec(clean))) {
    const from = m.index + m[1].length;
    let depth = 0;
    let end = -1;
    for (let i = from; i < clean.length; i++) {
      if (clean[i] === '{') depth++;
      else if (clean[i] === '}' && --depth === 0) {
        end = i + 1;
        break;
      }
    }
    if (end < 0) throw new Error('deploy/nginx/vigil.conf: a location block is not closed');
    blocks.push(clean.slice(from, end));
    start.lastIndex = end;
  }
  return blocks;
}

/** The path of a location block: `location = /x {` gives '= /x'. */
export function locationOf(block: string): string {
  return block.match(/^location\s+([^{]*?)\s*\{/)![1];
}

export { freePort } from './peers/peer';


export class NginxProcess {
  readonly dir: string;
  readonly conf: string;
  private proc: ChildProcess | undefined;
  private stderr = '';

  /**
   * `http` is the inside of http {}; `dir` holds the pid file, logs and temp paths. Nothing is started
   * yet: test() and start() do that.
   */
  constructor(http: (dir: string) => string) {
    this.dir = mkdtempSync(join(tmpdir(), 'vigil-nginx-'));
    for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(this.dir, d));
    this.conf = join(this.dir, 'nginx.conf');
    const d = this.dir;
    let inside: string;
    try {
      inside = http(d);
    } catch (err) {
      rmSync(d, { recursive: true, force: true });
      throw err;
    }
    writeFileSync(
      this.conf,
      [
        // One process, in the foreground: the test holds its PID, and there are no workers to outlive it.
        'daemon off;',
        'master_process off;',
        `pid ${d}/nginx.pid;`,
        `error_log ${d}/error.log info;`,
        'events { worker_connections 256; }',
        'http {',
        `  access_log ${d}/access.log;`,
        `  client_body_temp_path ${d}/client_body;`,
        `  proxy_temp_path ${d}/proxy;`,
        `  fastcgi_temp_path ${d}/fastcgi;`,
        `  uwsgi_temp_path ${d}/uwsgi;`,
        `  scgi_temp_path ${d}/scgi;`,
        inside,
        '}',
        '',
      ].join('\n'),
    );
  }

  /** `nginx -t` on this config: its exit status and what it said. */
  test(): { status: number | null; output: string } {
    const r = spawnSync(NGINX, ['-t', '-p', `${this.dir}/`, '-e', join(this.dir, 'error.log'), '-c', this.conf], { encoding: 'utf8' });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  /** Start nginx and wait until every one of `listening` accepts connections. */
  async start(listening: { host: string; port: number }[]): Promise<void> {
    const proc = spawn(NGINX, ['-p', `${this.dir}/`, '-e', join(this.dir, 'error.log'), '-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => (this.stderr += chunk));
    const deadline = Date.now() + 10_000;
    for (const { host, port } of listening) {
      while (!(await canConnect(host, port))) {
        if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
          throw new Error(`nginx did not start: ${this.stderr}\n${this.log('error.log')}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** A log file in the temp dir ('' if nginx has not written it). */
  log(name: string): string {
    try {
      return readFileSync(join(this.dir, name), 'utf8');
    } catch {
      return '';
    }
  }

  /** End the nginx this started, by its PID (SIGTERM, then SIGKILL), and remove the temp dir. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      process.kill(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
      }, 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
