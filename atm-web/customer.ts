/**
 * The logged-in customer of a web request: resolving their live bank
 * session, and what happens when it has ended.
 */
import type { NextFunction, Request, Response } from 'express';

import type { BankError } from '../protocol/errors.ts';
import type { BankLink, CustomerHandle } from './bank-link.ts';

const SESSION_ENDED = 'Your session has ended. Please log in again.';

/** The customer's bank session is gone (logout elsewhere, expiry, reconnect): back to login, saying why. */
export function sessionEnded(req: Request, res: Response): void {
  delete req.session.customer;
  delete req.session.pendingWithdrawal;
  delete req.session.receipt;
  req.session.flash = { kind: 'info', text: SESSION_ENDED };
  res.redirect(303, '/login');
}

/** Resolves the customer's live bank session into `res.locals`, or sends them to log in again. */
export function requireCustomer(bank: BankLink, sessionIdleSeconds: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const customer = req.session.customer;
    if (!customer) return res.redirect(303, '/login');
    const live = bank.customer(customer.handle);
    if (!live) return sessionEnded(req, res);
    res.locals.customer = live;
    res.locals.username = customer.username;
    // Logged-in pages warn before the idle timeout (public/session-timer.js).
    res.locals.sessionIdleSeconds = sessionIdleSeconds;
    res.locals.stayHref = req.path;
    next();
  };
}

export function liveCustomer(res: Response): CustomerHandle {
  return res.locals.customer as CustomerHandle;
}

/** A bank refusal the customer should read, on `page` after the redirect; `amount` is what they typed. */
export function refuse(req: Request, res: Response, error: BankError, page = '/', amount?: string): void {
  if (error.code === 'ERR_NOT_LOGGED_IN') return sessionEnded(req, res);
  req.session.flash =
    amount === undefined ? { kind: 'error', text: error.message } : { kind: 'error', text: error.message, amount };
  res.redirect(303, page);
}
