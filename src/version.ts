import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** From package.json, which sits two levels above both src/ and dist/src/. */
function readVersion(): string {
  for (const up of ['..', '../..']) {
    try {
      return (JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // try the next level
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
