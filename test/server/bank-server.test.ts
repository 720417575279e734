import fs from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { auditPaths } from '../../audit/writer.ts';
import type { BankClient, CustomerSession } from '../../protocol/client.ts';
import { BankError } from '../../protocol/errors.ts';
import { ACCOUNT_LOCKED_MESSAGE, LOGIN_FAILED_MESSAGE } from '../../server/bank.ts';
import { auditEvents, startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';
import path from 'node:path';

let running: TestBank | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string; lockedUntil?: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(BankError);
    const { code, message, lockedUntil } = error as BankError;
    return lockedUntil === undefined ? { code, message } : { code, message, lockedUntil };
  }
  throw new Error('expected the bank to refuse');
}

/** A clock tests can move. */
function testClock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start;
  return { clock: () => new Date(now), advance: (ms: number) => (now += ms) };
}

describe('signup', () => {
  it('creates an account at $0.00 and refuses the same name in another case', async () => {
    running = await startTestBank();
    const client = await running.connect();
    expect(await client.signup('Alice', 'password1')).toEqual({ op: 'signup', username: 'alice' });
    const session = await client.login('alice', 'password1');
    expect(await client.balance(session)).toBe(0);
    expect(await refusal(client.signup('ALICE', 'password2'))).toMatchObject({ code: 'ERR_USERNAME_TAKEN' });
  });

  it.each([
    ['ab', 'ERR_INVALID_USERNAME'],
    ['a'.repeat(33), 'ERR_INVALID_USERNAME'],
    ['bad name', 'ERR_INVALID_USERNAME'],
    ['évelyne', 'ERR_INVALID_USERNAME'],
    ['x\nuser=admin', 'ERR_INVALID_USERNAME'],
  ])('refuses the username %j', async (username, code) => {
    running = await startTestBank();
    const client = await running.connect();
    expect(await refusal(client.signup(username, 'password1'))).toMatchObject({ code });
  });

  it('refuses passwords shorter than 8 or longer than 72 bytes instead of truncating', async () => {
    running = await startTestBank();
    const client = await running.connect();
    expect(await refusal(client.signup('bob', 'short'))).toMatchObject({ code: 'ERR_INVALID_PASSWORD' });
    expect(await refusal(client.signup('bob', 'p'.repeat(73)))).toMatchObject({ code: 'ERR_INVALID_PASSWORD' });
    // 24 three-byte characters are 72 bytes: allowed; 25 are 75: refused.
    expect(await refusal(client.signup('bob', '€'.repeat(25)))).toMatchObject({ code: 'ERR_INVALID_PASSWORD' });
    await client.signup('bob', '€'.repeat(24));
    await client.signup('carol', 'p'.repeat(72));
    // A 73-byte password sharing the first 72 must not log in as carol.
    expect(await refusal(client.login('carol', 'p'.repeat(72) + 'x'))).toMatchObject({ code: 'ERR_AUTH_FAILED' });
  });
});

describe('login', () => {
  it('gives one message for an unknown user and a wrong password', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('dave', 'password1');
    const unknown = await refusal(client.login('nobody', 'password1'));
    const wrong = await refusal(client.login('dave', 'password2'));
    expect(unknown).toEqual(wrong);
    expect(wrong).toEqual({ code: 'ERR_AUTH_FAILED', message: LOGIN_FAILED_MESSAGE });
  });

  it('locks the account after 5 failures in a row for 30 minutes, then lets the right password in', async () => {
    const time = testClock();
    running = await startTestBank({ clock: time.clock });
    const client = await running.connect();
    await client.signup('erin', 'password1');
    for (let i = 0; i < 5; i += 1) await refusal(client.login('erin', 'wrong-password'));
    // Locked: even the right password is refused; only it is told so, and until when.
    const locked = {
      code: 'ERR_ACCOUNT_LOCKED',
      message: ACCOUNT_LOCKED_MESSAGE,
      lockedUntil: '2026-01-01T00:30:00.000Z',
    };
    expect(await refusal(client.login('erin', 'password1'))).toEqual(locked);
    time.advance(29 * 60_000);
    expect(await refusal(client.login('erin', 'password1'))).toEqual(locked);
    time.advance(60_001);
    const session = await client.login('erin', 'password1');
    expect(session.username).toBe('erin');
    const actions = auditEvents(running.dataDir).filter((event) => event.user === 'erin');
    expect(actions.filter((event) => event.action === 'lockout')).toHaveLength(1);
    expect(actions.filter((event) => event.outcome === 'locked' && event.action === 'login')).toHaveLength(2);
  });

  it('gives a wrong password to a locked account the generic message and counts it; the 10th check ends the window', async () => {
    const time = testClock();
    running = await startTestBank({ clock: time.clock });
    const client = await running.connect();
    await client.signup('gus', 'password1');
    for (let i = 0; i < 5; i += 1) await refusal(client.login('gus', 'wrong-password'));
    // Without the password a locked account looks like any other wrong guess.
    const generic = { code: 'ERR_AUTH_FAILED', message: LOGIN_FAILED_MESSAGE };
    expect(await refusal(client.login('gus', 'wrong-password'))).toEqual(generic);
    expect(await refusal(client.login('nobody-here', 'wrong-password'))).toEqual(generic);
    // Guesses during the lock are not free: each extends it from then.
    time.advance(10 * 60_000);
    for (let i = 0; i < 3; i += 1) await refusal(client.login('gus', 'wrong-password'));
    expect(await refusal(client.login('gus', 'password1'))).toMatchObject({
      code: 'ERR_ACCOUNT_LOCKED',
      lockedUntil: '2026-01-01T00:40:00.000Z',
    });
    // The right password's check was given back; one more wrong one spends the window's 10.
    await refusal(client.login('gus', 'wrong-password'));
    expect(await refusal(client.login('gus', 'password1'))).toEqual(generic);
    const events = auditEvents(running.dataDir).filter((event) => event.user === 'gus');
    expect(events.filter((event) => event.outcome === 'bad_password')).toHaveLength(10);
    expect(events.filter((event) => event.action === 'lockout').length).toBeGreaterThanOrEqual(2);
  });

  it("gives a window's wrong passwords no room back after a successful login", async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('fay', 'password1');
    for (let i = 0; i < 4; i += 1) await refusal(client.login('fay', 'wrong-password'));
    await client.login('fay', 'password1');
    await refusal(client.login('fay', 'wrong-password'));
    expect(await refusal(client.login('fay', 'password1'))).toMatchObject({ code: 'ERR_ACCOUNT_LOCKED' });
  });

  it('ends the bank session at logout', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('gus', 'password1');
    const session = await client.login('gus', 'password1');
    await client.logout(session);
    expect(await refusal(client.balance(session))).toMatchObject({ code: 'ERR_NOT_LOGGED_IN' });
  });
});

describe('the password checker under a flood', () => {
  it('takes turns by ATM and address: a flood from one address does not turn away another at the same ATM', async () => {
    running = await startTestBank({
      bcryptCost: 10,
      isolatePasswordHashing: true,
      passwordPool: { workers: 1, maxQueued: 64, maxPerSource: 3, maxWaitMs: 60_000 },
    });
    const atm = await running.connect(1);
    await atm.signup('neighbour', 'password1', { client: '10.0.0.2' });
    // The dummy hash that unknown users are checked against exists before the flood.
    await expect(atm.login('nobody', 'password1')).rejects.toMatchObject({ code: 'ERR_AUTH_FAILED' });
    // One address at ATM 1 sends 12 logins at once: its share of the queue fills, the rest are refused busy.
    const flood = Array.from({ length: 12 }, (_, i) =>
      atm.login(`nobody${i}`, 'password1', undefined, { client: '10.0.0.1' }).catch((error: unknown) => error),
    );
    // Another customer at the same ATM, from another address, still gets a turn.
    const neighbour = await atm.login('neighbour', 'password1', undefined, { client: '10.0.0.2' });
    expect(neighbour.username).toBe('neighbour');
    const outcomes = await Promise.all(flood);
    expect(
      outcomes.filter((outcome) => outcome instanceof BankError && outcome.code === 'ERR_BUSY').length,
    ).toBeGreaterThan(0);
  }, 60_000);
});

describe('money', () => {
  it('deposits, withdraws, refuses an overdraft and changes nothing', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('hal', 'password1');
    const session = await client.login('hal', 'password1');
    expect(await client.deposit(session, uniqueTxId(), 15_000)).toMatchObject({
      balanceCents: 15_000,
      replayed: false,
    });
    expect(await client.withdraw(session, uniqueTxId(), 5_000)).toMatchObject({ balanceCents: 10_000 });
    expect(await refusal(client.withdraw(session, uniqueTxId(), 10_001))).toEqual({
      code: 'ERR_INSUFFICIENT_FUNDS',
      message: 'Insufficient funds',
    });
    expect(await client.balance(session)).toBe(10_000);
    const statement = await client.statement(session);
    expect(statement.balanceCents).toBe(10_000);
    expect(statement.entries.map((entry) => [entry.kind, entry.amountCents, entry.balanceAfterCents])).toEqual([
      ['withdraw', 5_000, 10_000],
      ['deposit', 15_000, 15_000],
    ]);
  });

  it('refuses zero, too large and non-integer amounts and changes nothing', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('ivy', 'password1');
    const session = await client.login('ivy', 'password1');
    for (const amount of [0, 100_000_001]) {
      expect(await refusal(client.deposit(session, uniqueTxId(), amount))).toMatchObject({
        code: 'ERR_INVALID_AMOUNT',
      });
    }
    expect(await client.balance(session)).toBe(0);
  });

  it('applies a retried request with the same transaction id once and repeats the original answer', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('jan', 'password1');
    const session = await client.login('jan', 'password1');
    const txId = uniqueTxId();
    const first = await client.deposit(session, txId, 2_500);
    const retry = await client.deposit(session, txId, 2_500);
    expect(first).toMatchObject({ balanceCents: 2_500, replayed: false });
    expect(retry).toMatchObject({ balanceCents: 2_500, replayed: true });
    expect(await client.balance(session)).toBe(2_500);
    // Also from another connection after a new login (the ATM reconnected).
    const other = await running.connect(2);
    const again = await other.login('jan', 'password1');
    expect(await other.deposit(again, txId, 2_500)).toMatchObject({ balanceCents: 2_500, replayed: true });
    // A refused withdrawal is answered the same way on retry.
    const overdraft = uniqueTxId();
    await refusal(client.withdraw(session, overdraft, 999_999));
    await client.deposit(session, uniqueTxId(), 10_000_000);
    expect(await refusal(client.withdraw(session, overdraft, 999_999))).toMatchObject({
      code: 'ERR_INSUFFICIENT_FUNDS',
    });
    // The same id for a different request is refused and changes nothing.
    expect(await refusal(client.withdraw(session, txId, 2_500))).toMatchObject({ code: 'ERR_TX_CONFLICT' });
    expect(await client.balance(session)).toBe(10_002_500);
  });

  it('gives exactly 50 successes for 100 concurrent $1 withdrawals against $50', async () => {
    running = await startTestBank();
    const setup = await running.connect();
    await setup.signup('kim', 'password1');
    await setup.deposit(await setup.login('kim', 'password1'), uniqueTxId(), 5_000);
    // 25 ATMs, each with four customer sessions (the most one customer may
    // hold on one ATM) for the same account. The logins go one at a time:
    // racing logins of one account count against its lockout until they succeed.
    const sessions: Array<Array<{ client: BankClient; session: CustomerSession }>> = [];
    for (let atm = 0; atm < 25; atm += 1) {
      const client = await running.connect(atm + 10);
      const onAtm = [];
      for (let i = 0; i < 4; i += 1) onAtm.push({ client, session: await client.login('kim', 'password1') });
      sessions.push(onAtm);
    }
    const results = await Promise.allSettled(
      sessions.flat().map(({ client, session }) => client.withdraw(session, uniqueTxId(), 100)),
    );
    const ok = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter(
      (result) => result.status === 'rejected' && (result.reason as BankError).code === 'ERR_INSUFFICIENT_FUNDS',
    );
    expect(ok).toHaveLength(50);
    expect(refused).toHaveLength(50);
    const first = sessions[0]?.[0];
    expect(await first!.client.balance(first!.session)).toBe(0);
  });
});

describe('audit trail', () => {
  it('records every event in both logs with no secret in either', async () => {
    running = await startTestBank();
    const client = await running.connect(3);
    await client.signup('lee', 'hunter2-secret');
    await refusal(client.login('lee', 'wrong-secret-pw'));
    const session = await client.login('lee', 'hunter2-secret');
    await client.deposit(session, uniqueTxId(), 15_000);
    await refusal(client.withdraw(session, uniqueTxId(), 20_000));
    await client.balance(session);
    await client.statement(session);
    await client.logout(session);
    // A password typed into the username field is never logged.
    await refusal(client.login('Typed My Password! 42', 'hunter2-secret'));
    await refusal(client.signup('Typed My Password! 42', 'hunter2-secret'));
    const events = auditEvents(running.dataDir).filter((event) => event.user === 'lee');
    expect(events.map((event) => [event.action, event.outcome])).toEqual([
      ['signup', 'ok'],
      ['login', 'bad_password'],
      ['login', 'ok'],
      ['deposit', 'ok'],
      ['withdraw', 'insufficient_funds'],
      ['balance', 'ok'],
      ['statement', 'ok'],
      ['logout', 'ok'],
    ]);
    expect(events.every((event) => event.atm === 3)).toBe(true);
    expect(events[3]?.amountCents).toBe(15_000);
    const plain = fs.readFileSync(auditPaths(running.dataDir).plain, 'utf8');
    expect(plain).toMatch(/^\S+Z atm=3 user=lee action=deposit amount=150\.00 outcome=ok/m);
    const encrypted = fs.readFileSync(auditPaths(running.dataDir).encrypted, 'utf8');
    for (const secret of ['hunter2-secret', 'wrong-secret-pw', session.id, 'Typed My Password']) {
      expect(plain).not.toContain(secret);
      expect(encrypted).not.toContain(secret);
    }
  });
});

describe('data directory', () => {
  it('is created 0700 with the bank keys, the audit key and the ledger at 0600, and reused', async () => {
    running = await startTestBank();
    const dir = running.dataDir;
    const mode = (file: string): number => fs.statSync(path.join(dir, file)).mode & 0o777;
    expect(mode('.')).toBe(0o700);
    for (const file of [
      'bank.keys',
      'audit.key',
      'audit-signing.key',
      'ledger.db',
      'audit/audit_log.txt',
      'audit/audit_log.enc',
    ]) {
      expect(mode(file), file).toBe(0o600);
    }
    const keys = fs.readFileSync(path.join(dir, 'bank.keys'), 'utf8');
    await running.stop();
    running = await startTestBank({ dataDir: dir });
    expect(fs.readFileSync(path.join(dir, 'bank.keys'), 'utf8')).toBe(keys);
  });
});

describe('service times', () => {
  it('counts the requests answered and the garbage-collection pauses since the last reset', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('timed', 'password1');
    const session = await client.login('timed', 'password1');
    running.bank.serviceTimes(true);
    await client.deposit(session, uniqueTxId(), 100);
    await client.balance(session);
    // Enough short-lived garbage to force at least one young-generation collection.
    let holder: number[][] = [];
    for (let i = 0; i < 100_000; i += 1) {
      holder.push(new Array<number>(100).fill(i));
      if (holder.length === 100) holder = [];
    }
    expect(holder).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const window = running.bank.serviceTimes(true);
    expect(window.count).toBe(2);
    expect(window.p99).toBeGreaterThan(0);
    expect(window.p99).toBeLessThanOrEqual(window.max);
    expect(window.gc.pauses).toBeGreaterThan(0);
    expect(window.gc.totalMs).toBeGreaterThan(0);
    expect(window.gc.maxMs).toBeLessThanOrEqual(window.gc.totalMs);
    const empty = running.bank.serviceTimes();
    expect(empty.count).toBe(0);
  });

  it('holds the session caps under concurrent logins, and one account cannot fill a connection', async () => {
    running = await startTestBank({ limits: { maxSessionsPerConnection: 6, maxSessionsPerCustomer: 2 } });
    const setup = await running.connect();
    for (let i = 0; i < 12; i += 1) await setup.signup(`crowd${i}`, 'password1');
    const atm = await running.connect(2);
    // Twelve customers log in at once against a cap of six: the logins in flight hold their places.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => atm.login(`crowd${i}`, 'password1')),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(6);
    // One account gets two places on a connection, however often it logs in: each login past
    // two ends its oldest session there (which is told why), and everyone else still gets in.
    const other = await running.connect(3);
    const hog = [];
    for (let i = 0; i < 5; i += 1) hog.push(await other.login('crowd0', 'password1'));
    const balances = await Promise.allSettled(hog.map((session) => other.balance(session)));
    expect(balances.map((outcome) => outcome.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(balances[0]).toMatchObject({
      reason: { code: 'ERR_NOT_LOGGED_IN', message: expect.stringMatching(/newer login/) },
    });
    for (const session of hog.slice(0, 3)) await other.logout(session);
    for (let i = 1; i < 3; i += 1) expect(await other.login(`crowd${i}`, 'password1')).toBeDefined();
    // Racing logins of one account: at most two in flight, and never more than two sessions after.
    const raced = await Promise.allSettled(Array.from({ length: 6 }, () => other.login('crowd0', 'password1')));
    const opened = raced.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    expect(opened.length).toBeGreaterThanOrEqual(1);
    const live = await Promise.allSettled([...hog.slice(3), ...opened].map((session) => other.balance(session)));
    expect(live.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(2);
  }, 30_000);
});
