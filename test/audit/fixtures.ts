import fs from 'node:fs';

import type { AuditEvent } from '../../audit/event.ts';
import { AuditWriter, auditPaths } from '../../audit/writer.ts';
import { readAuditKey } from '../../runtime/key-files.ts';
import { prepareDataDir } from '../../server/data-dir.ts';
import { tempDir } from '../helpers.ts';
import { fixedRandom } from '../protocol/fixtures.ts';

export function event(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    atm: 1,
    user: 'alice',
    action: 'deposit',
    amountCents: n * 100,
    outcome: 'ok',
    ...overrides,
  };
}

export type WrittenLog = { dataDir: string; key: Buffer; file: string; plain: string };

/** A data dir whose audit log holds these events (default: five deposits). */
export async function writeLog(events: AuditEvent[] | number = 5, seed = 4): Promise<WrittenLog> {
  const dataDir = tempDir();
  const paths = prepareDataDir(dataDir, fixedRandom(3));
  const key = readAuditKey(paths.auditKey);
  const { writer } = AuditWriter.open(dataDir, key, fixedRandom(seed));
  const list = typeof events === 'number' ? Array.from({ length: events }, (_, i) => event(i + 1)) : events;
  for (const item of list) writer.write(item);
  await writer.close();
  const { encrypted, plain } = auditPaths(dataDir);
  return { dataDir, key, file: encrypted, plain };
}

export function readLines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
}

export function editLines(file: string, edit: (lines: string[]) => string[]): void {
  const lines = edit(readLines(file));
  fs.writeFileSync(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}
