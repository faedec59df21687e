import { createHmac, randomBytes } from 'node:crypto';
import type { ScramHash } from '../../storage/storage.js';
import { authzidAllowed } from './authzid.js';
import { digest, hmac, safeEqual } from './credentials.js';
import { DEFAULT_ITERATIONS, type MechanismOptions, type SaslMechanism, type SaslStep, type UserLookup } from './mechanism.js';
import { normalizeUsername } from './username.js';

/** A key that makes fake salts for unknown users, so a client cannot tell them from real ones. */
const FAKE_SALT_KEY = randomBytes(32);

/** RFC 5802 / RFC 7677 SCRAM without channel binding (we offer no -PLUS variant). */
export class ScramMechanism implements SaslMechanism {
  private stage: 'first' | 'final' | 'done' = 'first';
  private clientFirstBare = '';
  private serverFirst = '';
  private gs2Header = '';
  private nonce = '';
  private username = '';
  private storedKey: Buffer | undefined;
  private serverKey: Buffer | undefined;

  constructor(private readonly hash: ScramHash, private readonly lookup: UserLookup, private readonly domain: string, private readonly options: MechanismOptions = {}) {}

  async step(data: Buffer): Promise<SaslStep> {
    const text = data.toString('utf8');
    if (this.stage === 'first') return this.first(text);
    if (this.stage === 'final') return this.final(text);
    return { kind: 'failure', condition: 'malformed-request' };
  }

  private async first(text: string): Promise<SaslStep> {
    const m = text.match(/^([nyp])(=[^,]*)?,(a=[^,]*)?,(.*)$/);
    if (!m) return fail('malformed-request');
    if (m[1] === 'p') return fail('malformed-request', 'channel binding is not supported');
    this.gs2Header = text.slice(0, text.length - m[4].length);
    const authzid = m[3] ? decodeName(m[3].slice(2)) : '';
    if (authzid === undefined) return fail('malformed-request');
    this.clientFirstBare = m[4];
    const attrs = parseAttributes(this.clientFirstBare);
    if (!attrs || attrs.m !== undefined || attrs.n === undefined || !attrs.r) return fail('malformed-request');
    const name = decodeName(attrs.n);
    const username = name === undefined ? undefined : normalizeUsername(name);
    if (username === undefined) return fail('malformed-request');
    // The authzid names whom to act as; it can only be checked against the user the client authenticates as.
    if (!authzidAllowed(authzid, username, this.domain)) return { kind: 'failure', condition: 'invalid-authzid', username };
    this.username = username;
    if (this.options.admit && !this.options.admit(username)) return { kind: 'failure', condition: 'temporary-auth-failure', username };
    const user = await this.lookup(username);
    const cred = user?.scram[this.hash];
    let salt: string;
    let iterations: number;
    if (cred) {
      salt = cred.salt;
      iterations = cred.iterations;
      this.storedKey = Buffer.from(cred.storedKey, 'base64');
      this.serverKey = Buffer.from(cred.serverKey, 'base64');
    } else {
      salt = createHmac('sha256', FAKE_SALT_KEY).update(`${this.hash}:${username}`).digest().subarray(0, 16).toString('base64');
      // The count real accounts are stored with: a fixed 4096 would mark every unknown name once it changes.
      iterations = this.options.iterations ?? DEFAULT_ITERATIONS;
    }
    this.nonce = attrs.r + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${salt},i=${iterations}`;
    this.stage = 'final';
    return { kind: 'challenge', data: Buffer.from(this.serverFirst) };
  }

  private async final(text: string): Promise<SaslStep> {
    this.stage = 'done';
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return fail('malformed-request', undefined, this.username);
    const withoutProof = text.slice(0, proofAt);
    const attrs = parseAttributes(text);
    if (!attrs || attrs.c === undefined || attrs.r === undefined || attrs.p === undefined) return fail('malformed-request', undefined, this.username);
    if (attrs.r !== this.nonce) return fail('not-authorized', 'nonce mismatch', this.username);
    if (Buffer.from(attrs.c, 'base64').toString('utf8') !== this.gs2Header) return fail('not-authorized', 'channel binding mismatch', this.username);
    if (!this.storedKey || !this.serverKey) return fail('not-authorized', undefined, this.username);
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.hash, this.storedKey, authMessage);
    const proof = Buffer.from(attrs.p, 'base64');
    if (proof.length !== clientSignature.length) return fail('not-authorized', undefined, this.username);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ clientSignature[i];
    if (!safeEqual(digest(this.hash, clientKey), this.storedKey)) return fail('not-authorized', undefined, this.username);
    const serverSignature = hmac(this.hash, this.serverKey, authMessage).toString('base64');
    return { kind: 'success', username: this.username, data: Buffer.from(`v=${serverSignature}`) };
  }
}

function fail(condition: 'malformed-request' | 'not-authorized', text?: string, username?: string): SaslStep {
  return { kind: 'failure', condition, text, username };
}

/** "a=1,b=2" -> {a: "1", b: "2"}; undefined when an attribute is malformed or repeated. */
function parseAttributes(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const m = part.match(/^([A-Za-z])=(.*)$/s);
    if (!m || out[m[1]] !== undefined) return undefined;
    out[m[1]] = m[2];
  }
  return out;
}

/** RFC 5802 saslname: "=2C" is a comma, "=3D" an equals sign; any other "=" is an error. */
function decodeName(name: string): string | undefined {
  if (/=(?!2C|3D)/.test(name)) return undefined;
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}
