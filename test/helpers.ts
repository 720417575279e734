import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runAuditCli } from '../audit/cli.ts';
import { verifyLogFile } from '../audit/reader.ts';
import type { AuditEvent } from '../audit/event.ts';
import { auditPaths } from '../audit/writer.ts';
import { BankClient } from '../protocol/client.ts';
import { AUDIT_KEY_FILE, readAuditKey } from '../runtime/key-files.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import { LEDGER_FILE } from '../server/data-dir.ts';
import { readSqliteLedgerSnapshot } from '../server/ledger-snapshot.ts';
import { startBankServer, type BankServerOptions, type RunningBank } from '../server/bank-server.ts';
import { Terminals } from '../server/terminals.ts';

/** ATM `atmId`'s credential for the bank whose data dir is `dataDir`, as `provision-atm` would write it. */
export function credentialFor(dataDir: string, atmId: number): AtmCredential {
  return Terminals.open(dataDir).credentialFor(atmId);
}

/** Connects as ATM `atmId` to a bank running in its own process on `port`, provisioned from its data dir. */
export function connectToBank(dataDir: string, port: number, atmId = 1): Promise<BankClient> {
  return BankClient.connect({ host: '127.0.0.1', port, credential: credentialFor(dataDir, atmId) });
}

export function tempDir(prefix = 'atm-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export type TestBank = {
  bank: RunningBank;
  dataDir: string;
  connect(atmId?: number): Promise<BankClient>;
  stop(): Promise<void>;
};

/** A real bank on an ephemeral port and a temp data dir, with cheap bcrypt. */
export async function startTestBank(options: Partial<BankServerOptions> = {}): Promise<TestBank> {
  const dataDir = options.dataDir ?? tempDir();
  const bank = await startBankServer({ host: '127.0.0.1', port: 0, dataDir, bcryptCost: 4, ...options });
  const clients: BankClient[] = [];
  return {
    bank,
    dataDir,
    async connect(atmId = 1) {
      const client = await BankClient.connect({
        host: bank.host,
        port: bank.port,
        credential: bank.credentialFor(atmId),
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.close();
      await bank.close();
    },
  };
}

let counter = 0;
export function uniqueTxId(): string {
  counter += 1;
  return `tx-${process.pid}-${Date.now()}-${counter}`;
}

/** Every event in a data dir's encrypted audit log; fails the test if the chain is broken. */
export function auditEvents(dataDir: string): AuditEvent[] {
  const key = readAuditKey(path.join(dataDir, AUDIT_KEY_FILE));
  const log = verifyLogFile(key, auditPaths(dataDir).encrypted);
  if (log.firstBad) throw new Error(`audit log broken at line ${log.firstBad.line}: ${log.firstBad.reason}`);
  return log.entries.map((entry) => entry.event);
}

/** The codes of the protocol failures the bank audited, in order. */
export function protocolErrors(dataDir: string): string[] {
  return auditEvents(dataDir)
    .filter((event) => event.action === 'protocol_error')
    .map((event) => event.outcome);
}

/** Runs the auditor's command in-process and captures what it prints. */
export function runAudit(args: string[]): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runAuditCli(
    args,
    (line) => out.push(line),
    (line) => err.push(line),
    { readLedger: (dataDir) => readSqliteLedgerSnapshot(path.join(dataDir, LEDGER_FILE)) },
  );
  return { code, out, err };
}
