import { ConfigError, loadConfig, type LoadOptions } from '../config/load.js';
import type { Config } from '../config/types.js';
import { checkTls } from './checks/certificate.js';
import { checkFdLimit, ownFdLimit } from './checks/fds.js';
import { advice, error, formatFinding, ok, type Finding } from './checks/finding.js';
import { kernelFindings, readKernelValues } from './checks/kernel.js';
import { checkPbkdf2 } from './checks/pbkdf2.js';
import { checkPorts } from './checks/ports.js';
import { identifyServer, socketStates, type Running } from './checks/running.js';
import { checkS2sTls } from './checks/s2s-certificate.js';
import { checkSrv } from './checks/srv.js';
import type { Io } from './sessions.js';

/**
 * `vigil doctor`: whether this host can run Vigil as configured (federation included: the certificate as
 * other servers see it, and how DNS leads them here), and how a running one is doing. One line
 * per finding, `ok`, `advice` or `error`, each naming the problem and its fix. Exit 1 when any is an error
 * (the server cannot work so); advice (kernel TCP settings and the like) exits 0.
 */
export async function doctorCommand(loadOptions: LoadOptions, io: Io): Promise<number> {
  const findings = await diagnose(loadOptions);
  for (const f of findings) io.out(formatFinding(f));
  return findings.some((f) => f.level === 'error') ? 1 : 0;
}

export async function diagnose(loadOptions: LoadOptions): Promise<Finding[]> {
  const file = loadOptions.file ?? (loadOptions.env ?? process.env).VIGIL_CONFIG;
  const name = file ?? '(built-in defaults)';
  let config: Config;
  try {
    config = loadConfig(loadOptions);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Everything else depends on the configuration: stop here.
    return err.problems.map((p) => error(`config ${name}: ${p}: fix it (\`vigil config check\` lists every problem)`));
  }
  const findings: Finding[] = [ok(`config ${name}: loads (domain ${config.domain})`), ...configAdvice(config)];
  findings.push(...checkTls(config));
  findings.push(...checkS2sTls(config));
  const running = await identifyServer(config);
  findings.push(...(await checkPorts(config, running)));
  findings.push(...(await checkSrv(config)));
  findings.push(fdFinding(config, running));
  findings.push(...kernelFindings(readKernelValues(), config));
  findings.push(checkPbkdf2());
  if (running.kind === 'vigil') {
    if (running.note) findings.push(advice(`running server: ${running.note}`));
    findings.push(...socketStates(running.status?.listeners.c2s || config.listeners.c2s.port));
  } else {
    findings.push(ok('running server: none answers on listeners.http, so no socket states to check'));
  }
  return findings;
}

/** The running server's own limit when it tells us; otherwise this shell's, which a server started from it inherits. */
function fdFinding(config: Config, running: Running): Finding {
  const status = running.kind === 'vigil' ? running.status : undefined;
  if (status) return checkFdLimit(status.maxOpenFiles, config.limits.maxSessions, `the running server (pid ${status.pid})`);
  return checkFdLimit(ownFdLimit(), config.limits.maxSessions, 'this shell (and a server started from it)');
}

function configAdvice(config: Config): Finding[] {
  const out: Finding[] = [];
  if (config.c2s.allowPlainWithoutTls) out.push(advice('config: c2s.allowPlainWithoutTls is on: clients may log in without STARTTLS, passwords in the clear: turn it off outside tests'));
  const host = config.listeners.http.host;
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  if (!loopback) {
    const admin = config.admin.token ? 'the admin endpoints need admin.token' : 'the admin endpoints stay loopback-only';
    out.push(advice(`config: listeners.http.host ${host} is reachable from other hosts: /metrics is open to them (${admin}): bind 127.0.0.1 or firewall the port`));
  }
  return out;
}
