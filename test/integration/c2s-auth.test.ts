import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';

let srv: TestServer;
beforeAll(async () => {
  // This suite fails alice's password on purpose more often than c2s.auth allows one address; the limits
  // themselves are auth-abuse.test.ts's subject.
  srv = await startServer({ c2s: { auth: { freeFailures: 100 } } }, { tls: true });
  await srv.addUser('alice', 'wonderland');
});
afterAll(() => srv.stop());

describe('client authentication', () => {
  it.each([['sha256'], ['sha1']] as const)('logs in with SCRAM-%s and binds a resource', async (hash) => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    const result = await c.authScram('alice', 'wonderland', hash);
    expect(result.name).toBe('success');
    const bound = await c.bind('desk');
    expect(bound.attrs.type).toBe('result');
    expect(c.jid).toBe('alice@localhost/desk');
    await c.close();
  });

  it('logs in with PLAIN when the server allows it without TLS', async () => {
    const c = await TestClient.connect(srv.port);
    const features = await c.open();
    expect(features.getChild('mechanisms')?.getChildElements().map((m) => m.getText())).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
    expect((await c.authPlain('alice', 'wonderland')).name).toBe('success');
    await c.close();
  });

  it('upgrades with STARTTLS, then authenticates with SCRAM over TLS', async () => {
    const c = await TestClient.connect(srv.port);
    const features = await c.open();
    expect(features.getChild('starttls')).toBeDefined();
    await c.startTls();
    const secured = await c.open();
    expect(secured.getChild('starttls')).toBeUndefined();
    expect((await c.authScram('alice', 'wonderland', 'sha256')).name).toBe('success');
    expect((await c.bind()).attrs.type).toBe('result');
    expect(c.jid).toMatch(/^alice@localhost\/.+/);
    await c.close();
  });

  it('ignores plaintext injected after <starttls/> in the same packet', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    const injected = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + Buffer.from('\0alice\0wonderland').toString('base64') + '</auth>';
    await c.startTls(injected);
    const features = await c.open();
    // Had the injected <auth/> been taken as sent over TLS, this stream would already be authenticated.
    expect(features.getChild('mechanisms')).toBeDefined();
    expect(features.getChild('bind')).toBeUndefined();
    expect(c.elements.find((el) => el.name === 'success')).toBeUndefined();
    expect((await c.authScram('alice', 'wonderland', 'sha256')).name).toBe('success');
    await c.close();
  });

  it('answers a wrong password with <not-authorized/> and counts the failure', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    const failure = await c.authScram('alice', 'wrong', 'sha256');
    expect(failure.name).toBe('failure');
    expect(failure.getChild('not-authorized')).toBeDefined();
    const plainFailure = await c.authPlain('alice', 'wrong');
    expect(plainFailure.getChild('not-authorized')).toBeDefined();
    const metrics = await srv.metrics();
    expect(metricValue(metrics, 'vigil_auth_failures_total', { mechanism: 'PLAIN', reason: 'not-authorized' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'vigil_auth_failures_total', { mechanism: 'SCRAM-SHA-256', reason: 'not-authorized' })).toBeGreaterThanOrEqual(1);
    await c.close();
  });

  it('does not reveal whether a user exists', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    const failure = await c.authScram('nobody', 'x', 'sha256');
    expect(failure.getChild('not-authorized')).toBeDefined();
    await c.close();
  });

  it('closes the stream with <policy-violation/> after too many failures', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    for (let i = 0; i < 3; i++) await c.authPlain('alice', `wrong${i}`);
    expect((await c.streamError()).condition).toBe('policy-violation');
    await c.closed;
  });

  it('rejects an unknown mechanism with <invalid-mechanism/>', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
    const failure = await c.waitFor((el) => el.name === 'failure');
    expect(failure.getChild('invalid-mechanism')).toBeDefined();
    await c.close();
  });

  it('rejects bad base64 with <incorrect-encoding/>', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!not base64</auth>");
    const failure = await c.waitFor((el) => el.name === 'failure');
    expect(failure.getChild('incorrect-encoding')).toBeDefined();
    expect(metricValue(await srv.metrics(), 'vigil_auth_failures_total', { mechanism: 'PLAIN', reason: 'incorrect-encoding' })).toBeGreaterThanOrEqual(1);
    await c.close();
  });

  it('gives a second bind of the same full JID the resource and closes the old one with <conflict/>', async () => {
    const first = await TestClient.login(srv.port, 'alice', 'wonderland', 'phone');
    const second = await TestClient.login(srv.port, 'alice', 'wonderland', 'phone');
    expect(second.jid).toBe('alice@localhost/phone');
    expect((await first.streamError()).condition).toBe('conflict');
    await first.closed;
    const pong = await second.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(pong.attrs.type).toBe('result');
    await second.close();
    expect(metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'conflict' })).toBe(1);
  });
});

describe('STARTTLS required', () => {
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startServer({ c2s: { allowPlainWithoutTls: false } }, { tls: true });
    await strict.addUser('bob', 'builder');
  });
  afterAll(() => strict.stop());

  it('offers no mechanism before TLS and refuses auth with <encryption-required/>', async () => {
    const c = await TestClient.connect(strict.port);
    const features = await c.open();
    expect(features.getChild('starttls')?.getChild('required')).toBeDefined();
    expect(features.getChild('mechanisms')).toBeUndefined();
    const failure = await c.authPlain('bob', 'builder');
    expect(failure.getChild('encryption-required')).toBeDefined();
    await c.close();
  });

  it('accepts PLAIN after STARTTLS', async () => {
    const c = await TestClient.connect(strict.port);
    await c.open();
    await c.startTls();
    await c.open();
    expect((await c.authPlain('bob', 'builder')).name).toBe('success');
    await c.close();
  });
});
