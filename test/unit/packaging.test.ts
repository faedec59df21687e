import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';

const root = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Instruction {
  cmd: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions with comments dropped and `\` continuations joined; stage counts FROMs from 0. */
function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && !pending)) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending) logical.push(pending);
  let stage = -1;
  return logical.map((line) => {
    const [, cmd, args] = line.match(/^(\S+)\s*(.*)$/) ?? ['', line, ''];
    if (cmd.toUpperCase() === 'FROM') stage++;
    return { cmd: cmd.toUpperCase(), args: args.trim(), stage };
  });
}

/** ENV both forms: `ENV A=1 B=2` and the legacy `ENV A 1`. */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of instructions.filter((i) => i.cmd === 'ENV')) {
    if (/^\S+=/.test(args)) {
      for (const [, k, v] of args.matchAll(/(\S+?)=("[^"]*"|\S+)/g)) env[k] = v.replace(/^"|"$/g, '');
    } else {
      const [k, ...v] = args.split(/\s+/);
      env[k] = v.join(' ');
    }
  }
  return env;
}

function execForm(args: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw new Error(`not exec form (a JSON array): ${args}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not exec form (a JSON array of strings): ${args}`);
  return parsed;
}

describe('Dockerfile', () => {
  const all = parseDockerfile(read('Dockerfile'));
  const last = Math.max(...all.map((i) => i.stage));
  const final = all.filter((i) => i.stage === last);
  const build = all.filter((i) => i.stage === 0);
  const one = (cmd: string, list = final) => {
    const found = list.filter((i) => i.cmd === cmd);
    expect(found.map((i) => `${i.cmd} ${i.args}`)).toHaveLength(1);
    return found[0].args;
  };

  it('is multi-stage on node:20-bookworm-slim', () => {
    const froms = all.filter((i) => i.cmd === 'FROM').map((i) => i.args);
    expect(froms).toHaveLength(2);
    for (const from of froms) expect(from).toMatch(/^node:20-bookworm-slim\b/);
    expect(froms[0]).toMatch(/\sAS\s+build$/i);
  });

  it('builds with the native toolchain, npm ci, the build, and a prune of dev dependencies', () => {
    const runs = build.filter((i) => i.cmd === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/apt-get install[^\n]*\bpython3\b/);
    expect(runs).toMatch(/apt-get install[^\n]*\bmake\b/);
    expect(runs).toMatch(/apt-get install[^\n]*\bg\+\+/);
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    expect(runs).toMatch(/\bnpm prune --omit=dev\b/);
  });

  it('installs before src/ is copied, so skips the root lifecycle scripts (prepare builds) and builds better-sqlite3 itself', () => {
    const runs = build.filter((i) => i.cmd === 'RUN').map((i) => i.args);
    const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
    const srcCopied = build.findIndex((i) => i.cmd === 'COPY' && /^src\b/.test(i.args));
    const ciAt = build.findIndex((i) => i.cmd === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(ciAt).toBeLessThan(srcCopied);
    expect(runs[ci]).toMatch(/\bnpm ci --ignore-scripts\b/);
    expect(runs.slice(ci).join('\n')).toMatch(/\bnpm rebuild better-sqlite3\b/);
  });

  it('never runs npm install (only npm ci, which honours the lockfile)', () => {
    for (const { args } of all.filter((i) => i.cmd === 'RUN')) {
      expect(args).not.toMatch(/\bnpm\s+(install|i|add)\b/);
    }
  });

  it('builds our PBKDF2 addon with the toolchain, before the sources that load it', () => {
    const buildsNative = build.findIndex((i) => i.cmd === 'RUN' && /\bnpm run build:native\b/.test(i.args));
    const nativeCopied = build.findIndex((i) => i.cmd === 'COPY' && /^native\b/.test(i.args));
    expect(nativeCopied).toBeGreaterThan(-1);
    expect(buildsNative).toBeGreaterThan(nativeCopied);
  });

  it('runtime stage copies only what runs: node_modules, dist, the built addon, package.json, config', () => {
    const copies = final.filter((i) => i.cmd === 'COPY').map((i) => i.args);
    // package.json's "imports" maps #native-pbkdf2 to this path.
    expect(copies).toContain('--from=build /opt/vigil/native/pbkdf2/build/Release/vigil_pbkdf2.node ./native/pbkdf2/build/Release/');
    expect(JSON.parse(read('package.json')).imports['#native-pbkdf2']).toBe('./native/pbkdf2/build/Release/vigil_pbkdf2.node');
    expect(copies).toContainEqual(expect.stringMatching(/^--from=build\s+\S*node_modules\s/));
    expect(copies).toContainEqual(expect.stringMatching(/^--from=build\s+\S*dist\s/));
    expect(copies).toContainEqual(expect.stringMatching(/^package\.json\s/));
    expect(copies).toContainEqual(expect.stringMatching(/^config\/?\s/));
    expect(copies).toContain('config/vigil.example.yaml /etc/vigil/vigil.yaml');
    expect(final.filter((i) => i.cmd === 'RUN').map((i) => i.args).join('\n')).not.toMatch(/\b(g\+\+|make|python3)\b/);
  });

  it('runs as a user that is not root in the final stage', () => {
    const users = final.filter((i) => i.cmd === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].split(':')[0];
    expect(user).toBe('vigil');
    expect(['root', '0']).not.toContain(user);
    expect(final.filter((i) => i.cmd === 'RUN').map((i) => i.args).join('\n')).toMatch(/useradd\b.*\bvigil\b/);
  });

  it('configures itself through /etc/vigil/vigil.yaml and keeps data in a /var/lib/vigil volume', () => {
    const env = envOf(final);
    expect(env).toMatchObject({
      VIGIL_CONFIG: '/etc/vigil/vigil.yaml',
      VIGIL_STORAGE_PATH: '/var/lib/vigil/vigil.sqlite',
      VIGIL_LISTENERS_HTTP_HOST: '0.0.0.0',
    });
    expect(one('VOLUME')).toMatch(/\/var\/lib\/vigil\b/);
  });

  it('the default config plus the image ENV loads, with data in the volume and HTTP on every address', () => {
    const config = loadConfig({ file: path.join(root, 'config/vigil.example.yaml'), env: envOf(final) });
    expect(config.storage.path).toBe('/var/lib/vigil/vigil.sqlite');
    expect(config.listeners.http.host).toBe('0.0.0.0');
  });

  it('exposes 5222, 5269 and 5280', () => {
    const ports = final.filter((i) => i.cmd === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    expect(ports).toEqual(expect.arrayContaining(['5222', '5269', '5280']));
  });

  it('stops with SIGTERM and starts in exec form', () => {
    expect(one('STOPSIGNAL')).toBe('SIGTERM');
    expect(execForm(one('ENTRYPOINT'))).toEqual(['node', 'dist/src/cli/main.js']);
    expect(execForm(one('CMD'))).toEqual(['start']);
  });

  describe('HEALTHCHECK', () => {
    const command = () => {
      const args = one('HEALTHCHECK');
      const m = args.match(/\bCMD\s+(\[.*\])$/);
      if (!m) throw new Error(`HEALTHCHECK is not exec form: ${args}`);
      return execForm(m[1]);
    };
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer((req, res) => {
        res.statusCode = req.url === '/healthz' ? 200 : 404;
        res.end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });
    const run = async (env: NodeJS.ProcessEnv) => {
      const [bin, ...args] = command();
      return new Promise<number | null>((resolve, reject) => {
        const child = spawn(bin === 'node' ? process.execPath : bin, args, { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', (code) => resolve(code));
      });
    };

    it('uses node against /healthz on loopback (slim images have no curl)', () => {
      const [bin, ...rest] = command();
      expect(bin).toBe('node');
      expect(rest.join(' ')).toContain('http://127.0.0.1:');
      expect(rest.join(' ')).toContain('/healthz');
      expect(rest.join(' ')).not.toMatch(/\b(curl|wget)\b/);
    });

    it('exits 0 when /healthz answers 200 and 1 when nothing listens', async () => {
      expect(await run({ VIGIL_LISTENERS_HTTP_PORT: String(port) })).toBe(0);
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      expect(await run({ VIGIL_LISTENERS_HTTP_PORT: String(deadPort) })).toBe(1);
    });
  });
});

describe('.dockerignore', () => {
  it('keeps host builds, data, git and logs out of the build context', () => {
    const entries = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(entries).toEqual(expect.arrayContaining(['node_modules', 'dist', 'data', '.git', 'coverage', '*.log']));
  });
});

describe('systemd/vigil.service', () => {
  const UNIT = 'systemd/vigil.service';

  /** section -> key -> values in order (a key may repeat; an empty assignment is kept as ''). */
  function parseUnit(text: string): Record<string, Record<string, string[]>> {
    const sections: Record<string, Record<string, string[]>> = {};
    let current: Record<string, string[]> | undefined;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#') || line.startsWith(';')) continue;
      const header = line.match(/^\[(.+)\]$/);
      if (header) {
        current = sections[header[1]] ??= {};
        continue;
      }
      const kv = line.match(/^([A-Za-z]+)=(.*)$/);
      if (!kv || !current) throw new Error(`${UNIT}: cannot parse line: ${raw}`);
      (current[kv[1]] ??= []).push(kv[2].trim());
    }
    return sections;
  }

  const unit = parseUnit(read(UNIT));
  const service = unit.Service ?? {};
  const value = (key: string) => service[key]?.[service[key].length - 1];

  it('has the required [Service] settings', () => {
    const expected: Record<string, string> = {
      Type: 'exec',
      User: 'vigil',
      Group: 'vigil',
      ExecStart: '/usr/bin/node /opt/vigil/dist/src/cli/main.js start --config /etc/vigil/vigil.yaml',
      ExecReload: '/bin/kill -HUP $MAINPID',
      Restart: 'on-failure',
      RestartSec: '2s',
      KillSignal: 'SIGTERM',
      TimeoutStopSec: '20s',
      LimitNOFILE: '1048576',
      StateDirectory: 'vigil',
      ConfigurationDirectory: 'vigil',
      Environment: 'VIGIL_STORAGE_PATH=/var/lib/vigil/vigil.sqlite',
      WorkingDirectory: '/opt/vigil',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      MemoryDenyWriteExecute: 'no',
      SystemCallArchitectures: 'native',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
    };
    const actual = Object.fromEntries(Object.keys(expected).map((key) => [key, value(key)]));
    expect(actual).toEqual(expected);
  });

  it('outlasts Vigil\'s own graceful shutdown before systemd sends SIGKILL', () => {
    const seconds = (d: string) => Number(d.replace(/s$/, ''));
    expect(seconds(value('TimeoutStopSec'))).toBeGreaterThan(loadConfig({ env: {} }).shutdown.timeout / 1000);
  });

  it('is wanted by multi-user.target', () => {
    expect(unit.Install?.WantedBy).toEqual(['multi-user.target']);
  });

  it('passes systemd-analyze verify', () => {
    const result = spawnSync('systemd-analyze', ['verify', path.join(root, UNIT)], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const missing = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    if (missing) throw new Error('systemd-analyze is not on PATH: run `apt-get install -y systemd` (Debian package "systemd") to check the unit');
    if (result.error) throw result.error;
    const complaints = result.stderr.split('\n').filter((line) => line.includes('vigil.service'));
    expect({ status: result.status, complaints }).toEqual({ status: 0, complaints: [] });
  });
});
