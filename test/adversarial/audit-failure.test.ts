/**
 * When the audit log cannot be written (disk full, permission lost), a money
 * movement fails and changes nothing, rather than happening unlogged.
 */
import fs from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { BankError } from '../../protocol/errors.ts';
import { auditEvents, startTestBank, uniqueTxId, type TestBank } from '../helpers.ts';

let running: TestBank | null = null;
const realWriteSync = fs.writeSync;
afterEach(async () => {
  fs.writeSync = realWriteSync;
  await running?.stop();
  running = null;
});

/** Makes every write fail the way a full or read-only disk does. */
function breakDisk(code: 'ENOSPC' | 'EACCES'): void {
  fs.writeSync = (() => {
    throw Object.assign(new Error(code === 'ENOSPC' ? 'no space left on device' : 'permission denied'), { code });
  }) as typeof fs.writeSync;
}

describe('an unwritable audit log', () => {
  it.each(['ENOSPC', 'EACCES'] as const)(
    'refuses deposits, withdrawals and balance inquiries (%s) and changes nothing',
    async (code) => {
      running = await startTestBank();
      const client = await running.connect();
      await client.signup('logged', 'password1');
      const session = await client.login('logged', 'password1');
      await client.deposit(session, uniqueTxId(), 5_000);

      breakDisk(code);
      const txId = uniqueTxId();
      for (const attempt of [
        () => client.deposit(session, txId, 1_000),
        () => client.withdraw(session, uniqueTxId(), 1_000),
      ]) {
        const error = await attempt().then(
          () => null,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(BankError);
        expect((error as BankError).code).toBe('ERR_UNAVAILABLE');
        expect((error as BankError).message).toBe('The transaction could not be recorded. Nothing was changed.');
      }
      // A balance inquiry is audited too, so it is refused rather than answered unlogged.
      const inquiry = await client.balance(session).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect((inquiry as BankError).code).toBe('ERR_UNAVAILABLE');
      fs.writeSync = realWriteSync;

      expect(await client.balance(session)).toBe(5_000);
      // The refused transaction id was never used, so a retry now goes through once.
      expect(await client.deposit(session, txId, 1_000)).toMatchObject({ balanceCents: 6_000, replayed: false });
      const deposits = auditEvents(running.dataDir).filter((event) => event.action === 'deposit');
      expect(deposits.map((event) => event.amountCents)).toEqual([5_000, 1_000]);
    },
  );
});
