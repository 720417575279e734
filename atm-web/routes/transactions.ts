/**
 * The transaction page (account summary, quick cash, the menu), the deposit
 * and withdrawal screens, the transaction POST, the withdrawal confirmation
 * and the receipt. POST then redirect then GET everywhere, so a reload never
 * repeats anything; each form carries a transaction id that the confirmation
 * keeps, so a double submit moves money once.
 */
import { Router, type Request, type Response } from 'express';

import type { MoneyResult } from '../../protocol/messages.ts';
import { TX_ID_PATTERN } from '../../protocol/messages.ts';
import { parseAmount, type Cents } from '../../protocol/money.ts';
import { callBank, callerOf, formField } from '../bank-call.ts';
import type { BankLink } from '../bank-link.ts';
import { liveCustomer, refuse, requireCustomer, sessionEnded } from '../customer.ts';
import { formatCents, formatReference, formatTime, newTxId } from '../display.ts';
import { takeFlash } from '../flash.ts';
import { HttpError } from '../http-error.ts';

export type TransactionDeps = {
  bank: BankLink;
  sessionIdleSeconds: number;
  clock: () => Date;
  timeZone: string;
};

/** A completed deposit or withdrawal, kept in the web session so its receipt survives a reload. */
export type Receipt = {
  txId: string;
  kind: 'deposit' | 'withdraw';
  amountCents: number;
  balanceCents: number;
  at: string;
  atmId: number;
};

/** A withdrawal waiting for the customer's confirmation; the id is the one the bank will see. */
export type PendingWithdrawal = { txId: string; amountCents: number; typed: string };

const ACTIONS = ['deposit', 'withdraw', 'balance'] as const;
type Action = (typeof ACTIONS)[number];

function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/** Quick cash amounts in whole dollars. */
export const QUICK_CASH_DOLLARS = [20, 40, 60, 100, 200] as const;

export function resultSentence(receipt: Pick<Receipt, 'kind' | 'amountCents' | 'balanceCents'>): string {
  const verb = receipt.kind === 'deposit' ? 'Deposited' : 'Withdrew';
  return `${verb} ${formatCents(receipt.amountCents)}. New balance: ${formatCents(receipt.balanceCents)}`;
}

export function insufficientFunds(balanceCents: number): string {
  return `Insufficient funds: ${formatCents(balanceCents)} available`;
}

export function transactionRoutes(deps: TransactionDeps): Router {
  const router = Router();
  const customerOnly = requireCustomer(deps.bank, deps.sessionIdleSeconds);

  /** The account summary every logged-in screen shows, with the balance read from the bank now. */
  const summary = async (req: Request, res: Response): Promise<Record<string, unknown> | null> => {
    const customer = liveCustomer(res);
    const outcome = await callBank(() => customer.run((client, session) => client.balance(session, callerOf(req))));
    if (!outcome.ok) {
      if (outcome.error.code === 'ERR_NOT_LOGGED_IN') sessionEnded(req, res);
      else throw new HttpError(503, 'BANK_UNAVAILABLE', outcome.error.message);
      return null;
    }
    const balanceCents = outcome.value;
    const lastLogin = req.session.customer?.lastLogin;
    return {
      balanceCents,
      balance: formatCents(balanceCents),
      lastLogin:
        lastLogin === undefined
          ? undefined
          : lastLogin && { iso: lastLogin.at, when: formatTime(lastLogin.at, deps.timeZone), atmId: lastLogin.atmId },
      quickCash: QUICK_CASH_DOLLARS.map((dollars) => ({
        value: String(dollars),
        label: formatCents(dollars * 100).replace(/\.00$/, ''),
        disabled: dollars * 100 > balanceCents,
      })),
      txId: newTxId(),
    };
  };

  /** Renders a logged-in screen with the summary; `amount` and the error come from a refusal. */
  const screen = async (req: Request, res: Response, view: string, title: string): Promise<void> => {
    const flash = takeFlash(req);
    const page = await summary(req, res);
    if (!page) return;
    const amountError = flash?.kind === 'error' && flash.amount !== undefined ? flash.text : null;
    res.render(view, {
      title,
      ...page,
      flash: amountError ? null : flash,
      amountError,
      amount: flash?.amount ?? '',
    });
  };

  router.get('/', customerOnly, (req, res) => screen(req, res, 'transaction', 'Your account'));
  router.get('/deposit', customerOnly, (req, res) => screen(req, res, 'deposit', 'Deposit'));
  router.get('/withdraw', customerOnly, (req, res) => screen(req, res, 'withdraw', 'Withdraw'));

  /** Applies a deposit or a confirmed withdrawal and shows its receipt. */
  const move = async (
    req: Request,
    res: Response,
    kind: Receipt['kind'],
    txId: string,
    cents: Cents,
    typed: string,
  ) => {
    const customer = liveCustomer(res);
    const back = kind === 'deposit' ? '/deposit' : '/withdraw';
    // The same txId however many links it takes: the customer sees the real outcome (BankLink.run).
    const outcome = await callBank<MoneyResult>(() =>
      customer.run((client, session) =>
        kind === 'deposit'
          ? client.deposit(session, txId, cents, callerOf(req))
          : client.withdraw(session, txId, cents, callerOf(req)),
      ),
    );
    if (!outcome.ok) {
      if (outcome.error.code === 'ERR_INSUFFICIENT_FUNDS') return refuseOverdraft(req, res, typed);
      return refuse(req, res, outcome.error, back, typed);
    }
    const previous = req.session.receipt;
    // A replay of the same transaction keeps the receipt of its first answer.
    req.session.receipt =
      previous?.txId === txId
        ? previous
        : {
            txId,
            kind,
            amountCents: outcome.value.amountCents,
            balanceCents: outcome.value.balanceCents,
            at: deps.clock().toISOString(),
            atmId: Number(req.app.locals.atmId),
          };
    res.redirect(303, '/receipt');
  };

  /** "Insufficient funds: $12.50 available", on the withdrawal screen with the amount still typed. */
  const refuseOverdraft = async (req: Request, res: Response, typed: string): Promise<void> => {
    const customer = liveCustomer(res);
    const balance = await callBank(() => customer.run((client, session) => client.balance(session, callerOf(req))));
    if (!balance.ok) return refuse(req, res, balance.error, '/withdraw', typed);
    req.session.flash = { kind: 'error', text: insufficientFunds(balance.value), amount: typed };
    res.redirect(303, '/withdraw');
  };

  router.post('/transaction', customerOnly, async (req, res) => {
    const action = formField(req.body, 'action');
    if (!isAction(action)) throw new HttpError(400, 'BAD_REQUEST', 'Choose Deposit, Withdraw or Check balance.');
    if (action === 'balance') {
      const customer = liveCustomer(res);
      const outcome = await callBank(() => customer.run((client, session) => client.balance(session, callerOf(req))));
      if (!outcome.ok) return refuse(req, res, outcome.error);
      req.session.flash = { kind: 'info', text: `Current balance: ${formatCents(outcome.value)}` };
      return res.redirect(303, '/');
    }
    // Every form this ATM serves carries a well-formed id. A missing or
    // malformed one is refused, never replaced: a fresh id would defeat the
    // protection against a double submit.
    const txId = formField(req.body, 'txId');
    if (!TX_ID_PATTERN.test(txId)) {
      throw new HttpError(400, 'BAD_REQUEST', 'This form is out of date. Nothing was changed; please try again.');
    }
    const typed = formField(req.body, 'amount').slice(0, 32);
    const back = action === 'deposit' ? '/deposit' : '/withdraw';
    const amount = parseAmount(typed);
    if (!amount.ok) {
      req.session.flash = { kind: 'error', text: amount.reason, amount: typed };
      return res.redirect(303, back);
    }
    if (action === 'deposit') return move(req, res, 'deposit', txId, amount.cents, typed);
    // A withdrawal waits for the customer to confirm it, under the same id.
    req.session.pendingWithdrawal = { txId, amountCents: amount.cents, typed };
    res.redirect(303, '/withdraw/confirm');
  });

  router.get('/withdraw/confirm', customerOnly, async (req, res) => {
    const pending = req.session.pendingWithdrawal;
    if (!pending) return res.redirect(303, '/withdraw');
    const customer = liveCustomer(res);
    const balance = await callBank(() => customer.run((client, session) => client.balance(session, callerOf(req))));
    if (!balance.ok) return refuse(req, res, balance.error, '/withdraw', pending.typed);
    // Refused now rather than after confirming; the bank still has the last word at confirmation.
    if (pending.amountCents > balance.value) {
      delete req.session.pendingWithdrawal;
      req.session.flash = { kind: 'error', text: insufficientFunds(balance.value), amount: pending.typed };
      return res.redirect(303, '/withdraw');
    }
    res.render('confirm', {
      title: 'Confirm withdrawal',
      txId: pending.txId,
      amount: formatCents(pending.amountCents),
      balance: formatCents(balance.value),
      balanceAfter: formatCents(balance.value - pending.amountCents),
    });
  });

  router.post('/withdraw/confirm', customerOnly, async (req, res) => {
    const txId = formField(req.body, 'txId');
    const pending = req.session.pendingWithdrawal;
    // The confirmation carries the id of the withdrawal it confirms: a second
    // submit of the same confirmation sends the same id, and the bank applies it once.
    if (!pending || pending.txId !== txId) {
      if (req.session.receipt?.txId === txId) return res.redirect(303, '/receipt');
      req.session.flash = { kind: 'info', text: 'That withdrawal was cancelled or replaced. Nothing was withdrawn.' };
      return res.redirect(303, '/withdraw');
    }
    await move(req, res, 'withdraw', pending.txId, pending.amountCents as Cents, pending.typed);
  });

  router.post('/withdraw/cancel', customerOnly, (req, res) => {
    delete req.session.pendingWithdrawal;
    req.session.flash = { kind: 'info', text: 'Withdrawal cancelled. Nothing was withdrawn.' };
    res.redirect(303, '/');
  });

  router.get('/receipt', customerOnly, (req, res) => {
    const receipt = req.session.receipt;
    if (!receipt) return res.redirect(303, '/');
    res.render('receipt', {
      title: 'Receipt',
      sentence: resultSentence(receipt),
      reference: formatReference(receipt.txId),
      iso: receipt.at,
      when: formatTime(receipt.at, deps.timeZone),
      atmId: receipt.atmId,
      type: receipt.kind === 'deposit' ? 'Deposit' : 'Withdrawal',
      amount: formatCents(receipt.amountCents),
      balance: formatCents(receipt.balanceCents),
    });
  });

  /** "Stay logged in" with scripts on: any logged-in request pushes the idle timeout out. */
  router.get('/session/keepalive', customerOnly, (_req, res) => {
    res.status(204).end();
  });

  return router;
}
