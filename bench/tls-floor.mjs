// What Node's own TLS costs on this machine with no XMPP on top: the floor under Vigil's TLS figures.
// A bare server takes N connections the way Vigil takes STARTTLS (a plain byte each way, then a TLSSocket in
// place) and echoes one message; the client is made like the harness's (tls.connect, a context per
// connection) and holds every connection. Also the same without TLS. Prints logins/s, CPU per connection on
// each side, and the server's RSS per held connection after a full GC, with the part of it in malloc's heap
// (OpenSSL and Node's C++: with TLS, a 64 KiB input buffer per connection, of which only the pages touched
// count) and the V8 heap's. With --resume every TLS client after the first offers the first one's TLS 1.3
// session ticket, as a phone reconnecting does: what resumption saves each side.
//   node bench/tls-floor.mjs [connections=10000] [--resume]
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { vigilTlsContext } from './lib/tls-context.mjs';

const N = Number(process.argv[2] ?? 10000);
const RESUME = process.argv.includes('--resume');
const CONCURRENCY = 200;
if (!(N > 0 && N <= 19900)) {
  console.error('usage: node bench/tls-floor.mjs [connections 1..19900] [--resume]');
  process.exit(2);
}

const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
/** Resident KiB of the [heap] mapping: glibc's main arena, where OpenSSL's and Node's own C++ allocations live. */
const mallocKiB = () => {
  let inHeap = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]');
    else if (inHeap && line.startsWith('Rss:')) return Number(line.split(/\s+/)[1]);
  }
  return 0;
};
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (process.argv[3] === 'server') {
  const context = await vigilTlsContext();
  const useTls = process.argv[4] === 'tls';
  const held = [];
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      socket.write('y');
      const stream = useTls ? new tls.TLSSocket(socket, { isServer: true, secureContext: context }) : socket;
      stream.on('data', (d) => stream.write(d));
      stream.on('error', () => undefined);
      held.push(stream);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'gc') for (let i = 0; i < 3; i++) global.gc();
    process.send({ cpu: cpuSeconds(), rss: rssKiB(), malloc: mallocKiB(), v8Heap: process.memoryUsage().heapTotal / 1024 });
  });
} else {
  const ask = (child, m) => new Promise((resolve) => { child.once('message', resolve); child.send(m); });
  const run = async (mode) => {
    const child = fork(new URL(import.meta.url).pathname, [String(N), 'server', mode], { execArgv: ['--expose-gc'] });
    const { port } = await new Promise((resolve) => child.once('message', resolve));
    const before = await ask(child, 'gc');
    const clientBefore = cpuSeconds();
    const started = Date.now();
    const held = [];
    let ticket;
    let resumed = 0;
    await new Promise((resolve, reject) => {
      let next = 0;
      const timer = setTimeout(() => reject(new Error(`tls-floor: ${held.length} of ${N} in 120 s`)), 120_000);
      const open = () => {
        if (next >= N) return;
        next++;
        const raw = net.connect(port, '127.0.0.1', () => raw.write('x'));
        raw.on('error', reject);
        raw.once('data', () => {
          const stream = mode === 'tls' ? tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false, session: RESUME ? ticket : undefined }) : raw;
          if (mode === 'tls') stream.once('session', (s) => (ticket ??= s));
          stream.once('data', () => {
            if (mode === 'tls' && stream.isSessionReused()) resumed++;
            held.push(stream);
            if (held.length === N) {
              clearTimeout(timer);
              resolve();
            } else open();
          });
          stream.write('ping');
        });
      };
      for (let i = 0; i < CONCURRENCY; i++) open();
    });
    const seconds = (Date.now() - started) / 1000;
    const clientCpu = cpuSeconds() - clientBefore;
    const after = await ask(child, 'gc');
    child.kill();
    for (const s of held) s.destroy();
    return { ...(mode === 'tls' ? { resumed } : {}), loginsPerSecond: Math.round(N / seconds), serverMsEach: +(((after.cpu - before.cpu) / N) * 1000).toFixed(3), clientMsEach: +((clientCpu / N) * 1000).toFixed(3), serverRssKiBEach: +((after.rss - before.rss) / N).toFixed(1), mallocKiBEach: +((after.malloc - before.malloc) / N).toFixed(1), v8HeapKiBEach: +((after.v8Heap - before.v8Heap) / N).toFixed(1) };
  };
  const plain = await run('plain');
  const withTls = await run('tls');
  console.log(JSON.stringify({ bench: 'tls-floor', connections: N, ...(RESUME ? { resume: true } : {}), plain, tls: withTls }));
}
