/**
 * The bank's view of its terminals: the master terminal key and static
 * X25519 key (`bank.keys`), each ATM's key derived for its number on demand,
 * and the revocation list (`revoked-atms`), which `npm run bank -- revoke-atm N`
 * writes and a running bank picks up at its next handshake and within a
 * poll interval for connected ATMs.
 */
import fs from 'node:fs';
import path from 'node:path';

import { secureRandom, wipe, x25519KeyPairFromScalar, type X25519KeyPair } from '../protocol/crypto.ts';
import { deriveTerminalKey, MAX_ATM_ID, type AtmCredential } from '../protocol/handshake.ts';
import {
  atmKeyFileName,
  BANK_KEYS_FILE,
  createSecretFile,
  encodeAtmCredential,
  encodeBankKeys,
  encodeRevocations,
  readAtmCredential,
  readBankKeys,
  readRevocations,
  REVOCATIONS_FILE,
  writeFileDurably,
  type Revocation,
} from '../runtime/key-files.ts';

/** Creates `bank.keys` (0600) on first use: both keys straight from the CSPRNG. */
export function createBankKeys(dir: string): void {
  const terminalMasterKey = secureRandom(32);
  const staticPrivateKey = secureRandom(32);
  createSecretFile(path.join(dir, BANK_KEYS_FILE), encodeBankKeys({ terminalMasterKey, staticPrivateKey }));
  wipe(terminalMasterKey, staticPrivateKey);
}

export function checkAtmNumber(atmId: number): void {
  if (!Number.isInteger(atmId) || atmId < 0 || atmId > MAX_ATM_ID) {
    throw new Error(`an ATM number is a whole number from 0 to ${MAX_ATM_ID}`);
  }
}

export class Terminals {
  /** The bank's static key pair; its public half is pinned in every ATM's credential. */
  readonly staticKey: X25519KeyPair;
  private readonly masterKey: Buffer;
  private readonly revocationsFile: string;
  private revoked = new Map<number, string>();
  private revocationsStamp = '';
  /** Revocations read since the bank last asked (`takeNewlyRevoked`); not those in force at open. */
  private newlyRevoked: Revocation[] = [];

  private constructor(readonly dir: string) {
    const keys = readBankKeys(path.join(dir, BANK_KEYS_FILE));
    this.masterKey = keys.terminalMasterKey;
    this.staticKey = x25519KeyPairFromScalar(keys.staticPrivateKey);
    wipe(keys.staticPrivateKey);
    this.revocationsFile = path.join(dir, REVOCATIONS_FILE);
    this.refresh();
    this.newlyRevoked = [];
  }

  /** The terminals of the bank whose data directory is `dir` (it must hold `bank.keys`). */
  static open(dir: string): Terminals {
    return new Terminals(dir);
  }

  /** What ATM `atmId` needs to connect: its own derived key and the bank's public key to pin. */
  credentialFor(atmId: number): AtmCredential {
    checkAtmNumber(atmId);
    return {
      atmId,
      terminalKey: deriveTerminalKey(this.masterKey, atmId),
      bankPublicKey: Buffer.from(this.staticKey.publicKey),
    };
  }

  /**
   * The handshake's lookup: ATM `atmId`'s key (a fresh buffer it wipes), or
   * null when that terminal is revoked. Re-reads the list when it changed,
   * so a revocation applies from the next handshake on.
   */
  readonly terminalKeyFor = (atmId: number): Buffer | null => {
    this.refresh();
    return this.revoked.has(atmId) ? null : deriveTerminalKey(this.masterKey, atmId);
  };

  isRevoked(atmId: number): boolean {
    return this.revoked.has(atmId);
  }

  revocations(): Revocation[] {
    return [...this.revoked].map(([atm, at]) => ({ atm, at }));
  }

  /**
   * Adds `atmId` to the revocation list (durably). Returns false when it was
   * already revoked. Two operators revoking at the same instant can lose one
   * entry; the command prints the list it wrote, so either sees it.
   */
  revoke(atmId: number, at: Date): boolean {
    checkAtmNumber(atmId);
    this.refresh();
    if (this.revoked.has(atmId)) return false;
    const next = [...this.revocations(), { atm: atmId, at: at.toISOString() }];
    writeFileDurably(this.revocationsFile, encodeRevocations(next), { mode: 0o600, replace: true });
    this.refresh();
    return true;
  }

  /** Re-reads the revocation list if the file changed (a stat when it did not). */
  refresh(): void {
    const stamp = fileStamp(this.revocationsFile);
    if (stamp === this.revocationsStamp) return;
    const list = readRevocations(this.revocationsFile);
    this.revocationsStamp = stamp;
    this.newlyRevoked.push(...list.filter(({ atm }) => !this.revoked.has(atm)));
    this.revoked = new Map(list.map(({ atm, at }) => [atm, at]));
  }

  /**
   * The terminals revoked since the last call (whichever lookup read them
   * first), so the running bank audits each revocation once and cuts the
   * connected ATM.
   */
  takeNewlyRevoked(): Revocation[] {
    this.refresh();
    return this.newlyRevoked.splice(0);
  }

  /**
   * Writes ATM `atmId`'s credential to `file` (default `atm-N.key` in the
   * bank's data directory), 0600, unless a valid one for that ATM is there
   * already. Refuses a revoked number.
   */
  provision(atmId: number, file = path.join(this.dir, atmKeyFileName(atmId))): { file: string; created: boolean } {
    checkAtmNumber(atmId);
    this.refresh();
    if (this.revoked.has(atmId)) {
      throw new Error(`ATM ${atmId} is revoked; provision the terminal under a new number`);
    }
    const credential = this.credentialFor(atmId);
    const created = createSecretFile(file, encodeAtmCredential(credential));
    if (!created) {
      const existing = readAtmCredential(file, atmId);
      if (
        !existing.terminalKey.equals(credential.terminalKey) ||
        !existing.bankPublicKey.equals(credential.bankPublicKey)
      ) {
        throw new Error(`${file} holds a credential from another bank; remove it to provision ATM ${atmId} here`);
      }
    }
    wipe(credential.terminalKey);
    return { file, created };
  }
}

/** Changes whenever the file is replaced or rewritten (rename gives it a new inode). */
function fileStamp(file: string): string {
  try {
    const stat = fs.statSync(file);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return 'absent';
  }
}
