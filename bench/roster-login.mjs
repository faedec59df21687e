// Login with a big roster: a user with CONTACTS contacts, all mutually subscribed and all online, sends
// initial presence; we time until the user has received the current presence of every contact (the probe
// answers) — what a user waits for before the contact list is complete. Repeated RUNS times; prints one
// JSON line with the median. The server runs in a child process (its own core), the clients here.
// Loopback only; bounded in time (BENCH_TIMEOUT_MS). Build first: npx tsc -p tsconfig.build.json
//   node bench/roster-login.mjs [contacts=500] [runs=5]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';

const SERVING = process.argv[2] === '--serve';
const CONTACTS = Number((SERVING ? process.argv[3] : process.argv[2]) ?? 500);
const RUNS = SERVING ? 1 : Number(process.argv[3] ?? 5);
if (!(CONTACTS > 0 && CONTACTS <= 5000 && RUNS > 0 && RUNS <= 50)) {
  console.error('usage: node bench/roster-login.mjs [contacts (1..5000)] [runs (1..50)]');
  process.exit(2);
}
const BENCH_TIMEOUT_MS = 180_000;
const DOMAIN = 'localhost';
const USER = 'bench';
const PASSWORD = 'bench-secret';
const contactName = (i) => `contact${i}`;

async function load(path) {
  try {
    return await import(new URL(`../dist/src/${path}`, import.meta.url).href);
  } catch (err) {
    console.error(`cannot load dist/src/${path} (run: npx tsc -p tsconfig.build.json): ${err.message}`);
    process.exit(2);
  }
}

// The server side: seed storage, start, report the port, stop when told.

async function serve() {
  const { loadConfig } = await load('config/load.js');
  const { Server } = await load('server.js');
  const { SqliteStorage } = await load('storage/sqlite.js');
  const { createLogger } = await load('log.js');
  const { makeUserRecord } = await load('c2s/sasl/credentials.js');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const config = loadConfig({
    env: {},
    overrides: {
      domain: DOMAIN,
      listeners: { c2s: { host: '127.0.0.1', port: 0 }, websocket: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } },
      storage: { driver: 'sqlite', path: join(dir, 'vigil.sqlite') },
      c2s: { allowPlainWithoutTls: true },
      log: { level: 'silent' },
    },
  });
  const storage = new SqliteStorage(config.storage.path);
  // Credentials are derived once and shared: setup time is not what we measure.
  const record = makeUserRecord(USER, PASSWORD, 4096);
  await storage.createUser(record);
  const both = (jid) => ({ jid, name: '', subscription: 'both', ask: false, pendingIn: null, approved: false, groups: ['Bench'] });
  for (let i = 0; i < CONTACTS; i++) {
    await storage.createUser({ ...record, username: contactName(i) });
    await storage.putRosterItem(USER, both(`${contactName(i)}@${DOMAIN}`));
    await storage.putRosterItem(contactName(i), both(`${USER}@${DOMAIN}`));
  }
  const server = new Server({ config, log: createLogger('silent'), storage });
  await server.start();
  process.send({ port: server.addresses.c2s });
  process.on('message', async (msg) => {
    if (msg !== 'stop') return;
    await server.stop();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
}

// The client side: a minimal XMPP client on a plain socket, parsed with the server's own StreamParser.

const { StreamParser } = await load('xmpp/parser.js');

class Client {
  constructor(socket) {
    this.socket = socket;
    this.queue = [];
    this.waiters = [];
    this.onStanza = undefined;
    this.parser = new StreamParser(
      {
        onStreamStart: () => this.push({ name: 'stream-start' }),
        onStanza: (el) => (this.onStanza?.(el) ? undefined : this.push(el)),
        onStreamEnd: () => this.push({ name: 'stream-end' }),
        onError: (c, t) => this.push({ name: 'parse-error', text: `${c}: ${t}` }),
      },
      { maxStanzaSize: 1 << 20 },
    );
    socket.on('data', (d) => this.parser.write(d));
    socket.on('error', () => undefined);
  }

  static connect(port) {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  push(el) {
    this.queue.push(el);
    for (const w of [...this.waiters]) w();
  }

  next(pred) {
    return new Promise((resolve) => {
      const check = () => {
        const i = this.queue.findIndex(pred);
        if (i < 0) return false;
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(this.queue.splice(i, 1)[0]);
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  async open() {
    this.parser.restart();
    this.socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${DOMAIN}' version='1.0'>`);
    await this.next((el) => el.name === 'stream:features');
  }

  async login(username, resource) {
    await this.open();
    this.socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${username}\0${PASSWORD}`).toString('base64')}</auth>`);
    const answer = await this.next((el) => el.name === 'success' || el.name === 'failure');
    if (answer.name !== 'success') throw new Error(`login of ${username} failed`);
    await this.open();
    this.socket.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const bound = await this.next((el) => el.name === 'iq' && el.attrs.id === 'bind');
    if (bound.attrs.type !== 'result') throw new Error(`bind of ${username} failed`);
    return this;
  }

  async close() {
    this.socket.write('</stream:stream>');
    this.socket.end();
    await new Promise((r) => (this.socket.destroyed ? r() : this.socket.once('close', r)));
  }
}

async function inBatches(n, size, fn) {
  const out = [];
  for (let i = 0; i < n; i += size) out.push(...(await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, k) => fn(i + k)))));
  return out;
}

async function main() {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', String(CONTACTS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const timer = setTimeout(() => {
    console.error(`bench did not finish within ${BENCH_TIMEOUT_MS} ms`);
    child.kill('SIGKILL');
    process.exit(1);
  }, BENCH_TIMEOUT_MS);
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });

  // All contacts online, each with initial presence.
  const contacts = await inBatches(CONTACTS, 50, async (i) => {
    const c = await Client.connect(port);
    await c.login(contactName(i), 'desk');
    c.socket.write(`<presence><status>contact ${i} is here</status></presence>`);
    return c;
  });
  const userJid = `${USER}@${DOMAIN}`;
  const runsMs = [];
  for (let run = 0; run < RUNS; run++) {
    const user = await (await Client.connect(port)).login(USER, `run${run}`);
    const seen = new Set();
    let done;
    const all = new Promise((r) => (done = r));
    user.onStanza = (el) => {
      if (el.name !== 'presence' || el.attrs.type !== undefined) return false;
      seen.add(el.attrs.from);
      if (seen.size === CONTACTS) done();
      return true;
    };
    const start = performance.now();
    user.socket.write('<presence/>');
    await all;
    runsMs.push(performance.now() - start);
    // Every contact saw the user arrive and then leave before the next run: the server is quiet again.
    await Promise.all(contacts.map((c) => c.next((el) => el.name === 'presence' && el.attrs.from === `${userJid}/run${run}` && el.attrs.type === undefined)));
    await user.close();
    await Promise.all(contacts.map((c) => c.next((el) => el.name === 'presence' && el.attrs.from === `${userJid}/run${run}` && el.attrs.type === 'unavailable')));
  }
  await Promise.all(contacts.map((c) => c.close()));
  child.send('stop');
  await new Promise((r) => child.once('exit', r));
  clearTimeout(timer);
  const sorted = [...runsMs].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bench: 'roster-login',
      contacts: CONTACTS,
      runs: RUNS,
      medianMs: Number(sorted[Math.floor(sorted.length / 2)].toFixed(1)),
      minMs: Number(sorted[0].toFixed(1)),
      maxMs: Number(sorted[sorted.length - 1].toFixed(1)),
      runsMs: runsMs.map((ms) => Number(ms.toFixed(1))),
      node: process.version,
    }),
  );
}

if (SERVING) {
  await serve();
} else {
  await main();
}
