/**
 * CSRF protection that stores nothing on the server: a signed double-submit
 * token. The browser holds a random nonce in an HttpOnly, SameSite=Strict
 * cookie; each form carries HMAC(key, binding, nonce), where the binding is
 * the web session's id once a customer is logged in and empty before. A POST
 * passes only when its `_csrf` field is the MAC of the cookie's nonce under
 * the current binding, compared in constant time.
 *
 * Why not a token kept in the session (csrf-sync, used before): every
 * anonymous visit then stored a session row, and a cookieless flood filled
 * the store (issue 12, finding 5). Why not csrf-csrf: it needs cookie-parser
 * and compares MACs with `===`.
 *
 * The token is replaced at login (new nonce, bound to the new session id) and
 * dies at logout (the session id it was bound to is gone).
 */
import type { NextFunction, Request, Response } from 'express';

import { constantTimeEqual, hmacSha256, secureRandom, type RandomSource } from '../../protocol/crypto.ts';

export const CSRF_ERROR_CODE = 'EBADCSRFTOKEN';
const NONCE_BYTES = 32;
const NONCE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type CsrfOptions = {
  /** The ATM's web session secret; the token key is derived from it. */
  secret: string;
  cookieName: string;
  secure: boolean;
  random?: RandomSource;
};

export type CsrfGuard = {
  /** Refuses a state-changing request without a valid token (error code EBADCSRFTOKEN). */
  protect(req: Request, res: Response, next: NextFunction): void;
  /** Gives every view `csrfToken`, setting the nonce cookie on a first visit. */
  expose(req: Request, res: Response, next: NextFunction): void;
  /** A fresh nonce and token after a privilege change (login); returns the token. */
  rotate(req: Request, res: Response): string;
  /** Forgets the nonce (logout). */
  clear(res: Response): void;
};

class CsrfTokenError extends Error {
  readonly code = CSRF_ERROR_CODE;
  readonly status = 403;
}

/** One cookie's value from the request's Cookie header, without storing anything. */
function readCookie(req: Request, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function formToken(req: Request): string | null {
  const body: unknown = req.body;
  if (typeof body === 'object' && body !== null && '_csrf' in body && typeof body._csrf === 'string') return body._csrf;
  return null;
}

export function createCsrfGuard(options: CsrfOptions): CsrfGuard {
  const random = options.random ?? secureRandom;
  // A key of its own, so the token never reveals anything about the cookie-signing secret.
  const key = hmacSha256(Buffer.from(options.secret, 'utf8'), Buffer.from('atm-web csrf token key v1'));
  const cookie = { httpOnly: true, sameSite: 'strict' as const, secure: options.secure, path: '/' };

  /** Logged in: bound to this web session, so a token taken from another session (or before logout) fails. */
  const binding = (req: Request): string => (req.session?.customer ? req.sessionID : '');

  const tokenFor = (req: Request, nonce: string): Buffer =>
    hmacSha256(key, Buffer.from(binding(req), 'utf8'), Buffer.from([0]), Buffer.from(nonce, 'utf8'));

  const newNonce = (res: Response): string => {
    const nonce = random(NONCE_BYTES).toString('base64url');
    res.cookie(options.cookieName, nonce, cookie);
    return nonce;
  };

  const currentNonce = (req: Request): string | null => {
    const nonce = readCookie(req, options.cookieName);
    return nonce !== null && NONCE_PATTERN.test(nonce) ? nonce : null;
  };

  /**
   * The views' `csrfToken`, computed when the page renders rather than now:
   * the route may first end a dead customer session, and the form must carry
   * the binding its POST will be checked against.
   */
  const showToken = (req: Request, res: Response, nonce: string): void => {
    Object.defineProperty(res.locals, 'csrfToken', {
      configurable: true,
      enumerable: true,
      get: () => tokenFor(req, nonce).toString('base64url'),
    });
  };

  return {
    protect(req, _res, next) {
      if (SAFE_METHODS.has(req.method)) return next();
      const nonce = currentNonce(req);
      const submitted = formToken(req);
      const valid =
        nonce !== null &&
        submitted !== null &&
        constantTimeEqual(Buffer.from(submitted, 'utf8'), Buffer.from(tokenFor(req, nonce).toString('base64url')));
      next(valid ? undefined : new CsrfTokenError('invalid CSRF token'));
    },
    expose(req, res, next) {
      showToken(req, res, currentNonce(req) ?? newNonce(res));
      next();
    },
    rotate(req, res) {
      const nonce = newNonce(res);
      showToken(req, res, nonce);
      return tokenFor(req, nonce).toString('base64url');
    },
    clear(res) {
      res.clearCookie(options.cookieName, cookie);
    },
  };
}
