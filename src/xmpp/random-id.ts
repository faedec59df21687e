import { randomBytes } from 'node:crypto';

/**
 * Bytes drawn from the CSPRNG a page at a time: every routed message gets a stanza-id, and asking the kernel
 * for 12 bytes per message cost a third of the routing time. Each byte is used once, so the ids are as
 * unguessable as randomBytes' own.
 */
const PAGE = 4096;
let page = Buffer.alloc(0);
let offset = 0;

/** `bytes` random bytes as base64url (no padding): 4 characters per 3 bytes. */
export function randomId(bytes: number): string {
  if (offset + bytes > page.length) {
    page = randomBytes(Math.max(PAGE, bytes));
    offset = 0;
  }
  const id = page.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return id;
}
