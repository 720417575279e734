import { describe, expect, it } from 'vitest';

import { MAX_TICKET_CHARS, openTicket, sealTicket } from '../../server/ticket.ts';
import { auditEvents, startTestBank, uniqueTxId } from '../helpers.ts';

const key = Buffer.alloc(32, 1);
const counter = (() => {
  let n = 0;
  return (size: number): Buffer => Buffer.alloc(size, (n += 1));
})();
const claims = { accountId: 7, username: 'grace', atmId: 3, expiresAt: 1_000_000, channel: 'terminal' as const };

describe('resumption tickets', () => {
  it('open for the ATM they were issued to, before they expire', () => {
    const ticket = sealTicket(key, claims, counter);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(ticket.length).toBeLessThanOrEqual(MAX_TICKET_CHARS);
    expect(openTicket(key, ticket, 3, 999_999)).toEqual({ ok: true, claims });
  });

  it('refuse another ATM, a late use, another key and any changed byte', () => {
    const ticket = sealTicket(key, claims, counter);
    expect(openTicket(key, ticket, 4, 0)).toEqual({ ok: false, reason: 'forged_or_other_atm' });
    expect(openTicket(key, ticket, 3, 1_000_000)).toEqual({ ok: false, reason: 'expired' });
    expect(openTicket(Buffer.alloc(32, 2), ticket, 3, 0)).toEqual({ ok: false, reason: 'forged_or_other_atm' });
    const bytes = Buffer.from(ticket, 'base64url');
    for (const index of [0, 12, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index] = (tampered[index] ?? 0) ^ 1;
      expect(openTicket(key, tampered.toString('base64url'), 3, 0)).toEqual({
        ok: false,
        reason: 'forged_or_other_atm',
      });
    }
    expect(openTicket(key, 'short', 3, 0)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('a resumed session', () => {
  it('keeps the channel it was opened on: a card login resumed on a new connection is still a terminal session', async () => {
    const bank = await startTestBank();
    try {
      const setup = await bank.connect(9_000);
      const opened = await setup.card({ mode: 'open', account: 'kim', amountCents: 5_000, card: '' });
      await setup.cardConfirm();
      await setup.signup('lee', 'correct-horse-battery');

      const first = await bank.connect(9_000);
      const card = await first.cardLogin('kim', opened.card);
      const web = await first.login('lee', 'correct-horse-battery');
      expect(card.ticket).not.toBeNull();
      expect(web.ticket).not.toBeNull();
      first.close();

      const second = await bank.connect(9_000);
      const cardAgain = await second.resume(card.ticket ?? '');
      const webAgain = await second.resume(web.ticket ?? '');
      const cardTx = uniqueTxId();
      const webTx = uniqueTxId();
      expect((await second.deposit(cardAgain, cardTx, 100)).balanceCents).toBe(5_100);
      await second.deposit(webAgain, webTx, 100);

      const events = auditEvents(bank.dataDir);
      const resumed = events.filter((event) => event.outcome === 'resumed');
      expect(resumed.map((event) => [event.user, event.channel])).toEqual([
        ['card:kim', 'terminal'],
        ['lee', 'web'],
      ]);
      const deposits = events.filter((event) => event.action === 'deposit' && event.outcome === 'ok').slice(-2);
      expect(deposits.map((event) => [event.user, event.channel])).toEqual([
        ['card:kim', 'terminal'],
        ['lee', 'web'],
      ]);
    } finally {
      await bank.stop();
    }
  });
});
