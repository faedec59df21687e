import convict from 'convict';

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const UNITS_BYTES: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3 };

/**
 * "90s", "3m", "1h30m", "250ms", "0" -> milliseconds. A bare number is refused: `probeAfter: 6` may mean
 * seconds to whoever wrote it and would silently be 6 ms. Zero is the exception, as a number or "0": it is
 * the same in every unit, and "0 turns it off" is how the docs say to disable an option.
 */
export function parseDuration(value: unknown): number {
  if (value === 0) return 0;
  if (typeof value === 'number') throw new Error(`a bare number is not a duration: write the unit, e.g. "${value}s" or "${value}ms"`);
  if (typeof value !== 'string') throw new Error('must be a duration such as "30s", "5m" or "0"');
  const text = value.trim();
  if (text === '0') return 0;
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(text)) throw new Error(`"${value}" is not a duration such as "30s", "5m", "1h" or "0"`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(amount) * UNITS_MS[unit];
  return Math.round(total);
}

/** "256KiB", "1MiB", "4096", 4096 -> bytes: a bare number of bytes is unambiguous, so it is accepted. */
export function parseBytes(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value !== 'string') throw new Error('must be a size such as "256KiB", "1MiB" or a number of bytes');
  const m = value.trim().match(/^(\d+)\s*([a-zA-Z]*)$/);
  const unit = m ? UNITS_BYTES[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`"${value}" is not a size such as "256KiB", "1MiB" or 4096`);
  return Number(m[1]) * unit;
}

/** The formats whose written value loadConfig converts after validation, by format name. */
export const CONVERTERS: Record<string, (value: unknown) => number> = { duration: parseDuration, bytes: parseBytes };

/**
 * Durations and sizes have no convict coerce: convict coerces only strings, so with one a bare number
 * (`probeAfter: 6`) would reach validation looking just like a coerced "6ms". Validation sees what was
 * written instead, and loadConfig converts afterwards.
 */
let registered = false;
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormat({
    name: 'duration',
    // convict hands validate the option itself, so the schema's `min` (see Option) is read from there.
    validate: (v: unknown, option: convict.SchemaObj) => {
      const ms = parseDuration(v);
      const min: unknown = option.min;
      if (typeof min === 'string' && ms < parseDuration(min)) throw new Error(`must be at least ${min}`);
    },
  });
  convict.addFormat({
    name: 'bytes',
    validate: (v: unknown) => {
      parseBytes(v);
    },
  });
  convict.addFormat({
    name: 'port-number',
    validate: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error('must be a port from 0 to 65535');
    },
    coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
  });
}
