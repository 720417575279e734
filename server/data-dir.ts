/**
 * The bank's data directory: created on first start (0700), reused later.
 *
 *   bank.keys       the master terminal key and the bank's static X25519 key (0600)
 *   atm-N.key       ATM N's credential, written by `npm run bank -- provision-atm N` (0600)
 *   revoked-atms    the revoked terminals, written by `npm run bank -- revoke-atm N` (0600)
 *   audit.key       the audit log key, never used for anything else (0600)
 *   audit-signing.key  the Ed25519 seed that signs audit checkpoints for the ATMs (0600)
 *   ledger.db       the SQLite ledger (0600, plus its -wal and -shm files)
 *   audit/          the plaintext and encrypted audit logs
 *   ticket.key      the key of customers' resumption tickets, shared by all nodes (0600)
 *   node.id         this node's name in a shared PostgreSQL ledger's audit table
 */
import fs from 'node:fs';
import path from 'node:path';

import { KEY_BYTES, type RandomSource } from '../protocol/crypto.ts';
import { NODE_ID_PATTERN } from '../protocol/messages.ts';
import {
  AUDIT_KEY_FILE,
  AUDIT_SIGNING_KEY_FILE,
  NODE_ID_FILE,
  createSecretFile,
  encodeAuditKey,
  encodeAuditSigningKey,
} from '../runtime/key-files.ts';
import { createBankKeys } from './terminals.ts';

export const LEDGER_FILE = 'ledger.db';
export const TICKET_KEY_FILE = 'ticket.key';

export type DataDirPaths = {
  dir: string;
  auditKey: string;
  auditSigningKey: string;
  ticketKey: string;
  ledger: string;
};

export function prepareDataDir(dir: string, random: RandomSource): DataDirPaths {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const paths = {
    dir,
    auditKey: path.join(dir, AUDIT_KEY_FILE),
    auditSigningKey: path.join(dir, AUDIT_SIGNING_KEY_FILE),
    ticketKey: path.join(dir, TICKET_KEY_FILE),
    ledger: path.join(dir, LEDGER_FILE),
  };
  createBankKeys(dir);
  createSecretFile(paths.auditKey, encodeAuditKey(random(KEY_BYTES)));
  createSecretFile(paths.auditSigningKey, encodeAuditSigningKey(random(KEY_BYTES)));
  // Same format as audit.key (32 bytes, base64), a different key for a different job.
  createSecretFile(paths.ticketKey, encodeAuditKey(random(KEY_BYTES)));
  return paths;
}

/**
 * This node's stable name among the nodes sharing a PostgreSQL ledger: the
 * one given, else the one in `node.id`, else a new random one written there
 * (so a restarted node continues its own audit chain).
 */
export function nodeId(dir: string, random: RandomSource, given?: string): string {
  const file = path.join(dir, NODE_ID_FILE);
  const id =
    given ?? (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : `node-${random(6).toString('hex')}`);
  if (!NODE_ID_PATTERN.test(id))
    throw new Error(`a node id is 1 to 64 of A-Z a-z 0-9 _ . : - (got ${JSON.stringify(id)})`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}
