/**
 * The interactive terminal ATM (seed 003's idea on this project's bank): log
 * in with a web account's username and password or with a card file, then a
 * menu of balance, deposit, withdraw, mini statement, log out and quit. The
 * amount rules and the messages are the web ATM's (`protocol/money.ts`, the
 * bank's own refusals). Works the same typed on a terminal or piped in.
 */
import { secureRandom } from '../protocol/crypto.ts';
import { BankError } from '../protocol/errors.ts';
import type { StatementEntry } from '../protocol/messages.ts';
import { formatCents, parseAmount } from '../protocol/money.ts';
import type { BankClient, CustomerSession } from '../protocol/client.ts';
import { readCard } from './card-file.ts';
import type { Answer, Prompter } from './prompter.ts';

export const EXIT_QUIT = 0;
export const EXIT_BANK_LOST = 1;
/** Ended by Ctrl-C, as shells expect (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

export type TerminalOptions = {
  prompter: Prompter;
  client: BankClient;
  /** Logged out after this long without an answer at the menu. */
  idleMs: number;
};

const LOGIN_MENU = 'Log in with  1) username and password   2) card file   q) quit';
const MENU = '1) Balance   2) Deposit   3) Withdraw   4) Mini statement   5) Log out   q) Quit';
const LOST = 'The connection to the bank was lost. Nothing more was sent; please try again later.';

/** No answer within the idle timeout while logged in. */
class Idle extends Error {}

/** Raised inside the loops to end the program with a message. */
class End extends Error {
  constructor(readonly code: number) {
    super('end');
  }
}

export async function runTerminal(options: TerminalOptions): Promise<number> {
  const { prompter, client } = options;
  client.onClose(() => prompter.interrupt('lost'));
  try {
    for (;;) {
      const session = await logIn(options);
      if (!session) return finish(prompter, EXIT_QUIT, 'Goodbye.');
      const next = await serve(options, session);
      if (next === 'quit') return finish(prompter, EXIT_QUIT, 'Goodbye.');
    }
  } catch (error) {
    if (error instanceof End) return error.code;
    // A lost link surfaces as a failed call too.
    return finish(prompter, EXIT_BANK_LOST, LOST);
  }
}

function finish(prompter: Prompter, code: number, message: string): number {
  prompter.say(message);
  return code;
}

/** Turns the reasons an answer did not come into endings; idle only matters once logged in. */
function answered(prompter: Prompter, answer: Answer): string | null {
  if ('text' in answer) return answer.text.trim();
  if (answer.none === 'lost') throw new End(finish(prompter, EXIT_BANK_LOST, LOST));
  if (answer.none === 'interrupt') throw new End(finish(prompter, EXIT_INTERRUPTED, 'Interrupted. Goodbye.'));
  if (answer.none === 'end') throw new End(finish(prompter, EXIT_QUIT, 'Goodbye.'));
  return null;
}

/** A logged-in session, or null when the customer chose to quit. */
async function logIn(options: TerminalOptions): Promise<CustomerSession | null> {
  const { prompter, client } = options;
  for (;;) {
    prompter.say(LOGIN_MENU);
    const choice = answered(prompter, await prompter.ask('> '));
    if (choice === null) continue;
    if (choice === 'q') return null;
    try {
      if (choice === '1') {
        const username = answered(prompter, await prompter.ask('Username: ')) ?? '';
        const password = await prompter.ask('Password: ', { secret: true });
        answered(prompter, password);
        // A password is taken exactly as typed: no trimming.
        const session = await client.login(username, 'text' in password ? password.text : '', 'terminal');
        prompter.say(`Welcome, ${session.username}.`);
        return session;
      }
      if (choice === '2') {
        const file = answered(prompter, await prompter.ask('Card file: ')) ?? '';
        const card = readCard(file);
        if (!card) {
          prompter.say('That is not a readable card file.');
          continue;
        }
        const session = await client.cardLogin(card.account, card.secret);
        prompter.say(`Welcome, ${card.account}.`);
        return session;
      }
      prompter.say('Choose 1, 2 or q.');
    } catch (error) {
      if (!(error instanceof BankError)) throw error;
      prompter.say(error.message);
    }
  }
}

/** Serves one logged-in customer until they log out ('logout') or quit ('quit'). */
async function serve(options: TerminalOptions, session: CustomerSession): Promise<'logout' | 'quit'> {
  const { prompter, client, idleMs } = options;
  for (;;) {
    prompter.say(MENU);
    try {
      const choice = answered(prompter, await prompter.ask('Choose: ', { idleMs }));
      if (choice === null) throw new Idle();
      if (choice === '1') {
        prompter.say(`Current balance: ${formatCents(await client.balance(session))}`);
      } else if (choice === '2' || choice === '3') {
        await move(options, session, choice === '2' ? 'deposit' : 'withdraw');
      } else if (choice === '4') {
        const { balanceCents, entries } = await client.statement(session);
        for (const line of statementLines(balanceCents, entries)) prompter.say(line);
      } else if (choice === '5' || choice === 'q') {
        await client.logout(session);
        prompter.say('Logged out.');
        return choice === 'q' ? 'quit' : 'logout';
      } else {
        prompter.say('Choose 1 to 5, or q.');
      }
    } catch (error) {
      if (error instanceof Idle) {
        await client.logout(session).catch(() => undefined);
        prompter.say(`Logged out after ${Math.round(idleMs / 1000)} seconds without activity.`);
        return 'logout';
      }
      if (error instanceof End) {
        // Ending on Ctrl-C or end of input still ends the bank session first.
        await client.logout(session).catch(() => undefined);
        throw error;
      }
      if (!(error instanceof BankError)) throw error;
      prompter.say(error.message);
      if (error.code === 'ERR_NOT_LOGGED_IN') return 'logout';
    }
  }
}

async function move(options: TerminalOptions, session: CustomerSession, kind: 'deposit' | 'withdraw'): Promise<void> {
  const { prompter, client, idleMs } = options;
  const raw = answered(prompter, await prompter.ask('Amount: ', { idleMs }));
  if (raw === null) throw new Idle();
  const amount = parseAmount(raw);
  if (!amount.ok) {
    prompter.say(amount.reason);
    return;
  }
  // One id per request, so a retried request is applied at most once.
  const txId = secureRandom(16).toString('base64url');
  const result =
    kind === 'deposit'
      ? await client.deposit(session, txId, amount.cents)
      : await client.withdraw(session, txId, amount.cents);
  const verb = kind === 'deposit' ? 'Deposited' : 'Withdrew';
  prompter.say(`${verb} ${formatCents(result.amountCents)}. New balance: ${formatCents(result.balanceCents)}`);
}

export function statementLines(balanceCents: number, entries: StatementEntry[]): string[] {
  const lines = ['Mini statement (newest first)'];
  if (entries.length === 0) lines.push('  No transactions yet.');
  for (const entry of entries) {
    const date = `${entry.at.slice(0, 16).replace('T', ' ')} UTC`;
    const type = entry.kind === 'deposit' ? 'Deposit   ' : 'Withdrawal';
    const amount = `${entry.kind === 'deposit' ? '+' : '-'}${formatCents(entry.amountCents)}`;
    lines.push(`  ${date}  ${type}  ${amount.padStart(16)}  balance ${formatCents(entry.balanceAfterCents)}`);
  }
  lines.push(`Current balance: ${formatCents(balanceCents)}`);
  return lines;
}
