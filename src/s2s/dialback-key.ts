import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * XEP-0185: the dialback key for one stream, HMAC-SHA256 over both domains and the stream id, keyed by a
 * hash of our secret. Any node that knows the secret can verify it later without having kept anything.
 */
export function dialbackKey(secret: string, receiving: string, originating: string, streamId: string): string {
  const key = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', key).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

/** Whether `key` is the one we would have made, compared in constant time. */
export function verifyDialbackKey(key: string, secret: string, receiving: string, originating: string, streamId: string): boolean {
  const expected = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const given = Buffer.from(key.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
