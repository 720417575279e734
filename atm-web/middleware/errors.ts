/**
 * The one 404 handler and the one error handler. Customers see a status and a
 * plain sentence; never a stack trace or an internal message.
 */
import type { NextFunction, Request, Response } from 'express';

import type { Logger } from '../../runtime/logger.ts';
import { HttpError } from '../http-error.ts';
import { CSRF_ERROR_CODE } from './csrf.ts';
import { noteRefusal } from './observe.ts';

export function notFound(_req: Request, _res: Response, next: NextFunction): void {
  next(new HttpError(404, 'NOT_FOUND', 'There is no page at this address.'));
}

function hasField<K extends string>(value: unknown, key: K): value is Record<K, unknown> {
  return typeof value === 'object' && value !== null && key in value;
}

/** Maps anything thrown to an HttpError a customer can read. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (hasField(error, 'code') && error.code === CSRF_ERROR_CODE) {
    return new HttpError(
      403,
      'CSRF',
      'This form has expired or did not come from this ATM. Go back, reload the page and try again.',
    );
  }
  if (hasField(error, 'type')) {
    if (error.type === 'entity.too.large') return new HttpError(413, 'TOO_LARGE', 'That request is too large.');
    if (typeof error.type === 'string' && error.type.startsWith('entity.')) {
      return new HttpError(400, 'BAD_REQUEST', 'That request could not be read.');
    }
  }
  if (hasField(error, 'status') && error.status === 400)
    return new HttpError(400, 'BAD_REQUEST', 'That request could not be read.');
  return new HttpError(500, 'INTERNAL', 'Something went wrong. Nothing was changed. Please try again.');
}

const TITLES: Record<number, string> = {
  403: 'Form expired',
  404: 'Page not found',
  413: 'Request too large',
  429: 'Too many attempts',
  503: 'Bank unavailable',
};

/** Pages a "Try again" link may point at. */
const RETRYABLE_PAGES = new Set([
  '/',
  '/login',
  '/signup',
  '/statement',
  '/deposit',
  '/withdraw',
  '/help',
  '/security',
]);

/**
 * Built only from this list, never from the request: a path such as
 * `//evil.example/x` or `/\evil.example` would otherwise make the link leave
 * the site (issue 12, finding 7).
 */
export function retryHref(req: Request): string {
  return req.method === 'GET' && RETRYABLE_PAGES.has(req.path) ? req.path : '/';
}

export function errorHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const httpError = toHttpError(error);
    noteRefusal(res, httpError.code);
    if (httpError.status >= 500 && httpError.code === 'INTERNAL') {
      logger.error({ action: 'http', outcome: httpError.code, path: req.path, err: String(error) }, 'unexpected error');
    }
    res.status(httpError.status).render('error', {
      title: TITLES[httpError.status] ?? 'Something went wrong',
      retryHref: retryHref(req),
      status: httpError.status,
      code: httpError.code,
      message: httpError.message,
      loggedIn: Boolean(req.session?.customer),
    });
  };
}
