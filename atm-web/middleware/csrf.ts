/**
 * Synchronizer-token CSRF protection (csrf-sync): a random token kept in the
 * server-side session and sent back in each form's hidden `_csrf` field. Any
 * POST without the session's current token is refused with 403 before a
 * route runs. The token is replaced at login and dies with the session at
 * logout, so an old page's token is useless.
 */
import { csrfSync } from 'csrf-sync';
import type { NextFunction, Request, Response } from 'express';

const csrf = csrfSync({
  getTokenFromRequest: (req: Request) => {
    const body: unknown = req.body;
    if (typeof body === 'object' && body !== null && '_csrf' in body && typeof body._csrf === 'string')
      return body._csrf;
    return undefined;
  },
  size: 32,
});

export const CSRF_ERROR_CODE = 'EBADCSRFTOKEN';
export const csrfProtection = csrf.csrfSynchronisedProtection;

/** A fresh token after a privilege change (login). */
export function rotateCsrfToken(req: Request): string {
  return csrf.generateToken(req, true);
}

/** Gives every view the session's token, creating one on first visit. */
export function exposeCsrfToken(req: Request, res: Response, next: NextFunction): void {
  res.locals.csrfToken = csrf.generateToken(req);
  next();
}
