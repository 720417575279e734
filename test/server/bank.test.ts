/**
 * Bank's rules on their own: an in-memory ledger, an audit log that keeps
 * what it is given, passwords without bcrypt, a clock the test moves. (The
 * bank over TCP, SQLite and bcrypt is bank-server.test.ts.)
 */
import { describe, expect, it } from 'vitest';

import { BankError, type BankErrorCode } from '../../protocol/errors.ts';
import { MAX_BALANCE_CENTS, MAX_TRANSACTION_CENTS } from '../../protocol/money.ts';
import { AuditedCommit } from '../../server/audited-commit.ts';
import { Bank, CHECK_BUDGET, LOCKOUT_MS, LOGIN_FAILED_MESSAGE, type Actor } from '../../server/bank.ts';
import { fakeHasher, MemoryLedger, TestAuditLog } from './fixtures.ts';

const ATM: Actor = { atmId: 3, username: null, accountId: null };

/** A bank on fresh fakes, with one customer `grace` logged in. */
async function bankWithCustomer() {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const audit = new TestAuditLog();
  const ledger = new MemoryLedger(new AuditedCommit(audit));
  const bank = new Bank({ ledger, audit, clock: () => new Date(now), passwords: fakeHasher });
  await bank.signup(ATM, 'grace', 'password1');
  const grace = await bank.login(ATM, 'grace', 'password1');
  const actor: Actor = { ...ATM, ...grace };
  return { bank, ledger, audit, actor, advance: (ms: number) => (now += ms) };
}

async function refusalCode(promise: Promise<unknown>): Promise<BankErrorCode> {
  const error: unknown = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BankError);
  return (error as BankError).code;
}

describe('Bank money rules', () => {
  it('refuses a withdrawal larger than the balance, changes nothing, and audits the refusal', async () => {
    const { bank, audit, actor } = await bankWithCustomer();
    await bank.move(actor, 'deposit', 'tx-1', 5_000);
    expect(await refusalCode(bank.move(actor, 'withdraw', 'tx-2', 5_001))).toBe('ERR_INSUFFICIENT_FUNDS');
    expect(await bank.balance(actor)).toBe(5_000);
    expect(await bank.move(actor, 'withdraw', 'tx-3', 5_000)).toMatchObject({ balanceCents: 0, replayed: false });
    expect(audit.lines.filter((line) => line.startsWith('withdraw'))).toEqual([
      'withdraw insufficient_funds',
      'withdraw ok',
    ]);
  });

  it('refuses a deposit that would take the balance over the account limit, and changes nothing', async () => {
    const { bank, ledger, audit, actor } = await bankWithCustomer();
    ledger.setBalance(actor.accountId ?? 0, MAX_BALANCE_CENTS - 100);
    expect(await refusalCode(bank.move(actor, 'deposit', 'tx-over', 101))).toBe('ERR_BALANCE_LIMIT');
    expect(await bank.balance(actor)).toBe(MAX_BALANCE_CENTS - 100);
    expect(await bank.move(actor, 'deposit', 'tx-to-limit', 100)).toMatchObject({ balanceCents: MAX_BALANCE_CENTS });
    expect(audit.lines).toContain('deposit balance_limit');
  });

  it('refuses zero, negative, fractional and over-the-limit amounts before the ledger sees them', async () => {
    const { bank, audit, actor } = await bankWithCustomer();
    for (const cents of [0, -100, 10.5, MAX_TRANSACTION_CENTS + 1]) {
      expect(await refusalCode(bank.move(actor, 'deposit', `tx-${cents}`, cents))).toBe('ERR_INVALID_AMOUNT');
    }
    expect(await bank.move(actor, 'deposit', 'tx-max', MAX_TRANSACTION_CENTS)).toMatchObject({
      balanceCents: MAX_TRANSACTION_CENTS,
    });
    expect(audit.lines.filter((line) => line === 'deposit invalid_amount')).toHaveLength(4);
  });

  it('answers a retried transaction id with the first answer and a reused one for another request as a conflict', async () => {
    const { bank, audit, actor } = await bankWithCustomer();
    const first = await bank.move(actor, 'deposit', 'tx-once', 2_500);
    expect(await bank.move(actor, 'deposit', 'tx-once', 2_500)).toEqual({ ...first, replayed: true });
    expect(await refusalCode(bank.move(actor, 'withdraw', 'tx-once', 2_500))).toBe('ERR_TX_CONFLICT');
    expect(await bank.balance(actor)).toBe(2_500);
    expect(audit.lines.filter((line) => line.startsWith('deposit') || line.startsWith('withdraw'))).toEqual([
      'deposit ok',
      'deposit replayed_applied',
      'withdraw tx_conflict',
    ]);
  });

  it('refuses money requests and inquiries from an ATM with nobody logged in', async () => {
    const { bank } = await bankWithCustomer();
    expect(await refusalCode(bank.move(ATM, 'deposit', 'tx-anon', 100))).toBe('ERR_NOT_LOGGED_IN');
    expect(await refusalCode(bank.balance(ATM))).toBe('ERR_NOT_LOGGED_IN');
  });
});

describe('Bank and its audit trail', () => {
  it('refuses a deposit whose audit line cannot be written, and the balance does not move', async () => {
    const { bank, audit, actor } = await bankWithCustomer();
    await bank.move(actor, 'deposit', 'tx-1', 1_000);
    audit.failWith = new Error('no space left on device');
    expect(await refusalCode(bank.move(actor, 'deposit', 'tx-2', 500))).toBe('ERR_UNAVAILABLE');
    expect(await refusalCode(bank.balance(actor))).toBe('ERR_UNAVAILABLE');
    audit.failWith = null;
    expect(await bank.balance(actor)).toBe(1_000);
    // The same id goes through once the line can be written: nothing was recorded for it.
    expect(await bank.move(actor, 'deposit', 'tx-2', 500)).toMatchObject({ balanceCents: 1_500, replayed: false });
  });

  it('writes a line for every decision, naming the ATM, the customer and the amount, never a password', async () => {
    const { bank, audit, actor } = await bankWithCustomer();
    await bank.move(actor, 'deposit', 'tx-1', 1_234);
    await bank.balance(actor);
    await bank.logout(actor);
    expect(audit.lines).toEqual(['signup ok', 'login ok', 'deposit ok', 'balance ok', 'logout ok']);
    expect(audit.events[2]).toMatchObject({ atm: 3, user: 'grace', amountCents: 1_234, detail: 'tx-1' });
    expect(JSON.stringify(audit.events)).not.toContain('password1');
  });
});

describe('Bank login rules', () => {
  it('gives one message for an unknown user, a wrong password and a locked account', async () => {
    const { bank } = await bankWithCustomer();
    for (const [username, password] of [
      ['nobody', 'password1'],
      ['grace', 'wrong-password'],
    ]) {
      await expect(bank.login(ATM, username ?? '', password ?? '')).rejects.toMatchObject({
        code: 'ERR_AUTH_FAILED',
        message: LOGIN_FAILED_MESSAGE,
      });
    }
  });

  it('locks the account at the 5th failure in a row for 30 minutes, even against the right password (which alone is told so)', async () => {
    const { bank, audit, advance } = await bankWithCustomer();
    for (let i = 0; i < 5; i += 1) {
      expect(await refusalCode(bank.login(ATM, 'grace', 'wrong-password'))).toBe('ERR_AUTH_FAILED');
    }
    expect(audit.lines).toContain('lockout locked');
    expect(await refusalCode(bank.login(ATM, 'grace', 'password1'))).toBe('ERR_ACCOUNT_LOCKED');
    advance(LOCKOUT_MS - 1);
    expect(await refusalCode(bank.login(ATM, 'grace', 'password1'))).toBe('ERR_ACCOUNT_LOCKED');
    advance(1);
    expect(await bank.login(ATM, 'grace', 'password1')).toMatchObject({ username: 'grace' });
  });

  it('tells each login when and at which ATM the previous one was; a failed attempt is no login', async () => {
    const { bank, advance } = await bankWithCustomer();
    // bankWithCustomer logged grace in at ATM 3 at the start of 2026: her first login.
    advance(90 * 60_000);
    await refusalCode(bank.login({ ...ATM, atmId: 9 }, 'grace', 'wrong-password'));
    expect(await bank.login({ ...ATM, atmId: 5 }, 'grace', 'password1')).toMatchObject({
      lastLogin: { at: '2026-01-01T00:00:00.000Z', atmId: 3 },
    });
    advance(60_000);
    expect(await bank.login({ ...ATM, atmId: null }, 'grace', 'password1')).toMatchObject({
      lastLogin: { at: '2026-01-01T01:30:00.000Z', atmId: 5 },
    });
    expect((await bank.login(ATM, 'grace', 'password1')).lastLogin).toEqual({
      at: '2026-01-01T01:31:00.000Z',
      atmId: null,
    });
    await bank.signup(ATM, 'alan', 'password1');
    expect((await bank.login(ATM, 'alan', 'password1')).lastLogin).toBeNull();
  });

  it("keeps counting a window's wrong passwords across a successful login", async () => {
    const { bank, audit, advance } = await bankWithCustomer();
    for (let i = 0; i < 4; i += 1) await refusalCode(bank.login(ATM, 'grace', 'wrong-password'));
    await bank.login(ATM, 'grace', 'password1');
    expect(audit.lines).not.toContain('lockout locked');
    // The owner's success gives the window's guesses no room back: the 5th wrong one locks.
    await refusalCode(bank.login(ATM, 'grace', 'wrong-password'));
    expect(audit.lines).toContain('lockout locked');
    expect(await refusalCode(bank.login(ATM, 'grace', 'password1'))).toBe('ERR_ACCOUNT_LOCKED');
    advance(LOCKOUT_MS);
    expect(await bank.login(ATM, 'grace', 'password1')).toMatchObject({ username: 'grace' });
  });

  it("checks at most 10 passwords in a window, 5 before the lock; a locked window's checks run out", async () => {
    const { bank, audit, advance } = await bankWithCustomer();
    for (let i = 0; i < 5; i += 1) await refusalCode(bank.login(ATM, 'grace', 'wrong-password'));
    advance(10 * 60_000);
    for (let i = 0; i < 7; i += 1) await refusalCode(bank.login(ATM, 'grace', 'wrong-password'));
    const judged = audit.events.filter((event) => event.outcome === 'bad_password');
    expect(judged).toHaveLength(10);
    expect(audit.lines.filter((line) => line === 'login over_budget')).toHaveLength(2);
    // Spent: even the right password is not checked until the window closes.
    expect(await refusalCode(bank.login(ATM, 'grace', 'password1'))).toBe('ERR_AUTH_FAILED');
    advance(CHECK_BUDGET.windowMs - 10 * 60_000);
    // A new window, the lock extended by the later wrong ones still holds: the right password is told so.
    expect(await refusalCode(bank.login(ATM, 'grace', 'password1'))).toBe('ERR_ACCOUNT_LOCKED');
  });
});
