import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A Python client driver (slixmpp, aioxmpp) in a process of its own: it prints one JSON event per line on
 * stdout, and reads a line on stdin when an action waits for the test. The interop tests share this.
 */

export const PYTHON = '/usr/bin/python3';

export interface PyEvent {
  event: string;
  [key: string]: unknown;
}

export interface PyRun {
  proc: ChildProcess;
  events: PyEvent[];
  /** The first event matching, seen or yet to come; rejects if the driver exits first. */
  waitFor(predicate: (e: PyEvent) => boolean, what: string): Promise<PyEvent>;
  /** One line on the driver's stdin: an action waiting for the test goes on. */
  go(): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; events: PyEvent[]; stderr: string }>;
}

const running = new Set<ChildProcess>();

/** Start `script` with `args`; `label` names it in failures, `debug` prints its whole run when it exits. */
export function runDriver(script: string, args: string[], label: string, debug = false): PyRun {
  const proc = spawn(PYTHON, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  const events: PyEvent[] = [];
  const waiters: { predicate: (e: PyEvent) => boolean; resolve: (e: PyEvent) => void }[] = [];
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdin!.on('error', () => undefined);
  proc.stdout!.on('data', (chunk: string) => {
    out += chunk;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl).trim();
      out = out.slice(nl + 1);
      if (!line) continue;
      let e: PyEvent;
      try {
        e = JSON.parse(line) as PyEvent;
      } catch {
        e = { event: 'unparsed', line };
      }
      events.push(e);
      for (const w of [...waiters]) {
        if (w.predicate(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  });
  proc.stderr!.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; events: PyEvent[]; stderr: string }>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      running.delete(proc);
      if (debug) process.stderr.write(`--- ${label} exited ${code} ${signal}\n${events.map((e) => JSON.stringify(e)).join('\n')}\n${err}\n`);
      resolve({ code, signal, events, stderr: err });
    });
  });
  return {
    proc,
    events,
    exited,
    go: () => proc.stdin!.write('go\n'),
    waitFor(predicate, what) {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve });
        void exited.then(({ code, signal }) => reject(new Error(`${what}: ${label} exited (code ${code}, signal ${signal}) first\n${JSON.stringify(events)}\n${err.slice(-2000)}`)), reject);
      });
    },
  };
}

/** Exit status 0, with a readable failure showing everything the driver printed. */
export async function succeeded(run: PyRun): Promise<PyEvent[]> {
  const { code, signal, events, stderr } = await run.exited;
  if (code !== 0) throw new Error(`driver exited with code ${code} signal ${signal}\nevents: ${JSON.stringify(events, null, 1)}\nstderr: ${stderr.slice(-3000)}`);
  return events;
}

export const eventsNamed = (events: PyEvent[], name: string): PyEvent[] => events.filter((e) => e.event === name);

/** SIGKILL one driver, by its PID, if it still runs. */
export function killDriver(proc: ChildProcess): void {
  if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** SIGKILL every driver still running (only ours: those this module started), and wait for them to go. */
export async function killDrivers(): Promise<void> {
  const left = [...running];
  for (const proc of left) killDriver(proc);
  await Promise.all(left.map((p) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('close', () => resolve())))));
}
