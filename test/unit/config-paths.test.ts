import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';

/** Where a relative storage.path, tls.cert or tls.key points: beside the config file that says it, else the working directory. */

let dir: string;
let etc: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-paths-'));
  etc = path.join(dir, 'etc', 'vigil');
  mkdirSync(etc, { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(yaml: string): string {
  const file = path.join(etc, 'vigil.yaml');
  writeFileSync(file, yaml);
  return file;
}

it('relative paths in a config file are resolved against its directory, not the working directory', () => {
  const file = configFile('storage:\n  path: data/vigil.sqlite\ntls:\n  cert: ../tls/cert.pem\n  key: key.pem\n');
  const config = loadConfig({ file, env: {} });
  expect([config.storage.path, config.tls.cert, config.tls.key]).toEqual([path.join(etc, 'data/vigil.sqlite'), path.join(dir, 'etc/tls/cert.pem'), path.join(etc, 'key.pem')]);
});

it('a config file named by a relative path still resolves beside the file', () => {
  const file = configFile('storage:\n  path: vigil.sqlite\n');
  const config = loadConfig({ file: path.relative(process.cwd(), file), env: {} });
  expect(config.storage.path).toBe(path.join(etc, 'vigil.sqlite'));
});

it('absolute paths, empty ones and SQLite ":memory:" stay as written', () => {
  const file = configFile('storage:\n  path: ":memory:"\ntls:\n  cert: /srv/cert.pem\n  key: ""\n');
  const config = loadConfig({ file, env: {} });
  expect([config.storage.path, config.tls.cert, config.tls.key]).toEqual([':memory:', '/srv/cert.pem', '']);
});

it('paths from environment variables and overrides stay relative to the working directory, even with a file', () => {
  const file = configFile('storage:\n  path: from-file.sqlite\n');
  expect(loadConfig({ file, env: { VIGIL_STORAGE_PATH: 'var/from-env.sqlite', VIGIL_TLS_CERT: 'c.pem', VIGIL_TLS_KEY: 'k.pem' } })).toMatchObject({
    storage: { path: 'var/from-env.sqlite' },
    tls: { cert: 'c.pem', key: 'k.pem' },
  });
  expect(loadConfig({ file, env: {}, overrides: { storage: { path: 'over.sqlite' } } }).storage.path).toBe('over.sqlite');
});

it('without a config file the default data/vigil.sqlite is relative to the working directory', () => {
  expect(loadConfig({ env: {} }).storage.path).toBe('data/vigil.sqlite');
});

it('a file that does not set the path leaves the default relative to the working directory', () => {
  expect(loadConfig({ file: configFile('domain: example.org\n'), env: {} }).storage.path).toBe('data/vigil.sqlite');
});
