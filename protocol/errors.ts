/**
 * Typed errors with stable codes. `docs/errors.md` lists every code, what the
 * peer is told and what is audited. The peer is only ever told the generic
 * text: detail helps an attacker, and the audit log keeps the real code.
 */
export type ProtocolErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_VERSION'
  | 'ERR_FRAME_TYPE'
  | 'ERR_HANDSHAKE'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_ATM_REVOKED'
  | 'ERR_PHASE'
  | 'ERR_TRUNCATED'
  | 'ERR_RECORD_VERSION'
  | 'ERR_WRONG_DIRECTION'
  | 'ERR_UNKNOWN_SESSION'
  | 'ERR_BAD_MAC'
  | 'ERR_SEQUENCE'
  | 'ERR_SEQUENCE_EXHAUSTED'
  | 'ERR_BAD_PADDING'
  | 'ERR_BAD_MESSAGE'
  | 'ERR_CONNECTION_CLOSED'
  | 'ERR_PEER_ALERT'
  | 'ERR_TIMEOUT'
  | 'ERR_CONFIRM_TIMEOUT';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string = code,
  ) {
    super(message);
  }
}

/** What a peer is told when a connection is ended for any protocol reason. */
export const GENERIC_PROTOCOL_FAILURE = 'connection terminated';

/**
 * Application-level outcomes carried inside a sealed response. These are
 * ordinary answers, not connection failures.
 */
export const BANK_ERROR_CODES = [
  'ERR_INVALID_USERNAME',
  'ERR_INVALID_PASSWORD',
  'ERR_USERNAME_TAKEN',
  'ERR_AUTH_FAILED',
  'ERR_ACCOUNT_LOCKED',
  'ERR_INVALID_AMOUNT',
  'ERR_INSUFFICIENT_FUNDS',
  'ERR_BALANCE_LIMIT',
  'ERR_TX_CONFLICT',
  'ERR_NOT_LOGGED_IN',
  'ERR_BAD_REQUEST',
  'ERR_UNAVAILABLE',
  'ERR_BUSY',
  'ERR_INTERNAL',
] as const;

/** Listed once, above: the answer schema (messages.ts) accepts exactly these. */
export type BankErrorCode = (typeof BANK_ERROR_CODES)[number];

export class BankError extends Error {
  override readonly name = 'BankError';
  constructor(
    readonly code: BankErrorCode,
    message: string,
    /** With ERR_ACCOUNT_LOCKED: until when (ISO 8601). */
    readonly lockedUntil?: string,
  ) {
    super(message);
  }
}
