import { afterEach, describe, expect, it } from 'vitest';

import { startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';

let running: TestBank | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

describe('bank over a real socket', () => {
  it('signs up, logs in, deposits, withdraws and reports the balance', async () => {
    running = await startTestBank();
    const client = await running.connect();
    await client.signup('alice', 'correct horse');
    const session = await client.login('alice', 'correct horse');
    expect((await client.deposit(session, uniqueTxId(), 15_000)).balanceCents).toBe(15_000);
    expect((await client.withdraw(session, uniqueTxId(), 5_000)).balanceCents).toBe(10_000);
    expect(await client.balance(session)).toBe(10_000);
  });
});
