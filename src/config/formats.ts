import convict from 'convict';

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const UNITS_BYTES: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3 };

/** "90s", "3m", "1h30m", "250ms", "0" -> milliseconds. Numbers are taken as milliseconds. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') throw new Error('must be a duration such as "30s", "5m" or "0"');
  const text = value.trim();
  if (text === '0') return 0;
  const parts = text.match(/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/);
  if (!parts) throw new Error(`"${value}" is not a duration such as "30s", "5m", "1h" or "0"`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(amount) * UNITS_MS[unit];
  return Math.round(total);
}

/** "256KiB", "1MiB", "4096" -> bytes. */
export function parseBytes(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value !== 'string') throw new Error('must be a size such as "256KiB", "1MiB" or a number of bytes');
  const m = value.trim().match(/^(\d+)\s*([a-zA-Z]*)$/);
  const unit = m ? UNITS_BYTES[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`"${value}" is not a size such as "256KiB", "1MiB" or 4096`);
  return Number(m[1]) * unit;
}

/** convict cannot name the key when coerce throws, so bad values pass through and validate names them. */
function lenient(parse: (v: unknown) => number): (v: unknown) => unknown {
  return (v) => {
    try {
      return parse(v);
    } catch {
      return v;
    }
  };
}

let registered = false;
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormat({
    name: 'duration',
    validate: (v: unknown) => { parseDuration(v); },
    coerce: lenient(parseDuration),
  });
  convict.addFormat({
    name: 'bytes',
    validate: (v: unknown) => { parseBytes(v); },
    coerce: lenient(parseBytes),
  });
  convict.addFormat({
    name: 'port-number',
    validate: (v: unknown) => { if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error('must be a port from 0 to 65535'); },
    coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
  });
}
