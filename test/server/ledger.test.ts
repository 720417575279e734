/**
 * The ledger suite, run against both backends: embedded SQLite and
 * PostgreSQL (the latter when TEST_POSTGRES_URL is set, as CI does).
 */
import { afterEach, describe, expect, it } from 'vitest';

import { decideMoney } from '../../server/bank.ts';
import type { MoneyDecision, MoneyRequest } from '../../server/ledger.ts';
import { TestAuditLog, testLine } from './fixtures.ts';
import { BACKENDS, type OpenedLedger } from './ledger-backends.ts';

const at = '2026-01-01T00:00:00Z';
/** The bank's rule; the ledger applies whatever rule it is given. */
const rule = decideMoney;
const line = (decided: MoneyDecision) => testLine('deposit', decided.status);

describe.each(BACKENDS)('ledger on $name', (backend) => {
  let opened: OpenedLedger | null = null;
  afterEach(async () => {
    await opened?.close();
    opened = null;
  });

  async function withAccount(log = new TestAuditLog()): Promise<OpenedLedger & { accountId: number }> {
    opened = await backend.open(log);
    const account = await opened.ledger.createAccount('grace', 'hash', at);
    if (!account) throw new Error('no account');
    return { ...opened, accountId: account.id };
  }

  const request = (
    accountId: number,
    txId: string,
    kind: 'deposit' | 'withdraw',
    amountCents: number,
  ): MoneyRequest => ({
    accountId,
    txId,
    kind,
    amountCents,
    at,
  });

  it.skipIf(backend.skip)(
    'probes by committing a write of its own, and the probe fails once it cannot commit',
    async () => {
      const { ledger, close } = await backend.open();
      await expect(ledger.probe()).resolves.toBeUndefined();
      await close();
      await expect(ledger.probe()).rejects.toThrow();
    },
  );

  it.skipIf(backend.skip)('commits many concurrent movements in a few group transactions', async () => {
    const { ledger, accountId } = await withAccount();
    const before = ledger.groupStats.groups;
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.applyMoney(request(accountId, `tx-${i}`, 'deposit', 100), rule, line),
      ),
    );
    expect(outcomes.every((outcome) => outcome.status === 'applied')).toBe(true);
    expect(await ledger.balance(accountId)).toBe(20_000);
    expect(ledger.groupStats.groups - before).toBeLessThanOrEqual(3);
  });

  it.skipIf(backend.skip)(
    'commits none of a group when its audit lines cannot be written, and answers every member with the failure',
    async () => {
      const log = new TestAuditLog();
      const { ledger, accountId, journalTxIds } = await withAccount(log);
      const move = (n: number) =>
        ledger.applyMoney(request(accountId, `tx-group-${n}`, 'deposit', n * 100), rule, line);
      await move(1);
      log.failWith = new Error('no space left on device');
      const results = await Promise.allSettled([move(2), move(3), move(4)]);
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(log.rollbacks).toBe(1);
      expect(log.lines).toEqual(['deposit applied']);
      log.failWith = null;
      expect(await ledger.balance(accountId)).toBe(100);
      expect(await journalTxIds()).toEqual(['tx-group-1']);
      // The same transaction ids go through once the disk has room again.
      await Promise.all([move(2), move(3), move(4)]);
      expect(await ledger.balance(accountId)).toBe(1_000);
    },
  );

  it.skipIf(backend.skip)('reads balances inside the group and writes their audit lines with the group', async () => {
    const log = new TestAuditLog();
    const { ledger, accountId } = await withAccount(log);
    const groupsBefore = ledger.groupStats.groups;
    const [deposit, balance, unknown] = await Promise.allSettled([
      ledger.applyMoney(request(accountId, 'tx-with-reads', 'deposit', 250), rule, line),
      ledger.balance(accountId, (cents) => testLine('balance', String(cents))),
      ledger.balance(accountId + 1000, () => testLine('balance', 'never')),
    ]);
    // One group: the read sees the deposit before it, and both lines are written together.
    expect(ledger.groupStats.groups - groupsBefore).toBe(1);
    expect(log.groups.map((group) => group.map((event) => `${event.action} ${event.outcome}`))).toEqual([
      ['deposit applied', 'balance 250'],
    ]);
    expect(deposit.status).toBe('fulfilled');
    expect(balance).toEqual({ status: 'fulfilled', value: 250 });
    // An unknown account fails its own inquiry, not the group around it.
    expect(unknown.status).toBe('rejected');
  });

  it.skipIf(backend.skip)('answers a repeated transaction id inside the same group as a replay', async () => {
    const { ledger, accountId } = await withAccount();
    await ledger.applyMoney(request(accountId, 'tx-seed', 'deposit', 100), rule, line);
    const twice = request(accountId, 'tx-twice-same-group', 'withdraw', 100);
    const [first, second] = await Promise.all([
      ledger.applyMoney(twice, rule, line),
      ledger.applyMoney(twice, rule, line),
    ]);
    expect(first).toEqual({ status: 'applied', balanceCents: 0, replayed: false });
    expect(second).toEqual({ status: 'applied', balanceCents: 0, replayed: true });
  });

  it.skipIf(backend.skip)(
    'answers a retry with the original outcome, refusals included, and a reused id for another request as a conflict',
    async () => {
      const { ledger, accountId, journalTxIds } = await withAccount();
      const overdraft = request(accountId, 'tx-overdraft', 'withdraw', 500);
      expect(await ledger.applyMoney(overdraft, rule, line)).toEqual({
        status: 'insufficient_funds',
        balanceCents: 0,
        replayed: false,
      });
      await ledger.applyMoney(request(accountId, 'tx-fund', 'deposit', 1_000), rule, line);
      // Funds arrived since, but the retry of the refused request is still the refusal, not a withdrawal.
      expect(await ledger.applyMoney(overdraft, rule, line)).toEqual({
        status: 'insufficient_funds',
        balanceCents: 0,
        replayed: true,
      });
      expect(await ledger.applyMoney({ ...overdraft, amountCents: 499 }, rule, line)).toEqual({ status: 'conflict' });
      expect(await ledger.balance(accountId)).toBe(1_000);
      expect(await journalTxIds()).toEqual(['tx-overdraft', 'tx-fund']);
    },
  );

  it.skipIf(backend.skip)('writes an audit line for a fresh request only, never for a replay', async () => {
    const log = new TestAuditLog();
    const { ledger, accountId } = await withAccount(log);
    const deposit = request(accountId, 'tx-audited', 'deposit', 100);
    await ledger.applyMoney(deposit, rule, line);
    await ledger.applyMoney(deposit, rule, (decided) => testLine('deposit', `again ${decided.status}`));
    expect(log.lines).toEqual(['deposit applied']);
  });

  it.skipIf(backend.skip)(
    'decides a fresh request by the rule it is given, against the balance in the transaction',
    async () => {
      const { ledger, accountId } = await withAccount();
      const seen: number[] = [];
      const halve = (balanceCents: number, move: MoneyRequest): MoneyDecision => {
        seen.push(balanceCents);
        return { status: 'applied', balanceCents: balanceCents + Math.floor(move.amountCents / 2), replayed: false };
      };
      await ledger.applyMoney(request(accountId, 'tx-rule-1', 'deposit', 1_000), halve, line);
      await ledger.applyMoney(request(accountId, 'tx-rule-2', 'deposit', 1_000), halve, line);
      expect(seen).toEqual([0, 500]);
      expect(await ledger.balance(accountId)).toBe(1_000);
    },
  );

  it.skipIf(backend.skip)('refuses a negative balance in the schema itself', async () => {
    const { forceBalance, accountId } = await withAccount();
    await expect(forceBalance(accountId, -1)).rejects.toThrow(/check constraint/i);
  });

  it.skipIf(backend.skip)('refuses a second account with a taken username', async () => {
    const { ledger } = await withAccount();
    expect(await ledger.createAccount('grace', 'other-hash', at)).toBeNull();
    expect((await ledger.findAccount('grace'))?.passwordHash).toBe('hash');
    expect(await ledger.findAccount('nobody')).toBeNull();
  });

  it.skipIf(backend.skip)(
    'reserves login checks before they run, within the budget of a fixed window; locks and successes keep the count',
    async () => {
      const { ledger, accountId } = await withAccount();
      const budget = { beforeLock: 3, perWindow: 5, windowMs: 1_000 };
      const reserve = (now: number) => ledger.reserveLoginAttempt(accountId, now, budget);
      expect(await reserve(100)).toEqual({ status: 'reserved', attempt: 1, windowEndsAt: 1_100, lockedUntil: null });
      expect(await reserve(150)).toEqual({ status: 'reserved', attempt: 2, windowEndsAt: 1_100, lockedUntil: null });
      expect(await reserve(200)).toEqual({ status: 'reserved', attempt: 3, windowEndsAt: 1_100, lockedUntil: null });
      // Reserving never locks; the budget before a lock is spent, so a fourth check is refused.
      expect(await ledger.findAccount('grace')).toMatchObject({ failedLogins: 3, lockedUntil: null });
      expect(await reserve(300)).toEqual({ status: 'over_budget' });
      // Locked: the window's remaining checks (up to 5 in all) run; a success gives nothing back.
      await ledger.lockAccount(accountId, 1_300);
      await ledger.recordLoginSuccess(accountId, { at, atmId: 1 });
      expect(await ledger.findAccount('grace')).toMatchObject({ failedLogins: 3, lockedUntil: 1_300 });
      expect(await reserve(400)).toMatchObject({ status: 'reserved', attempt: 4, lockedUntil: 1_300 });
      expect(await reserve(500)).toMatchObject({ status: 'reserved', attempt: 5, lockedUntil: 1_300 });
      expect(await reserve(1_099)).toEqual({ status: 'over_budget' });
      // The window closes at 1,100: the next check opens a new one, still during the lock.
      expect(await reserve(1_100)).toEqual({ status: 'reserved', attempt: 1, windowEndsAt: 2_100, lockedUntil: 1_300 });
      for (let i = 2; i <= 5; i += 1) expect(await reserve(1_200)).toMatchObject({ status: 'reserved', attempt: i });
      expect(await reserve(1_250)).toEqual({ status: 'over_budget' });
    },
  );

  it.skipIf(backend.skip)('reserves at most the budget among racing attempts', async () => {
    const { ledger, accountId } = await withAccount();
    const budget = { beforeLock: 5, perWindow: 10, windowMs: 1_000 };
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => ledger.reserveLoginAttempt(accountId, 100, budget)),
    );
    const reserved = outcomes.flatMap((outcome) => (outcome.status === 'reserved' ? [outcome.attempt] : []));
    expect(reserved.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(outcomes.filter((outcome) => outcome.status === 'over_budget')).toHaveLength(15);
  });

  it.skipIf(backend.skip)('gives back an attempt only within its own window', async () => {
    const { ledger, accountId } = await withAccount();
    const budget = { beforeLock: 5, perWindow: 10, windowMs: 1_000 };
    for (let i = 0; i < 4; i += 1) await ledger.reserveLoginAttempt(accountId, 100, budget);
    const fifth = await ledger.reserveLoginAttempt(accountId, 200, budget);
    expect(fifth).toMatchObject({ status: 'reserved', attempt: 5, windowEndsAt: 1_100 });
    await ledger.releaseLoginAttempt(accountId, 1_100);
    expect(await ledger.findAccount('grace')).toMatchObject({ failedLogins: 4 });
    expect(await ledger.reserveLoginAttempt(accountId, 300, budget)).toMatchObject({ status: 'reserved', attempt: 5 });
    // A reservation from a closed window gives nothing back in the next one.
    expect(await ledger.reserveLoginAttempt(accountId, 1_100, budget)).toMatchObject({ attempt: 1 });
    await ledger.releaseLoginAttempt(accountId, 1_100);
    expect(await ledger.findAccount('grace')).toMatchObject({ failedLogins: 1 });
  });

  it.skipIf(backend.skip)('answers each login with the previous one (none on the first) and records it', async () => {
    const { ledger, accountId } = await withAccount();
    const first = { at: '2026-01-01T08:00:00.000Z', atmId: 1 };
    const second = { at: '2026-01-02T09:30:00.000Z', atmId: null };
    const third = { at: '2026-01-03T10:45:00.000Z', atmId: 7 };
    expect(await ledger.recordLoginSuccess(accountId, first)).toBeNull();
    expect(await ledger.recordLoginSuccess(accountId, second)).toEqual(first);
    expect(await ledger.recordLoginSuccess(accountId, third)).toEqual(second);
    // Another account has a history of its own.
    const other = await ledger.createAccount('alan', 'hash', at);
    if (!other) throw new Error('no account');
    expect(await ledger.recordLoginSuccess(other.id, first)).toBeNull();
    expect(await ledger.recordLoginSuccess(accountId, first)).toEqual(third);
  });

  it.skipIf(backend.skip)('lists applied movements newest first, leaving refusals out', async () => {
    const { ledger, accountId } = await withAccount();
    await ledger.applyMoney(request(accountId, 'tx-1', 'deposit', 1_000), rule, line);
    await ledger.applyMoney(request(accountId, 'tx-2', 'withdraw', 5_000), rule, line);
    await ledger.applyMoney(request(accountId, 'tx-3', 'withdraw', 300), rule, line);
    expect(await ledger.statement(accountId, 10)).toEqual([
      { at, kind: 'withdraw', amountCents: 300, balanceAfterCents: 700 },
      { at, kind: 'deposit', amountCents: 1_000, balanceAfterCents: 1_000 },
    ]);
    expect(await ledger.statement(accountId, 1)).toHaveLength(1);
    // Paging: skip the newest, and past the end there is nothing.
    expect(await ledger.statement(accountId, 10, 1)).toEqual([
      { at, kind: 'deposit', amountCents: 1_000, balanceAfterCents: 1_000 },
    ]);
    expect(await ledger.statement(accountId, 10, 2)).toEqual([]);
  });

  it.skipIf(backend.skip)('replaces a password hash, for that account only', async () => {
    const { ledger, accountId } = await withAccount();
    const other = await ledger.createAccount('heidi', 'heidi-hash', at);
    await ledger.setPasswordHash(accountId, 'new-hash');
    expect(await ledger.findAccount('grace')).toMatchObject({ passwordHash: 'new-hash' });
    expect(await ledger.findAccount('heidi')).toMatchObject({ id: other?.id, passwordHash: 'heidi-hash' });
  });
});
