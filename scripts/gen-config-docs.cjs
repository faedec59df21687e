#!/usr/bin/env node
'use strict';
/**
 * Writes docs/configuration.md and config/vigil.example.yaml from the config schema.
 * Reads the compiled code in dist/, so build first: `npm run docs` does both.
 */
const { mkdirSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
let describe, render;
try {
  describe = require(path.join(root, 'dist/src/config/describe.js'));
  render = require(path.join(root, 'dist/src/config/render.js'));
} catch (err) {
  console.error(`gen-config-docs: cannot load dist/src/config (${err.message}); run \`npm run build\` first, or \`npm run docs\`.`);
  process.exit(1);
}

const options = describe.describeSchema();
const outputs = [
  ['docs/configuration.md', render.renderMarkdown(options)],
  ['config/vigil.example.yaml', render.renderExampleYaml(options)],
];
for (const [file, text] of outputs) {
  const target = path.join(root, file);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, text);
  console.log(`wrote ${file} (${options.length} options)`);
}
