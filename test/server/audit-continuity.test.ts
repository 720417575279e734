import path from 'node:path';

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import { auditPaths } from '../../audit/writer.ts';
import { BankClient } from '../../protocol/client.ts';
import { LEDGER_FILE } from '../../server/data-dir.ts';
import { editLines, readLines } from '../audit/fixtures.ts';
import { credentialFor, startTestBank, tempDir, uniqueTxId } from '../helpers.ts';
import { spawnBank, spawnEntry, type Spawned } from '../process.ts';

const children: Spawned[] = [];
afterEach(() => {
  for (const spawned of children.splice(0)) spawned.child.kill('SIGKILL');
});

/** A bank's data dir after signup, login, a deposit, a withdrawal and another deposit, stopped cleanly. */
async function dayAtTheBank(): Promise<{ dataDir: string; withdrawalLine: number }> {
  const dataDir = tempDir();
  const bank = await spawnBank(dataDir);
  children.push(bank);
  const client = await BankClient.connect({
    host: '127.0.0.1',
    port: bank.port,
    credential: credentialFor(dataDir, 1),
  });
  await client.signup('zoe', 'password1');
  const session = await client.login('zoe', 'password1');
  await client.deposit(session, uniqueTxId(), 10_000);
  await client.withdraw(session, uniqueTxId(), 2_500);
  await client.deposit(session, uniqueTxId(), 100);
  client.close();
  bank.child.kill('SIGTERM');
  expect(await bank.exited).toBe(0);
  const plain = readLines(auditPaths(dataDir).plain);
  const withdrawalLine = plain.findIndex((line) => / action=withdraw amount=25\.00 outcome=ok/.test(line)) + 1;
  expect(withdrawalLine).toBeGreaterThan(0);
  return { dataDir, withdrawalLine };
}

/** Starts `npm run bank` on the data dir and returns how it ended and what it said. */
async function startRefused(dataDir: string): Promise<{ code: number | null; output: string }> {
  const bank = spawnEntry('server/main.ts', ['--port', '0', '--data-dir', dataDir, '--bcrypt-cost', '4']);
  children.push(bank);
  const code = await bank.exited;
  return { code, output: bank.output() };
}

describe('audit continuity at start', () => {
  it('refuses to serve when both logs were cut before a withdrawal the journal holds, naming the gap', async () => {
    const { dataDir, withdrawalLine } = await dayAtTheBank();
    const { encrypted, plain } = auditPaths(dataDir);
    const total = readLines(encrypted).length;
    for (const file of [encrypted, plain]) editLines(file, (lines) => lines.slice(0, withdrawalLine - 1));
    const refused = await startRefused(dataDir);
    expect(refused.code).toBe(1);
    expect(refused.output).not.toMatch(/bank listening/);
    const kept = withdrawalLine - 1;
    expect(refused.output).toMatch(
      new RegExp(
        `bank failed to start: the audit log ends at line ${kept}, but the ledger's journal .* lines ${kept + 1}-\\d+ are missing`,
      ),
    );
    expect(refused.output).toMatch(/npm run audit -- verify/);
    expect(total).toBeGreaterThan(kept);
  });

  it('serves again after a clean restart', async () => {
    const { dataDir } = await dayAtTheBank();
    const again = await spawnBank(dataDir);
    children.push(again);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('refuses a ledger whose chain head was edited or removed while its journal has movements', async () => {
    const test = await startTestBank();
    const client = await test.connect();
    await client.signup('ada', 'password1');
    const session = await client.login('ada', 'password1');
    await client.deposit(session, uniqueTxId(), 500);
    await test.stop();
    const db = new Database(path.join(test.dataDir, LEDGER_FILE));
    db.prepare('UPDATE audit_head SET line_number = line_number - 1').run();
    db.close();
    await expect(startTestBank({ dataDir: test.dataDir })).rejects.toMatchObject({
      code: 'ERR_AUDIT_HEAD',
      message: expect.stringMatching(/does not carry a valid MAC/),
    });
    const db2 = new Database(path.join(test.dataDir, LEDGER_FILE));
    db2.prepare('DELETE FROM audit_head').run();
    db2.close();
    await expect(startTestBank({ dataDir: test.dataDir })).rejects.toMatchObject({
      code: 'ERR_AUDIT_HEAD',
      message: expect.stringMatching(/journal holds 1 movement\(s\) but no audit chain head/),
    });
  });
});
