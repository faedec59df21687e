import { randomBytes } from 'node:crypto';

/*
 * Ids drawn from the CSPRNG a page at a time, the page already in base64url: every routed message gets a
 * stanza-id, and asking the kernel for 12 bytes per message cost a third of the routing time, then encoding
 * each id on its own a fiftieth. Each character is used once, so the ids are as unguessable as randomBytes'
 * own. An id is a slice of its page, which stays in memory while any of its ids does: at most 4 KiB.
 */
const PAGE_BYTES = 3 * 1024; // a multiple of 3: no padding, and every 3 bytes are 4 characters of 6 random bits
let page = '';
let offset = 0;

/** An id with as much entropy as `bytes` random bytes: base64url, 4 characters per 3 bytes (rounded up). */
export function randomId(bytes: number): string {
  const length = Math.ceil((bytes * 4) / 3);
  if (offset + length > page.length) {
    page = randomBytes(Math.max(PAGE_BYTES, bytes + 2)).toString('base64url');
    offset = 0;
  }
  const id = page.slice(offset, offset + length);
  offset += length;
  return id;
}
