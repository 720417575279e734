import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import type { AuditEvent } from '../../audit/event.ts';
import { formatPlainLine } from '../../audit/event.ts';
import { verifyLogText } from '../../audit/reader.ts';
import { AuditWriter, auditPaths } from '../../audit/writer.ts';
import { prepareDataDir } from '../../server/data-dir.ts';
import { readAuditKey } from '../../runtime/key-files.ts';
import { runAudit, tempDir } from '../helpers.ts';
import { fixedRandom } from '../protocol/fixtures.ts';

function event(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
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

/** A data dir with a five-line audit log. */
async function writeLog(lines = 5): Promise<{ dataDir: string; key: Buffer; file: string }> {
  const dataDir = tempDir();
  const paths = prepareDataDir(dataDir, fixedRandom(3));
  const key = readAuditKey(paths.auditKey);
  const { writer } = AuditWriter.open(dataDir, key, fixedRandom(4));
  for (let n = 1; n <= lines; n += 1) writer.write(event(n));
  await writer.close();
  return { dataDir, key, file: auditPaths(dataDir).encrypted };
}

function editLines(file: string, edit: (lines: string[]) => string[]): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  fs.writeFileSync(file, `${edit(lines).join('\n')}\n`);
}

describe('encrypted audit log', () => {
  it('verifies an intact log and decrypts every entry in order', async () => {
    const { dataDir } = await writeLog();
    const verified = runAudit(['verify', '--data-dir', dataDir]);
    expect(verified.code).toBe(0);
    expect(verified.err).toEqual([]);
    expect(verified.out[0]).toMatch(/^last line 5, chain hash [0-9a-f]{64}$/);
    expect(verified.out[1]).toBe('audit log intact: 5 lines verified, plaintext log matches');
    const decrypted = runAudit(['decrypt', '--data-dir', dataDir, '--json']);
    expect(decrypted.code).toBe(0);
    expect(decrypted.out.map((line) => (JSON.parse(line) as AuditEvent).amountCents)).toEqual([
      100, 200, 300, 400, 500,
    ]);
    const human = runAudit(['decrypt', '--data-dir', dataDir]);
    expect(human.out[0]).toBe('1  2026-01-01T00:00:01.000Z  atm=1  user=alice  deposit  1.00  ok');
  });

  it('holds nothing readable: no username, action or amount in the clear', async () => {
    const { file } = await writeLog();
    const text = fs.readFileSync(file, 'utf8');
    for (const word of ['alice', 'deposit', '"amountCents"']) expect(text).not.toContain(word);
  });

  it('names a modified line', async () => {
    const { dataDir, file } = await writeLog();
    editLines(file, (lines) => {
      const parts = (lines[2] ?? '').split('.');
      const ciphertext = Buffer.from(parts[2] ?? '', 'base64url');
      ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
      parts[2] = ciphertext.toString('base64url');
      lines[2] = parts.join('.');
      return lines;
    });
    const result = runAudit(['verify', '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.err[0]).toMatch(/^audit log NOT intact: line 3: authentication failed/);
  });

  it('names the line after a deleted one', async () => {
    const { dataDir, file } = await writeLog();
    editLines(file, (lines) => lines.filter((_, index) => index !== 1));
    const result = runAudit(['verify', '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.err[0]).toMatch(/line 2: line number 3 where 2 was expected/);
  });

  it('names the first of two swapped lines', async () => {
    const { dataDir, file } = await writeLog();
    editLines(file, (lines) => [lines[0], lines[2], lines[1], lines[3], lines[4]].map(String));
    const result = runAudit(['verify', '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.err[0]).toMatch(/line 2:/);
  });

  it('detects a line renumbered to hide a deletion, by the broken chain', async () => {
    const { key, file } = await writeLog();
    const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
    const renumbered = [lines[0], `2.${(lines[2] ?? '').split('.').slice(1).join('.')}`];
    expect(verifyLogText(key, `${renumbered.join('\n')}\n`).firstBad).toEqual({
      line: 2,
      reason: 'authentication failed (line modified, or the chain before it broken)',
    });
  });

  it('refuses a log read with another key', async () => {
    const { file } = await writeLog();
    const result = verifyLogText(Buffer.alloc(32, 1), fs.readFileSync(file, 'utf8'));
    expect(result.firstBad?.line).toBe(1);
  });

  it('continues the chain across restarts and trims a torn final line left by a crash', async () => {
    const { dataDir, key, file } = await writeLog(3);
    fs.appendFileSync(file, '4.partial-write-without-newl');
    fs.appendFileSync(auditPaths(dataDir).plain, '2026-01-01T00:00:04.000Z atm=1 us');
    const { writer, tornBytes } = AuditWriter.open(dataDir, key, fixedRandom(5));
    expect(tornBytes).toBeGreaterThan(0);
    writer.write(event(4));
    await writer.flush();
    await writer.close();
    const log = verifyLogText(key, fs.readFileSync(file, 'utf8'));
    expect(log.firstBad).toBeNull();
    expect(log.entries).toHaveLength(4);
    expect(fs.readFileSync(auditPaths(dataDir).plain, 'utf8').split('\n')).toHaveLength(5);
  });

  it('leaves both files as they were when a write fails', async () => {
    const { dataDir, key, file } = await writeLog(2);
    const { writer } = AuditWriter.open(dataDir, key, fixedRandom(6));
    const before = fs.readFileSync(file, 'utf8');
    const writeSync = fs.writeSync;
    let calls = 0;
    // The plaintext line goes through, then the disk "fills up".
    fs.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
      calls += 1;
      if (calls === 2) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return writeSync(...args);
    }) as typeof fs.writeSync;
    try {
      expect(() => writer.write(event(3))).toThrow(/no space/);
    } finally {
      fs.writeSync = writeSync;
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readFileSync(auditPaths(dataDir).plain, 'utf8').split('\n')).toHaveLength(3);
    writer.write(event(3));
    await writer.flush();
    await writer.close();
    expect(verifyLogText(key, fs.readFileSync(file, 'utf8')).entries).toHaveLength(3);
  });

  it('exits 2 with a usage line for a bad command or a missing data dir', () => {
    expect(runAudit(['frobnicate']).code).toBe(2);
    expect(runAudit(['verify', '--data-dir', path.join(tempDir(), 'nope')]).code).toBe(2);
  });
});

describe('plaintext audit line', () => {
  it('is timestamp, ATM, user, action, amount, outcome', () => {
    expect(formatPlainLine(event(1))).toBe(
      '2026-01-01T00:00:01.000Z atm=1 user=alice action=deposit amount=1.00 outcome=ok',
    );
  });

  it('quotes attacker-chosen text so it cannot forge a line or a field', () => {
    const line = formatPlainLine(event(1, { user: 'x\n2026 atm=9 user=admin', action: 'login', amountCents: null }));
    expect(line).not.toContain('\n');
    expect(line).toContain('user="x\\n2026 atm=9 user=admin"');
  });
});
