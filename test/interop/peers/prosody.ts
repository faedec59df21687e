import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asRoot, assertPortsFree, C2S_PORT, canConnect, chownTree, endPid, makeCert, readLog, S2S_PORT, sleep, systemUser, tail, track, type PeerOptions, type PeerServer } from './peer';

/**
 * Debian's Prosody 0.12 as a federation peer: its own config, certificate, data and log in a temp dir,
 * c2s on address:5222 (PLAIN without TLS, for test clients), s2s on address:5269 with STARTTLS required,
 * server dialback, and peers' certificates not required to be valid (they are self-signed).
 * Other domains are resolved from /etc/hosts only (lua-unbound with hoststxt, every DNS zone answered
 * locally as NXDOMAIN so nothing leaves the machine): call addHosts() for every peer *before* starting,
 * as Prosody reads /etc/hosts once, when it starts.
 */

export const PROSODY = '/usr/bin/prosody';
export const PROSODYCTL = '/usr/bin/prosodyctl';

const lua = (s: string) => JSON.stringify(s); // a Lua string literal (JSON escapes are valid Lua ones for our inputs)

export function prosodyConfig(dir: string, opts: PeerOptions, cert: { key: string; crt: string }): string {
  return `-- written by test/interop/peers/prosody.ts
pidfile = ${lua(join(dir, 'prosody.pid'))}
data_path = ${lua(join(dir, 'data'))}
daemonize = false
log = {
  { levels = { min = "debug" }, to = "file", filename = ${lua(join(dir, 'prosody.log'))} };
}
interfaces = { ${lua(opts.address)} }
local_interfaces = { ${lua(opts.address)} }
c2s_ports = { ${C2S_PORT} }
c2s_interfaces = { ${lua(opts.address)} }
s2s_ports = { ${S2S_PORT} }
s2s_interfaces = { ${lua(opts.address)} }
-- nothing else listens (no http, no components, no admin socket)
http_ports = { }
https_ports = { }
component_ports = { }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }

modules_enabled = {
  "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "offline"; "posix"; "presence"; "message"; "iq";
}
modules_disabled = { "s2s_bidi" }

authentication = "internal_plain"
storage = "internal"
allow_registration = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- s2s: STARTTLS offered and required; certificates that do not validate are fine (dialback then)
s2s_require_encryption = true
s2s_secure_auth = false
s2s_timeout = 30

-- name resolution: /etc/hosts only. libunbound with its hosts file; '.' as a static local zone makes
-- every other query (the _xmpp-server._tcp SRV lookups) an immediate NXDOMAIN, so Prosody falls back
-- to domain:5269 and resolves the domain from /etc/hosts; no query ever goes to a name server.
unbound = {
  hoststxt = true;
  resolvconf = ${lua(join(dir, 'resolv.conf'))};
  options = { ["local-zone"] = ". static" };
}

ssl = { certificate = ${lua(cert.crt)}; key = ${lua(cert.key)}; }
certificates = ${lua(dir)}

VirtualHost ${lua(opts.domain)}
  ssl = { certificate = ${lua(cert.crt)}; key = ${lua(cert.key)}; }
`;
}

export async function startProsody(opts: PeerOptions): Promise<PeerServer> {
  await assertPortsFree(opts.address, [C2S_PORT, S2S_PORT], `prosody ${opts.domain}`);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-prosody-'));
  const logFile = join(dir, 'prosody.log');
  const cfg = join(dir, 'prosody.cfg.lua');
  let out = '';
  const fail = (what: string) => new Error(`prosody ${opts.domain} ${what}\n--- ${logFile} (tail)\n${tail(logFile)}\n--- stdout/stderr\n${out.slice(-3000)}`);
  try {
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    const cert = makeCert(dir, opts.domain);
    writeFileSync(cfg, prosodyConfig(dir, opts, cert));
    const user = asRoot ? systemUser('prosody') : undefined;
    if (user) chownTree(dir, user.uid, user.gid);
    const wrap = (argv: string[]) => (user ? ['setpriv', ['--reuid=prosody', '--regid=prosody', '--init-groups', ...argv]] : [argv[0], argv.slice(1)]) as [string, string[]];

    for (const u of opts.users) {
      const [cmd, args] = wrap([PROSODYCTL, '--config', cfg, 'register', u.user, opts.domain, u.password]);
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) {
        out += `${r.stdout}${r.stderr}`;
        throw fail(`prosodyctl register ${u.user} failed`);
      }
    }

    const [cmd, args] = wrap([PROSODY, '--config', cfg]);
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }); // setpriv execs: proc.pid is prosody's
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
    const pid = proc.pid!;
    track(pid);
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(opts.address, C2S_PORT)) || !(await canConnect(opts.address, S2S_PORT))) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw fail(`exited (code ${proc.exitCode}, signal ${proc.signalCode}) while starting`);
      if (Date.now() > deadline) {
        await endPid(pid, proc);
        throw fail('did not listen within 10 s');
      }
      await sleep(30);
    }
    return {
      domain: opts.domain,
      address: opts.address,
      c2sPort: C2S_PORT,
      pid,
      dir,
      log: () => readLog(logFile),
      stop: async () => {
        await endPid(pid, proc);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
