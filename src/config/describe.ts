import { schema, type Option, type OptionTree } from './schema.js';
import { leaves } from './walk.js';

/** One leaf of the config schema, as the docs and the example file show it. */
export interface OptionInfo {
  /** Dotted key path, e.g. 'watchdog.c2s.probeAfter'. */
  path: string;
  doc: string;
  /** The default as written in the schema ('120s', '256KiB', 5222, false), not the parsed value. */
  default: string | number | boolean;
  /** What values are accepted, for people: 'duration', 'size', 'one of: a, b', ... */
  format: string;
  env: string;
  sensitive: boolean;
}

const NAMED_FORMATS: Record<string, string> = {
  duration: 'duration',
  bytes: 'size',
  'port-number': 'port',
  port: 'port',
  nat: 'integer >= 0',
  int: 'integer',
  url: 'URL',
};

export function describeFormat(format: unknown): string {
  if (Array.isArray(format)) return `one of: ${format.join(', ')}`;
  if (format === String) return 'string';
  if (format === Boolean) return 'boolean';
  if (format === Number) return 'number';
  if (typeof format === 'string' && NAMED_FORMATS[format]) return NAMED_FORMATS[format];
  throw new Error(`describeFormat: no description for format ${String(format)}; add one to NAMED_FORMATS`);
}

/** The format, and what the schema adds to it (a path, a least value), as the Format column shows it. */
function describeOption(option: Option): string {
  if (option.isPath) return 'path';
  const format = describeFormat(option.format);
  return option.min === undefined ? format : `${format}, at least ${option.min}`;
}

/** Every option of `tree` (the Vigil schema unless told otherwise) in declaration order. */
export function describeSchema(tree: OptionTree = schema): OptionInfo[] {
  return leaves(tree).map(({ path, option }) => ({
    path,
    doc: option.doc,
    default: option.default,
    format: describeOption(option),
    env: option.env,
    sensitive: option.sensitive === true,
  }));
}
