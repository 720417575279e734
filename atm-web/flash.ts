/**
 * One-shot messages carried across a redirect (POST, redirect, GET): set
 * before the redirect, shown once on the next page.
 */
import type { Request } from 'express';

/** `amount` is set when the message refuses an amount: the page keeps what was typed and marks the field. */
export type Flash = { kind: 'ok' | 'error' | 'info'; text: string; amount?: string };

/** Returns the pending message, if any, and forgets it. */
export function takeFlash(req: Request): Flash | null {
  const flash = req.session.flash ?? null;
  if (flash) delete req.session.flash;
  return flash;
}
