/**
 * Card accounts, the command-line channel's customers (bin/atm).
 *
 * A card is 32 random bytes the bank draws when the account is opened; the
 * bank keeps only HMAC-SHA256 of it under its own card key (`card.key`),
 * bound to the account name. A card is a high-entropy secret, so a keyed
 * hash is enough (no bcrypt): guessing one is hopeless, a stolen ledger
 * without the key verifies nothing, and another account's card never
 * verifies for this one.
 *
 * Card accounts live in the same ledger as web accounts, stored under
 * `card:<name>`. `:` is not allowed in web usernames, so the two kinds never
 * share a name: `ted` the card account and `ted` the web customer are two
 * accounts, and neither credential opens the other.
 *
 * A command-line conversation is two steps. `prepare` checks everything
 * (card, account, amount, funds) and holds the account, changing nothing;
 * `confirm` applies it through the bank's own rules (audited, durable) and
 * only then is the result reported. A conversation that breaks in between is
 * rolled back simply by never being confirmed.
 */
import fs from 'node:fs';
import path from 'node:path';

import { KEY_BYTES, constantTimeEqual, hmacSha256, type RandomSource } from '../protocol/crypto.ts';
import { BankError } from '../protocol/errors.ts';
import type { CardMode } from '../protocol/messages.ts';
import { MAX_BALANCE_CENTS, MAX_CLI_TRANSACTION_CENTS, checkTransactionCents } from '../protocol/money.ts';
import { createSecretFile } from '../runtime/key-files.ts';
import type { Actor, Bank, LoggedIn } from './bank.ts';
import type { Ledger } from './ledger.ts';

export const CARD_KEY_FILE = 'card.key';
/** An account is opened with at least 10.00 (the contract). */
export const MIN_OPENING_CENTS = 1_000;
const CARD_PREFIX = 'card:';
const VERIFIER_PREFIX = 'card-hmac-sha256:';
const CARD_LABEL = Buffer.from('atm-card/v1 verifier');

/** One message for an unknown account and a wrong card, so neither can be told apart. */
export const CARD_REFUSED_MESSAGE = 'This card does not open this account.';

/** Loads the bank's card key, creating it (0600) on first start. */
export function loadCardKey(dataDir: string, random: RandomSource): Buffer {
  const file = path.join(dataDir, CARD_KEY_FILE);
  createSecretFile(file, `${random(KEY_BYTES).toString('base64')}\n`);
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}

export type CardRequest = { mode: CardMode; account: string; amountCents: number; card: string };

/** A successful conversation, as the bank reports it (bin/bank prints it). */
export type CardResult = { mode: CardMode; account: string; amountCents: number; balanceCents: number };

export type CardDeskDeps = {
  bank: Bank;
  ledger: Ledger;
  cardKey: Buffer;
  random: RandomSource;
  clock: () => Date;
};

/** A checked, held conversation: confirm applies it, abort lets go of the account. */
export type PreparedCard = {
  /** The new card's secret (base64) for `open`; empty otherwise. */
  readonly card: string;
  confirm(): Promise<CardResult>;
  abort(): void;
};

export class CardDesk {
  /** The tail of each account's queue of conversations: one at a time per account. */
  private readonly held = new Map<string, Promise<void>>();

  constructor(private readonly deps: CardDeskDeps) {}

  async prepare(actor: Actor, request: CardRequest): Promise<PreparedCard> {
    const key = CARD_PREFIX + request.account;
    const release = await this.hold(key);
    try {
      const prepared = await this.check({ ...actor, channel: 'cli' }, key, request);
      let settled = false;
      return {
        card: prepared.card,
        confirm: async () => {
          if (settled) throw new BankError('ERR_BAD_REQUEST', 'This conversation is over.');
          settled = true;
          try {
            return await prepared.apply();
          } finally {
            release();
          }
        },
        abort: () => {
          if (settled) return;
          settled = true;
          release();
        },
      };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Verifies a card for a customer session (the terminal ATM's card login). */
  async login(actor: Actor, account: string, card: string): Promise<LoggedIn> {
    const key = CARD_PREFIX + account;
    const found = await this.deps.ledger.findAccount(key);
    if (!this.verifies(key, card, found?.passwordHash ?? null) || !found) {
      this.deps.bank.record({ ...actor, username: key }, 'login', 'bad_card');
      throw new BankError('ERR_AUTH_FAILED', CARD_REFUSED_MESSAGE);
    }
    this.deps.bank.record({ ...actor, username: key, accountId: found.id }, 'login', 'ok');
    return { accountId: found.id, username: found.username };
  }

  private async check(
    actor: Actor,
    key: string,
    request: CardRequest,
  ): Promise<{ card: string; apply: () => Promise<CardResult> }> {
    const { bank, ledger } = this.deps;
    const refuse = (outcome: string, error: BankError): never => {
      bank.record({ ...actor, username: key }, cardAction(request.mode), outcome);
      throw error;
    };
    const done = (balanceCents: number): CardResult => ({
      mode: request.mode,
      account: request.account,
      amountCents: request.amountCents,
      balanceCents,
    });
    const amount =
      request.mode === 'balance'
        ? request.amountCents === 0
          ? { ok: true as const }
          : { ok: false as const, reason: 'A balance inquiry moves no money.' }
        : checkTransactionCents(request.amountCents, MAX_CLI_TRANSACTION_CENTS);
    if (!amount.ok) return refuse('invalid_amount', new BankError('ERR_INVALID_AMOUNT', amount.reason));
    const existing = await ledger.findAccount(key);

    if (request.mode === 'open') {
      if (request.amountCents < MIN_OPENING_CENTS) {
        return refuse('invalid_amount', new BankError('ERR_INVALID_AMOUNT', 'Open an account with at least 10.00.'));
      }
      if (existing) return refuse('account_taken', new BankError('ERR_USERNAME_TAKEN', 'That account exists.'));
      const secret = this.deps.random(KEY_BYTES).toString('base64');
      return {
        card: secret,
        apply: async () => {
          const created = await ledger.createAccount(key, this.verifier(key, secret), this.deps.clock().toISOString());
          if (!created) throw new BankError('ERR_USERNAME_TAKEN', 'That account exists.');
          const owner = { ...actor, username: key, accountId: created.id };
          const moved = await bank.move(owner, 'deposit', this.txId(), request.amountCents);
          return done(moved.balanceCents);
        },
      };
    }

    if (!existing || !this.verifies(key, request.card, existing.passwordHash)) {
      return refuse('bad_card', new BankError('ERR_AUTH_FAILED', CARD_REFUSED_MESSAGE));
    }
    const owner = { ...actor, username: key, accountId: existing.id };
    if (request.mode === 'withdraw' && request.amountCents > existing.balanceCents) {
      return refuse('insufficient_funds', new BankError('ERR_INSUFFICIENT_FUNDS', 'Insufficient funds'));
    }
    if (request.mode === 'deposit' && existing.balanceCents + request.amountCents > MAX_BALANCE_CENTS) {
      return refuse(
        'balance_limit',
        new BankError('ERR_BALANCE_LIMIT', 'This deposit would exceed the account limit.'),
      );
    }
    const mode = request.mode;
    return {
      card: '',
      apply: async () => {
        if (mode === 'balance') return done(await bank.balance(owner));
        // The bank's own rules decide again: a terminal session on the same
        // card may have moved money since the check, and then this is refused.
        const moved = await bank.move(owner, mode, this.txId(), request.amountCents);
        return done(moved.balanceCents);
      },
    };
  }

  private verifier(key: string, secret: string): string {
    return (
      VERIFIER_PREFIX +
      hmacSha256(this.deps.cardKey, CARD_LABEL, lengthPrefixed(key), Buffer.from(secret)).toString('hex')
    );
  }

  /** Constant time; an unknown account is checked against a verifier too, so timing tells nothing. */
  private verifies(key: string, secret: string, stored: string | null): boolean {
    const expected = Buffer.from(this.verifier(key, secret));
    const actual = Buffer.from(stored ?? `${VERIFIER_PREFIX}${'0'.repeat(64)}`);
    return secret !== '' && stored !== null && constantTimeEqual(expected, actual);
  }

  private txId(): string {
    return `cli-${this.deps.random(16).toString('base64url')}`;
  }

  private async hold(key: string): Promise<() => void> {
    const previous = this.held.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.held.set(key, tail);
    await previous;
    return () => {
      release();
      if (this.held.get(key) === tail) this.held.delete(key);
    };
  }
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function cardAction(mode: CardMode): 'signup' | 'deposit' | 'withdraw' | 'balance' {
  return mode === 'open' ? 'signup' : mode;
}
