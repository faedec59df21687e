import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONVERTERS } from './formats.js';
import { makeConfig } from './schema.js';
import type { Config, ConfigOverrides } from './types.js';
import { leaves, replaceAt, valueAt } from './walk.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** YAML file; VIGIL_CONFIG names it when absent. */
  file?: string;
  /** Values applied over the file (tests, CLI flags). */
  overrides?: ConfigOverrides;
  env?: NodeJS.ProcessEnv;
}

const OPTIONS = leaves();

/**
 * Reads the schema defaults, then the YAML file, then VIGIL_* env, then overrides; rejects unknown keys and
 * bad values with one line per problem naming the key path.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.VIGIL_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  if (file) resolvePaths(fromFile, dirname(file));
  const problems = [...booleanProblems(fromFile, 'written'), ...envBooleanProblems(env), ...booleanProblems(options.overrides, 'given')];
  const config = makeConfig(env);
  try {
    config.load(fromFile);
    // convict re-applies the environment on every load(); set() makes the caller's overrides win over it.
    if (options.overrides) for (const [path, value] of overrideLeaves(options.overrides)) config.set(path, value);
    config.validate({ allowed: 'strict', output: () => undefined });
  } catch (err) {
    // convict coerces a bad boolean to true and says nothing, or repeats what booleanProblems said: one line per key.
    const named = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))));
    problems.push(...formatConvictError(err as Error).filter((line) => !named.has(line.slice(0, line.indexOf(':')))));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return convert(config.getProperties());
}

function readConfigFile(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file (${(err as Error).message})`]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError([`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError([`${file}: the top level must be a mapping of options`]);
  return parsed;
}

/**
 * A path in a config file means what its author saw beside the file, wherever the server is started from
 * (systemd's working directory is /). Environment variables and overrides are typed in a shell or a
 * program, so theirs stay relative to the working directory, as any command's arguments are.
 */
function resolvePaths(fromFile: object, base: string): void {
  for (const { keys, option } of OPTIONS) {
    if (!option.isPath) continue;
    const value = valueAt(fromFile, keys);
    // Empty means "not set" (tls.cert); ':memory:' is SQLite's name for no file at all.
    if (typeof value !== 'string' || value === '' || value === ':memory:' || isAbsolute(value)) continue;
    replaceAt(fromFile, keys, resolve(base, value));
  }
}

/**
 * Only true and false are booleans: convict would take any string but "false" as true, so `enabled: no`
 * (a string in YAML 1.2) or `allowPlainWithoutTls: "off"` would turn an option on.
 */
function booleanProblems(source: object | undefined, how: string): string[] {
  const out: string[] = [];
  for (const { keys, path, option } of OPTIONS) {
    if (option.format !== Boolean) continue;
    const value = valueAt(source, keys);
    if (value !== undefined && typeof value !== 'boolean') out.push(`${path}: must be true or false (unquoted): value ${how} was ${JSON.stringify(value)}`);
  }
  return out;
}

/** An environment variable is always a string; only "true" and "false" are taken, as the docs say. */
function envBooleanProblems(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const { path, option } of OPTIONS) {
    if (option.format !== Boolean) continue;
    const value = env[option.env];
    if (value !== undefined && value !== 'true' && value !== 'false') out.push(`${path}: ${option.env} must be "true" or "false": value was ${JSON.stringify(value)}`);
  }
  return out;
}

/** Validated properties to Config: durations to ms and sizes to bytes, everything else as it is. */
function convert(properties: unknown): Config {
  for (const { keys, option } of OPTIONS) {
    const toNumber = typeof option.format === 'string' ? CONVERTERS[option.format] : undefined;
    if (toNumber) replaceAt(properties, keys, toNumber(valueAt(properties, keys)));
  }
  return properties as Config;
}

function* overrideLeaves(obj: object, prefix = ''): Generator<[string, unknown]> {
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) yield* overrideLeaves(value as object, path);
    else yield [path, value];
  }
}

function formatConvictError(err: Error): string[] {
  return err.message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => line.replace(/^configuration param '([^']+)' not declared in the schema$/, '$1: unknown option'));
}
