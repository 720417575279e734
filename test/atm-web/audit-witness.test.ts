import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { encodeWitness, parseWitness, signCheckpoint } from '../../audit/checkpoint.ts';
import { AuditWitness, auditHeadFile } from '../../atm-web/audit-witness.ts';
import { ed25519Signer } from '../../protocol/crypto.ts';
import { tempDir } from '../helpers.ts';

const signer = ed25519Signer(Buffer.alloc(32, 5));
const checkpoint = (lineNumber: number, node: string | null = null) =>
  signCheckpoint(signer, { lineNumber, chainHash: Buffer.alloc(32, lineNumber) }, node);

describe('the ATM as audit witness', () => {
  it('keeps the newest checkpoint in atm-N.audit-head, 0600, and never goes back to an older one', () => {
    const file = auditHeadFile(tempDir(), 3);
    expect(file).toMatch(/atm-3\.audit-head$/);
    const witness = new AuditWitness(file, 3, () => new Date('2026-01-01T00:00:00Z'));
    expect(witness.offer(checkpoint(5))).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(witness.offer(checkpoint(4))).toBe(false);
    expect(witness.offer(checkpoint(5))).toBe(false);
    expect(witness.offer(checkpoint(9))).toBe(true);
    const kept = parseWitness(fs.readFileSync(file, 'utf8'));
    expect(kept).toEqual({ atm: 3, heads: [{ checkpoint: checkpoint(9), receivedAt: '2026-01-01T00:00:00.000Z' }] });
    // A restarted ATM remembers what it saw.
    const restarted = new AuditWitness(file, 3);
    expect(restarted.lineNumberOf()).toBe(9);
    expect(restarted.offer(checkpoint(7))).toBe(false);
  });

  it('keeps the newest checkpoint of each node’s chain: one node’s long chain never hides another’s', () => {
    const file = auditHeadFile(tempDir(), 3);
    const witness = new AuditWitness(file, 3, () => new Date('2026-01-01T00:00:00Z'));
    expect(witness.offer(checkpoint(20, 'node-1'))).toBe(true);
    // After a failover: the other node's chain is at line 5, far behind node-1's, and is kept all the same.
    expect(witness.offer(checkpoint(5, 'node-2'))).toBe(true);
    expect(witness.offer(checkpoint(4, 'node-2'))).toBe(false);
    expect(witness.offer(checkpoint(19, 'node-1'))).toBe(false);
    expect(witness.offer(checkpoint(21, 'node-1'))).toBe(true);
    const restarted = new AuditWitness(file, 3);
    expect([restarted.lineNumberOf('node-1'), restarted.lineNumberOf('node-2'), restarted.lineNumberOf()]).toEqual([
      21, 5, 0,
    ]);
    const heads = parseWitness(fs.readFileSync(file, 'utf8'))?.heads.map((head) => head.checkpoint);
    expect(heads).toEqual([checkpoint(21, 'node-1'), checkpoint(5, 'node-2')]);
  });

  it('reads no witness from a file that names one node twice or is not a witness', () => {
    const head = { checkpoint: checkpoint(3, 'node-1'), receivedAt: '2026-01-01T00:00:00.000Z' };
    expect(parseWitness(encodeWitness({ atm: 1, heads: [head] }))?.heads).toHaveLength(1);
    expect(parseWitness(encodeWitness({ atm: 1, heads: [head, head] }))).toBeNull();
    expect(parseWitness('{"format":"atm-bank audit head v1"}')).toBeNull();
  });
});
