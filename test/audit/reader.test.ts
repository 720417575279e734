/** The encrypted audit log read back: verifying names the first bad line; decrypting gives every entry. */
import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { AuditEvent } from '../../audit/event.ts';
import { verifyLogText } from '../../audit/reader.ts';
import { runAudit } from '../helpers.ts';
import { editLines, writeLog } from './fixtures.ts';

describe('reading the encrypted audit log', () => {
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
});
