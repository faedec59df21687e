import { makeUserRecord } from '../c2s/sasl/credentials.js';
import { normalizeUsername } from '../c2s/sasl/username.js';
import type { Config } from '../config/types.js';
import { readPassword } from './password.js';
import { missingDatabase, openStorage } from './storage.js';

export type Out = { out: (line: string) => void; err: (line: string) => void };

/** `vigil user add|passwd|delete|list`; returns the exit code. */
export async function userCommand(config: Config, args: string[], password: string | undefined, io: Out): Promise<number> {
  const [action, target] = args;
  if (action === 'list') return listUsers(config, io);
  if (!['add', 'passwd', 'delete'].includes(action ?? '') || !target) {
    io.err('usage: vigil user add|passwd|delete USER@DOMAIN [--password P] | vigil user list');
    return 64;
  }
  const at = target.lastIndexOf('@');
  const local = at < 0 ? target : target.slice(0, at);
  const domain = at < 0 ? config.domain : target.slice(at + 1).toLowerCase();
  const username = normalizeUsername(local);
  if (domain !== config.domain) {
    io.err(`${target}: this server serves ${config.domain}`);
    return 65;
  }
  if (username === undefined) {
    io.err(`${target}: not a valid user name`);
    return 65;
  }
  const jid = `${username}@${config.domain}`;
  // Only add may create the database: changing or deleting a user of a database that is not there is a typo in the path.
  const missing = missingDatabase(config);
  if (missing !== null && action !== 'add') {
    io.err(`${jid}: no such user (no database at ${missing})`);
    return 67;
  }
  const storage = await openStorage(config);
  try {
    if (action === 'delete') {
      if (!(await storage.deleteUser(username))) {
        io.err(`${jid}: no such user`);
        return 67;
      }
      io.out(`deleted ${jid}`);
      return 0;
    }
    const secret = password ?? (await readPassword(`Password for ${jid}: `));
    if (secret.length === 0) {
      io.err('the password is empty');
      return 65;
    }
    const record = makeUserRecord(username, secret, config.c2s.scramIterations);
    if (action === 'add') {
      if (!(await storage.createUser(record))) {
        io.err(`${jid}: the user exists already (use vigil user passwd)`);
        return 73;
      }
      io.out(`added ${jid}`);
    } else {
      if (!(await storage.setCredentials(record))) {
        io.err(`${jid}: no such user`);
        return 67;
      }
      io.out(`changed the password of ${jid}`);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

/**
 * Listing reads; it must not leave an empty database behind where none was (a wrong --config would
 * otherwise plant data/vigil.sqlite in whatever directory it ran from). The note goes to stderr so
 * stdout stays one user a line, empty here.
 */
async function listUsers(config: Config, io: Out): Promise<number> {
  const missing = missingDatabase(config);
  if (missing !== null) {
    io.err(`no database at ${missing}: no users`);
    return 0;
  }
  const storage = await openStorage(config);
  try {
    for (const name of await storage.listUsers()) io.out(`${name}@${config.domain}`);
    return 0;
  } finally {
    await storage.close();
  }
}
