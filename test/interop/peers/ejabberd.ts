import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asRoot, assertPortsFree, C2S_PORT, canConnect, chownTree, endPid, freePort, makeCert, pidAlive, readLog, S2S_PORT, sleep, systemUser, tail, track, type PeerOptions, type PeerServer } from './peer';

/**
 * Debian's ejabberd 23.01 as a federation peer: config, certificate, Mnesia spool, logs and pid file in a
 * temp dir, c2s on address:5222 (PLAIN without TLS), s2s on address:5269 with STARTTLS required, server
 * dialback (mod_s2s_dialback), and self-signed peer certificates accepted (`s2s_use_starttls: required`,
 * not `required_trusted`: an untrusted certificate only rules out SASL EXTERNAL, dialback is used instead).
 *
 * Erlang distribution without epmd (ERL_DIST_PORT: a fixed port on 127.0.0.1, a node name of its own), so
 * nothing outlives stop() and several instances can run at once. Names: the SRV lookup goes to
 * 127.0.0.1:53 (our own resolv.conf/inetrc: refused at once, no query leaves the machine), then the
 * A lookup falls back to /etc/hosts (inetrc `{lookup, [file, native]}`; both re-read the file).
 *
 * Must run as root (ejabberdctl then runs as the ejabberd user via setpriv) or as the ejabberd user.
 */

export const EJABBERDCTL = '/usr/sbin/ejabberdctl';

export function ejabberdYml(opts: PeerOptions, certfile: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `# written by test/interop/peers/ejabberd.ts
loglevel: debug
log_rotate_count: 0
hosts:
  - ${q(opts.domain)}
certfiles:
  - ${q(certfile)}
listen:
  - port: ${C2S_PORT}
    ip: ${q(opts.address)}
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    shaper: none
    access: c2s
  - port: ${S2S_PORT}
    ip: ${q(opts.address)}
    module: ejabberd_s2s_in
    shaper: none
    max_stanza_size: 524288

# s2s: STARTTLS required both ways; self-signed peer certificates are accepted (dialback authenticates)
s2s_use_starttls: required
s2s_access: s2s
s2s_dns_timeout: 2
s2s_dns_retries: 1
s2s_timeout: 30
s2s_max_retry_delay: 2
# outgoing s2s: IPv4, from our own address
outgoing_s2s_families: [ipv4]
outgoing_s2s_ipv4_address: ${q(opts.address)}

auth_method: internal
auth_password_format: plain
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  s2s:
    allow: all
  local:
    allow: local
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 5000

modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_s2s_dialback: {}
  mod_last: {}
  mod_time: {}
  mod_version: {}
`;
}

/** One `ejabberdctl <args>` against this instance's config, as the ejabberd user when we are root. */
function ctl(dir: string, home: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const argv = [EJABBERDCTL, '--config-dir', join(dir, 'conf'), '--logs', join(dir, 'logs'), '--spool', join(dir, 'spool'), ...args];
  const [cmd, cmdArgs] = asRoot ? ['setpriv', ['--reuid=ejabberd', '--regid=ejabberd', '--init-groups', 'env', `HOME=${home}`, ...argv]] : [argv[0], argv.slice(1)];
  return new Promise((resolve) => {
    const p = spawn(cmd, cmdArgs as string[], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    p.on('close', (code) => resolve({ code, out }));
    p.on('error', (e) => resolve({ code: -1, out: String(e) }));
  });
}

export async function startEjabberd(opts: PeerOptions): Promise<PeerServer> {
  await assertPortsFree(opts.address, [C2S_PORT, S2S_PORT], `ejabberd ${opts.domain}`);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-ejabberd-'));
  const conf = join(dir, 'conf');
  const logFile = join(dir, 'logs', 'ejabberd.log');
  const pidFile = join(dir, 'ejabberd.pid');
  let out = '';
  let proc: ChildProcess | undefined;
  const fail = (what: string) =>
    new Error(`ejabberd ${opts.domain} ${what}\n--- ${logFile} (tail)\n${tail(logFile)}\n--- error.log\n${tail(join(dir, 'logs', 'error.log'), 20)}\n--- stdout/stderr\n${out.slice(-3000)}`);
  const beamPid = () => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').trim());
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const kill = async () => {
    const pid = beamPid();
    if (pid !== undefined && pidAlive(pid)) await endPid(pid);
    if (proc && proc.pid !== undefined) await endPid(proc.pid, proc, 2000); // the ejabberdctl shell around it
  };
  try {
    for (const d of ['conf', 'logs', 'spool']) mkdirSync(join(dir, d));
    const cert = makeCert(conf, opts.domain);
    const certfile = join(conf, 'cert.pem');
    writeFileSync(certfile, readFileSync(cert.crt, 'utf8') + readFileSync(cert.key, 'utf8'));
    writeFileSync(join(conf, 'ejabberd.yml'), ejabberdYml(opts, certfile));
    const distPort = await freePort('127.0.0.1');
    const node = `vigil${process.pid}x${Math.floor(Math.random() * 1e6)}@localhost`;
    writeFileSync(
      join(conf, 'ejabberdctl.cfg'),
      [
        `ERLANG_NODE=${node}`,
        'INET_DIST_INTERFACE=127.0.0.1',
        'ERL_EPMD_ADDRESS=127.0.0.1',
        `ERL_DIST_PORT=${distPort}`,
        'EJABBERD_BYPASS_WARNINGS=true',
        `EJABBERD_PID_PATH=${pidFile}`,
        'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"',
        '',
      ].join('\n'),
    );
    // ejabberdctl exports ERL_INETRC=<config dir>/inetrc: the hosts file first, then getaddrinfo; DNS (SRV) to loopback only
    writeFileSync(join(conf, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    writeFileSync(
      join(conf, 'inetrc'),
      [
        '{lookup, [file, native]}.',
        '{hosts_file, "/etc/hosts"}.',
        `{resolv_conf, ${JSON.stringify(join(conf, 'resolv.conf'))}}.`,
        '{nameserver, {127,0,0,1}, 53}.',
        '{timeout, 500}.',
        '{retry, 1}.',
        '',
      ].join('\n'),
    );
    // HOME holds the Erlang cookie: one of its own, shared by the server and ejabberdctl
    const home = join(dir, 'home');
    mkdirSync(home);
    if (asRoot) {
      const u = systemUser('ejabberd');
      chownTree(dir, u.uid, u.gid);
    }

    const argv = [EJABBERDCTL, '--config-dir', conf, '--logs', join(dir, 'logs'), '--spool', join(dir, 'spool'), 'foreground'];
    const [cmd, args] = asRoot ? ['setpriv', ['--reuid=ejabberd', '--regid=ejabberd', '--init-groups', 'env', `HOME=${home}`, ...argv]] : [argv[0], argv.slice(1)];
    proc = spawn(cmd, args as string[], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } });
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
    const started = proc;
    if (proc.pid !== undefined) track(proc.pid);
    const deadline = Date.now() + 30_000;
    while (beamPid() === undefined || !(await canConnect(opts.address, C2S_PORT)) || !(await canConnect(opts.address, S2S_PORT))) {
      if (started.exitCode !== null || started.signalCode !== null) throw fail(`exited (code ${started.exitCode}, signal ${started.signalCode}) while starting`);
      if (Date.now() > deadline) throw fail('did not listen within 30 s');
      await sleep(50);
    }
    track(beamPid()!);
    // Just after the listeners accept, Mnesia may not have the passwd table yet ({aborted,{no_exists,passwd,...}}):
    // retry each registration for a while. All run at once (each ejabberdctl is a VM start, ~0.5 s).
    const register = async (u: { user: string; password: string }) => {
      for (let attempt = 1; ; attempt++) {
        const r = await ctl(dir, home, ['register', u.user, opts.domain, u.password]);
        if (r.code === 0) return;
        if (Date.now() > deadline || started.exitCode !== null) {
          out += r.out;
          throw fail(`ejabberdctl register ${u.user} failed (exit ${r.code}, attempt ${attempt})`);
        }
        await sleep(200);
      }
    };
    await Promise.all(opts.users.map(register));
    const pid = beamPid()!;
    return {
      domain: opts.domain,
      address: opts.address,
      c2sPort: C2S_PORT,
      pid,
      dir,
      log: () => readLog(logFile),
      stop: async () => {
        await kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
