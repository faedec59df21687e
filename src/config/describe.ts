import { schema } from './schema.js';

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

interface Leaf {
  doc: string;
  format: unknown;
  default: string | number | boolean;
  env: string;
  sensitive?: boolean;
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

/** convict's rule: an object with a `default` is an option, any other object is a group of options. */
function isLeaf(node: object): node is Leaf {
  return Object.prototype.hasOwnProperty.call(node, 'default');
}

/** Every option of `tree` (the Vigil schema unless told otherwise) in declaration order. */
export function describeSchema(tree: object = schema): OptionInfo[] {
  const out: OptionInfo[] = [];
  const walk = (node: object, prefix: string[]): void => {
    for (const [key, child] of Object.entries(node)) {
      if (typeof child !== 'object' || child === null) continue;
      const path = [...prefix, key];
      if (isLeaf(child)) {
        out.push({
          path: path.join('.'),
          doc: child.doc,
          default: child.default,
          format: describeFormat(child.format),
          env: child.env,
          sensitive: child.sensitive === true,
        });
      } else {
        walk(child, path);
      }
    }
  };
  walk(tree, []);
  return out;
}
