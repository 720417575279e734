/**
 * The transaction page, the transaction POST, and the statement. POST then
 * redirect then GET, so a reload never repeats a deposit; each rendered form
 * carries a fresh transaction id, so a double click deposits once.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';

import { secureRandom } from '../../protocol/crypto.ts';
import { BankError } from '../../protocol/errors.ts';
import { TX_ID_PATTERN } from '../../protocol/messages.ts';
import { formatCents, parseAmount } from '../../protocol/money.ts';
import { callBank, formField } from '../bank-call.ts';
import { takeFlash } from '../flash.ts';
import type { BankLink, CustomerHandle } from '../bank-link.ts';

export type TransactionDeps = { bank: BankLink; sessionIdleSeconds: number };

const ACTIONS = ['deposit', 'withdraw', 'balance'] as const;
type Action = (typeof ACTIONS)[number];

function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

function newTxId(): string {
  return secureRandom(16).toString('base64url');
}

const SESSION_ENDED = 'Your session has ended. Please log in again.';

/** The customer's bank session is gone (logout elsewhere, expiry, reconnect): back to login, saying why. */
function sessionEnded(req: Request, res: Response): void {
  delete req.session.customer;
  req.session.flash = { kind: 'info', text: SESSION_ENDED };
  res.redirect(303, '/login');
}

export function transactionRoutes(deps: TransactionDeps): Router {
  const router = Router();

  /** Resolves the customer's live bank session or sends them to log in again. */
  const requireCustomer = (req: Request, res: Response, next: NextFunction): void => {
    const customer = req.session.customer;
    if (!customer) return res.redirect(303, '/login');
    const live = deps.bank.customer(customer.handle);
    if (!live) return sessionEnded(req, res);
    res.locals.customer = live;
    res.locals.username = customer.username;
    // Logged-in pages warn before the idle timeout (public/session-timer.js).
    res.locals.sessionIdleSeconds = deps.sessionIdleSeconds;
    res.locals.stayHref = req.path;
    next();
  };

  const live = (res: Response): CustomerHandle => res.locals.customer as CustomerHandle;

  const renderPage = (req: Request, res: Response, status: number, error: string | null, amount = ''): void => {
    res.status(status).render('transaction', { title: 'ATM', flash: takeFlash(req), error, amount, txId: newTxId() });
  };

  /** A bank refusal the customer should read, on the page after the redirect. */
  const refused = (req: Request, res: Response, error: BankError): void => {
    if (error.code === 'ERR_NOT_LOGGED_IN') return sessionEnded(req, res);
    req.session.flash = { kind: 'error', text: error.message };
    res.redirect(303, '/');
  };

  router.get('/', requireCustomer, (req, res) => renderPage(req, res, 200, null));

  router.post('/transaction', requireCustomer, async (req, res) => {
    const action = formField(req.body, 'action');
    if (!isAction(action)) return renderPage(req, res, 400, 'Choose Deposit, Withdraw or Check balance.');
    const { client, session } = live(res);
    if (action === 'balance') {
      const outcome = await callBank(() => client.balance(session));
      if (!outcome.ok) return refused(req, res, outcome.error);
      req.session.flash = { kind: 'info', text: `Current balance: ${formatCents(outcome.value)}` };
      return res.redirect(303, '/');
    }
    const rawAmount = formField(req.body, 'amount');
    const amount = parseAmount(rawAmount);
    if (!amount.ok) return renderPage(req, res, 400, amount.reason, rawAmount.slice(0, 32));
    const submittedTxId = formField(req.body, 'txId');
    const txId = TX_ID_PATTERN.test(submittedTxId) ? submittedTxId : newTxId();
    const outcome = await callBank(() =>
      action === 'deposit' ? client.deposit(session, txId, amount.cents) : client.withdraw(session, txId, amount.cents),
    );
    if (!outcome.ok) return refused(req, res, outcome.error);
    const verb = action === 'deposit' ? 'Deposited' : 'Withdrew';
    req.session.flash = {
      kind: 'ok',
      text: `${verb} ${formatCents(outcome.value.amountCents)}. New balance: ${formatCents(outcome.value.balanceCents)}`,
    };
    res.redirect(303, '/');
  });

  router.get('/statement', requireCustomer, async (req, res) => {
    const { client, session } = live(res);
    const outcome = await callBank(() => client.statement(session));
    if (!outcome.ok) return refused(req, res, outcome.error);
    res.render('statement', {
      title: 'Mini statement',
      balance: formatCents(outcome.value.balanceCents),
      entries: outcome.value.entries.map((entry) => ({
        date: entry.at.slice(0, 16).replace('T', ' ') + ' UTC',
        iso: entry.at,
        type: entry.kind === 'deposit' ? 'Deposit' : 'Withdrawal',
        amount: `${entry.kind === 'deposit' ? '+' : '−'}${formatCents(entry.amountCents)}`,
        balance: formatCents(entry.balanceAfterCents),
      })),
    });
  });

  return router;
}
