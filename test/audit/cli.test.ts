import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

import { signCheckpoint, encodeWitness } from '../../audit/checkpoint.ts';
import { HELP } from '../../audit/cli.ts';
import type { AuditEvent } from '../../audit/event.ts';
import { verifyLogFile } from '../../audit/reader.ts';
import { reconcile } from '../../audit/reconcile.ts';
import { ed25519Signer } from '../../protocol/crypto.ts';
import { AUDIT_SIGNING_KEY_FILE, readAuditSigningKey } from '../../runtime/key-files.ts';
import { LEDGER_FILE } from '../../server/data-dir.ts';
import { runAudit, startTestBank, tempDir, uniqueTxId } from '../helpers.ts';
import { editLines, event, writeLog } from './fixtures.ts';

/** A day of activity at two ATMs: deposits, a withdrawal refused, a lockout. */
function day(): AuditEvent[] {
  return [
    event(1, { action: 'login', amountCents: null }),
    event(2, { action: 'deposit', amountCents: 10_000, detail: 'tx-a-0001' }),
    event(3, { action: 'withdraw', amountCents: 2_550, detail: 'tx-a-0002' }),
    event(4, { atm: 2, user: 'bob', action: 'login', amountCents: null, outcome: 'bad_password' }),
    event(5, { atm: 2, user: 'bob', action: 'lockout', amountCents: null, outcome: 'locked' }),
    event(6, { atm: 2, user: 'bob', action: 'withdraw', amountCents: 500, outcome: 'insufficient_funds' }),
    event(7, { atm: 2, client: '=cmd|x', action: 'deposit', amountCents: 1, detail: 'tx-a-0003' }),
  ];
}

describe('npm run audit -- decrypt', () => {
  it('filters by user, ATM, action, outcome and time', async () => {
    const { dataDir } = await writeLog(day());
    const lines = (...args: string[]): number[] =>
      runAudit(['decrypt', '--data-dir', dataDir, '--format', 'json', ...args]).out.map(
        (line) => (JSON.parse(line) as { line: number }).line,
      );
    expect(lines()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(lines('--user', 'bob')).toEqual([4, 5, 6]);
    expect(lines('--atm', '2')).toEqual([4, 5, 6, 7]);
    expect(lines('--action', 'deposit')).toEqual([2, 7]);
    expect(lines('--outcome', 'locked')).toEqual([5]);
    expect(lines('--since', '2026-01-01T00:00:03Z', '--until', '2026-01-01T00:00:05.000Z')).toEqual([3, 4]);
    expect(lines('--user', 'alice', '--atm', '2')).toEqual([7]);
  });

  it('gives amounts in cents and dollars in JSON lines and CSV, with formula cells escaped', async () => {
    const { dataDir } = await writeLog(day());
    const json = runAudit(['decrypt', '--data-dir', dataDir, '--json', '--action', 'withdraw']);
    expect(JSON.parse(json.out[0] ?? '')).toEqual({
      line: 3,
      at: '2026-01-01T00:00:03.000Z',
      atm: 1,
      user: 'alice',
      action: 'withdraw',
      amountCents: 2550,
      amountDollars: '25.50',
      outcome: 'ok',
      detail: 'tx-a-0002',
    });
    const csv = runAudit(['decrypt', '--data-dir', dataDir, '--format', 'csv', '--atm', '2']);
    expect(csv.code).toBe(0);
    expect(csv.out).toEqual([
      'line,at,atm,client,user,action,amount_cents,amount_dollars,outcome,detail',
      '4,2026-01-01T00:00:04.000Z,2,,bob,login,,,bad_password,',
      '5,2026-01-01T00:00:05.000Z,2,,bob,lockout,,,locked,',
      '6,2026-01-01T00:00:06.000Z,2,,bob,withdraw,500,5.00,insufficient_funds,',
      "7,2026-01-01T00:00:07.000Z,2,'=cmd|x,alice,deposit,1,0.01,ok,tx-a-0003",
    ]);
  });

  it('refuses bad options with the reason and exit 2', async () => {
    const { dataDir } = await writeLog(2);
    for (const [args, reason] of [
      [['--since', 'yesterday'], /--since must be an ISO 8601 time/],
      [['--until', '2026-13-45T99:00Z'], /--until must be an ISO 8601 time/],
      [['--atm', 'two'], /--atm must be an ATM number/],
      [['--action', 'steal'], /--action steal is not an audited action/],
      [['--format', 'xml'], /--format must be one of text, json, csv/],
      [['--head', 'x'], /--head is a verify option/],
    ] as const) {
      const result = runAudit(['decrypt', '--data-dir', dataDir, ...args]);
      expect(result.code).toBe(2);
      expect(result.out).toEqual([]);
      expect(result.err[0]).toMatch(reason);
    }
  });

  it('documents every option and command in --help', () => {
    const help = runAudit(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['decrypt', 'verify', 'summary', 'reconcile', 'npm run --silent']) expect(HELP).toContain(word);
    for (const option of [
      'data-dir',
      'help',
      'json',
      'format',
      'user',
      'atm',
      'action',
      'outcome',
      'since',
      'until',
      'head',
    ]) {
      expect(help.out[0]).toContain(`--${option}`);
    }
    expect(HELP).toMatch(/in cents .* and in\s+dollars/s);
  });

  it('prints only data on stdout through `npm run --silent audit`', async () => {
    const { dataDir } = await writeLog(day());
    const run = spawnSync('npm', ['run', '--silent', 'audit', '--', 'decrypt', '--data-dir', dataDir, '--json'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const stdout = run.stdout.trim().split('\n');
    expect(stdout).toHaveLength(7);
    for (const line of stdout) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('npm run audit -- summary', () => {
  it('totals per user, per ATM and per action, with failures and lockouts, over a time range', async () => {
    const { dataDir } = await writeLog(day());
    const result = runAudit(['summary', '--data-dir', dataDir, '--format', 'json']);
    const summary = JSON.parse(result.out[0] ?? '') as Record<string, Record<string, Record<string, number>>>;
    expect(summary.byUser?.alice).toEqual({
      count: 4,
      failures: 0,
      lockouts: 0,
      sumCents: 12_551,
      depositedCents: 10_001,
      withdrawnCents: 2_550,
    });
    expect(summary.byUser?.bob).toMatchObject({ count: 3, failures: 3, lockouts: 1, sumCents: 0 });
    expect(summary.byAtm?.['2']).toMatchObject({ count: 4, failures: 3, depositedCents: 1 });
    expect(summary.byAction?.withdraw).toMatchObject({ count: 2, failures: 1, withdrawnCents: 2_550 });
    const ranged = runAudit(['summary', '--data-dir', dataDir, '--json', '--since', '2026-01-01T00:00:04Z']);
    expect((JSON.parse(ranged.out[0] ?? '') as { all: { count: number } }).all.count).toBe(4);
    const text = runAudit(['summary', '--data-dir', dataDir]).out;
    expect(text).toContain('per user');
    expect(text.find((line) => line.trim().startsWith('alice'))).toMatch(/alice\s+4\s+0\s+0\s+100\.01\s+25\.50/);
  });
});

describe('npm run audit -- verify --head', () => {
  async function witnessed(lines: number): Promise<{ dataDir: string; file: string; plain: string; head: string }> {
    const log = await writeLog(lines);
    const verified = verifyLogFile(log.key, log.file);
    const signer = ed25519Signer(readAuditSigningKey(path.join(log.dataDir, AUDIT_SIGNING_KEY_FILE)));
    const checkpoint = signCheckpoint(signer, verified.head);
    const head = path.join(tempDir(), 'atm-2.audit-head');
    fs.writeFileSync(head, encodeWitness({ atm: 2, heads: [{ checkpoint, receivedAt: '2026-01-01T00:01:00.000Z' }] }));
    return { ...log, head };
  }

  type HeadJson = { node: string | null; line: number; chainHash: string; signature: string };
  const headsIn = (file: string) => (JSON.parse(fs.readFileSync(file, 'utf8')) as { heads: HeadJson[] }).heads;

  it('agrees with a witness that saw the log as it is, and prints the last line and chain hash', async () => {
    const { dataDir, head } = await witnessed(5);
    const result = runAudit(['verify', '--data-dir', dataDir, '--head', head]);
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const hash = headsIn(head)[0]?.chainHash;
    expect(result.out).toEqual([
      `last line 5, chain hash ${hash}`,
      'audit log intact: 5 lines verified, plaintext log matches; agrees with 1 witness head(s)',
    ]);
  });

  it('fails on a log cut shorter than a witness saw, naming the witness and the missing lines', async () => {
    const { dataDir, file, plain, head } = await witnessed(5);
    editLines(file, (lines) => lines.slice(0, 3));
    editLines(plain, (lines) => lines.slice(0, 3));
    const result = runAudit(['verify', '--data-dir', dataDir, '--head', head]);
    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      `witness ${head}: ATM 2 saw line 5 (received 2026-01-01T00:01:00.000Z), but the log ends at line 3: lines 4-5 are missing`,
    ]);
    // Without the witness the cut log verifies: that is the gap the witness closes.
    expect(runAudit(['verify', '--data-dir', dataDir]).code).toBe(0);
  });

  it('fails on a log rewritten from scratch to the same length', async () => {
    const { dataDir, file, plain, head } = await witnessed(5);
    const other = await writeLog(5, 99);
    fs.copyFileSync(other.file, file);
    fs.copyFileSync(other.plain, plain);
    // Same audit key (fixed in the fixture), so the rewritten log verifies on its own.
    const result = runAudit(['verify', '--data-dir', dataDir, '--head', head]);
    expect(result.code).toBe(1);
    expect(result.err[0]).toMatch(/ATM 2 saw line 5 .* the log differs from what the witness saw/);
  });

  it('refuses a witness file whose signature is not the bank’s', async () => {
    const { dataDir, head } = await witnessed(5);
    const forged = JSON.parse(fs.readFileSync(head, 'utf8')) as { heads: HeadJson[] };
    const first = forged.heads[0];
    if (first) first.signature = `${first.signature.slice(0, -2)}00`;
    fs.writeFileSync(head, JSON.stringify(forged));
    const result = runAudit(['verify', '--data-dir', dataDir, '--head', head]);
    expect(result.code).toBe(1);
    expect(result.err[0]).toMatch(/signature does not verify/);
    fs.writeFileSync(head, 'not a witness');
    expect(runAudit(['verify', '--data-dir', dataDir, '--head', head]).err[0]).toMatch(/is not a witness head file/);
  });

  it('holds a node of a shared ledger to the witness’s checkpoint of that node’s chain, and no other', async () => {
    const log = await writeLog(5);
    fs.writeFileSync(path.join(log.dataDir, 'node.id'), 'node-a\n');
    const signer = ed25519Signer(readAuditSigningKey(path.join(log.dataDir, AUDIT_SIGNING_KEY_FILE)));
    const ours = signCheckpoint(signer, verifyLogFile(log.key, log.file).head, 'node-a');
    // Another node's chain is longer: its line 40 says nothing about this node's log.
    const theirs = signCheckpoint(signer, { lineNumber: 40, chainHash: Buffer.alloc(32, 7) }, 'node-b');
    const receivedAt = '2026-01-01T00:01:00.000Z';
    const head = path.join(tempDir(), 'atm-2.audit-head');
    const heads = [
      { checkpoint: theirs, receivedAt },
      { checkpoint: ours, receivedAt },
    ];
    fs.writeFileSync(head, encodeWitness({ atm: 2, heads }));
    expect(runAudit(['verify', '--data-dir', log.dataDir, '--head', head])).toMatchObject({ code: 0, err: [] });
    // A witness that only ever saw node-b vouches for nothing here, and is not counted.
    const elsewhere = path.join(tempDir(), 'atm-3.audit-head');
    fs.writeFileSync(elsewhere, encodeWitness({ atm: 3, heads: [{ checkpoint: theirs, receivedAt }] }));
    const both = runAudit(['verify', '--data-dir', log.dataDir, '--head', head, '--head', elsewhere]);
    expect(both.out[1]).toMatch(/; agrees with 1 witness head\(s\)$/);

    editLines(log.file, (lines) => lines.slice(0, 3));
    editLines(log.plain, (lines) => lines.slice(0, 3));
    const cut = runAudit(['verify', '--data-dir', log.dataDir, '--head', head]);
    expect(cut.code).toBe(1);
    expect(cut.err).toEqual([
      `witness ${head}: ATM 2 saw line 5 of node node-a (received ${receivedAt}), but the log ends at line 3: lines 4-5 are missing`,
    ]);

    // The node is signed: node-b's checkpoint relabelled as node-a's does not verify.
    const relabelled = { ...theirs, node: 'node-a' };
    fs.writeFileSync(head, encodeWitness({ atm: 2, heads: [{ checkpoint: relabelled, receivedAt }] }));
    expect(runAudit(['verify', '--data-dir', log.dataDir, '--head', head]).err[0]).toMatch(
      /ATM 2 saw line 40 of node node-a .* signature does not verify/,
    );
  });
});

describe('reconcile', () => {
  const entries = (events: AuditEvent[]) => events.map((item, i) => ({ lineNumber: i + 1, event: item }));

  it('agrees when every journal row has its one audit entry and balances add up', () => {
    const audit = entries([
      event(1, { detail: 'tx-1', amountCents: 500 }),
      event(2, { action: 'withdraw', detail: 'tx-2', amountCents: 700, outcome: 'insufficient_funds' }),
      event(3, { detail: 'tx-1', amountCents: 500, outcome: 'replayed_applied' }),
    ]);
    const ledger = {
      accounts: [{ username: 'alice', balanceCents: 500 }],
      journal: [
        { username: 'alice', txId: 'tx-1', kind: 'deposit' as const, amountCents: 500, status: 'applied' as const },
        {
          username: 'alice',
          txId: 'tx-2',
          kind: 'withdraw' as const,
          amountCents: 700,
          status: 'insufficient_funds' as const,
        },
      ],
    };
    expect(reconcile(audit, ledger)).toEqual([]);
    expect(
      reconcile([...audit, { lineNumber: 4, event: event(4, { detail: 'tx-1', amountCents: 500 }) }], ledger),
    ).toEqual([
      {
        account: 'alice',
        txId: 'tx-1',
        problem: 'journal row (deposit 5.00 applied) has 2 audit entries (lines 1, 4)',
      },
      { account: 'alice', txId: null, problem: 'ledger balance 5.00 but the audited movements add up to 10.00' },
    ]);
    expect(reconcile(audit.slice(1), ledger)).toEqual([
      { account: 'alice', txId: 'tx-1', problem: 'journal row (deposit 5.00 applied) has no audit entry' },
      { account: 'alice', txId: null, problem: 'ledger balance 5.00 but the audited movements add up to 0.00' },
    ]);
  });

  it('names the account and transaction of a ledger changed behind the bank’s back', async () => {
    const test = await startTestBank();
    const client = await test.connect();
    await client.signup('carol', 'password1');
    await client.signup('dave', 'password1');
    const carol = await client.login('carol', 'password1');
    const dave = await client.login('dave', 'password1');
    const withdrawal = uniqueTxId();
    await client.deposit(carol, uniqueTxId(), 10_000);
    await client.withdraw(carol, withdrawal, 2_500);
    await client.deposit(dave, uniqueTxId(), 300);
    await test.stop();
    expect(runAudit(['reconcile', '--data-dir', test.dataDir])).toMatchObject({ code: 0, err: [] });

    const db = new Database(path.join(test.dataDir, LEDGER_FILE));
    db.prepare("UPDATE accounts SET balance_cents = balance_cents + 100000 WHERE username = 'dave'").run();
    db.prepare('UPDATE journal SET amount_cents = 25 WHERE tx_id = ?').run(withdrawal);
    db.close();
    const result = runAudit(['reconcile', '--data-dir', test.dataDir]);
    expect(result.code).toBe(1);
    expect(result.out).toEqual([]);
    expect(result.err).toHaveLength(2);
    expect(result.err[0]).toMatch(
      new RegExp(
        `^DISAGREES: account carol transaction ${withdrawal}: journal row says withdraw 0\\.25 applied, ` +
          'audit line \\d+ says withdraw 25\\.00 applied$',
      ),
    );
    expect(result.err[1]).toBe(
      'DISAGREES: account dave: ledger balance 1003.00 but the audited movements add up to 3.00',
    );
  });
});

describe('npm run audit', () => {
  it('exits 2 with a usage line for a bad command or a missing data dir', () => {
    expect(runAudit(['frobnicate']).code).toBe(2);
    expect(runAudit(['verify', '--data-dir', path.join(tempDir(), 'nope')]).code).toBe(2);
  });
});
