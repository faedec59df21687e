import { schema, type Option, type OptionTree } from './schema.js';

/** One option of the schema with where it sits: ['watchdog', 'c2s', 'probeAfter']. */
export interface Leaf {
  keys: readonly string[];
  /** The dotted key path, as every message names it: 'watchdog.c2s.probeAfter'. */
  path: string;
  option: Option;
}

/** convict's rule: an object with a `default` is an option, any other object is a group of options. */
export function isOption(node: Option | OptionTree): node is Option {
  return Object.prototype.hasOwnProperty.call(node, 'default');
}

/** Every option of `tree` (the Vigil schema unless told otherwise) in declaration order. */
export function leaves(tree: OptionTree = schema): Leaf[] {
  const out: Leaf[] = [];
  const walk = (node: OptionTree, prefix: readonly string[]): void => {
    for (const [key, child] of Object.entries(node)) {
      const keys = [...prefix, key];
      if (isOption(child)) out.push({ keys, path: keys.join('.'), option: child });
      else walk(child, keys);
    }
  };
  walk(tree, []);
  return out;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at `keys` in a plain object (a parsed file, overrides), or undefined where a level is missing. */
export function valueAt(obj: unknown, keys: readonly string[]): unknown {
  let node = obj;
  for (const key of keys) {
    if (!isPlain(node) || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** Replace the value at `keys`, which must exist (valueAt found it). */
export function replaceAt(obj: unknown, keys: readonly string[], value: unknown): void {
  const parent = valueAt(obj, keys.slice(0, -1));
  if (isPlain(parent)) parent[keys[keys.length - 1]] = value;
}
