/**
 * `bin/atm`: one command-line transaction with the bank, exactly as the
 * contract says. It prints the one JSON line and exits 0, or prints nothing
 * and exits 255 (invalid input, unreadable files, a refusal, no bank at the
 * address) or 63 (the conversation broke the protocol, or the bank did not
 * answer within 10 seconds). Nothing else ever reaches stdout or stderr.
 */
import net from 'node:net';

import { BankClient } from '../protocol/client.ts';
import { BankError, ProtocolError } from '../protocol/errors.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import { readAtmCredential } from '../runtime/key-files.ts';
import { exists, readCard, writeCard } from './card-file.ts';
import { parseAtmArgs, resultLine, type AtmArgs } from './contract.ts';

export const EXIT_OK = 0;
export const EXIT_INVALID = 255;
export const EXIT_PROTOCOL = 63;
/** The contract's limit on waiting for the bank. */
export const ANSWER_DEADLINE_MS = 10_000;
/** The ATM number command-line calls announce in the handshake (web ATMs use 1 and up). */
export const CLI_ATM_ID = 0;

export type AtmOutcome = { code: number; line: string | null };

/** A refusal: the bank said no, or a file or address is unusable. */
class Refused extends Error {}

/** Runs one call; never throws, never prints. Relative file names are taken from the process's working directory. */
export async function runAtm(argv: readonly string[], deadlineMs = ANSWER_DEADLINE_MS): Promise<AtmOutcome> {
  const args = parseAtmArgs(argv);
  if (!args) return { code: EXIT_INVALID, line: null };
  let credential: AtmCredential;
  try {
    // The auth file bin/bank wrote: ATM 0's own key and the bank's public key to pin.
    credential = readAtmCredential(args.authFile, CLI_ATM_ID);
  } catch {
    return { code: EXIT_INVALID, line: null };
  }
  let secret = '';
  if (args.mode.kind === 'open') {
    if (exists(args.cardFile)) return { code: EXIT_INVALID, line: null };
  } else {
    const card = readCard(args.cardFile);
    if (!card) return { code: EXIT_INVALID, line: null };
    secret = card.secret;
  }

  const held: { client: BankClient | null } = { client: null };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<AtmOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ code: EXIT_PROTOCOL, line: null }), deadlineMs);
  });
  const conversation = (async (): Promise<AtmOutcome> => {
    const socket = await connectTcp(args);
    const client = await BankClient.connect({
      socket,
      credential,
      handshakeTimeoutMs: deadlineMs,
      requestTimeoutMs: deadlineMs,
    });
    held.client = client;
    return converse(client, args, secret);
  })().catch((error: unknown): AtmOutcome => {
    if (error instanceof Refused || error instanceof BankError) return { code: EXIT_INVALID, line: null };
    return { code: EXIT_PROTOCOL, line: null };
  });
  const outcome = await Promise.race([conversation, deadline]);
  clearTimeout(timer);
  // (A handshake that broke was already reported to the bank by BankClient.connect.)
  const { client } = held;
  if (client !== null) {
    // A broken conversation tells the bank (an alert), so it rolls back at once.
    if (outcome.code === EXIT_PROTOCOL) client.close(new ProtocolError('ERR_TIMEOUT', 'the conversation broke'));
    else client.close();
  }
  return outcome;
}

async function converse(client: BankClient, args: AtmArgs, secret: string): Promise<AtmOutcome> {
  const { mode, account } = args;
  const amountCents = mode.kind === 'balance' ? 0 : mode.cents;
  const ready = await client.card({ mode: mode.kind, account, amountCents, card: secret });
  // The bank draws a card for `open` and for nothing else; anything different is not its answer.
  if ((mode.kind === 'open') !== (ready.card !== '')) throw new Error('unexpected card in the answer');
  const done = await client.cardConfirm();
  if (mode.kind === 'open' && !writeCard(args.cardFile, { account, secret: ready.card })) {
    throw new Refused('the card file could not be written');
  }
  return {
    code: EXIT_OK,
    line: resultLine(account, mode.kind, mode.kind === 'balance' ? done.balanceCents : amountCents),
  };
}

/** TCP first, so "no bank listens here" (255) is told apart from a conversation that broke (63). */
function connectTcp(args: AtmArgs): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: args.ip, port: args.port });
    const onError = (): void => reject(new Refused('no bank at this address'));
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
