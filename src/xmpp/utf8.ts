import { isUtf8 } from 'node:buffer';

/**
 * Strict streaming UTF-8 decoding that holds nothing between reads but a split character's first bytes. A
 * TextDecoder per stream keeps a native converter of about 1.2 KiB alive for the stream's lifetime, on every
 * idle session. Throws on bytes that are not UTF-8, and on a split character as soon as its start shows it
 * can never be completed, as TextDecoder's fatal mode does; drops a byte order mark that begins the stream,
 * as TextDecoder does too (XML 1.0 §4.3.3 allows one there).
 */
export class Utf8Stream {
  private carry: Buffer | undefined;
  /** Nothing decoded yet: a U+FEFF first is the byte order mark. */
  private atStart = true;

  decode(chunk: Buffer): string {
    let bytes = chunk;
    if (this.carry) {
      bytes = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    const end = completeUpTo(bytes);
    if (!isUtf8(bytes.subarray(0, end))) throw new TypeError('invalid UTF-8');
    if (end < bytes.length) this.carry = Buffer.from(bytes.subarray(end));
    const text = bytes.toString('utf8', 0, end);
    if (!this.atStart || text.length === 0) return text;
    this.atStart = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  reset(): void {
    this.carry = undefined;
    this.atStart = true;
  }
}

/**
 * Where the last character that may still be completed begins (bytes.length when none is split). Throws
 * when those trailing bytes cannot begin any character.
 */
function completeUpTo(bytes: Buffer): number {
  const n = bytes.length;
  // A character takes at most 4 bytes: only the last 3 can be the start of an unfinished one.
  for (let i = n - 1; i >= Math.max(0, n - 3); i--) {
    const b = bytes[i];
    if (b < 0x80) return n;
    if (b < 0xc0) continue; // a continuation byte: its lead is further back
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    if (i + length <= n) return n; // complete (isUtf8 judges it)
    if (!validPrefix(bytes, i)) throw new TypeError('invalid UTF-8');
    return i;
  }
  return n;
}

/** Whether bytes[from..] can begin a well-formed character (no overlong form, surrogate or value past U+10FFFF). */
function validPrefix(bytes: Buffer, from: number): boolean {
  const lead = bytes[from];
  if (lead < 0xc2 || lead > 0xf4) return false;
  for (let i = from + 1; i < bytes.length; i++) {
    const b = bytes[i];
    let lo = 0x80;
    let hi = 0xbf;
    if (i === from + 1) {
      if (lead === 0xe0) lo = 0xa0;
      else if (lead === 0xed) hi = 0x9f;
      else if (lead === 0xf0) lo = 0x90;
      else if (lead === 0xf4) hi = 0x8f;
    }
    if (b < lo || b > hi) return false;
  }
  return true;
}
