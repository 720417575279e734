/**
 * One log line and one metrics sample per request, written when the response
 * has gone out: method, route, status and time. Never a body, a cookie or a
 * query string (a body holds passwords; a cookie is a session).
 */
import type { NextFunction, Request, Response } from 'express';

import type { Logger } from '../../runtime/logger.ts';
import type { HttpErrorCode } from '../http-error.ts';
import { methodLabel, requestPath, routeLabel, type AtmMetrics } from '../metrics.ts';

/** Long enough for every page, short enough that a junk URL cannot flood the log. */
const MAX_LOGGED_PATH = 120;

/** Set by the error handler so refusals (CSRF, rate limit) can be counted by kind. */
export function noteRefusal(res: Response, code: HttpErrorCode): void {
  res.locals.refusal = code;
}

export function observeRequests(atmId: number, logger: Logger, metrics: AtmMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const refusal = res.locals.refusal as HttpErrorCode | undefined;
      const method = methodLabel(req.method);
      metrics.observe(method, routeLabel(req), res.statusCode, seconds, refusal);
      logger.info(
        {
          atm: atmId,
          method,
          path: requestPath(req).slice(0, MAX_LOGGED_PATH),
          status: res.statusCode,
          ms: Math.round(seconds * 1e4) / 10,
          outcome: refusal,
        },
        'request',
      );
    });
    next();
  };
}
