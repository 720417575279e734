/**
 * The bank's data directory: created on first start (0700), reused later.
 *
 *   bank.auth       the terminal key every ATM must hold (0600)
 *   audit.key       the audit log key, never used for anything else (0600)
 *   ledger.db       the SQLite ledger (0600, plus its -wal and -shm files)
 *   audit/          the plaintext and encrypted audit logs
 */
import fs from 'node:fs';
import path from 'node:path';

import { KEY_BYTES, type RandomSource } from '../protocol/crypto.ts';
import { BANK_AUTH_FILE, encodeBankAuth } from '../protocol/bank-auth.ts';

export const AUDIT_KEY_FILE = 'audit.key';
export const LEDGER_FILE = 'ledger.db';

export type DataDirPaths = { dir: string; bankAuth: string; auditKey: string; ledger: string };

function createSecretFile(file: string, contents: string): void {
  try {
    // 'wx' refuses to overwrite: two banks starting at once cannot clobber a key.
    fs.writeFileSync(file, contents, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  fs.chmodSync(file, 0o600);
}

export function prepareDataDir(dir: string, random: RandomSource): DataDirPaths {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const paths = {
    dir,
    bankAuth: path.join(dir, BANK_AUTH_FILE),
    auditKey: path.join(dir, AUDIT_KEY_FILE),
    ledger: path.join(dir, LEDGER_FILE),
  };
  createSecretFile(paths.bankAuth, encodeBankAuth(random(KEY_BYTES)));
  createSecretFile(paths.auditKey, `${random(KEY_BYTES).toString('base64')}\n`);
  return paths;
}

export function readAuditKey(file: string): Buffer {
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}
