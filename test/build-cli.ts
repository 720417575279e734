import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Vitest global setup: compiles the command-line programs (as `npm install` does) before any test runs. */
export default function setup(): void {
  execFileSync(process.execPath, [path.join(import.meta.dirname, '..', 'cli', 'build.mjs')], { stdio: 'inherit' });
}
