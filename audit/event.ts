/**
 * One audit event and its plaintext rendering. Events never hold secrets:
 * no password, key, master secret or session id ever becomes a field.
 */
import type { Channel } from '../protocol/messages.ts';
import { plainCents } from '../protocol/money.ts';

export const AUDIT_ACTIONS = [
  'signup',
  'login',
  'lockout',
  'logout',
  'deposit',
  'withdraw',
  'balance',
  'statement',
  'password_change',
  'protocol_error',
  'atm_revoked',
  'bank_start',
  'bank_stop',
  'audit_recovered',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditEvent = {
  /** ISO-8601 UTC timestamp. */
  at: string;
  atm: number | null;
  /** The customer's address as the ATM saw it (absent for events no customer caused). */
  client?: string;
  /** Which kind of terminal acted: web ATM, bin/atm or the terminal ATM (absent for the bank's own events). */
  channel?: Channel;
  user: string | null;
  action: AuditAction;
  amountCents: number | null;
  /** `ok`, or why it did not happen (`insufficient_funds`, `bad_password`, `ERR_BAD_MAC`, ...). */
  outcome: string;
  /** Short, non-secret context such as a transaction id or a peer address. */
  detail?: string;
};

const SAFE_FIELD = /^[A-Za-z0-9_.:@\[\]-]{1,64}$/;

/** Attacker-chosen text (a bad username, say) is quoted so it can never forge a line or a field. */
function field(value: string): string {
  return SAFE_FIELD.test(value) ? value : JSON.stringify(value.slice(0, 64));
}

export function formatPlainLine(event: AuditEvent): string {
  const parts = [
    event.at,
    `atm=${event.atm ?? '-'}`,
    ...(event.client === undefined ? [] : [`client=${field(event.client)}`]),
    `user=${event.user === null ? '-' : field(event.user)}`,
    `action=${event.action}`,
    `amount=${event.amountCents === null ? '-' : plainCents(event.amountCents)}`,
    `outcome=${field(event.outcome)}`,
  ];
  // After the older fields, so readers of lines written before channels existed still match.
  if (event.channel !== undefined) parts.push(`channel=${event.channel}`);
  if (event.detail !== undefined) parts.push(`detail=${field(event.detail)}`);
  return parts.join(' ');
}
