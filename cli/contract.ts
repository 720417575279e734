/**
 * The command-line contract of `bin/bank` and `bin/atm` (docs: the contest's
 * ATM problem, `README.md` "Command-line ATM and bank"): what each argument
 * may look like and how the command line is split into options. Everything
 * here is pure; nothing touches the network or the disk.
 */

import { CARD_ACCOUNT_PATTERN } from '../protocol/messages.ts';
import { MAX_CLI_TRANSACTION_CENTS } from '../protocol/money.ts';

/** The largest amount the command line accepts: 4294967295.99. */
export const MAX_COMMAND_LINE_CENTS: number = MAX_CLI_TRANSACTION_CENTS;
/** An account is opened with at least 10.00. */
export const MIN_OPENING_CENTS = 1_000;
export const MAX_ARGUMENT_CHARS = 4096;

const AMOUNT = /^(0|[1-9][0-9]*)\.([0-9]{2})$/;
const FILE_NAME = /^[_\-.0-9a-z]{1,255}$/;
const IP_PART = /^(0|[1-9][0-9]{0,2})$/;
const PORT = /^[1-9][0-9]{3,4}$/;

/** `(0|[1-9][0-9]*)\.[0-9]{2}` from 0.00 to 4294967295.99, as integer cents; null otherwise. */
export function parseContractAmount(text: string): number | null {
  const match = AMOUNT.exec(text);
  if (!match) return null;
  const [, whole = '', fraction = ''] = match;
  // Longer than 10 digits is over the limit; checking length first keeps the
  // arithmetic below far inside Number.MAX_SAFE_INTEGER.
  if (whole.length > 10) return null;
  const cents = Number(whole) * 100 + Number(fraction);
  return cents <= MAX_COMMAND_LINE_CENTS ? cents : null;
}

/** Cents as the contract's JSON number: digits, a dot and exactly two decimals (`10.00`). */
export function formatContractAmount(cents: number): string {
  if (!Number.isSafeInteger(cents) || cents < 0) throw new RangeError('not a whole number of cents');
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

export function isAccountName(text: string): boolean {
  return CARD_ACCOUNT_PATTERN.test(text);
}

/** Auth and card file names: no slashes, so always in the working directory; never `.` or `..`. */
export function isFileName(text: string): boolean {
  return FILE_NAME.test(text) && text !== '.' && text !== '..';
}

export function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => IP_PART.test(part) && Number(part) <= 255);
}

/** 1024 to 65535, no leading zeros; null otherwise. */
export function parsePort(text: string): number | null {
  if (!PORT.test(text)) return null;
  const port = Number(text);
  return port >= 1024 && port <= 65535 ? port : null;
}

/**
 * Splits argv the way POSIX getopt does: `-p 3000` or `-p3000`; options
 * without a value may be grouped (`-ga ted`); the word after an option that
 * takes a value is its value even if it starts with `-`; `--` ends the
 * options. Refuses (null) an unknown option, a repeated one, a missing value,
 * an argument over 4096 characters, or any positional word.
 */
export function splitOptions(
  argv: readonly string[],
  withValue: ReadonlySet<string>,
  flags: ReadonlySet<string>,
): Map<string, string> | null {
  const seen = new Map<string, string>();
  if (argv.some((arg) => arg.length > MAX_ARGUMENT_CHARS)) return null;
  let index = 0;
  while (index < argv.length) {
    const arg = argv[index] ?? '';
    index += 1;
    if (arg === '--') return index === argv.length ? seen : null;
    if (!arg.startsWith('-') || arg === '-') return null;
    let position = 1;
    while (position < arg.length) {
      const letter = arg.charAt(position);
      position += 1;
      if (seen.has(letter)) return null;
      if (flags.has(letter)) {
        seen.set(letter, '');
        continue;
      }
      if (!withValue.has(letter)) return null;
      if (position < arg.length) {
        seen.set(letter, arg.slice(position));
      } else {
        const value = argv[index];
        if (value === undefined) return null;
        index += 1;
        seen.set(letter, value);
      }
      break;
    }
  }
  return seen;
}

export type BankArgs = { port: number; authFile: string };

/** `bin/bank [-p <port>] [-s <auth-file>]`; null when anything is invalid (exit 255). */
export function parseBankArgs(argv: readonly string[]): BankArgs | null {
  const options = splitOptions(argv, new Set(['p', 's']), new Set());
  if (!options) return null;
  const port = parsePort(options.get('p') ?? '3000');
  const authFile = options.get('s') ?? 'bank.auth';
  if (port === null || !isFileName(authFile)) return null;
  return { port, authFile };
}

export type AtmMode =
  | { kind: 'open'; cents: number }
  | { kind: 'deposit'; cents: number }
  | { kind: 'withdraw'; cents: number }
  | { kind: 'balance' };

export type AtmArgs = {
  authFile: string;
  ip: string;
  port: number;
  cardFile: string;
  account: string;
  mode: AtmMode;
};

const MODE_LETTERS = ['n', 'd', 'w', 'g'] as const;

/** `bin/atm [-s auth] [-i ip] [-p port] [-c card] -a account <mode>`; null when invalid (exit 255). */
export function parseAtmArgs(argv: readonly string[]): AtmArgs | null {
  const options = splitOptions(argv, new Set(['s', 'i', 'p', 'c', 'a', 'n', 'd', 'w']), new Set(['g']));
  if (!options) return null;
  const account = options.get('a');
  if (account === undefined || !isAccountName(account)) return null;
  const modes = MODE_LETTERS.filter((letter) => options.has(letter));
  const [letter] = modes;
  if (modes.length !== 1 || letter === undefined) return null;
  const authFile = options.get('s') ?? 'bank.auth';
  const ip = options.get('i') ?? '127.0.0.1';
  const port = parsePort(options.get('p') ?? '3000');
  const cardFile = options.get('c') ?? `${account}.card`;
  if (!isFileName(authFile) || !isIpv4(ip) || port === null || !isFileName(cardFile)) return null;
  const mode = parseMode(letter, options.get(letter) ?? '');
  if (!mode) return null;
  return { authFile, ip, port, cardFile, account, mode };
}

function parseMode(letter: (typeof MODE_LETTERS)[number], value: string): AtmMode | null {
  if (letter === 'g') return { kind: 'balance' };
  const cents = parseContractAmount(value);
  if (cents === null) return null;
  if (letter === 'n') return cents >= MIN_OPENING_CENTS ? { kind: 'open', cents } : null;
  if (cents === 0) return null;
  return { kind: letter === 'd' ? 'deposit' : 'withdraw', cents };
}

/** The one JSON line both programs print for a successful transaction. */
export function resultLine(account: string, mode: AtmMode['kind'], cents: number): string {
  const key = { open: 'initial_balance', deposit: 'deposit', withdraw: 'withdraw', balance: 'balance' }[mode];
  // Built by hand: JSON.stringify would print 10 for 10.00 and cannot keep the two decimals.
  return `{"account":${JSON.stringify(account)},"${key}":${formatContractAmount(cents)}}`;
}
