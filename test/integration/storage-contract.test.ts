import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { makeUserRecord } from '../../src/c2s/sasl/credentials';
import { openStorage } from '../../src/cli/storage';
import { loadConfig } from '../../src/config/load';
import type { ConfigOverrides } from '../../src/config/types';
import { PostgresStorage } from '../../src/storage/postgres';
import { SqliteStorage } from '../../src/storage/sqlite';
import type { RosterItem, Storage, UserRecord } from '../../src/storage/storage';
import { TestClient } from '../helpers/client';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { startServer } from '../helpers/server';

/**
 * One contract, every driver: what the server relies on, asserted through the Storage interface only.
 * PostgreSQL runs in a throwaway cluster of this file's own (test/helpers/postgres.ts), one fresh database
 * per test.
 */

let cluster: TestPostgres | undefined;
async function postgres(): Promise<TestPostgres> {
  cluster ??= await startPostgres();
  return cluster;
}
afterAll(async () => {
  await cluster?.stop();
});

let databases = 0;
const newDatabase = async () => (await postgres()).createDatabase(`contract_${++databases}`);

interface Driver {
  name: 'sqlite' | 'postgres';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new, empty place for data: a file path, a database URL. */
  newLocation(): Promise<string>;
  open(location: string): Promise<Storage>;
}

let sqliteDir = '';
const drivers: Driver[] = [
  {
    name: 'sqlite',
    async setup() {
      sqliteDir = mkdtempSync(join(tmpdir(), 'vigil-contract-'));
    },
    async teardown() {
      rmSync(sqliteDir, { recursive: true, force: true });
    },
    async newLocation() {
      return join(sqliteDir, `${++databases}.sqlite`);
    },
    async open(path) {
      return new SqliteStorage(path);
    },
  },
  {
    name: 'postgres',
    async setup() {
      await postgres();
    },
    async teardown() {},
    newLocation: newDatabase,
    open: (url) => PostgresStorage.open(url),
  },
];

const user = (name: string, password = 'secret'): UserRecord => makeUserRecord(name, password, 4096);
const item = (jid: string, over: Partial<RosterItem> = {}): RosterItem => ({
  jid,
  name: '',
  subscription: 'none',
  ask: false,
  pendingIn: null,
  approved: false,
  groups: [],
  hidden: false,
  ...over,
});

describe.each(drivers)('$name storage contract', (driver) => {
  let location: string;
  let s: Storage;
  beforeAll(() => driver.setup());
  afterAll(() => driver.teardown());
  beforeEach(async () => {
    location = await driver.newLocation();
    s = await driver.open(location);
  });
  afterEach(() => s.close());

  describe('users', () => {
    it('creates a user once, returns its SCRAM credentials, and refuses a duplicate', async () => {
      const alice = user('alice');
      expect(await s.createUser(alice)).toBe(true);
      expect(await s.createUser(user('alice', 'other'))).toBe(false);
      expect(await s.getUser('alice')).toEqual(alice);
      expect(await s.getUser('Alice')).toBeUndefined();
      expect(await s.getUser('nobody')).toBeUndefined();
    });

    it('replaces credentials of an existing user only', async () => {
      await s.createUser(user('alice', 'old'));
      const renewed = user('alice', 'new');
      expect(await s.setCredentials(renewed)).toBe(true);
      expect(await s.getUser('alice')).toEqual(renewed);
      expect(await s.setCredentials(user('nobody'))).toBe(false);
      expect(await s.getUser('nobody')).toBeUndefined();
    });

    it('deletes a user once', async () => {
      await s.createUser(user('alice'));
      expect(await s.deleteUser('alice')).toBe(true);
      expect(await s.getUser('alice')).toBeUndefined();
      expect(await s.deleteUser('alice')).toBe(false);
    });

    it('lists users sorted byte by byte, whatever the database locale', async () => {
      for (const name of ['émile', 'bob', 'Zed', 'alice']) await s.createUser(user(name));
      expect(await s.listUsers()).toEqual(['Zed', 'alice', 'bob', 'émile']);
    });

    it('takes any text as a name, quotes included (parameters, never SQL text)', async () => {
      const odd = "o'brien\"); DROP TABLE users; --";
      expect(await s.createUser(user(odd))).toBe(true);
      expect((await s.getUser(odd))?.username).toBe(odd);
      expect(await s.listUsers()).toEqual([odd]);
    });
  });

  describe('offline messages', () => {
    it('stores up to the limit, then refuses; takes them oldest first, with their stamps; then none are left', async () => {
      const t0 = new Date('2024-05-01T10:00:00.123Z');
      for (let i = 0; i < 3; i++) expect(await s.storeOffline('bob', `<message id='m${i}'/>`, new Date(t0.getTime() + i * 1000), 3)).toBe(true);
      expect(await s.storeOffline('bob', "<message id='m3'/>", t0, 3)).toBe(false);
      expect(await s.countOffline('bob')).toBe(3);

      const taken = await s.takeOffline('bob');
      expect(taken.map((m) => m.xml)).toEqual(["<message id='m0'/>", "<message id='m1'/>", "<message id='m2'/>"]);
      expect(taken.map((m) => m.stamp.getTime())).toEqual([0, 1000, 2000].map((d) => t0.getTime() + d));
      expect(taken.every((m) => m.stamp instanceof Date && typeof m.id === 'number')).toBe(true);
      expect([...taken.map((m) => m.id)].sort((a, b) => a - b)).toEqual(taken.map((m) => m.id));
      expect(await s.takeOffline('bob')).toEqual([]);
      expect(await s.countOffline('bob')).toBe(0);
      expect(await s.storeOffline('bob', "<message id='again'/>", t0, 3)).toBe(true);
    });

    it('keeps one limit per user', async () => {
      expect(await s.storeOffline('bob', '<message/>', new Date(), 1)).toBe(true);
      expect(await s.storeOffline('carol', '<message/>', new Date(), 1)).toBe(true);
      expect(await s.storeOffline('bob', '<message/>', new Date(), 1)).toBe(false);
      expect(await s.takeOffline('carol')).toHaveLength(1);
      expect(await s.countOffline('bob')).toBe(1);
    });

    it('stores exactly the limit when 20 messages arrive at once for a limit of 10', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.storeOffline('bob', `<message id='p${i}'/>`, new Date(), 10)));
      expect(results.filter(Boolean)).toHaveLength(10);
      expect(await s.countOffline('bob')).toBe(10);
    });

    it('hands each message to one of two takes running at once', async () => {
      for (let i = 0; i < 10; i++) await s.storeOffline('bob', `<message id='t${i}'/>`, new Date(), 100);
      const [a, b] = await Promise.all([s.takeOffline('bob'), s.takeOffline('bob')]);
      expect([...a, ...b].map((m) => m.xml).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `<message id='t${i}'/>`).sort());
      expect(await s.countOffline('bob')).toBe(0);
    });
  });

  describe('offline byte quota and paged delivery', () => {
    const xmlOf = (id: string, size: number) => `<message id='${id}'><body>${'x'.repeat(size)}</body></message>`;

    it('refuses a message that would take the user past maxBytes, counting UTF-8 bytes, one quota per user', async () => {
      const a = xmlOf('a', 400);
      const len = Buffer.byteLength(a);
      expect(await s.storeOffline('bob', a, new Date(), 100, 2 * len)).toBe(true);
      expect(await s.storeOffline('bob', a, new Date(), 100, 2 * len)).toBe(true); // exactly at the quota
      expect(await s.storeOffline('bob', '<message/>', new Date(), 100, 2 * len)).toBe(false);
      expect(await s.offlineUsage('bob')).toEqual({ messages: 2, bytes: 2 * len });
      expect(await s.storeOffline('carol', a, new Date(), 100, 2 * len)).toBe(true);
      // Two bytes per character: the quota is in bytes, not characters.
      const wide = `<message>${'é'.repeat(100)}</message>`;
      expect(await s.storeOffline('dave', wide, new Date(), 100, 219)).toBe(true);
      expect(await s.offlineUsage('dave')).toEqual({ messages: 1, bytes: 219 });
      expect(await s.storeOffline('erin', wide, new Date(), 100, 218)).toBe(false);
      expect(await s.offlineUsage('erin')).toEqual({ messages: 0, bytes: 0 });
    });

    it('never overshoots the byte quota when 20 messages arrive at once', async () => {
      const m = xmlOf('p', 1000);
      const results = await Promise.all(Array.from({ length: 20 }, () => s.storeOffline('bob', m, new Date(), 100, 7 * Buffer.byteLength(m) + 10)));
      expect(results.filter(Boolean)).toHaveLength(7);
      expect(await s.offlineUsage('bob')).toEqual({ messages: 7, bytes: 7 * Buffer.byteLength(m) });
    });

    it('keeps the salvaged mark a message was stored with, and marks others by id for that user only', async () => {
      await s.storeOffline('bob', "<message id='fresh'/>", new Date(), 100);
      await s.storeOffline('bob', "<message id='seen'/>", new Date(), 100, undefined, true);
      await s.storeOffline('carol', "<message id='c'/>", new Date(), 100);
      const [fresh, seen] = await s.readOffline('bob', 0, 10);
      expect([fresh.salvaged, seen.salvaged]).toEqual([false, true]);
      const carols = await s.readOffline('carol', 0, 10);
      await s.markOfflineSalvaged('bob', [fresh.id, carols[0].id]);
      await s.markOfflineSalvaged('bob', []);
      expect((await s.readOffline('bob', 0, 10)).map((m) => [m.xml, m.salvaged])).toEqual([["<message id='fresh'/>", true], ["<message id='seen'/>", true]]);
      expect((await s.readOffline('carol', 0, 10))[0].salvaged).toBe(false);
      expect((await s.takeOffline('bob')).map((m) => m.salvaged)).toEqual([true, true]);
    });

    it('reads pages oldest first without removing them, and deletes by id only what it is told, for that user only', async () => {
      for (let i = 0; i < 5; i++) await s.storeOffline('bob', `<message id='r${i}'/>`, new Date(1000 * i), 100);
      await s.storeOffline('carol', "<message id='c0'/>", new Date(), 100);
      const first = await s.readOffline('bob', 0, 2);
      expect(first.map((m) => m.xml)).toEqual(["<message id='r0'/>", "<message id='r1'/>"]);
      expect(first.map((m) => m.stamp.getTime())).toEqual([0, 1000]);
      const rest = await s.readOffline('bob', first[1].id, 10);
      expect(rest.map((m) => m.xml)).toEqual(["<message id='r2'/>", "<message id='r3'/>", "<message id='r4'/>"]);
      expect(await s.countOffline('bob')).toBe(5);

      const carolsId = (await s.readOffline('carol', 0, 10))[0].id;
      expect(await s.deleteOffline('bob', [first[0].id, rest[1].id, carolsId])).toBe(2);
      expect(await s.deleteOffline('bob', [first[0].id])).toBe(0);
      expect(await s.deleteOffline('bob', [])).toBe(0);
      expect((await s.readOffline('bob', 0, 10)).map((m) => m.xml)).toEqual(["<message id='r1'/>", "<message id='r2'/>", "<message id='r4'/>"]);
      expect(await s.countOffline('carol')).toBe(1);
      // Deleted rows free their bytes and their place in the count.
      expect(await s.offlineUsage('bob')).toEqual({ messages: 3, bytes: 3 * Buffer.byteLength("<message id='r0'/>") });
    });

    it('deletes a page of 500 ids in one call', async () => {
      for (let i = 0; i < 500; i++) await s.storeOffline('bob', `<message id='b${i}'/>`, new Date(), 1000);
      const page = await s.readOffline('bob', 0, 1000);
      expect(page).toHaveLength(500);
      expect(await s.deleteOffline('bob', page.map((m) => m.id))).toBe(500);
      expect(await s.offlineUsage('bob')).toEqual({ messages: 0, bytes: 0 });
    });
  });

  describe('roster', () => {
    it('starts empty at version 0', async () => {
      expect(await s.getRoster('alice')).toEqual({ version: 0, items: [] });
      expect(await s.getRosterItem('alice', 'bob@localhost')).toBeUndefined();
      expect(await s.countRoster('alice')).toEqual({ items: 0, pendingIn: 0 });
    });

    it('round-trips every field of an item', async () => {
      const full = item('bob@localhost', {
        name: "Bob 'the builder' \"B\"",
        subscription: 'from',
        ask: true,
        pendingIn: "<presence type='subscribe' from='bob@localhost'><status>hi, {me}</status></presence>",
        approved: true,
        groups: ['Friends', 'a,b', '{braces}', 'quote"d', 'back\\slash', '', 'Ünïcødé 🙂'],
        hidden: false,
      });
      await s.putRosterItem('alice', full);
      expect(await s.getRosterItem('alice', 'bob@localhost')).toEqual(full);
      const hidden = item('eve@localhost', { pendingIn: '<presence/>', hidden: true });
      await s.putRosterItem('alice', hidden);
      expect(await s.getRosterItem('alice', 'eve@localhost')).toEqual(hidden);
    });

    it('bumps the version on every put and delete, replaces an item of the same JID, and sorts items by JID', async () => {
      expect(await s.putRosterItem('alice', item('zoe@localhost'))).toBe(1);
      expect(await s.putRosterItem('alice', item('Bob@localhost'))).toBe(2);
      expect(await s.putRosterItem('alice', item('carol@localhost'))).toBe(3);
      expect(await s.putRosterItem('alice', item('zoe@localhost', { name: 'Zoe', subscription: 'both' }))).toBe(4);
      const roster = await s.getRoster('alice');
      expect(roster.version).toBe(4);
      expect(roster.items.map((i) => i.jid)).toEqual(['Bob@localhost', 'carol@localhost', 'zoe@localhost']);
      expect(roster.items[2]).toEqual(item('zoe@localhost', { name: 'Zoe', subscription: 'both' }));

      expect(await s.deleteRosterItem('alice', 'carol@localhost')).toBe(5);
      expect(await s.getRosterItem('alice', 'carol@localhost')).toBeUndefined();
      expect(await s.deleteRosterItem('alice', 'carol@localhost')).toBeUndefined();
      expect(await s.deleteRosterItem('alice', 'nobody@localhost')).toBeUndefined();
      expect((await s.getRoster('alice')).version).toBe(5);
    });

    it('keeps one roster and one version per user', async () => {
      await s.putRosterItem('alice', item('bob@localhost'));
      await s.putRosterItem('alice', item('carol@localhost'));
      expect(await s.putRosterItem('bob', item('alice@localhost'))).toBe(1);
      expect(await s.getRoster('bob')).toEqual({ version: 1, items: [item('alice@localhost')] });
      expect(await s.deleteRosterItem('bob', 'carol@localhost')).toBeUndefined();
      expect((await s.getRoster('alice')).items).toHaveLength(2);
    });

    it('counts visible items and pending inbound requests (hidden ones included) for the flood limits', async () => {
      await s.putRosterItem('alice', item('a@x', { subscription: 'both' }));
      await s.putRosterItem('alice', item('b@x', { pendingIn: '<presence/>' }));
      await s.putRosterItem('alice', item('c@x', { pendingIn: '<presence/>', hidden: true }));
      await s.putRosterItem('alice', item('d@x', { hidden: true }));
      await s.putRosterItem('bob', item('e@x', { pendingIn: '<presence/>' }));
      expect(await s.countRoster('alice')).toEqual({ items: 2, pendingIn: 2 });
    });

    it('gives 20 changes made at once 20 distinct versions', async () => {
      const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => s.putRosterItem('alice', item(`c${i}@x`))));
      expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await s.getRoster('alice')).toMatchObject({ version: 20, items: expect.any(Array) });
      expect((await s.getRoster('alice')).items).toHaveLength(20);
    });
  });

  it("deleteUser removes the user's offline messages, roster and roster version, and nobody else's", async () => {
    for (const name of ['alice', 'bob']) {
      await s.createUser(user(name));
      await s.storeOffline(name, '<message/>', new Date(), 10);
      await s.putRosterItem(name, item('carol@localhost'));
    }
    expect(await s.deleteUser('alice')).toBe(true);
    expect(await s.countOffline('alice')).toBe(0);
    expect(await s.getRoster('alice')).toEqual({ version: 0, items: [] });
    expect(await s.countRoster('alice')).toEqual({ items: 0, pendingIn: 0 });
    expect(await s.countOffline('bob')).toBe(1);
    expect(await s.getRoster('bob')).toEqual({ version: 1, items: [item('carol@localhost')] });
    expect(await s.listUsers()).toEqual(['bob']);
  });

  it('keeps everything across close and reopen', async () => {
    await s.createUser(user('alice'));
    await s.storeOffline('alice', '<message/>', new Date(), 10);
    await s.putRosterItem('alice', item('bob@localhost'));
    await s.close();
    s = await driver.open(location);
    expect(await s.listUsers()).toEqual(['alice']);
    expect(await s.countOffline('alice')).toBe(1);
    expect(await s.getRoster('alice')).toEqual({ version: 1, items: [item('bob@localhost')] });
  });
});

describe('PostgreSQL only', () => {
  const schemaRows = async (url: string) => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query('SELECT version FROM schema_version')).rows;
    } finally {
      await client.end();
    }
  };

  it('migrates a new database once when two servers open it at the same moment (advisory lock)', async () => {
    const url = await newDatabase();
    const both = await Promise.all([PostgresStorage.open(url), PostgresStorage.open(url), PostgresStorage.open(url)]);
    expect(await schemaRows(url)).toEqual([{ version: 3 }]);
    expect(await both[0].createUser(user('alice'))).toBe(true);
    expect(await both[2].getUser('alice')).toBeDefined();
    await Promise.all(both.map((s) => s.close()));
  });

  it('refuses a schema newer than it knows', async () => {
    const url = await newDatabase();
    await (await PostgresStorage.open(url)).close();
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query('UPDATE schema_version SET version = 99');
    await client.end();
    await expect(PostgresStorage.open(url)).rejects.toThrow('database schema version 99 is newer than this Vigil knows (3)');
  });

  it('openStorage: driver postgres needs storage.url, names it when the server is unreachable, and opens it', async () => {
    const configFor = (url: string) => loadConfig({ overrides: { storage: { driver: 'postgres', url } } as ConfigOverrides, env: {} });
    await expect(openStorage(configFor(''))).rejects.toThrow(/storage\.url must be set/);
    const nowhere = mkdtempSync(join(tmpdir(), 'vigil-nopg-'));
    try {
      await expect(openStorage(configFor(`postgresql://postgres@/vigil?host=${encodeURIComponent(nowhere)}`))).rejects.toThrow(/cannot open the PostgreSQL storage \(storage\.url\): .*ENOENT/);
    } finally {
      rmSync(nowhere, { recursive: true, force: true });
    }
    const storage = await openStorage(configFor(await newDatabase()));
    expect(storage).toBeInstanceOf(PostgresStorage);
    await storage.close();
  });

  it('end to end: a real server keeps a message for an offline user in PostgreSQL and delivers it at login', async () => {
    const overrides = { storage: { driver: 'postgres', url: await newDatabase() } } as ConfigOverrides;
    const storage = await openStorage(loadConfig({ overrides, env: {} }));
    const srv = await startServer(overrides, { storage });
    try {
      await srv.addUser('alice');
      await srv.addUser('bob');
      const alice = await TestClient.login(srv.port, 'alice', 'secret', 'desk');
      alice.send("<message to='bob@localhost' type='chat' id='pg1'><body>kept in postgres</body></message>");
      // Storing is a round trip to PostgreSQL behind the routing: wait for the row, not for a reply.
      for (const deadline = Date.now() + 5000; (await storage.countOffline('bob')) < 1 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      await expect(storage.countOffline('bob')).resolves.toBe(1);

      const bob = await TestClient.login(srv.port, 'bob');
      const got = await bob.waitFor((el) => el.name === 'message');
      expect(got.getChildText('body')).toBe('kept in postgres');
      expect(got.attrs.from).toBe('alice@localhost/desk');
      expect(got.getChild('delay', 'urn:xmpp:delay')?.attrs.from).toBe('localhost');
      // Kept until bob confirms it by speaking (here: closing his stream), then gone.
      await expect(storage.countOffline('bob')).resolves.toBe(1);
      await Promise.all([alice.close(), bob.close()]);
      for (const deadline = Date.now() + 5000; (await storage.countOffline('bob')) > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      await expect(storage.countOffline('bob')).resolves.toBe(0);
    } finally {
      await srv.stop();
    }
  });
});
