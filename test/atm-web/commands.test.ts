import fs from 'node:fs';
import path from 'node:path';

import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.ts';
import { spawnBank, spawnEntry, waitForOutput, spawnedProcesses } from '../process.ts';

const children = spawnedProcesses();
afterEach(children.killAll);

describe('commands', () => {
  it('npm start runs the bank and ATM 1 from an empty data dir, prints the URL, and stops cleanly on Ctrl-C', async () => {
    const dataDir = path.join(tempDir(), 'fresh-data');
    const started = spawnEntry('bin/start.ts', ['--data-dir', dataDir, '--bank-port', '0', '--port', '0']);
    children.track(started);
    const match = await waitForOutput(started, /ATM 1 ready: open (http:\/\/127\.0\.0\.1:\d+) in your browser/);
    const page = await request(match[1] ?? '').get('/login');
    expect(page.status).toBe(200);
    expect(page.text).toContain('Log in');
    for (const file of [
      'bank.keys',
      'atm-1.key',
      'audit.key',
      'ledger.db',
      'atm-1.session-secret',
      'atm-1-sessions.db',
    ]) {
      expect(fs.existsSync(path.join(dataDir, file)), file).toBe(true);
    }
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
    expect(fs.readFileSync(path.join(dataDir, 'audit', 'audit_log.txt'), 'utf8')).toMatch(/action=bank_stop/);
  });

  it('npm run atm -- N serves ATM N against a running bank once provisioned, and refuses a bad ATM number', async () => {
    const dataDir = tempDir();
    const bank = await spawnBank(dataDir);
    children.track(bank);
    const provision = spawnEntry('server/main.ts', ['provision-atm', '7', '--data-dir', dataDir]);
    expect(await provision.exited).toBe(0);
    // Its only output is the file's path (data on stdout, nothing else).
    expect(provision.output().trim()).toBe(path.join(dataDir, 'atm-7.key'));
    expect(fs.statSync(path.join(dataDir, 'atm-7.key')).mode & 0o777).toBe(0o600);
    const atm = spawnEntry('atm-web/main.ts', [
      '7',
      '--bank',
      `127.0.0.1:${bank.port}`,
      '--data-dir',
      dataDir,
      '--port',
      '0',
    ]);
    children.track(atm);
    const match = await waitForOutput(atm, /ATM 7 ready at (http:\/\/127\.0\.0\.1:\d+)/);
    expect((await request(match[1] ?? '').get('/login')).text).toContain('ATM 7');
    atm.child.kill('SIGTERM');
    expect(await atm.exited).toBe(0);

    const bad = spawnEntry('atm-web/main.ts', ['zero', '--data-dir', dataDir]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/the ATM number must be a whole number/);
  });

  it('npm run atm refuses to start without its key file and says what to do', async () => {
    const atm = spawnEntry('atm-web/main.ts', ['1', '--data-dir', tempDir(), '--port', '0']);
    expect(await atm.exited).toBe(1);
    expect(atm.output()).toMatch(
      /atm-1\.key not found: provision this ATM at the bank first \(npm run bank -- provision-atm 1/,
    );
  });

  it('npm run bank -- revoke-atm N writes the revocation list and refuses a bad number', async () => {
    const dataDir = tempDir();
    expect(await spawnEntry('server/main.ts', ['provision-atm', '4', '--data-dir', dataDir]).exited).toBe(0);
    const revoke = spawnEntry('server/main.ts', ['revoke-atm', '4', '--data-dir', dataDir]);
    expect(await revoke.exited).toBe(0);
    expect(revoke.output()).toContain('ATM 4 revoked');
    expect(fs.readFileSync(path.join(dataDir, 'revoked-atms'), 'utf8')).toMatch(/"atm": 4/);
    const again = spawnEntry('server/main.ts', [
      'provision-atm',
      '4',
      '--data-dir',
      dataDir,
      '--out',
      path.join(dataDir, 'x.key'),
    ]);
    expect(await again.exited).toBe(1);
    expect(again.output()).toContain('ATM 4 is revoked');
    const bad = spawnEntry('server/main.ts', ['revoke-atm', '70000', '--data-dir', dataDir]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain('N must be an ATM number from 0 to 65535');
  });
});
