// One XEP-0198 client for the link-cut chaos test, run inside a network namespace with `ip netns exec`.
// Standalone (only saxes, already a dependency): logs in with PLAIN, binds, sends initial presence, enables
// stream management with resume='true', then counts every stanza it handles (h) and answers each <r/> with
// <a h/>. It never drops or merges what it receives: a stanza sent twice is counted twice, so the test sees it.
// Commands on stdin, one a line: mute (stop answering <r/>, still counting), resume (a new TCP connection that
// resumes with the previd and h it holds, answering <r/> again), ping (an iq round trip to the server), report,
// close. Events on stdout, one JSON object a line.
// usage: node sm-client.cjs HOST PORT USER PASSWORD RESOURCE
'use strict';
const net = require('node:net');
const readline = require('node:readline');
const { SaxesParser } = require('saxes');

const [host, portText, user, password, resource] = process.argv.slice(2);
const port = Number(portText);
const SM = 'urn:xmpp:sm:3';
const STEP_TIMEOUT = 10_000;
const CONNECT_ATTEMPTS = 50;
const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');

/** What the client handled since <enabled/>, across every connection: its XEP-0198 state. */
const sm = { on: false, h: 0, previd: '', jid: '', bodies: [], answer: true };
let current;
let pings = 0;

const out = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** One TCP connection and the XML stream(s) on it; a new parser for every stream restart. */
class Stream {
  constructor(socket) {
    this.socket = socket;
    this.queue = [];
    this.waiters = [];
    this.abandoned = false;
    this.restart();
    socket.setEncoding('utf8');
    socket.on('data', (text) => {
      if (!this.abandoned) this.parser.write(text);
    });
    socket.on('error', (err) => {
      if (!this.abandoned) out({ ev: 'socket-error', message: err.message });
    });
    socket.on('close', () => {
      if (!this.abandoned) out({ ev: 'socket-closed' });
    });
  }

  restart() {
    const parser = new SaxesParser();
    const stack = [];
    parser.on('opentag', (node) => {
      const el = { name: node.name, attrs: { ...node.attributes }, children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1].children.push(el);
      stack.push(el);
    });
    parser.on('text', (t) => {
      if (stack.length > 1) stack[stack.length - 1].text += t;
    });
    parser.on('closetag', () => {
      const el = stack.pop();
      if (stack.length === 1) this.stanza(el);
      else if (stack.length === 0) out({ ev: 'stream-end' });
    });
    parser.on('error', (err) => {
      if (!this.abandoned) out({ ev: 'parse-error', message: err.message });
      this.abandoned = true;
    });
    this.parser = parser;
  }

  /** A top-level element: counted and acked here, at once and in order, then queued for whoever waits. */
  stanza(el) {
    if (el.name === 'enabled' && el.attrs.xmlns === SM) sm.on = true;
    if (sm.on && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) {
      sm.h = (sm.h + 1) % 2 ** 32;
      const body = el.name === 'message' ? el.children.find((c) => c.name === 'body') : undefined;
      if (body) sm.bodies.push(body.text);
      if (el.name === 'presence') out({ ev: 'presence', from: el.attrs.from, type: el.attrs.type ?? null });
    }
    if (el.name === 'r' && el.attrs.xmlns === SM && sm.answer) this.send(`<a xmlns='${SM}' h='${sm.h}'/>`);
    if (el.name === 'stream:error') out({ ev: 'stream-error', condition: el.children.find((c) => c.name !== 'text')?.name ?? '' });
    this.queue.push(el);
    for (const w of [...this.waiters]) w();
  }

  send(text) {
    if (!this.abandoned) this.socket.write(text);
  }

  waitFor(match, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.queue.findIndex(match);
        if (i < 0) return false;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(this.queue.splice(i, 1)[0]);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what}`));
      }, STEP_TIMEOUT);
      if (!check()) this.waiters.push(check);
    });
  }

  async open() {
    this.restart();
    this.send(header);
    return this.waitFor((el) => el.name === 'stream:features', 'stream features');
  }

  async authenticate() {
    await this.open();
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    const answer = await this.waitFor((el) => el.name === 'success' || el.name === 'failure', 'SASL outcome');
    if (answer.name !== 'success') throw new Error('authentication failed');
    await this.open();
  }

  /** Stop reading and writing this connection for good: nothing more on it is handled or counted. */
  abandon() {
    this.abandoned = true;
    this.socket.destroy();
  }
}

/** A TCP connection, retried a bounded number of times: a link just set up may refuse the first attempts. */
async function connect() {
  let last;
  for (let attempt = 0; attempt < CONNECT_ATTEMPTS; attempt++) {
    try {
      return await new Promise((resolve, reject) => {
        const socket = net.connect({ host, port, timeout: 2000 });
        socket.once('connect', () => {
          socket.setTimeout(0);
          socket.removeAllListeners('error');
          resolve(new Stream(socket));
        });
        socket.once('timeout', () => {
          socket.destroy();
          reject(new Error('connect timed out'));
        });
        socket.once('error', reject);
      });
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

async function login() {
  const s = await connect();
  current = s;
  await s.authenticate();
  s.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${esc(resource)}</resource></bind></iq>`);
  const bound = await s.waitFor((el) => el.name === 'iq' && el.attrs.id === 'bind1', 'bind result');
  const jid = bound.children.find((c) => c.name === 'bind')?.children.find((c) => c.name === 'jid')?.text;
  if (bound.attrs.type !== 'result' || !jid) throw new Error('bind failed');
  sm.jid = jid;
  s.send('<presence/>');
  s.send(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await s.waitFor((el) => el.attrs.xmlns === SM && (el.name === 'enabled' || el.name === 'failed'), '<enabled/>');
  if (enabled.name !== 'enabled' || !enabled.attrs.id) throw new Error('stream management not enabled');
  sm.previd = enabled.attrs.id;
  out({ ev: 'enabled', id: sm.previd, jid });
}

async function resume() {
  current.abandon();
  const s = await connect();
  current = s;
  await s.authenticate();
  const h = sm.h;
  sm.answer = true;
  s.send(`<resume xmlns='${SM}' previd='${sm.previd}' h='${h}'/>`);
  const reply = await s.waitFor((el) => el.attrs.xmlns === SM && (el.name === 'resumed' || el.name === 'failed'), '<resumed/>');
  out({ ev: reply.name, previd: reply.attrs.previd ?? null, h: reply.attrs.h ?? null, sentH: h });
}

async function ping() {
  const id = `ping${++pings}`;
  current.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const reply = await current.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
  out({ ev: 'pong', id, type: reply.attrs.type });
}

function fail(err) {
  out({ ev: 'fatal', message: err.message });
  process.exit(1);
}

const commands = { resume, ping, report: async () => out({ ev: 'report', h: sm.h, bodies: sm.bodies }) };
// Keep counting what arrives but leave <r/> unanswered until the next resume: stanzas handled yet unacked.
commands.mute = async () => {
  sm.answer = false;
  out({ ev: 'muted', h: sm.h });
};
commands.close = async () => {
  current.send('</stream:stream>');
  current.socket.end();
  setTimeout(() => process.exit(0), 200);
};

login().then(() => {
  // One command at a time, in order.
  let chain = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const cmd = commands[line.trim()];
    if (!cmd) return out({ ev: 'unknown-command', line });
    chain = chain.then(cmd).catch(fail);
  });
  process.stdin.on('end', () => process.exit(0));
}, fail);
