import * as credentials from '../../src/c2s/sasl/credentials';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';

/*
 * Issue 12, authentication: what a password guesser gets, and that the real user still gets in. Each block
 * has its own server: the limits count per address, and every client here comes from 127.0.0.1.
 */

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');
const condition = (failure: { getChildElements(): { name: string }[] }) => failure.getChildElements().find((c) => c.name !== 'text')?.name;

const connectFrom = (localAddress: string, port: number) => TestClient.connect(port, '127.0.0.1', localAddress);

describe('one SASL exchange at a time', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
    await srv.addUser('alice', 'wonderland');
  });
  afterAll(() => srv.stop());

  it('answers 500 responses pipelined behind one guess with malformed-request, never a success, and ends the stream after maxAuthAttempts', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    // The attack as reported: one guess, then hundreds more without waiting, the right one among them.
    const guesses = Array.from({ length: 500 }, (_, i) => `<response xmlns='${SASL}'>${plain('alice', i === 400 ? 'wonderland' : `guess${i}`)}</response>`);
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plain('alice', 'guess')}</auth>${guesses.join('')}`);
    expect((await c.streamError()).condition).toBe('policy-violation');
    await c.closed;
    const answers = c.elements.filter((el) => el.attrs.xmlns === SASL);
    expect(answers.map((el) => el.name)).toEqual(['failure', 'failure', 'failure']);
    expect(answers.map(condition)).toContain('malformed-request');
    const metrics = await srv.metrics();
    expect(metricValue(metrics, 'vigil_auth_failures_total', { mechanism: 'PLAIN', reason: 'malformed-request' })).toBeGreaterThanOrEqual(1);
  });

  it('never answers the step a pipelined response cut short, even a right password, and lets the client start again', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    // Both in one write: the response is parsed while the first step is still in flight.
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plain('alice', 'wonderland')}</auth><response xmlns='${SASL}'>=</response>`);
    const failure = await c.waitFor((el) => el.name === 'failure' || el.name === 'success');
    expect(failure.name).toBe('failure');
    expect(condition(failure)).toBe('malformed-request');
    // Had the cut-short step answered success, the stream would be past SASL and refuse a new <auth/>.
    expect((await c.authPlain('alice', 'wonderland')).name).toBe('success');
    expect((await c.bind('desk')).attrs.type).toBe('result');
    expect(c.elements.filter((el) => el.name === 'success')).toEqual([]);
    await c.close();
  });

  it('takes a SCRAM response sent before the challenge as malformed-request', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    const first = Buffer.from('n,,n=alice,r=abcdefgh').toString('base64');
    c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-256'>${first}</auth><response xmlns='${SASL}'>${Buffer.from('c=biws,r=abcdefgh,p=AAAA').toString('base64')}</response>`);
    const answer = await c.waitFor((el) => el.attrs.xmlns === SASL);
    expect(answer.name).toBe('failure');
    expect(condition(answer)).toBe('malformed-request');
    // The challenge of the abandoned step never comes either.
    expect((await c.authPlain('alice', 'wonderland')).name).toBe('success');
    expect(c.elements.filter((el) => el.name === 'challenge')).toEqual([]);
    await c.close();
    expect(metricValue(await srv.metrics(), 'vigil_auth_failures_total', { mechanism: 'SCRAM-SHA-256', reason: 'malformed-request' })).toBe(1);
  });
});

describe('brute-force limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // Lockouts far longer than the test, so that what the client sees does not depend on how fast it runs.
    srv = await startServer({ c2s: { auth: { lockoutBase: '1h', lockoutMax: '1h' } } });
    for (const [u, p] of [['alice', 'wonderland'], ['bob', 'builder']]) await srv.addUser(u, p);
  });
  afterAll(() => srv.stop());

  it('answers temporary-auth-failure after 5 failures from one address, and 30 of them do not keep alice out from another', async () => {
    const bob = await TestClient.login(srv.port, 'bob', 'builder', 'b');
    const seen: (string | undefined)[] = [];
    for (let stream = 0; stream < 10; stream++) {
      const attacker = await TestClient.connect(srv.port);
      await attacker.open();
      for (let i = 0; i < 3; i++) seen.push(condition(await attacker.authPlain('alice', `guess${stream}-${i}`)));
      expect((await attacker.streamError()).condition).toBe('policy-violation');
      await attacker.closed;
    }
    expect(seen).toEqual([...Array(5).fill('not-authorized'), ...Array(25).fill('temporary-auth-failure')]);

    // From the attacking address even the right password is refused: it is not checked at all.
    const fromAttacker = await TestClient.connect(srv.port);
    await fromAttacker.open();
    const refused = await fromAttacker.authPlain('alice', 'wonderland');
    expect(condition(refused)).toBe('temporary-auth-failure');
    expect(refused.getChildText('text')).toMatch(/try again later/);
    await fromAttacker.close();

    // The real alice, elsewhere, logs in and talks to bob as if nothing had happened.
    const alice = await connectFrom('127.0.0.2', srv.port);
    await alice.open();
    expect((await alice.authPlain('alice', 'wonderland')).name).toBe('success');
    expect((await alice.bind('home')).attrs.type).toBe('result');
    alice.send("<message to='bob@localhost/b' type='chat' id='hi'><body>still here</body></message>");
    expect((await bob.waitFor((el) => el.name === 'message')).getChildText('body')).toBe('still here');

    const metrics = await srv.metrics();
    expect(metricValue(metrics, 'vigil_auth_failures_total', { mechanism: 'PLAIN', reason: 'not-authorized' })).toBe(5);
    expect(metricValue(metrics, 'vigil_auth_failures_total', { mechanism: 'PLAIN', reason: 'temporary-auth-failure' })).toBe(26);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('lets bob in from the attacking address: its 5 failures were all for alice', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    expect((await c.authScram('bob', 'builder', 'sha256')).name).toBe('success');
    await c.close();
  });
});

describe('unknown accounts', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ c2s: { scramIterations: 4096 } });
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await srv.stop();
  });

  it('cost a PBKDF2 of the configured iterations under PLAIN before not-authorized, as a real one does', async () => {
    const dummy = jest.spyOn(credentials, 'dummyVerify');
    const c = await TestClient.connect(srv.port);
    await c.open();
    expect(condition(await c.authPlain('nobody', 'guess'))).toBe('not-authorized');
    expect(dummy).toHaveBeenCalledWith('guess', 4096);
    await c.close();
  });
});
