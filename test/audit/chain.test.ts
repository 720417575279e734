import { createDecipheriv } from 'node:crypto';
import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { AuditKeys, canonicalBase64url } from '../../audit/chain.ts';
import { AuditLogError } from '../../audit/errors.ts';
import { verifyLogText } from '../../audit/reader.ts';
import { AuditWriter } from '../../audit/writer.ts';
import { aes256GcmOpen, hkdfSha256 } from '../../protocol/crypto.ts';
import { runAudit } from '../helpers.ts';
import { fixedRandom } from '../protocol/fixtures.ts';
import { editLines, event, readLines, writeLog } from './fixtures.ts';

function parts(line: string): { n: number; logId: Buffer; ciphertext: Buffer; tag: Buffer } {
  const [n, logId, ciphertext, tag] = line.split('.');
  return {
    n: Number(n),
    logId: Buffer.from(logId ?? '', 'base64url'),
    ciphertext: Buffer.from(ciphertext ?? '', 'base64url'),
    tag: Buffer.from(tag ?? '', 'base64url'),
  };
}

function openError(fn: () => unknown): AuditLogError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AuditLogError) return error;
    throw error;
  }
  throw new Error('expected an AuditLogError');
}

describe('audit line keys and nonces', () => {
  it('seals line n under HKDF(audit key, log id) with the line number as the GCM nonce', async () => {
    const { key, file } = await writeLog(3);
    for (const line of readLines(file)) {
      const { n, logId, ciphertext, tag } = parts(line);
      const subkey = hkdfSha256(key, logId, Buffer.from('atm-bank/v2 audit log subkey'), 32);
      const nonce = Buffer.alloc(12);
      nonce.writeBigUInt64BE(BigInt(n), 4);
      // Opening needs the right AAD too; a wrong one proves only the key and nonce are right if GCM
      // fails, so check the keystream instead: CTR mode with counter 2 is the first plaintext block.
      expect(aes256GcmOpen(subkey, { iv: nonce, ciphertext, tag }, Buffer.alloc(0))).toBeNull();

      const counter = Buffer.concat([nonce, Buffer.from([0, 0, 0, 2])]);
      const ctr = createDecipheriv('aes-256-ctr', subkey, counter);
      expect(Buffer.concat([ctr.update(ciphertext), ctr.final()]).toString('utf8')).toMatch(/^\{"event":\{"at":"2026/);
    }
  });

  it("gives each log id its own subkey, also when a key period's lines alternate with another's", () => {
    const key = Buffer.alloc(32, 7);
    const keys = new AuditKeys(key);
    const ids = [
      Buffer.alloc(16, 1),
      Buffer.alloc(16, 2),
      Buffer.alloc(16, 1),
      Buffer.alloc(16, 3),
      Buffer.alloc(16, 2),
    ];
    for (const logId of ids) {
      const expected = hkdfSha256(key, logId, Buffer.from('atm-bank/v2 audit log subkey'), 32);
      expect(keys.subkey(logId).export().toString('hex')).toBe(expected.toString('hex'));
    }
  });

  it('takes a fresh log id at every open, and verify reads across log ids', async () => {
    const { dataDir, key, file } = await writeLog(2);
    const { writer } = AuditWriter.open(dataDir, key, fixedRandom(9));
    writer.write(event(3));
    await writer.flush();
    await writer.close();
    const ids = readLines(file).map((line) => line.split('.')[1]);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[1]);
    const log = verifyLogText(key, fs.readFileSync(file, 'utf8'));
    expect(log.firstBad).toBeNull();
    expect(log.entries.map((entry) => entry.lineNumber)).toEqual([1, 2, 3]);
  });

  it('never seals one line number twice under one log id: a failed write moves to a new log id', async () => {
    const { dataDir, key, file } = await writeLog(1);
    const { writer } = AuditWriter.open(dataDir, key, fixedRandom(6));
    const writeSync = fs.writeSync;
    let calls = 0;
    const sealedAttempts: string[] = [];
    fs.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
      calls += 1;
      if (calls === 2) {
        sealedAttempts.push(String(args[1]));
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      }
      return writeSync(...args);
    }) as typeof fs.writeSync;
    try {
      expect(() => writer.write(event(2))).toThrow(/no space/);
    } finally {
      fs.writeSync = writeSync;
    }
    writer.write(event(2, { amountCents: 999 }));
    await writer.flush();
    await writer.close();
    const failedLine = Buffer.from(sealedAttempts[0] ?? '').toString('utf8');
    const lines = readLines(file);
    expect(failedLine.split('.')[0]).toBe('2');
    expect(lines[1]?.split('.')[0]).toBe('2');
    expect(lines[1]?.split('.')[1]).not.toBe(failedLine.split('.')[1]);
    expect(verifyLogText(key, fs.readFileSync(file, 'utf8')).firstBad).toBeNull();
  });

  it('binds the log id: a line given another log id does not open', async () => {
    const { key, file } = await writeLog(2);
    const lines = readLines(file);
    const other = lines[1]?.split('.') ?? [];
    other[1] = Buffer.alloc(16, 7).toString('base64url');
    const log = verifyLogText(key, `${lines[0]}\n${other.join('.')}\n`);
    expect(log.firstBad).toEqual({
      line: 2,
      reason: 'authentication failed (line modified, or the chain before it broken)',
    });
  });

  it('accepts only canonical base64url', async () => {
    expect(canonicalBase64url('AA')).toEqual(Buffer.from([0]));
    expect(canonicalBase64url('AB')).toBeNull(); // stray bits after the one byte
    expect(canonicalBase64url('AA==')).toBeNull(); // padding
    expect(canonicalBase64url('A+')).toBeNull(); // the standard alphabet
    const { key, file } = await writeLog(2);
    const lines = readLines(file);
    const tag = lines[1]?.split('.')[3] ?? '';
    // The tag is 16 bytes: 22 characters whose last carries 4 unused bits; setting one keeps the bytes.
    const last = tag.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = alphabet[alphabet.indexOf(last) + 1] ?? 'A';
    expect(Buffer.from(tag.slice(0, -1) + sameBytes, 'base64url').equals(Buffer.from(tag, 'base64url'))).toBe(true);
    const edited = `${lines[0]}\n${(lines[1] ?? '').slice(0, -1)}${sameBytes}\n`;
    expect(verifyLogText(key, edited).firstBad?.reason).toMatch(/not canonical base64url/);
  });
});

describe('the end of the log', () => {
  it('refuses to continue after a junk last line instead of numbering on from it', async () => {
    const { dataDir, key, file } = await writeLog(3);
    fs.appendFileSync(file, '999999.AAAAAAAAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA\n');
    const error = openError(() => AuditWriter.open(dataDir, key, fixedRandom(5)));
    expect(error.code).toBe('ERR_AUDIT_TAIL');
    expect(error.message).toMatch(/line 999999 .* does not authenticate/);
    expect(readLines(file)).toHaveLength(4);
  });

  it('refuses a last line whose tag was changed', async () => {
    const { dataDir, key, file } = await writeLog(3);
    editLines(file, (lines) => {
      const last = lines[2]?.split('.') ?? [];
      const tag = Buffer.from(last[3] ?? '', 'base64url');
      tag[0] = (tag[0] ?? 0) ^ 1;
      last[3] = tag.toString('base64url');
      return [lines[0] ?? '', lines[1] ?? '', last.join('.')];
    });
    expect(openError(() => AuditWriter.open(dataDir, key, fixedRandom(5))).code).toBe('ERR_AUDIT_TAIL');
  });

  it('lets verify read every genuine line around an inserted junk line, and names it', async () => {
    const { key, file } = await writeLog(4);
    const lines = readLines(file);
    const text = [lines[0], lines[1], '3.junk.junk.junk', lines[2], lines[3]].join('\n') + '\n';
    const log = verifyLogText(key, text);
    expect(log.entries.map((entry) => entry.lineNumber)).toEqual([1, 2, 3, 4]);
    expect(log.problems).toEqual([
      {
        line: 3,
        reason:
          'malformed line (not canonical base64url, or a part of the wrong length) (not part of the chain: the lines after it continue from the line before it)',
      },
    ]);
  });
});

describe('the plaintext log', () => {
  it('is checked by verify against the hashes in the encrypted lines', async () => {
    const { dataDir, plain } = await writeLog(3);
    editLines(plain, (lines) => lines.map((line, i) => (i === 1 ? line.replace('amount=2.00', 'amount=20.00') : line)));
    const result = runAudit(['verify', '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      'plaintext audit log NOT intact: line 2: differs from what the encrypted log recorded',
    ]);
  });

  it('names lines cut from its end', async () => {
    const { dataDir, plain } = await writeLog(3);
    editLines(plain, (lines) => lines.slice(0, 2));
    const result = runAudit(['verify', '--data-dir', dataDir]);
    expect(result.err).toEqual(['plaintext audit log NOT intact: line 3: missing: the plaintext log ends at line 2']);
  });

  it('loses lines a crash left only in it (never sealed), and regains lines a power cut took from it', async () => {
    const { dataDir, key, plain } = await writeLog(3);
    fs.appendFileSync(plain, '2026-01-01T00:00:09.000Z atm=1 user=alice action=deposit amount=9.00 outcome=ok\n');
    let opened = AuditWriter.open(dataDir, key, fixedRandom(5));
    expect(opened.repaired).toEqual(['1 plaintext line(s) that were never sealed trimmed']);
    await opened.writer.close();
    expect(readLines(plain)).toHaveLength(3);
    editLines(plain, (lines) => lines.slice(0, 1));
    opened = AuditWriter.open(dataDir, key, fixedRandom(6));
    expect(opened.repaired).toEqual(['2 plaintext line(s) restored from the encrypted log']);
    await opened.writer.close();
    expect(runAudit(['verify', '--data-dir', dataDir]).code).toBe(0);
  });

  it('refuses to open when its end matches nothing in the encrypted log', async () => {
    const { dataDir, key, plain } = await writeLog(3);
    editLines(plain, (lines) => [...lines.slice(0, 2), 'edited']);
    expect(openError(() => AuditWriter.open(dataDir, key, fixedRandom(5))).code).toBe('ERR_AUDIT_PLAIN');
  });
});

describe('continuity with the ledger', () => {
  it('refuses a log that ends before the head the ledger recorded, naming the missing lines', async () => {
    const { dataDir, key, file } = await writeLog(5);
    const { writer } = AuditWriter.open(dataDir, key, fixedRandom(5));
    const head = writer.head;
    await writer.close();
    editLines(file, (lines) => lines.slice(0, 3));
    editLines(file.replace('.enc', '.txt'), (lines) => lines.slice(0, 3));
    const reopened = AuditWriter.open(dataDir, key, fixedRandom(6)).writer;
    const error = openError(() => reopened.checkReaches(head, 'the ledger'));
    expect(error.code).toBe('ERR_AUDIT_GAP');
    expect(error.message).toMatch(/ends at line 3, but the ledger recorded .* lines 4-5 are missing/);
    await reopened.close();
  });

  it('accepts a log that reached the head and went on, and refuses one rewritten before it', async () => {
    const { dataDir, key } = await writeLog(3);
    let { writer } = AuditWriter.open(dataDir, key, fixedRandom(5));
    const head = writer.head;
    for (let n = 4; n <= 6; n += 1) writer.write(event(n));
    expect(() => writer.checkReaches(head, 'the ledger')).not.toThrow();
    await writer.close();
    // Another log of the same length, written from scratch with the same key: the head does not match.
    const other = await writeLog(6, 77);
    fs.copyFileSync(other.file, `${dataDir}/audit/audit_log.enc`);
    fs.copyFileSync(other.plain, `${dataDir}/audit/audit_log.txt`);
    ({ writer } = AuditWriter.open(dataDir, key, fixedRandom(8)));
    expect(openError(() => writer.checkReaches(head, 'the ledger')).message).toMatch(/line 3 is not the line/);
    await writer.close();
    // And one that ends exactly at the head's line number.
    const short = await writeLog(3, 78);
    fs.copyFileSync(short.file, `${dataDir}/audit/audit_log.enc`);
    fs.copyFileSync(short.plain, `${dataDir}/audit/audit_log.txt`);
    ({ writer } = AuditWriter.open(dataDir, key, fixedRandom(8)));
    expect(openError(() => writer.checkReaches(head, 'the ledger')).message).toMatch(/line 3 is not the line/);
    await writer.close();
  });

  it('keys the chain head it gives the ledger', () => {
    const keys = new AuditKeys(Buffer.alloc(32, 1));
    const head = { lineNumber: 7, chainHash: Buffer.alloc(32, 2) };
    const mac = keys.headMac(head);
    expect(keys.checkHeadMac(head, mac)).toBe(true);
    expect(keys.checkHeadMac({ ...head, lineNumber: 6 }, mac)).toBe(false);
    expect(new AuditKeys(Buffer.alloc(32, 3)).checkHeadMac(head, mac)).toBe(false);
  });
});
