import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describeSchema } from '../../src/config/describe';
import { ConfigError, loadConfig } from '../../src/config/load';
import { renderExampleYaml, renderMarkdown } from '../../src/config/render';

const root = path.resolve(__dirname, '../..');
const DOCS = 'docs/configuration.md';
const EXAMPLE = 'config/vigil.example.yaml';
const STALE = 'is out of date with src/config/schema.ts: run `npm run docs` and commit the result';

const options = describeSchema();
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

/** Fails with `message` instead of a diff of hundreds of lines. */
function expectSame(actual: string, expected: string, message: string): void {
  if (actual !== expected) {
    const a = actual.split('\n');
    const e = expected.split('\n');
    let line = 0;
    while (line < a.length && a[line] === e[line]) line++;
    throw new Error(`${message}\nfirst difference at line ${line + 1}:\n  on disk:  ${a[line] ?? '(end of file)'}\n  expected: ${e[line] ?? '(end of file)'}`);
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-docs-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function loadYaml(text: string) {
  const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return () => loadConfig({ file, env: {} });
}

function configError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig accepted the file');
}

describe('describeSchema', () => {
  it('lists every leaf with its written default, format and env var', () => {
    const probeAfter = options.find((o) => o.path === 'watchdog.c2s.probeAfter');
    expect(probeAfter).toMatchObject({ default: '120s', format: 'duration', env: 'VIGIL_WATCHDOG_C2S_PROBE_AFTER' });
    expect(probeAfter?.doc).toMatch(/probe/);
    expect(options.find((o) => o.path === 'watchdog.c2s.probe')?.format).toBe('one of: xmpp-ping, whitespace, none');
    expect(options.find((o) => o.path === 'c2s.maxStanzaSize')).toMatchObject({ default: '256KiB', format: 'size' });
    expect(options.find((o) => o.path === 'c2s.allowPlainWithoutTls')).toMatchObject({ default: false, format: 'boolean' });
    expect(options.find((o) => o.path === 'listeners.c2s.port')).toMatchObject({ default: 5222, format: 'port' });
    expect(options.find((o) => o.path === 'c2s.maxAuthAttempts')?.format).toBe('integer >= 0');
    expect(options.find((o) => o.path === 'domain')?.format).toBe('string');
    expect(options.find((o) => o.path === 'storage.path')?.format).toBe('path');
    expect(options.find((o) => o.path === 'watchdog.interval')?.format).toBe('duration, at least 100ms');
  });

  it('covers exactly the keys loadConfig returns', () => {
    const leaves: string[] = [];
    const walk = (node: object, prefix: string) => {
      for (const [k, v] of Object.entries(node)) {
        if (typeof v === 'object' && v !== null) walk(v, `${prefix}${k}.`);
        else leaves.push(`${prefix}${k}`);
      }
    };
    walk(loadConfig({ env: {} }), '');
    expect(options.map((o) => o.path).sort()).toEqual(leaves.sort());
    for (const o of options) {
      expect(o.doc.length).toBeGreaterThan(0);
      expect(o.env).toMatch(/^VIGIL_[A-Z0-9_]+$/);
    }
    expect(new Set(options.map((o) => o.env)).size).toBe(options.length);
  });
});

describe('generated files', () => {
  it(`${DOCS} matches the schema`, () => {
    expectSame(read(DOCS), renderMarkdown(options), `${DOCS} ${STALE}`);
  });

  it(`${EXAMPLE} matches the schema`, () => {
    expectSame(read(EXAMPLE), renderExampleYaml(options), `${EXAMPLE} ${STALE}`);
  });

  it('name every option and its env var in both files', () => {
    const md = read(DOCS);
    const yaml = read(EXAMPLE);
    const example = parseYaml(yaml) as Record<string, unknown>;
    for (const o of options) {
      expect(md).toContain(`\`${o.path}\``);
      expect(md).toContain(o.env);
      expect(yaml).toContain(o.env);
      const value = o.path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], example);
      expect({ path: o.path, value }).toEqual({ path: o.path, value: o.default });
    }
  });

  it('the markdown intro explains durations, sizes, the file, env vars and SIGHUP', () => {
    const md = read(DOCS);
    for (const needle of ['"90s"', '"5m"', '"0"', '"256KiB"', 'YAML', '--config', 'VIGIL_CONFIG', 'environment variable', 'SIGHUP']) {
      expect(md).toContain(needle);
    }
  });

  it('the example comments stay within 100 columns', () => {
    const long = read(EXAMPLE)
      .split('\n')
      .filter((line) => line.length > 100);
    expect(long).toEqual([]);
  });

  it('the example file loads to exactly the defaults, its relative storage.path beside the file', () => {
    const defaults = loadConfig({ env: {} });
    const fromExample = loadConfig({ file: path.join(root, EXAMPLE), env: {} });
    expect(fromExample).toEqual({ ...defaults, storage: { ...defaults.storage, path: path.join(root, 'config', defaults.storage.path) } });
  });
});

describe('loadConfig rejects bad files naming the key path', () => {
  it('an unknown key', () => {
    const err = configError(loadYaml('watchdog:\n  c2s:\n    probeAftr: 90s\n'));
    expect(err.message).toContain('watchdog.c2s.probeAftr');
  });

  it('an unknown top-level group', () => {
    const err = configError(loadYaml('watchdogs:\n  interval: 1s\n'));
    expect(err.message).toContain('watchdogs');
  });

  it('a bad duration', () => {
    const err = configError(loadYaml('watchdog:\n  c2s:\n    probeAfter: soon\n'));
    expect(err.message).toContain('watchdog.c2s.probeAfter');
  });

  it('a bad size', () => {
    const err = configError(loadYaml('c2s:\n  maxStanzaSize: 256 parsecs\n'));
    expect(err.message).toContain('c2s.maxStanzaSize');
  });

  it('a value outside an enumeration', () => {
    const err = configError(loadYaml('watchdog:\n  c2s:\n    probe: carrier-pigeon\n'));
    expect(err.message).toContain('watchdog.c2s.probe');
  });

  it('a policy for a kind of connection there is not', () => {
    expect(configError(loadYaml('watchdog:\n  component:\n    probeAfter: 90s\n')).problems).toEqual(['watchdog.component.probeAfter: unknown option']);
  });

  it('a probe a kind cannot send: whitespace on a WebSocket (RFC 7395), a ping frame on a TCP stream, a ping on a peer\'s one-way stream to us', () => {
    expect(configError(loadYaml('watchdog:\n  websocket:\n    probe: whitespace\n')).problems).toEqual([expect.stringMatching(/^watchdog\.websocket\.probe: /)]);
    expect(configError(loadYaml('watchdog:\n  c2s:\n    probe: websocket-ping\n')).problems).toEqual([expect.stringMatching(/^watchdog\.c2s\.probe: /)]);
    expect(configError(loadYaml('watchdog:\n  s2sIn:\n    probe: xmpp-ping\n')).problems).toEqual([expect.stringMatching(/^watchdog\.s2sIn\.probe: /)]);
  });
});

describe('the schema documents only what is built', () => {
  it('has a watchdog policy for each kind of stream there is: c2s, websocket, s2sIn, s2sOut', () => {
    expect(options.filter((o) => o.path.startsWith('watchdog.')).map((o) => o.path.split('.')[1])).toEqual(['interval', ...['c2s', 'websocket', 's2sIn', 's2sOut'].flatMap((k) => Array(10).fill(k))]);
  });

  it('both files document federation: its listener, its group, and what happens to what a dead peer was sent', () => {
    const docs = read(DOCS).replace(/\s+/g, ' ');
    for (const key of ['`listeners.s2s.port`', '`s2s.queue.timeout`', '`watchdog.s2sOut.probeAfter`', 'sent again, once, on the next connection']) expect(docs).toContain(key);
    const example = read(EXAMPLE);
    expect(example).toMatch(/^s2s:$/m);
    expect(example).toMatch(/^ {2}s2sOut:$/m);
  });
});
