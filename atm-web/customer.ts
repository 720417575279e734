/**
 * The logged-in customer of a web request: resolving their live bank
 * session, and what happens when it has ended.
 */
import type { NextFunction, Request, Response } from 'express';

import type { BankError } from '../protocol/errors.ts';
import type { BankClient, CustomerSession } from '../protocol/client.ts';
import type { BankLink } from './bank-link.ts';

const SESSION_ENDED = 'Your session has ended. Please log in again.';

/** The customer's bank session is gone (logout elsewhere, expiry, reconnect): back to login, saying why. */
export function sessionEnded(req: Request, res: Response): void {
  delete req.session.customer;
  delete req.session.pendingWithdrawal;
  delete req.session.receipt;
  req.session.flash = { kind: 'info', text: SESSION_ENDED };
  res.redirect(303, '/login');
}

/** Calls to the bank on the customer's behalf (through `BankLink.run`, which follows the link between nodes). */
export type LiveCustomer = {
  run<T>(call: (client: BankClient, session: CustomerSession) => Promise<T>): Promise<T>;
};

/** Resolves the logged-in customer into `res.locals`, or sends them to log in again. */
export function requireCustomer(bank: BankLink, sessionIdleSeconds: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const customer = req.session.customer;
    if (!customer) return res.redirect(303, '/login');
    // Still logged in while the link moves between nodes: the session reopens on the next one.
    if (!bank.hasCustomer(customer.handle)) return sessionEnded(req, res);
    const { handle } = customer;
    const live: LiveCustomer = { run: (call) => bank.run(handle, call) };
    res.locals.customer = live;
    res.locals.username = customer.username;
    // Logged-in pages warn before the idle timeout (public/session-timer.js).
    res.locals.sessionIdleSeconds = sessionIdleSeconds;
    res.locals.stayHref = req.path;
    next();
  };
}

export function liveCustomer(res: Response): LiveCustomer {
  return res.locals.customer as LiveCustomer;
}

/** A bank refusal the customer should read, on `page` after the redirect; `amount` is what they typed. */
export function refuse(req: Request, res: Response, error: BankError, page = '/', amount?: string): void {
  if (error.code === 'ERR_NOT_LOGGED_IN') return sessionEnded(req, res);
  req.session.flash =
    amount === undefined ? { kind: 'error', text: error.message } : { kind: 'error', text: error.message, amount };
  res.redirect(303, page);
}
