/**
 * The application messages carried inside sealed records, as JSON. Both sides
 * validate everything they receive against these schemas; anything else is a
 * protocol violation, never a crash.
 */
// zod/mini, named imports: the same validation as classic zod, but a bundle
// keeps only what is used (bin/atm's bundle fell from 481 KB to a few tens of
// KB, and its start time with it; see README "Fast start").
import {
  array,
  boolean,
  discriminatedUnion,
  enum as oneOf,
  gte,
  int,
  iso,
  literal,
  lte,
  maxLength,
  nullable,
  optional,
  regex,
  strictObject,
  string,
  union,
  type infer as Infer,
  type ZodMiniType,
} from 'zod/mini';

import { BANK_ERROR_CODES } from './errors.ts';

const RequestId = int().check(gte(0), lte(0x7fff_ffff));
/** Client-chosen id that makes a money request idempotent. */
export const TX_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const TxId = string().check(regex(TX_ID_PATTERN));
const Cents = int().check(gte(0), lte(Number.MAX_SAFE_INTEGER));
// Credentials are bounded here only to stop absurd input; the bank applies
// the real rules so it can answer with a precise error.
const Credential = string().check(maxLength(1024));

const Credentials = { username: Credential, password: Credential };
/** A resumption ticket: opaque to the ATM, sealed by the bank (server/ticket.ts). */
const Ticket = string().check(regex(/^[A-Za-z0-9_-]{1,512}$/));

/**
 * The customer's address as the ATM saw it (IPv4, IPv6, an IPv4-mapped IPv6
 * address, a zone id), carried into the bank's audit line. Optional: an ATM
 * that does not know it (a test, a tool) leaves it out.
 */
export const CLIENT_ADDRESS_PATTERN = /^[0-9A-Za-z:.%_-]{1,64}$/;
const Client = { client: optional(string().check(regex(CLIENT_ADDRESS_PATTERN))) };

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
const CardAccount = string().check(regex(CARD_ACCOUNT_PATTERN));
/** A card's secret: 32 random bytes, base64. */
const CardSecret = string().check(regex(/^[A-Za-z0-9+/]{43}=$/));
export const CARD_MODES = ['open', 'deposit', 'withdraw', 'balance'] as const;
export type CardMode = (typeof CARD_MODES)[number];
/** Which kind of terminal a customer session came from; the audit log names it. */
export const CHANNELS = ['web', 'cli', 'terminal'] as const;
export type Channel = (typeof CHANNELS)[number];

export const RequestSchema = discriminatedUnion('op', [
  strictObject({ id: RequestId, op: literal('signup'), ...Credentials, ...Client }),
  strictObject({
    id: RequestId,
    op: literal('login'),
    ...Credentials,
    ...Client,
    /** Absent for the web ATMs; the terminal ATM says `terminal`. */
    channel: optional(oneOf(['web', 'terminal'])),
  }),
  /**
   * One command-line conversation (bin/atm): the bank checks everything and
   * holds the account, but changes nothing until `card_confirm`; a
   * conversation that breaks before it is rolled back by never being applied.
   * `card` is empty for `open` (the bank draws the new card's secret).
   */
  strictObject({
    id: RequestId,
    op: literal('card'),
    mode: oneOf(CARD_MODES),
    account: CardAccount,
    amountCents: Cents,
    card: union([CardSecret, literal('')]),
  }),
  strictObject({ id: RequestId, op: literal('card_confirm') }),
  /** A card account's customer session (the terminal ATM's card login). */
  strictObject({ id: RequestId, op: literal('card_login'), account: CardAccount, card: CardSecret }),
  strictObject({ id: RequestId, op: literal('ping') }),
  /** Reopens a logged-in customer's session on this connection (another node, or after a reconnect). */
  strictObject({ id: RequestId, op: literal('resume'), ticket: Ticket }),
  /**
   * This ATM keeps a witness of the audit chain: from now on the bank sends
   * this connection its signed checkpoints (Notices). A connection that never
   * asks gets none (bin/atm sees only answers to what it sent).
   */
  strictObject({ id: RequestId, op: literal('watch_audit') }),
  strictObject({ id: RequestId, op: literal('deposit'), txId: TxId, amountCents: Cents, ...Client }),
  strictObject({ id: RequestId, op: literal('withdraw'), txId: TxId, amountCents: Cents, ...Client }),
  strictObject({ id: RequestId, op: literal('balance'), ...Client }),
  strictObject({
    id: RequestId,
    op: literal('statement'),
    /** Paging: skip the newest `offset` entries, return up to `limit` (default 10). */
    offset: optional(int().check(gte(0), lte(STATEMENT_MAX_OFFSET))),
    limit: optional(int().check(gte(1), lte(STATEMENT_MAX_PAGE))),
    ...Client,
  }),
  strictObject({
    id: RequestId,
    op: literal('change_password'),
    currentPassword: Credential,
    newPassword: Credential,
    ...Client,
  }),
  strictObject({ id: RequestId, op: literal('logout'), ...Client }),
]);
export type Request = Infer<typeof RequestSchema>;
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

export const StatementEntrySchema = strictObject({
  at: string(),
  kind: oneOf(['deposit', 'withdraw']),
  amountCents: Cents,
  balanceAfterCents: Cents,
});
export type StatementEntry = Infer<typeof StatementEntrySchema>;

/** The customer's previous successful login: when (ISO 8601) and at which ATM; null on the first. */
export const LastLoginSchema = nullable(strictObject({ at: iso.datetime(), atmId: nullable(int().check(gte(0))) }));
export type LastLogin = Infer<typeof LastLoginSchema>;

const MoneyResult = {
  txId: TxId,
  amountCents: Cents,
  balanceCents: Cents,
  /** True when this answer repeats the one given to an earlier try of the same txId. */
  replayed: boolean(),
};

/** A customer session opened by a login or a resumption, and the ticket that can reopen it. */
const OpenedSession = {
  username: string(),
  sessionId: string().check(regex(/^[0-9a-f]{16}$/)),
  masterSecret: string().check(regex(/^[A-Za-z0-9+/]{43}=$/)),
  /** Absent when the bank issues no tickets. */
  ticket: optional(Ticket),
};

export const ResponseSchema = discriminatedUnion('ok', [
  strictObject({
    id: RequestId,
    ok: literal(false),
    code: oneOf(BANK_ERROR_CODES),
    message: string().check(maxLength(512)),
    /** With ERR_ACCOUNT_LOCKED only (told only to someone who gave the right password): until when, ISO 8601. */
    lockedUntil: optional(iso.datetime()),
  }),
  strictObject({
    id: RequestId,
    ok: literal(true),
    result: discriminatedUnion('op', [
      strictObject({ op: literal('signup'), username: string() }),
      strictObject({ op: literal('login'), ...OpenedSession, lastLogin: LastLoginSchema }),
      strictObject({ op: literal('resume'), ...OpenedSession }),
      strictObject({ op: literal('ping') }),
      strictObject({ op: literal('watch_audit') }),
      /** The conversation is held; `card` is the new card's secret for `open`, else empty. */
      strictObject({ op: literal('card'), card: union([CardSecret, literal('')]) }),
      /** Applied and durable; the balance after it (what `balance` prints). */
      strictObject({ op: literal('card_confirm'), balanceCents: Cents }),
      strictObject({ op: literal('card_login'), ...OpenedSession }),
      strictObject({ op: literal('deposit'), ...MoneyResult }),
      strictObject({ op: literal('withdraw'), ...MoneyResult }),
      strictObject({ op: literal('balance'), balanceCents: Cents }),
      strictObject({
        op: literal('statement'),
        balanceCents: Cents,
        entries: array(StatementEntrySchema).check(maxLength(STATEMENT_MAX_PAGE)),
        /** True when older entries exist beyond this page. */
        more: boolean(),
      }),
      strictObject({ op: literal('change_password') }),
      strictObject({ op: literal('logout') }),
    ]),
  }),
]);
export type Response = Infer<typeof ResponseSchema>;
export type ResponseResult = Extract<Response, { ok: true }>['result'];
export type MoneyResult = Extract<ResponseResult, { op: 'deposit' | 'withdraw' }>;

/**
 * What the bank tells an ATM unasked, on the channel session (content type
 * Notice), once that connection sent `watch_audit`: the newest signed
 * checkpoint of its audit chain, for the ATM to keep as a witness
 * (audit/checkpoint.ts).
 */
export const NoticeSchema = discriminatedUnion('kind', [
  strictObject({
    kind: literal('audit_checkpoint'),
    /** The node whose chain this is, when the bank is several nodes on a shared ledger. */
    node: optional(string().check(regex(NODE_ID_PATTERN))),
    line: int().check(gte(0), lte(Number.MAX_SAFE_INTEGER)),
    chainHash: string().check(regex(/^[0-9a-f]{64}$/)),
    signature: string().check(regex(/^[0-9a-f]{128}$/)),
  }),
]);
export type Notice = Infer<typeof NoticeSchema>;

/** Parses JSON bytes against a schema; returns null for anything malformed. */
export function decodeMessage<T>(schema: ZodMiniType<T>, bytes: Buffer): T | null {
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
