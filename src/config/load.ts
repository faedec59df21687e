import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { makeConfig } from './schema.js';
import type { Config, ConfigOverrides } from './types.js';

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

/**
 * Reads the schema defaults, then the YAML file, then VIGIL_* env, then overrides; rejects unknown keys and
 * bad values with one line per problem naming the key path.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.VIGIL_CONFIG;
  const config = makeConfig(env);
  const problems: string[] = [];
  try {
    if (file) {
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
      config.load(parsed);
    }
    // convict re-applies the environment on every load(); set() makes the caller's overrides win over it.
    if (options.overrides) for (const [path, value] of leaves(options.overrides)) config.set(path as never, value as never);
    config.validate({ allowed: 'strict', output: () => undefined });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    problems.push(...formatConvictError(err as Error));
    throw new ConfigError(problems);
  }
  return config.getProperties() as unknown as Config;
}

function* leaves(obj: object, prefix = ''): Generator<[string, unknown]> {
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) yield* leaves(value, path);
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
