/**
 * bin/atm's launcher (cli/atm-start.ts): the bundle is loaded through a V8
 * code cache built at install time, named after the bundle's content hash,
 * and a cache V8 refuses costs only speed, never a wrong answer.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.ts';
import { atm, atmDir, startCliBank, type CliBank } from './harness.ts';

const DIST = path.resolve(import.meta.dirname, '..', '..', 'dist');

/** The bundle the launcher names (`atm-<hash>.cjs`), from the launcher's own text. */
function bundleName(launcher = path.join(DIST, 'atm.cjs')): string {
  const match = /"(atm-[A-Z0-9]+\.cjs)"/.exec(fs.readFileSync(launcher, 'utf8'));
  if (!match?.[1]) throw new Error('the launcher names no bundle');
  return match[1];
}

describe('bin/atm launcher', () => {
  let bank: CliBank;
  /** ted's ATM: the auth file and ted's card. */
  let dir: string;
  beforeAll(async () => {
    bank = await startCliBank();
    dir = atmDir(bank);
    expect((await atm(dir, [...bank.at, '-a', 'ted', '-n', '10.00'])).code).toBe(0);
  });
  afterAll(async () => {
    await bank.stop();
  });

  it('loads a bundle named after its content hash, with a code cache V8 accepts', () => {
    const file = path.join(DIST, bundleName());
    const wrapped = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'utf8')}\n})`;
    const script = new vm.Script(wrapped, { filename: file, cachedData: fs.readFileSync(`${file}.cache`) });
    expect(script.cachedDataRejected).toBe(false);
  });

  it('answers exactly as without a cache when its code cache is garbage', async () => {
    const copy = tempDir('atm-dist-');
    const name = bundleName();
    fs.copyFileSync(path.join(DIST, 'atm.cjs'), path.join(copy, 'atm.cjs'));
    fs.copyFileSync(path.join(DIST, name), path.join(copy, name));
    fs.writeFileSync(path.join(copy, `${name}.cache`), Buffer.alloc(4096, 0x5a));
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(copy, 'atm.cjs'), ...bank.at, '-a', 'ted', '-g'],
        { cwd: dir },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
      );
    });
    expect(run).toEqual({ code: 0, stdout: '{"account":"ted","balance":10.00}\n', stderr: '' });
  });

  it('does not load NODE_EXTRA_CA_CERTS (it opens no TLS connection): no warning for a missing file', async () => {
    const run = await atm(dir, [...bank.at, '-a', 'ted', '-g'], 30_000, {
      NODE_EXTRA_CA_CERTS: path.join(dir, 'no-such-bundle.pem'),
    });
    expect(run).toEqual({ code: 0, stdout: '{"account":"ted","balance":10.00}\n', stderr: '' });
  });
});
