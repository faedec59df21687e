import { stringify } from 'yaml';
import type { OptionInfo } from './describe.js';

/**
 * docs/configuration.md and config/vigil.example.yaml are both rendered from describeSchema(), so the schema
 * stays the one place an option is documented; test/unit/config-docs.test.ts fails when they drift.
 */

const WIDTH = 100;

/** What a group is for; the schema documents only leaves. Keyed by dotted group path. */
const GROUP_NOTES: Record<string, string> = {
  listeners: 'Sockets Vigil listens on: c2s for XMPP clients over TCP, websocket for web clients (RFC 7395, usually behind nginx), s2s for other servers, http for /metrics, /healthz, /readyz and the admin endpoints.',
  websocket: 'XMPP over WebSocket: the proxies trusted for X-Forwarded-*, the URL published by discovery, and draining. Each WebSocket message is bounded by c2s.maxStanzaSize (plus 4 KiB, so the parser refuses one just over with <policy-violation/>).',
  tls: 'Certificates for STARTTLS.',
  storage: 'Where accounts, rosters and offline messages are kept.',
  c2s: 'Client-to-server streams: stanza size, authentication, offline messages.',
  s2s:
    'Federation with other servers: TLS and authentication (SASL EXTERNAL with a certificate, or dialback), how peers are found, and the per-domain queue. ' +
    'Stanzas written to a peer that closes or dies before it proved it read them (an answered ping) are sent again, once, on the next connection to that domain, with s2s.queue.timeout counted again from the close; they bounce if it runs out first, or if that connection dies too. A peer that read one just before dying may see it twice, never none: server streams have no acks, so at least once is what can be promised.',
  sm: 'XEP-0198 stream management for clients: acks, resumption after a lost connection, and what a hibernated session keeps. SIGHUP applies the queue and ack settings to live sessions; a session keeps the resume window it negotiated.',
  watchdog:
    'Dead-peer detection, with one policy per connection kind: c2s (clients over TCP), websocket (clients over WebSocket), s2sIn (streams peer servers open to us) and s2sOut (ours to them). ' +
    'SIGHUP reloads these policies without a restart.',
  limits: 'Capacity the server is sized for.',
  shutdown: 'Graceful shutdown.',
  log: 'Logging.',
};

const GENERATED = 'Generated from src/config/schema.ts by `npm run docs`; edit the schema, not this file.';

function topGroups(options: readonly OptionInfo[]): Map<string, OptionInfo[]> {
  const groups = new Map<string, OptionInfo[]>();
  for (const option of options) {
    const top = option.path.split('.')[0];
    const list = groups.get(top) ?? [];
    list.push(option);
    groups.set(top, list);
  }
  return groups;
}

/** Markdown table cell: no pipes, no newlines, and XML like <r/> shown as code rather than eaten as HTML. */
function cell(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/<\/?[A-Za-z][^<>]*>/g, (tag) => `\`${tag}\``)))
    .join('`')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
}

function code(value: string | number | boolean): string {
  const text = String(value);
  return text === '' ? '`""` (empty)' : `\`${text}\``;
}

export function renderMarkdown(options: readonly OptionInfo[]): string {
  const out: string[] = [
    '# Configuration',
    '',
    `<!-- ${GENERATED} -->`,
    '',
    'Vigil reads one YAML file, named by `--config <file>` or by the `VIGIL_CONFIG` environment variable.',
    'Every option may be left out, and then has the default below.',
    '[`config/vigil.example.yaml`](../config/vigil.example.yaml) lists every option at its default, with these descriptions.',
    '',
    '- **Durations** are strings such as `"90s"`, `"5m"`, `"1h30m"`, `"250ms"` or `"0"` (which, where an option says so, turns it off).',
    '  A bare number such as `6` is an error (seconds or milliseconds?): write the unit. `0` alone is accepted, zero in any unit.',
    '- **Sizes** are strings such as `"256KiB"` or `"1MiB"` (KiB, MiB, GiB count in 1024s; kB, MB, GB in 1000s), or a number of bytes.',
    '- **Booleans** are `true` or `false`, unquoted; `yes`, `on`, `1` or `"true"` are errors. From the environment, the strings `true` or `false`.',
    "- **Paths** (the options of format path) written in the file are relative to the file's directory; from the environment, to the working directory.",
    '- **Environment**: every option also has an environment variable, named in the tables; it wins over the file.',
    '- **Errors**: an unknown key or a bad value stops Vigil at start, with one line per problem naming the key path',
    '  (for example `watchdog.c2s.probeAfter`).',
    '- **Reload**: SIGHUP (`systemctl reload vigil`) re-reads the file and applies the `watchdog` policies;',
    '  every other option takes effect at the next start.',
  ];
  for (const [group, list] of topGroups(options)) {
    out.push('', `## \`${group}\``, '');
    if (GROUP_NOTES[group]) out.push(GROUP_NOTES[group], '');
    out.push('| Option | Default | Format | Env | Description |', '| --- | --- | --- | --- | --- |');
    for (const o of list) {
      out.push(`| \`${o.path}\` | ${code(o.default)} | ${cell(o.format)} | \`${o.env}\` | ${cell(o.doc)} |`);
    }
  }
  return out.join('\n') + '\n';
}

/** `# ` comment lines of at most WIDTH columns (a single word longer than that stays whole). */
function comment(text: string, indent: string): string[] {
  const room = Math.max(20, WIDTH - indent.length - 2);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.map((l) => `${indent}# ${l}`);
}

/** A blank line between entries, but none right under a group's key. */
function gap(out: string[]): void {
  if (!/^\s*[A-Za-z0-9_]+:$/.test(out[out.length - 1])) out.push('');
}

function scalar(value: string | number | boolean): string {
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

export function renderExampleYaml(options: readonly OptionInfo[]): string {
  const out: string[] = [
    '# Vigil configuration: every option at its default value.',
    ...comment(GENERATED, ''),
    ...comment(
      'Keep only what you change and give the file with --config or VIGIL_CONFIG. Durations are strings like ' +
        '"90s", "5m" or "0" (a bare number is an error); sizes like "256KiB"; booleans true or false. Relative paths ' +
        "are relative to this file's directory. The environment variable named under each option wins over this " +
        'file. See docs/configuration.md.',
      '',
    ),
  ];
  let open: string[] = [];
  for (const o of options) {
    const keys = o.path.split('.');
    const groups = keys.slice(0, -1);
    let same = 0;
    while (same < open.length && same < groups.length && open[same] === groups[same]) same++;
    for (let depth = same; depth < groups.length; depth++) {
      const indent = '  '.repeat(depth);
      const note = GROUP_NOTES[groups.slice(0, depth + 1).join('.')];
      gap(out);
      if (note) out.push(...comment(note, indent));
      out.push(`${indent}${groups[depth]}:`);
    }
    open = groups;
    const indent = '  '.repeat(groups.length);
    gap(out);
    out.push(...comment(o.doc, indent), ...comment(`Format: ${o.format}. Env: ${o.env}.`, indent));
    out.push(`${indent}${keys[keys.length - 1]}: ${scalar(o.default)}`);
  }
  return out.join('\n') + '\n';
}
