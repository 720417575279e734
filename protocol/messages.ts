/**
 * The application messages carried inside sealed records, as JSON. Both sides
 * validate everything they receive against these schemas; anything else is a
 * protocol violation, never a crash.
 */
import { z } from 'zod';

import { BANK_ERROR_CODES } from './errors.ts';

const RequestId = z.number().int().min(0).max(0x7fff_ffff);
/** Client-chosen id that makes a money request idempotent. */
export const TX_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const TxId = z.string().regex(TX_ID_PATTERN);
const Cents = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
// Credentials are bounded here only to stop absurd input; the bank applies
// the real rules so it can answer with a precise error.
const Credential = z.string().max(1024);

const Credentials = { username: Credential, password: Credential };
/** A resumption ticket: opaque to the ATM, sealed by the bank (server/ticket.ts). */
const Ticket = z.string().regex(/^[A-Za-z0-9_-]{1,512}$/);

/**
 * The customer's address as the ATM saw it (IPv4, IPv6, an IPv4-mapped IPv6
 * address, a zone id), carried into the bank's audit line. Optional: an ATM
 * that does not know it (a test, a tool) leaves it out.
 */
export const CLIENT_ADDRESS_PATTERN = /^[0-9A-Za-z:.%_-]{1,64}$/;
const Client = { client: z.string().regex(CLIENT_ADDRESS_PATTERN).optional() };

/** A bank node's name among the nodes sharing a PostgreSQL ledger (`node.id`). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Most statement entries one answer may carry (a CSV download pages through
 * them at this size). 20 entries at their longest come to about 2.4 KB of
 * JSON, well inside one 4 KiB frame (test/protocol/messages.test.ts).
 */
export const STATEMENT_MAX_PAGE = 20;
/** How far back a statement may page; far beyond any customer here, and it bounds the work per request. */
export const STATEMENT_MAX_OFFSET = 100_000;

/** Card accounts' names (the command-line contract): 1 to 250 of `_ - . 0-9 a-z`. */
export const CARD_ACCOUNT_PATTERN = /^[_\-.0-9a-z]{1,250}$/;
const CardAccount = z.string().regex(CARD_ACCOUNT_PATTERN);
/** A card's secret: 32 random bytes, base64. */
const CardSecret = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);
export const CARD_MODES = ['open', 'deposit', 'withdraw', 'balance'] as const;
export type CardMode = (typeof CARD_MODES)[number];
/** Which kind of terminal a customer session came from; the audit log names it. */
export const CHANNELS = ['web', 'cli', 'terminal'] as const;
export type Channel = (typeof CHANNELS)[number];

export const RequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id: RequestId, op: z.literal('signup'), ...Credentials, ...Client }),
  z.strictObject({
    id: RequestId,
    op: z.literal('login'),
    ...Credentials,
    ...Client,
    /** Absent for the web ATMs; the terminal ATM says `terminal`. */
    channel: z.enum(['web', 'terminal']).optional(),
  }),
  /**
   * One command-line conversation (bin/atm): the bank checks everything and
   * holds the account, but changes nothing until `card_confirm`; a
   * conversation that breaks before it is rolled back by never being applied.
   * `card` is empty for `open` (the bank draws the new card's secret).
   */
  z.strictObject({
    id: RequestId,
    op: z.literal('card'),
    mode: z.enum(CARD_MODES),
    account: CardAccount,
    amountCents: Cents,
    card: CardSecret.or(z.literal('')),
  }),
  z.strictObject({ id: RequestId, op: z.literal('card_confirm') }),
  /** A card account's customer session (the terminal ATM's card login). */
  z.strictObject({ id: RequestId, op: z.literal('card_login'), account: CardAccount, card: CardSecret }),
  z.strictObject({ id: RequestId, op: z.literal('ping') }),
  /** Reopens a logged-in customer's session on this connection (another node, or after a reconnect). */
  z.strictObject({ id: RequestId, op: z.literal('resume'), ticket: Ticket }),
  /**
   * This ATM keeps a witness of the audit chain: from now on the bank sends
   * this connection its signed checkpoints (Notices). A connection that never
   * asks gets none (bin/atm sees only answers to what it sent).
   */
  z.strictObject({ id: RequestId, op: z.literal('watch_audit') }),
  z.strictObject({ id: RequestId, op: z.literal('deposit'), txId: TxId, amountCents: Cents, ...Client }),
  z.strictObject({ id: RequestId, op: z.literal('withdraw'), txId: TxId, amountCents: Cents, ...Client }),
  z.strictObject({ id: RequestId, op: z.literal('balance'), ...Client }),
  z.strictObject({
    id: RequestId,
    op: z.literal('statement'),
    /** Paging: skip the newest `offset` entries, return up to `limit` (default 10). */
    offset: z.number().int().min(0).max(STATEMENT_MAX_OFFSET).optional(),
    limit: z.number().int().min(1).max(STATEMENT_MAX_PAGE).optional(),
    ...Client,
  }),
  z.strictObject({
    id: RequestId,
    op: z.literal('change_password'),
    currentPassword: Credential,
    newPassword: Credential,
    ...Client,
  }),
  z.strictObject({ id: RequestId, op: z.literal('logout'), ...Client }),
]);
export type Request = z.infer<typeof RequestSchema>;
export type RequestOp = Request['op'];
/** A request before the connection assigns it an id. */
export type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Operations allowed on the connection's own session, before any login. */
export const CHANNEL_OPS: ReadonlySet<RequestOp> = new Set([
  'signup',
  'login',
  'resume',
  'ping',
  'watch_audit',
  'card',
  'card_confirm',
  'card_login',
]);

export const StatementEntrySchema = z.strictObject({
  at: z.string(),
  kind: z.enum(['deposit', 'withdraw']),
  amountCents: Cents,
  balanceAfterCents: Cents,
});
export type StatementEntry = z.infer<typeof StatementEntrySchema>;

/** The customer's previous successful login: when (ISO 8601) and at which ATM; null on the first. */
export const LastLoginSchema = z
  .strictObject({ at: z.iso.datetime(), atmId: z.number().int().nonnegative().nullable() })
  .nullable();
export type LastLogin = z.infer<typeof LastLoginSchema>;

const MoneyResult = {
  txId: TxId,
  amountCents: Cents,
  balanceCents: Cents,
  /** True when this answer repeats the one given to an earlier try of the same txId. */
  replayed: z.boolean(),
};

/** A customer session opened by a login or a resumption, and the ticket that can reopen it. */
const OpenedSession = {
  username: z.string(),
  sessionId: z.string().regex(/^[0-9a-f]{16}$/),
  masterSecret: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  /** Absent when the bank issues no tickets. */
  ticket: Ticket.optional(),
};

export const ResponseSchema = z.discriminatedUnion('ok', [
  z.strictObject({
    id: RequestId,
    ok: z.literal(false),
    code: z.enum(BANK_ERROR_CODES),
    message: z.string().max(512),
    /** With ERR_ACCOUNT_LOCKED only (told only to someone who gave the right password): until when, ISO 8601. */
    lockedUntil: z.iso.datetime().optional(),
  }),
  z.strictObject({
    id: RequestId,
    ok: z.literal(true),
    result: z.discriminatedUnion('op', [
      z.strictObject({ op: z.literal('signup'), username: z.string() }),
      z.strictObject({ op: z.literal('login'), ...OpenedSession, lastLogin: LastLoginSchema }),
      z.strictObject({ op: z.literal('resume'), ...OpenedSession }),
      z.strictObject({ op: z.literal('ping') }),
      z.strictObject({ op: z.literal('watch_audit') }),
      /** The conversation is held; `card` is the new card's secret for `open`, else empty. */
      z.strictObject({ op: z.literal('card'), card: CardSecret.or(z.literal('')) }),
      /** Applied and durable; the balance after it (what `balance` prints). */
      z.strictObject({ op: z.literal('card_confirm'), balanceCents: Cents }),
      z.strictObject({ op: z.literal('card_login'), ...OpenedSession }),
      z.strictObject({ op: z.literal('deposit'), ...MoneyResult }),
      z.strictObject({ op: z.literal('withdraw'), ...MoneyResult }),
      z.strictObject({ op: z.literal('balance'), balanceCents: Cents }),
      z.strictObject({
        op: z.literal('statement'),
        balanceCents: Cents,
        entries: z.array(StatementEntrySchema).max(STATEMENT_MAX_PAGE),
        /** True when older entries exist beyond this page. */
        more: z.boolean(),
      }),
      z.strictObject({ op: z.literal('change_password') }),
      z.strictObject({ op: z.literal('logout') }),
    ]),
  }),
]);
export type Response = z.infer<typeof ResponseSchema>;
export type ResponseResult = Extract<Response, { ok: true }>['result'];
export type MoneyResult = Extract<ResponseResult, { op: 'deposit' | 'withdraw' }>;

/**
 * What the bank tells an ATM unasked, on the channel session (content type
 * Notice), once that connection sent `watch_audit`: the newest signed
 * checkpoint of its audit chain, for the ATM to keep as a witness
 * (audit/checkpoint.ts).
 */
export const NoticeSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('audit_checkpoint'),
    /** The node whose chain this is, when the bank is several nodes on a shared ledger. */
    node: z.string().regex(NODE_ID_PATTERN).optional(),
    line: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    chainHash: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z.string().regex(/^[0-9a-f]{128}$/),
  }),
]);
export type Notice = z.infer<typeof NoticeSchema>;

/** Parses JSON bytes against a schema; returns null for anything malformed. */
export function decodeMessage<T>(schema: z.ZodType<T>, bytes: Buffer): T | null {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/**
 * Every message is padded with trailing spaces (which JSON ignores) to a
 * multiple of this, so a record's length does not reveal an amount, a
 * balance, a name or a card: every request and answer of a command-line
 * conversation, even with a 250-character account name, is one size.
 */
export const MESSAGE_PAD_BYTES = 512;

export function encodeMessage(message: Request | Response | Notice): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / MESSAGE_PAD_BYTES) * MESSAGE_PAD_BYTES, 0x20);
  json.copy(padded);
  return padded;
}
