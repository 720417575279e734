/**
 * The auditor's command (`npm run --silent audit -- <command> ...`; see HELP).
 * Data goes to stdout and nothing else does; messages go to stderr.
 * Exit codes: 0 all good, 1 the trail or the ledger disagrees, 2 bad usage
 * or unreadable files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  AUDIT_KEY_FILE,
  AUDIT_SIGNING_KEY_FILE,
  NODE_ID_FILE,
  readAuditKey,
  readAuditSigningKey,
} from '../runtime/key-files.ts';
import { ed25519Signer } from '../protocol/crypto.ts';
import { NODE_ID_PATTERN } from '../protocol/messages.ts';
import { checkpointIsSigned, parseWitness, witnessHeadOf } from './checkpoint.ts';
import {
  describeJson,
  describeText,
  isAuditAction,
  matches,
  parseIsoTime,
  summarize,
  summaryText,
  toCsv,
} from './query.ts';
import type { EntryFilter, LineEvent } from './query.ts';
import { verifyLedgerChains, type VerifiedChain } from './postgres-reader.ts';
import { verifyLogFile, type VerifiedLog } from './reader.ts';
import { reconcile, type LedgerSnapshot } from './reconcile.ts';
import { auditPaths } from './writer.ts';

export const HELP = `usage: npm run --silent audit -- <command> [options]

Reads the bank's audit trail in a data directory. Use \`npm run --silent\` (or
\`npx tsx audit/main.ts\`) when piping: plain \`npm run\` prints its own banner
on stdout. Data goes to stdout only; messages go to stderr.

commands:
  decrypt     print the encrypted log's entries, verifying the chain as it goes
  verify      check the encrypted log, the plaintext log beside it, and any
              witness heads; print the last line number and chain hash
  summary     totals per user, per ATM and per action: count, failures,
              lockouts, amounts deposited and withdrawn
  reconcile   recompute every balance from the audited movements and compare
              with the ledger; every journal row must have exactly one audit
              entry and every audited movement a journal row

options:
  --data-dir DIR       the bank's data directory (default ./data)
  --help               this text
  --ledger URL         decrypt and verify only: read every node's chain from a
                       shared PostgreSQL ledger (postgres://...) instead of files

  decrypt and summary, filters (all must match):
  --user NAME          only this customer
  --atm N              only this ATM number
  --action A           only this action: signup login lockout logout deposit
                       withdraw balance statement protocol_error bank_start
                       bank_stop audit_recovered
  --outcome O          only this outcome (ok, insufficient_funds, bad_password, ...)
  --since TIME         at or after TIME (ISO 8601: 2026-01-31, 2026-01-31T09:00Z,
                       2026-01-31T09:00:00.000+01:00)
  --until TIME         before TIME (ISO 8601)

  decrypt and summary, output:
  --format F           text (default), json or csv. decrypt's json is one JSON
                       object per line; json and csv give every amount twice:
                       in cents (amountCents / amount_cents, an integer) and in
                       dollars (amountDollars / amount_dollars, a "12.34" string).
                       summary's json gives amounts in cents only.
  --json               the same as --format json

  verify:
  --head FILE          a witness's checkpoint (an ATM's atm-N.audit-head); may be
                       given several times. verify fails if the log is shorter
                       than, or differs from, what any witness saw. For a node
                       of a shared ledger (its data dir has node.id) the
                       witness's checkpoint of that node's chain is used.

exit status: 0 when everything agrees, 1 when the trail or the ledger does
not (each problem is named on stderr), 2 for bad usage or unreadable files.`;

export type AuditCliDeps = {
  /** Reads the ledger's accounts and journal (for reconcile). */
  readLedger?: (dataDir: string) => LedgerSnapshot;
};

class UsageError extends Error {}

const FORMATS = ['text', 'json', 'csv'] as const;
type Format = (typeof FORMATS)[number];

const OPTIONS = {
  'data-dir': { type: 'string', default: './data' },
  help: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  format: { type: 'string' },
  user: { type: 'string' },
  atm: { type: 'string' },
  action: { type: 'string' },
  outcome: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  head: { type: 'string', multiple: true },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function filterFrom(values: Values): EntryFilter {
  const filter: EntryFilter = {};
  if (values.user !== undefined) filter.user = values.user;
  if (values.outcome !== undefined) filter.outcome = values.outcome;
  if (values.atm !== undefined) {
    if (!/^[1-9][0-9]{0,8}$/.test(values.atm)) throw new UsageError(`--atm must be an ATM number, not ${values.atm}`);
    filter.atm = Number(values.atm);
  }
  if (values.action !== undefined) {
    if (!isAuditAction(values.action)) throw new UsageError(`--action ${values.action} is not an audited action`);
    filter.action = values.action;
  }
  for (const name of ['since', 'until'] as const) {
    const text = values[name];
    if (text === undefined) continue;
    const ms = parseIsoTime(text);
    if (ms === null) throw new UsageError(`--${name} must be an ISO 8601 time such as 2026-01-31T09:00Z, not ${text}`);
    filter[name] = ms;
  }
  return filter;
}

function formatFrom(values: Values, allowed: readonly Format[]): Format {
  const format = values.format ?? (values.json ? 'json' : 'text');
  if (!(allowed as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${allowed.join(', ')}`);
  }
  return format as Format;
}

function readLog(dataDir: string, withPlain: boolean): VerifiedLog {
  const key = readAuditKey(path.join(dataDir, AUDIT_KEY_FILE));
  const paths = auditPaths(dataDir);
  return verifyLogFile(key, paths.encrypted, withPlain ? paths.plain : undefined);
}

/** Prints the chain's problems to stderr; true when there were any. */
function reportChain(log: VerifiedLog, err: (line: string) => void): boolean {
  for (const problem of log.problems) err(`audit log NOT intact: line ${problem.line}: ${problem.reason}`);
  return log.problems.length > 0;
}

function verify(dataDir: string, heads: string[], out: (line: string) => void, err: (line: string) => void): number {
  const log = readLog(dataDir, true);
  let bad = reportChain(log, err);
  for (const problem of log.plainProblems) {
    err(`plaintext audit log NOT intact: line ${problem.line}: ${problem.reason}`);
    bad = true;
  }
  let agreeing = 0;
  if (heads.length > 0) {
    const seed = readAuditSigningKey(path.join(dataDir, AUDIT_SIGNING_KEY_FILE));
    const publicKey = ed25519Signer(seed).publicKey;
    const node = nodeOf(dataDir);
    for (const file of heads) {
      const problem = checkWitness(file, publicKey, node, log);
      if (problem === UNSEEN) continue;
      if (problem) {
        err(`witness ${file}: ${problem}`);
        bad = true;
      } else {
        agreeing += 1;
      }
    }
  }
  const head = log.head;
  out(`last line ${head.lineNumber}, chain hash ${head.chainHash.toString('hex')}`);
  if (!bad) {
    // A witness that never saw this chain (another node's ATM) vouches for nothing here.
    const witnessed = heads.length > 0 ? `; agrees with ${agreeing} witness head(s)` : '';
    out(`audit log intact: ${log.entries.length} lines verified, plaintext log matches${witnessed}`);
  }
  return bad ? 1 : 0;
}

/** `checkWitness`'s answer for a witness that holds no checkpoint of this chain. */
const UNSEEN = Symbol('unseen');

/**
 * Why the log disagrees with one witness's checkpoint of this data dir's
 * chain (its node's, when `node.id` names one), null when it agrees, or
 * UNSEEN when the witness never saw this chain.
 */
function checkWitness(
  file: string,
  publicKey: Buffer,
  node: string | null,
  log: VerifiedLog,
): string | null | typeof UNSEEN {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const witness = parseWitness(text);
  if (!witness) return 'is not a witness head file';
  const head = witnessHeadOf(witness, node);
  if (!head) return UNSEEN;
  const { checkpoint } = head;
  const chain = node === null ? '' : ` of node ${node}`;
  const who = `ATM ${witness.atm} saw line ${checkpoint.lineNumber}${chain} (received ${head.receivedAt})`;
  if (!checkpointIsSigned(publicKey, checkpoint)) {
    return `${who}, but its signature does not verify with this bank's audit signing key`;
  }
  const last = log.head.lineNumber;
  if (checkpoint.lineNumber > last) {
    return `${who}, but the log ends at line ${last}: lines ${last + 1}-${checkpoint.lineNumber} are missing`;
  }
  if (checkpoint.lineNumber === 0) return null;
  const entry = log.entries[checkpoint.lineNumber - 1];
  if (!entry?.head.chainHash.equals(checkpoint.chainHash)) {
    return (
      `${who} with chain hash ${checkpoint.chainHash.toString('hex')}, but the log's line ` +
      `${checkpoint.lineNumber} has chain hash ${entry?.head.chainHash.toString('hex') ?? '?'}: ` +
      `the log differs from what the witness saw (lines 1-${checkpoint.lineNumber} were rewritten or replaced)`
    );
  }
  return null;
}

/** This data dir's node id in a shared ledger (`node.id`), or null for a lone bank. */
function nodeOf(dataDir: string): string | null {
  try {
    const id = fs.readFileSync(path.join(dataDir, NODE_ID_FILE), 'utf8').trim();
    return NODE_ID_PATTERN.test(id) ? id : null;
  } catch {
    return null;
  }
}

function run(
  command: string,
  values: Values,
  deps: AuditCliDeps,
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  const dataDir = values['data-dir'];
  if (command === 'verify') return verify(dataDir, values.head ?? [], out, err);
  if (values.head !== undefined) throw new UsageError('--head is a verify option');
  if (command === 'reconcile') {
    if (!deps.readLedger) throw new UsageError('reconcile needs the ledger, which this build cannot read');
    const log = readLog(dataDir, false);
    const broken = reportChain(log, err);
    const problems = reconcile(log.entries, deps.readLedger(dataDir));
    for (const problem of problems) {
      err(
        `DISAGREES: account ${problem.account}${problem.txId === null ? '' : ` transaction ${problem.txId}`}: ${problem.problem}`,
      );
    }
    if (problems.length === 0 && !broken)
      out(`ledger and audit trail agree: ${log.entries.length} audit lines checked`);
    return problems.length > 0 || broken ? 1 : 0;
  }
  const filter = filterFrom(values);
  const log = readLog(dataDir, false);
  const selected: LineEvent[] = log.entries.filter((entry) => matches(entry.event, filter));
  if (command === 'decrypt') {
    const format = formatFrom(values, FORMATS);
    if (format === 'csv') {
      const csv = toCsv(selected);
      // A cell holding a newline spans two calls; printed, the text is the same.
      for (const line of csv.slice(0, -1).split('\n')) out(line);
    } else {
      for (const entry of selected) out(format === 'json' ? describeJson(entry) : describeText(entry));
    }
  } else {
    const summary = summarize(selected.map((entry) => entry.event));
    const format = formatFrom(values, ['text', 'json']);
    if (format === 'json') out(JSON.stringify(summary));
    else for (const line of summaryText(summary)) out(line);
  }
  return reportChain(log, err) ? 1 : 0;
}

export function runAuditCli(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  deps: AuditCliDeps = {},
): number {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS }));
  } catch (error) {
    err(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    out(HELP);
    return 0;
  }
  const command = positionals[0];
  if (
    positionals.length !== 1 ||
    (command !== 'decrypt' && command !== 'verify' && command !== 'summary' && command !== 'reconcile')
  ) {
    err(HELP);
    return 2;
  }
  try {
    return run(command, values, deps, out, err);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error.message}\n(npm run --silent audit -- --help lists every option)`);
      return 2;
    }
    const code = (error as NodeJS.ErrnoException).code;
    err(`cannot read the audit trail in ${values['data-dir']}: ${code ?? (error as Error).message}`);
    return 2;
  }
}

/**
 * The command as `npm run audit` runs it: the files, or with
 * `--ledger postgres://...` (decrypt and verify) every node's chain in a
 * shared PostgreSQL ledger; the key still comes from the data dir's audit.key.
 */
export async function runAuditCommand(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  deps: AuditCliDeps = {},
): Promise<number> {
  if (!argv.some((arg) => arg === '--ledger' || arg.startsWith('--ledger='))) return runAuditCli(argv, out, err, deps);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: './data' },
        json: { type: 'boolean', default: false },
        ledger: { type: 'string' },
      },
    });
  } catch (error) {
    err(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const command = parsed.positionals[0];
  const url = parsed.values.ledger ?? '';
  if ((command !== 'decrypt' && command !== 'verify') || parsed.positionals.length !== 1 || !url) {
    err(`--ledger works with decrypt and verify (and --data-dir, --json) only\n\n${HELP}`);
    return 2;
  }
  let chains: VerifiedChain[];
  try {
    const key = readAuditKey(path.join(parsed.values['data-dir'], AUDIT_KEY_FILE));
    chains = await verifyLedgerChains(url, key);
  } catch (error) {
    // Never the URL itself: it may hold a password.
    err(
      `cannot read the audit chains from the ledger: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
    return 2;
  }
  let intact = true;
  for (const chain of chains) {
    if (command === 'decrypt') {
      for (const entry of chain.entries) {
        const line = { lineNumber: entry.lineNumber, event: entry.event };
        out(
          parsed.values.json
            ? JSON.stringify({ node: chain.nodeId, ...JSON.parse(describeJson(line)) })
            : `${chain.nodeId}  ${describeText(line)}`,
        );
      }
    }
    if (chain.firstBad) {
      intact = false;
      err(`audit chain of node ${chain.nodeId} NOT intact: line ${chain.firstBad.seq}: ${chain.firstBad.reason}`);
    } else if (command === 'verify') {
      const head = chain.entries.at(-1)?.head;
      out(
        `audit chain of node ${chain.nodeId} intact: ${chain.entries.length} lines verified; last line ` +
          `${head?.lineNumber ?? 0}, chain hash ${head?.chainHash.toString('hex') ?? '0'.repeat(64)}`,
      );
    }
  }
  return intact ? 0 : 1;
}
