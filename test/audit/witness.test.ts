import fs from 'node:fs';
import path from 'node:path';

import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { encodeWitness, parseWitness, signCheckpoint, witnessHeadOf } from '../../audit/checkpoint.ts';
import { auditPaths } from '../../audit/writer.ts';
import { AuditWitness, auditHeadFile } from '../../atm-web/audit-witness.ts';
import { auditEvents, runAudit, startTestBank, tempDir, uniqueTxId, type TestBank } from '../helpers.ts';
import { login, signup, startAtmApp, startTestAtm, transact, type TestAtm } from '../atm-web/harness.ts';
import { SHARED_KEY_FILES } from '../../cluster/cluster.ts';
import { ed25519Signer } from '../../protocol/crypto.ts';
import { AUDIT_SIGNING_KEY_FILE, readAuditSigningKey } from '../../runtime/key-files.ts';
import { SKIP_POSTGRES_REASON, createTestDatabase, type TestDatabase } from '../postgres.ts';
import { editLines } from './fixtures.ts';

let bank: TestBank | null = null;
let atm: TestAtm | null = null;
const nodes: TestBank[] = [];
let database: TestDatabase | null = null;
afterEach(async () => {
  await atm?.close();
  await bank?.stop();
  for (const node of nodes.splice(0)) await node.stop();
  await database?.drop();
  atm = null;
  bank = null;
  database = null;
});

/** The line of the checkpoint of `node`'s chain (null: a lone bank's) the witness file holds; 0 when none. */
function witnessedLine(file: string, node: string | null = null): number {
  const witness = fs.existsSync(file) ? parseWitness(fs.readFileSync(file, 'utf8')) : null;
  return (witness && witnessHeadOf(witness, node)?.checkpoint.lineNumber) ?? 0;
}

/** Waits (up to a generous bound) until the witness file holds a checkpoint at or past `line`. */
async function witnessReaches(file: string, line: number, node: string | null = null): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = witnessedLine(file, node);
    if (seen >= line) return seen;
    if (Date.now() > deadline) throw new Error(`witness stuck at line ${seen}, waiting for ${line}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function lastLine(dataDir: string): number {
  const verified = runAudit(['verify', '--data-dir', dataDir]);
  return Number(/^last line (\d+),/.exec(verified.out[0] ?? '')?.[1]);
}

describe('ATMs as witnesses of the audit chain', () => {
  it('keep the newest signed checkpoint the bank sends, so verify --head catches a log cut behind it', async () => {
    bank = await startTestBank({ checkpointIntervalMs: 50 });
    const file = auditHeadFile(tempDir(), 2);
    atm = await startTestAtm(bank, 2, { witness: new AuditWitness(file, 2) });
    // The ATM gets the current checkpoint as soon as it connects.
    await witnessReaches(file, 1);
    const client = await bank.connect(3);
    await client.signup('wendy', 'password1');
    const wendy = await client.login('wendy', 'password1');
    for (let i = 0; i < 3; i += 1) await client.deposit(wendy, uniqueTxId(), 1_000);
    await client.withdraw(wendy, uniqueTxId(), 500);
    const written = lastLine(bank.dataDir);
    // Within about one interval of the last event, the witness has it all.
    const seen = await witnessReaches(file, written);
    expect(seen).toBe(written);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    await atm.close();
    atm = null;
    const dataDir = bank.dataDir;
    await bank.stop();
    bank = null;

    expect(runAudit(['verify', '--data-dir', dataDir, '--head', file])).toMatchObject({ code: 0, err: [] });
    // Cut both logs before the withdrawal's line: alone, the shorter log still verifies.
    const { encrypted, plain } = auditPaths(dataDir);
    const keep = seen - 2;
    editLines(encrypted, (lines) => lines.slice(0, keep));
    editLines(plain, (lines) => lines.slice(0, keep));
    expect(runAudit(['verify', '--data-dir', dataDir]).code).toBe(0);
    const result = runAudit(['verify', '--data-dir', dataDir, '--head', file]);
    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      expect.stringMatching(
        new RegExp(
          `^witness ${file}: ATM 2 saw line ${seen} .* log ends at line ${keep}: lines ${keep + 1}-${seen} are missing$`,
        ),
      ),
    ]);
  });
});

describe.skipIf(SKIP_POSTGRES_REASON)('an ATM witnessing a bank of several nodes', () => {
  it(
    'subscribes again on the node it fails over to and keeps each node’s newest checkpoint, so verify --head holds each node’s log to its own',
    { timeout: 60_000 },
    async () => {
      database = await createTestDatabase();
      const first = await startTestBank({ ledgerUrl: database.url, nodeId: 'node-1', checkpointIntervalMs: 50 });
      nodes.push(first);
      const secondDir = tempDir();
      for (const key of SHARED_KEY_FILES) fs.copyFileSync(path.join(first.dataDir, key), path.join(secondDir, key));
      const second = await startTestBank({
        dataDir: secondDir,
        ledgerUrl: database.url,
        nodeId: 'node-2',
        checkpointIntervalMs: 50,
      });
      nodes.push(second);
      const file = auditHeadFile(tempDir(), 2);
      const banks = [first, second].map((node) => ({ host: '127.0.0.1', port: node.bank.port }));
      atm = await startAtmApp(banks, first.bank.credentialFor(2), { witness: new AuditWitness(file, 2) });
      const agent = request.agent(atm.app);
      await signup(agent, 'nadia', 'password1');
      await login(agent, 'nadia', 'password1');
      expect((await transact(agent, 'deposit', '5.00')).status).toBe(303);
      const onFirst = await witnessReaches(file, lastLine(first.dataDir), 'node-1');

      // The first node goes away; the link moves to the second and the customer carries on there.
      await first.stop();
      nodes.splice(nodes.indexOf(first), 1);
      expect((await transact(agent, 'withdraw', '2.00')).status).toBe(303);
      expect(atm.link.connectedTo?.port).toBe(second.bank.port);
      const onSecond = await witnessReaches(file, lastLine(second.dataDir), 'node-2');
      // The first node's head is kept beside the second's, not replaced by it.
      expect(witnessedLine(file, 'node-1')).toBe(onFirst);
      await atm.close();
      atm = null;
      await second.stop();
      nodes.splice(0);

      for (const dataDir of [first.dataDir, second.dataDir]) {
        expect(runAudit(['verify', '--data-dir', dataDir, '--head', file])).toMatchObject({ code: 0, err: [] });
      }
      // Cut the first node's logs behind what the witness saw of it: caught, and named as that node's.
      const { encrypted, plain } = auditPaths(first.dataDir);
      const keep = onFirst - 1;
      editLines(encrypted, (lines) => lines.slice(0, keep));
      editLines(plain, (lines) => lines.slice(0, keep));
      const result = runAudit(['verify', '--data-dir', first.dataDir, '--head', file]);
      expect(result.code).toBe(1);
      expect(result.err).toEqual([
        expect.stringMatching(
          new RegExp(`^witness ${file}: ATM 2 saw line ${onFirst} of node node-1 .* lines ${keep + 1}-${onFirst} are`),
        ),
      ]);
      // The second node's log agrees with what the witness saw of it.
      expect(onSecond).toBeGreaterThan(0);
      expect(runAudit(['verify', '--data-dir', second.dataDir, '--head', file]).code).toBe(0);
    },
  );
});

describe('what the witnesses and the anchored head do not catch', () => {
  /** A bank restarted once, with a witnessing ATM on both runs: the data dir as it was after the first run is kept. */
  async function twoRunsWithABackup(): Promise<{ dataDir: string; backup: string; file: string; seen: number }> {
    const file = auditHeadFile(tempDir(), 2);
    bank = await startTestBank({ checkpointIntervalMs: 50 });
    const dataDir = bank.dataDir;
    atm = await startTestAtm(bank, 2, { witness: new AuditWitness(file, 2) });
    let agent = request.agent(atm.app);
    await signup(agent, 'rhea', 'password1');
    await login(agent, 'rhea', 'password1');
    expect((await transact(agent, 'deposit', '50.00')).status).toBe(303);
    await atm.close();
    await bank.stop();
    const backup = tempDir();
    fs.cpSync(dataDir, backup, { recursive: true });

    bank = await startTestBank({ dataDir, checkpointIntervalMs: 50 });
    atm = await startTestAtm(bank, 2, { witness: new AuditWitness(file, 2) });
    agent = request.agent(atm.app);
    await login(agent, 'rhea', 'password1');
    expect((await transact(agent, 'withdraw', '20.00')).status).toBe(303);
    const seen = await witnessReaches(file, lastLine(dataDir));
    await atm.close();
    atm = null;
    await bank.stop();
    bank = null;
    return { dataDir, backup, file, seen };
  }

  function restore(dataDir: string, backup: string): void {
    fs.rmSync(dataDir, { recursive: true });
    fs.cpSync(backup, dataDir, { recursive: true });
  }

  it('a rollback of ledger and log together passes the start-up check and verify, and only a witness catches it', async () => {
    const { dataDir, backup, file, seen } = await twoRunsWithABackup();
    restore(dataDir, backup);
    const kept = lastLine(dataDir);
    expect(kept).toBeLessThan(seen);
    // The ledger's head and the log were taken together, so they agree: alone, nothing looks wrong.
    expect(runAudit(['verify', '--data-dir', dataDir]).code).toBe(0);
    const witnessed = runAudit(['verify', '--data-dir', dataDir, '--head', file]);
    expect(witnessed.code).toBe(1);
    expect(witnessed.err[0]).toMatch(new RegExp(`ATM 2 saw line ${seen} .* lines ${kept + 1}-${seen} are missing$`));
    bank = await startTestBank({ dataDir });
    await bank.stop();
    bank = null;
  });

  it('an attacker holding the bank’s signing key and every witness file can make a cut log agree with them', async () => {
    const { dataDir, backup, file, seen } = await twoRunsWithABackup();
    restore(dataDir, backup);
    const verified = runAudit(['verify', '--data-dir', dataDir]);
    const [, line, hash] = /^last line (\d+), chain hash ([0-9a-f]{64})$/.exec(verified.out[0] ?? '') ?? [];
    const signer = ed25519Signer(readAuditSigningKey(path.join(dataDir, AUDIT_SIGNING_KEY_FILE)));
    const forged = signCheckpoint(signer, { lineNumber: Number(line), chainHash: Buffer.from(hash ?? '', 'hex') });
    const forgedFile = path.join(tempDir(), 'atm-2.audit-head');
    fs.writeFileSync(
      forgedFile,
      encodeWitness({ atm: 2, heads: [{ checkpoint: forged, receivedAt: new Date().toISOString() }] }),
    );
    // Every witness file replaced: verify agrees with the cut log.
    expect(runAudit(['verify', '--data-dir', dataDir, '--head', forgedFile])).toMatchObject({ code: 0, err: [] });
    // The signing key alone is not enough: one honest witness left still names the cut.
    const honest = runAudit(['verify', '--data-dir', dataDir, '--head', forgedFile, '--head', file]);
    expect(honest.code).toBe(1);
    expect(honest.err).toEqual([expect.stringMatching(new RegExp(`^witness ${file}: ATM 2 saw line ${seen} `))]);
  });
});

describe('who an audit line is about', () => {
  it('carries the ATM number and the customer’s address as the ATM saw it', async () => {
    bank = await startTestBank();
    atm = await startTestAtm(bank, 4);
    const agent = request.agent(atm.app);
    await signup(agent, 'xavier', 'password1');
    await login(agent, 'xavier', 'password1');
    expect((await transact(agent, 'deposit', '12.34')).status).toBe(303);
    const deposit = auditEvents(bank.dataDir).find((event) => event.action === 'deposit');
    expect(deposit).toMatchObject({ atm: 4, user: 'xavier', amountCents: 1_234, outcome: 'ok' });
    expect(deposit?.client).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    const plain = fs.readFileSync(auditPaths(bank.dataDir).plain, 'utf8');
    expect(plain).toMatch(/atm=4 client=(::ffff:)?127\.0\.0\.1 user=xavier action=deposit amount=12\.34/);
    const csv = runAudit(['decrypt', '--data-dir', bank.dataDir, '--format', 'csv', '--action', 'deposit']).out;
    expect(csv[1]).toMatch(/,4,(::ffff:)?127\.0\.0\.1,xavier,deposit,1234,12\.34,ok,/);
  });

  it('leaves out an address the protocol would refuse, rather than lose the request', async () => {
    bank = await startTestBank();
    const client = await bank.connect(5);
    await client.signup('yolanda', 'password1');
    const session = await client.login('yolanda', 'password1', undefined, { client: '203.0.113.9' });
    await client.deposit(session, uniqueTxId(), 100, { client: 'not an address\n' });
    const events = auditEvents(bank.dataDir);
    expect(events.find((event) => event.action === 'login' && event.outcome === 'ok')?.client).toBe('203.0.113.9');
    expect(events.find((event) => event.action === 'deposit')).not.toHaveProperty('client');
  });
});
