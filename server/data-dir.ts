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
import {
  AUDIT_KEY_FILE,
  BANK_AUTH_FILE,
  createSecretFile,
  encodeAuditKey,
  encodeBankAuth,
} from '../runtime/key-files.ts';

export const LEDGER_FILE = 'ledger.db';

export type DataDirPaths = { dir: string; bankAuth: string; auditKey: string; ledger: string };

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
  createSecretFile(paths.auditKey, encodeAuditKey(random(KEY_BYTES)));
  return paths;
}
