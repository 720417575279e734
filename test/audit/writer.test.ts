/** Writing the audit logs: the chain continues across restarts, and a failed write leaves both files as they were. */
import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { verifyLogText } from '../../audit/reader.ts';
import { AuditWriter, auditPaths } from '../../audit/writer.ts';
import { fixedRandom } from '../protocol/fixtures.ts';
import { event, writeLog } from './fixtures.ts';

describe('AuditWriter', () => {
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

  it('takes back the last write of a group that did not commit, and nothing a sync already covered', async () => {
    const { dataDir, key, file } = await writeLog(2);
    const { writer } = AuditWriter.open(dataDir, key, fixedRandom(7));
    const kept = writer.head;
    const plainBefore = fs.readFileSync(auditPaths(dataDir).plain, 'utf8');
    writer.stage(event(3));
    writer.stage(event(4));
    const mark = writer.writeStaged();
    expect(mark).not.toBeNull();
    expect(writer.retractWrite(mark!)).toBe(true);
    expect(writer.head).toEqual(kept);
    expect(fs.readFileSync(auditPaths(dataDir).plain, 'utf8')).toBe(plainBefore);
    // Only once: the mark is spent.
    expect(writer.retractWrite(mark!)).toBe(false);
    // The chain goes on from line 2, and the file verifies.
    writer.stage(event(3));
    const synced = writer.writeStaged();
    await writer.flush();
    // A sync covered these lines, so a checkpoint may already vouch for them: they stay.
    expect(writer.retractWrite(synced!)).toBe(false);
    // An older mark is refused once another write came after it.
    writer.stage(event(4));
    const older = writer.writeStaged();
    writer.write(event(5));
    expect(writer.retractWrite(older!)).toBe(false);
    await writer.flush();
    await writer.close();
    const log = verifyLogText(key, fs.readFileSync(file, 'utf8'));
    expect(log.firstBad).toBeNull();
    expect(log.entries).toHaveLength(5);
  });
});
