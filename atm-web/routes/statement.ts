/**
 * The statement: the customer's movements, newest first, with the balance
 * after each, in the customer's time zone.
 */
import { Router } from 'express';

import type { BankLink } from '../bank-link.ts';
import { callBank } from '../bank-call.ts';
import { liveCustomer, refuse, requireCustomer } from '../customer.ts';
import { formatCents, formatTime } from '../display.ts';

export type StatementDeps = { bank: BankLink; sessionIdleSeconds: number; timeZone: string };

export function statementRoutes(deps: StatementDeps): Router {
  const router = Router();
  const customerOnly = requireCustomer(deps.bank, deps.sessionIdleSeconds);

  router.get('/statement', customerOnly, async (req, res) => {
    const { client, session } = liveCustomer(res);
    const outcome = await callBank(() => client.statement(session));
    if (!outcome.ok) return refuse(req, res, outcome.error);
    res.render('statement', {
      title: 'Mini statement',
      balance: formatCents(outcome.value.balanceCents),
      entries: outcome.value.entries.map((entry) => ({
        date: formatTime(entry.at, deps.timeZone),
        iso: entry.at,
        type: entry.kind === 'deposit' ? 'Deposit' : 'Withdrawal',
        amount: `${entry.kind === 'deposit' ? '+' : '−'}${formatCents(entry.amountCents)}`,
        balance: formatCents(entry.balanceAfterCents),
      })),
    });
  });

  return router;
}
