/**
 * Audit continuity at start, on both ledgers: the ledger stores the keyed
 * chain head of the bank's (with PostgreSQL: each node's) audit files in the
 * transaction of every group that moves money, and a bank or node whose
 * files do not reach that head refuses to start.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import { auditPaths } from '../../audit/writer.ts';
import { BankClient } from '../../protocol/client.ts';
import { LEDGER_FILE } from '../../server/data-dir.ts';
import { SHARED_KEY_FILES } from '../../cluster/cluster.ts';
import { editLines, readLines } from '../audit/fixtures.ts';
import { credentialFor, startTestBank, tempDir, uniqueTxId } from '../helpers.ts';
import { SKIP_POSTGRES_REASON, createTestDatabase, queryRows, type TestDatabase } from '../postgres.ts';
import { spawnBank, spawnEntry, type Spawned } from '../process.ts';

const children: Spawned[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const spawned of children.splice(0)) spawned.child.kill('SIGKILL');
  for (const database of databases.splice(0)) await database.drop();
});

/**
 * One ledger kind: where a bank's (or node's) data dir keeps its head, how to
 * start a bank on it as a process, and how to edit the head behind its back.
 */
type Backend = {
  name: 'sqlite' | 'postgres';
  skip: string;
  /** A fresh ledger; returns the extra `npm run bank` arguments of node `n` on it. */
  prepare(): Promise<(node: string) => string[]>;
};

const backends: Backend[] = [
  { name: 'sqlite', skip: '', prepare: async () => () => [] },
  {
    name: 'postgres',
    skip: SKIP_POSTGRES_REASON,
    async prepare() {
      const database = await createTestDatabase();
      databases.push(database);
      return (node) => ['--ledger', database.url, '--node-id', node];
    },
  },
];

/** A data dir after signup, login, a deposit, a withdrawal and another deposit, stopped cleanly. */
async function dayAtTheBank(
  args: string[],
  username: string,
  dataDir = tempDir(),
): Promise<{ dataDir: string; withdrawalLine: number }> {
  const bank = await spawnBank(dataDir, args);
  children.push(bank);
  const client = await BankClient.connect({
    host: '127.0.0.1',
    port: bank.port,
    credential: credentialFor(dataDir, 1),
  });
  await client.signup(username, 'password1');
  const session = await client.login(username, 'password1');
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

/** A second node's data dir holding copies of the first's shared keys, as an operator makes one. */
function nodeDirBeside(first: string): string {
  const dataDir = tempDir();
  for (const file of SHARED_KEY_FILES) fs.copyFileSync(path.join(first, file), path.join(dataDir, file));
  return dataDir;
}

/** Starts `npm run bank` on the data dir and returns how it ended and what it said. */
async function startRefused(dataDir: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const bank = spawnEntry('server/main.ts', ['--port', '0', '--data-dir', dataDir, '--bcrypt-cost', '4', ...args]);
  children.push(bank);
  const code = await bank.exited;
  return { code, output: bank.output() };
}

function cutBefore(dataDir: string, line: number): void {
  const { encrypted, plain } = auditPaths(dataDir);
  for (const file of [encrypted, plain]) editLines(file, (lines) => lines.slice(0, line - 1));
}

describe.each(backends)('audit continuity at start ($name ledger)', ({ name, skip, prepare }) => {
  it.skipIf(skip)(
    'refuses to serve when both logs were cut before a withdrawal the journal holds, naming the gap; another node is unaffected',
    { timeout: 60_000 },
    async () => {
      const argsOf = await prepare();
      const { dataDir, withdrawalLine } = await dayAtTheBank(argsOf('node-1'), 'zoe');
      // With PostgreSQL, a second node on the same ledger keeps its own chain and its own head.
      const other = name === 'postgres' ? await dayAtTheBank(argsOf('node-2'), 'yann', nodeDirBeside(dataDir)) : null;
      const total = readLines(auditPaths(dataDir).encrypted).length;
      cutBefore(dataDir, withdrawalLine);
      const refused = await startRefused(dataDir, argsOf('node-1'));
      expect(refused.code).toBe(1);
      expect(refused.output).not.toMatch(/bank listening/);
      const kept = withdrawalLine - 1;
      expect(refused.output).toMatch(
        new RegExp(
          `bank failed to start: the audit log ends at line ${kept}, but the ledger's .* lines ${kept + 1}-\\d+ are missing`,
        ),
      );
      expect(refused.output).toMatch(/npm run audit -- verify/);
      expect(total).toBeGreaterThan(kept);
      if (other) {
        const again = await spawnBank(other.dataDir, argsOf('node-2'));
        children.push(again);
        again.child.kill('SIGTERM');
        expect(await again.exited).toBe(0);
      }
    },
  );

  it.skipIf(skip)('serves again after a clean restart', { timeout: 60_000 }, async () => {
    const argsOf = await prepare();
    const { dataDir } = await dayAtTheBank(argsOf('node-1'), 'zoe');
    const again = await spawnBank(dataDir, argsOf('node-1'));
    children.push(again);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});

describe('a chain head edited or removed behind the bank’s back', () => {
  it('is refused by a bank on SQLite while its journal has movements', async () => {
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

  it.skipIf(SKIP_POSTGRES_REASON)(
    'is refused by that node on PostgreSQL while the journal holds its movements; other nodes start',
    { timeout: 60_000 },
    async () => {
      const database = await createTestDatabase();
      databases.push(database);
      const ledger = { ledgerUrl: database.url };
      const first = await startTestBank({ ...ledger, nodeId: 'node-1' });
      const client = await first.connect();
      await client.signup('ada', 'password1');
      const session = await client.login('ada', 'password1');
      await client.deposit(session, uniqueTxId(), 500);
      await first.stop();
      const secondDir = nodeDirBeside(first.dataDir);
      const second = await startTestBank({ ...ledger, nodeId: 'node-2', dataDir: secondDir });
      await second.stop();
      const heads = await queryRows<{ node_id: string }>(database.url, 'SELECT node_id FROM audit_heads');
      expect(heads.map((row) => row.node_id)).toEqual(['node-1']);

      await queryRows(database.url, "UPDATE audit_heads SET line_number = line_number - 1 WHERE node_id = 'node-1'");
      await expect(startTestBank({ ...ledger, nodeId: 'node-1', dataDir: first.dataDir })).rejects.toMatchObject({
        code: 'ERR_AUDIT_HEAD',
        message: expect.stringMatching(/does not carry a valid MAC/),
      });
      await queryRows(database.url, "DELETE FROM audit_heads WHERE node_id = 'node-1'");
      await expect(startTestBank({ ...ledger, nodeId: 'node-1', dataDir: first.dataDir })).rejects.toMatchObject({
        code: 'ERR_AUDIT_HEAD',
        message: expect.stringMatching(/journal holds 1 movement\(s\) but no audit chain head/),
      });
      // node-2 moved no money and keeps no head: it starts.
      const again = await startTestBank({ ...ledger, nodeId: 'node-2', dataDir: secondDir });
      await again.stop();
    },
  );
});
