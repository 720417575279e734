import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { parseWitness, signCheckpoint } from '../../audit/checkpoint.ts';
import { AuditWitness, auditHeadFile } from '../../atm-web/audit-witness.ts';
import { ed25519Signer } from '../../protocol/crypto.ts';
import { tempDir } from '../helpers.ts';

const signer = ed25519Signer(Buffer.alloc(32, 5));
const checkpoint = (lineNumber: number) =>
  signCheckpoint(signer, { lineNumber, chainHash: Buffer.alloc(32, lineNumber) });

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
    expect(kept).toMatchObject({ atm: 3, receivedAt: '2026-01-01T00:00:00.000Z' });
    expect(kept?.checkpoint).toEqual(checkpoint(9));
    // A restarted ATM remembers what it saw.
    const restarted = new AuditWitness(file, 3);
    expect(restarted.lineNumber).toBe(9);
    expect(restarted.offer(checkpoint(7))).toBe(false);
  });
});
