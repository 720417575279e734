/**
 * The console log of a real bank process writing into a file: one JSON line
 * per event, on disk as soon as it is logged (not when 4 KiB have piled up
 * or the process exits), and failed logins name the account only when it exists.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { BankClient } from '../../protocol/client.ts';
import { credentialFor, tempDir } from '../helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const children: Array<{ kill(signal: NodeJS.Signals): boolean }> = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

async function until<T>(read: () => T | null, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the bank’s log written to a file', () => {
  it('has each event on disk at once, one JSON object per line, naming the account of a failed login', async () => {
    const dataDir = tempDir();
    const logFile = path.join(dataDir, 'bank.log');
    const out = fs.openSync(logFile, 'w');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'server/main.ts', '--port', '0', '--data-dir', dataDir, '--bcrypt-cost', '4'],
      { cwd: ROOT, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    children.push(child);
    const log = (): string => fs.readFileSync(logFile, 'utf8');
    const port = await until(() => /bank listening on 127\.0\.0\.1:(\d+)/.exec(log())?.[1] ?? null, 'the bank');
    const client = await BankClient.connect({
      host: '127.0.0.1',
      port: Number(port),
      credential: credentialFor(dataDir, 3),
    });
    try {
      await client.signup('logged', 'password1');
      await client.login('logged', 'not-the-password').catch(() => undefined);
      await client.login('nobody-here', 'password1').catch(() => undefined);
      // The process is still running: the lines must already be in the file.
      const failures = await until(() => {
        const lines = log()
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        const failed = lines.filter((line) => line.msg === 'login failed');
        return failed.length === 2 ? failed : null;
      }, 'the failed logins in the log file');
      expect(failures.map((line) => [line.user, line.outcome, line.atm])).toEqual([
        ['logged', 'bad_password', 3],
        [undefined, 'unknown_user', 3],
      ]);
      expect(log()).not.toContain('nobody-here');
      expect(log()).not.toContain('not-the-password');
    } finally {
      client.close();
    }
  }, 60_000);
});
