import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

/**
 * The real `vigil` command as a child process, for tests that signal it, restart it and run its other
 * commands against it. It runs the compiled CLI in dist/ (test/global-setup.cjs builds it once per run).
 */

export const root = path.resolve(__dirname, '../..');
export const CLI = path.join(root, 'dist/src/cli/main.js');

export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (jest's globalSetup test/global-setup.cjs does it)`);
}

/*
 * Ports for servers that must be told one another's before either starts. Port 0 would give one from the
 * kernel's ephemeral range, which it may hand to any test's outgoing connection before the server binds it
 * (EADDRINUSE, seen in CI). Below that range the kernel never picks one; a random start spreads jest's
 * workers apart, and each candidate is checked free.
 */
const LOW_PORTS = { from: 20000, to: 32000 };
let nextLowPort = LOW_PORTS.from + Math.floor(Math.random() * (LOW_PORTS.to - LOW_PORTS.from));

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1' }, () => server.close(() => resolve(true)));
  });
}

/** A port nobody listens on right now, outside the kernel's ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = nextLowPort;
    nextLowPort = port + 1 >= LOW_PORTS.to ? LOW_PORTS.from : port + 1;
    if (await bindable(port)) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

export function writeConfig(file: string, config: object): void {
  writeFileSync(file, stringify(config));
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
  lines: string[];
}

/**
 * Run one `vigil` command to completion without blocking this process (test clients keep reading and
 * answering pings meanwhile). `shell` wraps it as `sh -c '<shell>; exec node main.js ...'`, e.g. a ulimit.
 * `cwd` is the project root unless told: tests of what the working directory means pass a temp dir.
 */
export function runCli(args: string[], options: { shell?: string; env?: NodeJS.ProcessEnv; timeout?: number; cwd?: string } = {}): Promise<CliResult> {
  const env = options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const cwd = options.cwd ?? root;
  const child = options.shell
    ? spawn('sh', ['-c', `${options.shell}; exec "$0" "$@"`, process.execPath, CLI, ...args], { env, cwd })
    : spawn(process.execPath, [CLI, ...args], { env, cwd });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vigil ${args.join(' ')} did not finish within ${options.timeout ?? 15000} ms; out: ${out} err: ${err}`));
    }, options.timeout ?? 15000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, lines: out.split('\n').filter((l) => l.length > 0) });
    });
  });
}

export interface LogLine {
  level: number;
  event?: string;
  [key: string]: unknown;
}

/** `vigil start --config FILE`: its JSON log lines, its exit, and signals to it. */
export class Daemon {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  /** `prefix` runs it through another command that execs it, e.g. `ip netns exec NAME`: the PID stays the server's. */
  constructor(readonly configFile: string, prefix: readonly string[] = []) {
    const command = [...prefix, process.execPath, CLI, 'start', '--config', configFile];
    this.child = spawn(command[0], command.slice(1), { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ level: 0, event: 'unparsed', line });
      }
      this.wake();
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': by then stdout is drained, so every log line is in this.logs.
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.wake();
        resolve(this.exit);
      });
    });
  }

  static async start(configFile: string, prefix: readonly string[] = []): Promise<Daemon> {
    const daemon = new Daemon(configFile, prefix);
    await daemon.waitForLog((l) => l.event === 'server.started', 15000);
    return daemon;
  }

  get pid(): number {
    return this.child.pid!;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  events(event: string): LogLine[] {
    return this.logs.filter((l) => l.event === event);
  }

  /** The first log line (already written or yet to come) that matches. */
  async waitForLog(match: (line: LogLine) => boolean, timeout = 5000): Promise<LogLine> {
    const found = () => this.logs.find(match);
    if (found()) return found()!;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no such log line within ${timeout} ms; exit ${JSON.stringify(this.exit)}; logs:\n${this.logs.map((l) => JSON.stringify(l)).join('\n').slice(-4000)}\nstderr:\n${this.stderr.join('\n')}`));
      }, timeout);
      const check = () => {
        if (found() || this.exit) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          if (found()) resolve();
          else reject(new Error(`vigil exited (${JSON.stringify(this.exit)}) before the log line; stderr:\n${this.stderr.join('\n')}`));
        }
      };
      this.waiters.push(check);
    });
    return found()!;
  }

  /** SIGTERM and wait for the exit; a test that fails half-way still leaves no server behind. */
  async stop(timeout = 15000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exit) this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeout);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
