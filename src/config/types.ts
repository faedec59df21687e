import { schema, type Format, type Option } from './schema.js';

/**
 * The configuration's types, derived from the schema so that an option added, removed or retyped there is
 * seen by every user of Config at compile time; there is no second description to forget.
 */

type Schema = typeof schema;

/** What loadConfig makes of each format: durations in ms, sizes in bytes, enumerations their literals. */
type ValueOf<F extends Format> = F extends 'duration' | 'bytes' | 'port-number' | 'nat'
  ? number
  : F extends BooleanConstructor
    ? boolean
    : F extends StringConstructor
      ? string
      : F extends readonly (infer L)[]
        ? L
        : never;

/**
 * What a caller may write for each format in overrides, as in a config file: durations and sizes as
 * strings ("90s", "1MiB"; 0 and a byte count as numbers), enumerations as any string. Overrides are checked
 * at run time like the file, and callers often pass strings they read elsewhere (a log level from the
 * environment, say), which a literal union would make them cast.
 */
type InputOf<F extends Format> = F extends 'duration'
  ? string | 0
  : F extends 'bytes'
    ? string | number
    : F extends readonly string[]
      ? string
      : ValueOf<F>;

type ConfigOf<T> = { -readonly [K in keyof T]: T[K] extends Option ? ValueOf<T[K]['format']> : ConfigOf<T[K]> };
type OverridesOf<T> = { -readonly [K in keyof T]?: T[K] extends Option ? InputOf<T[K]['format']> : OverridesOf<T[K]> };

/** The validated configuration as the rest of the server sees it: durations in ms, sizes in bytes. */
export type Config = ConfigOf<Schema>;

/** Deep partial in the file's own terms, for tests and callers that override a few options. */
export type ConfigOverrides = OverridesOf<Schema>;

/** The kinds of connection with a watchdog policy: every key of `watchdog` but its interval. */
export type ConnectionKind = Exclude<keyof Config['watchdog'], 'interval'>;

export type WatchdogPolicy = Config['watchdog'][ConnectionKind];

export type ProbeKind = WatchdogPolicy['probe'];

export const CONNECTION_KINDS: readonly ConnectionKind[] = Object.keys(schema.watchdog).filter(
  (key): key is ConnectionKind => key !== 'interval',
);
