// Stream parser throughput: ~20 MB of realistic client stanzas fed in 16 KiB chunks, as a socket would deliver
// them, through the compiled StreamParser. Prints one JSON line. Build first: npx tsc -p tsconfig.build.json
//   node bench/parser-throughput.mjs [megabytes]
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';

const TARGET_BYTES = Math.round(Number(process.argv[2] ?? 20) * 1e6);
const CHUNK = 16 * 1024;

let StreamParser;
try {
  ({ StreamParser } = await import(new URL('../dist/src/xmpp/parser.js', import.meta.url).href));
} catch (err) {
  console.error(`cannot load dist/src/xmpp/parser.js (run: npx tsc -p tsconfig.build.json): ${err.message}`);
  process.exit(2);
}

const HEADER =
  "<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

/** A deterministic mix of what a busy client sends: chat, groupchat, presence with caps, iq get/set, keepalives. */
function stanza(n) {
  const id = `id-${n.toString(36)}`;
  switch (n % 8) {
    case 0:
    case 1:
    case 2:
      return `<message from='juliet@example.com/balcony' to='romeo${n % 50}@example.net' type='chat' id='${id}' xml:lang='en'><body>Message ${n}: wherefore art thou, Romeo? &amp; &lt;3 — café 中文 😀 ${'lorem ipsum dolor sit amet '.repeat(1 + (n % 6))}</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`;
    case 3:
      return `<presence id='${id}'><show>away</show><status>Ünïcödé status &apos;${n}&apos; 🎉</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.com/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`;
    case 4:
      return `<iq type='get' id='${id}' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`;
    case 5:
      return `<iq type='set' id='${id}'><query xmlns='jabber:iq:roster'><item jid='contact${n}@example.org' name='Contact &quot;${n}&quot;' subscription='both'><group>Friends</group><group>Work</group></item></query></iq>`;
    case 6:
      return `<message to='room@conference.example.com' type='groupchat' id='${id}'><body><![CDATA[<code> & "raw" text ]]> ${n}</body><x xmlns='jabber:x:oob'><url>https://example.com/f/${n}.png</url></x></message>`;
    default:
      return `\n<presence to='room@conference.example.com/nick${n % 20}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='20'/></x></presence> `;
  }
}

function buildStream(targetBytes) {
  const parts = [HEADER];
  let bytes = Buffer.byteLength(HEADER);
  let count = 0;
  while (bytes < targetBytes) {
    const s = stanza(count++);
    parts.push(s);
    bytes += Buffer.byteLength(s);
  }
  parts.push('</stream:stream>');
  return { data: Buffer.from(parts.join(''), 'utf8'), count };
}

function run(data) {
  let stanzas = 0;
  let ended = false;
  let error = null;
  const parser = new StreamParser(
    {
      onStreamStart() {},
      onStanza() {
        stanzas++;
      },
      onStreamEnd() {
        ended = true;
      },
      onError(condition, text) {
        error ??= `${condition}: ${text}`;
      },
    },
    { maxStanzaSize: 256 * 1024 },
  );
  const start = performance.now();
  for (let off = 0; off < data.length && error === null; off += CHUNK) parser.write(data.subarray(off, off + CHUNK));
  const seconds = (performance.now() - start) / 1000;
  return { stanzas, ended, error, seconds };
}

// Warm the JIT on a small stream first; it is not measured.
run(buildStream(1e6).data);

const { data, count } = buildStream(TARGET_BYTES);
const result = run(data);
if (result.error !== null || !result.ended || result.stanzas !== count) {
  console.error(`parse failed: ${JSON.stringify({ ...result, expectedStanzas: count })}`);
  process.exit(1);
}
console.log(
  JSON.stringify({
    bytes: data.length,
    chunkBytes: CHUNK,
    stanzas: result.stanzas,
    seconds: Number(result.seconds.toFixed(3)),
    mbPerSec: Number((data.length / 1e6 / result.seconds).toFixed(2)),
    stanzasPerSec: Math.round(result.stanzas / result.seconds),
    node: process.version,
  }),
);
