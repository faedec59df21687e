import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import saslprep from '@mongodb-js/saslprep';
import type { ScramCredential, ScramHash, UserRecord } from '../../storage/storage.js';
import { pbkdf2Sha256 } from './pbkdf2.js';

const pbkdf2Async = promisify(pbkdf2);

const DIGEST: Record<ScramHash, { name: string; length: number }> = {
  sha1: { name: 'sha1', length: 20 },
  sha256: { name: 'sha256', length: 32 },
};

export const hmac = (hash: ScramHash, key: Buffer, data: string | Buffer): Buffer => createHmac(DIGEST[hash].name, key).update(data).digest();
export const digest = (hash: ScramHash, data: Buffer): Buffer => createHash(DIGEST[hash].name).update(data).digest();

/** RFC 4013 SASLprep of a password, the form SCRAM hashes (RFC 5802 §2.2). */
export function prepPassword(password: string): string {
  return saslprep(password);
}

export function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(prepPassword(password), salt, iterations, DIGEST[hash].length, DIGEST[hash].name);
}

export function deriveCredential(hash: ScramHash, password: string, iterations: number, salt: Buffer = randomBytes(16)): ScramCredential {
  return credentialOf(hash, saltedPassword(hash, password, salt, iterations), salt, iterations);
}

function credentialOf(hash: ScramHash, salted: Buffer, salt: Buffer, iterations: number): ScramCredential {
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: digest(hash, clientKey).toString('base64'),
    serverKey: hmac(hash, salted, 'Server Key').toString('base64'),
  };
}

/** A salt per hash; injectable so that tests can compare records. */
export interface RecordSalts {
  sha1: Buffer;
  sha256: Buffer;
}

const freshSalts = (): RecordSalts => ({ sha1: randomBytes(16), sha256: randomBytes(16) });

/** What we store for a user: SCRAM keys for both hashes, never the password. Blocks: for the CLI and tests. */
export function makeUserRecord(username: string, password: string, iterations: number, salts: RecordSalts = freshSalts()): UserRecord {
  return {
    username,
    scram: { sha1: deriveCredential('sha1', password, iterations, salts.sha1), sha256: deriveCredential('sha256', password, iterations, salts.sha256) },
  };
}

/**
 * The record makeUserRecord makes, with both PBKDF2 runs on libuv's thread pool at once: a registration or
 * password change inside the server must not stall the event loop every session shares. Rejects when
 * SASLprep refuses the password, as makeUserRecord throws.
 */
export async function deriveUserRecord(username: string, password: string, iterations: number, salts: RecordSalts = freshSalts()): Promise<UserRecord> {
  const prepared = prepPassword(password);
  const derive = async (hash: ScramHash): Promise<ScramCredential> => {
    const salt = salts[hash];
    const salted = hash === 'sha256' ? await pbkdf2Sha256(prepared, salt, iterations) : await pbkdf2Async(prepared, salt, iterations, DIGEST[hash].length, DIGEST[hash].name);
    return credentialOf(hash, salted, salt, iterations);
  };
  const [sha1, sha256] = await Promise.all([derive('sha1'), derive('sha256')]);
  return { username, scram: { sha1, sha256 } };
}

/** PLAIN against SCRAM credentials: recompute StoredKey from the offered password. */
export async function verifyPassword(user: UserRecord, password: string): Promise<boolean> {
  const cred = user.scram.sha256;
  let prepared: string;
  try {
    prepared = prepPassword(password);
  } catch {
    return false; // SASLprep refused the password: it cannot be anyone's.
  }
  const tag = `${cred.storedKey}:${createHmac('sha256', VERIFIED_KEY).update(user.username).update('\0').update(prepared).digest('base64')}`;
  if (verified.get(user.username) === tag) return true;
  const salted = await pbkdf2Sha256(prepared, Buffer.from(cred.salt, 'base64'), cred.iterations);
  const storedKey = digest('sha256', hmac('sha256', salted, 'Client Key'));
  if (!safeEqual(storedKey, Buffer.from(cred.storedKey, 'base64'))) return false;
  verified.delete(user.username);
  verified.set(user.username, tag);
  if (verified.size > VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  return true;
}

/** One salt per server process: no precomputation could target it, and every unknown name shares it. */
const DUMMY_SALT = randomBytes(16);

/**
 * The PBKDF2 a failed PLAIN login against a real account pays, for a name that has no account: without it
 * a wrong password costs milliseconds for a real account and next to nothing for an unknown one, and the
 * difference tells a guesser which accounts exist. Same iterations and hash, on the thread pool likewise.
 */
export async function dummyVerify(password: string, iterations: number): Promise<false> {
  let prepared: string;
  try {
    prepared = prepPassword(password);
  } catch {
    return false; // verifyPassword refuses these before PBKDF2 too: equally cheap either way
  }
  await pbkdf2Sha256(prepared, DUMMY_SALT, iterations);
  return false;
}

/**
 * Passwords that already passed PBKDF2, kept as an HMAC under a key that never leaves this process and tied
 * to the StoredKey they matched. After a network blip thousands of clients log in again at once; this makes
 * each repeat login cost one HMAC instead of thousands, and a changed password (a new StoredKey) misses.
 */
const VERIFIED_KEY = randomBytes(32);
const VERIFIED_MAX = 100_000;
const verified = new Map<string, string>();

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
