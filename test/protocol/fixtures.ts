import { createHash } from 'node:crypto';

import { expect } from 'vitest';

import { x25519KeyPair, type RandomSource } from '../../protocol/crypto.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../protocol/errors.ts';
import { deriveTerminalKey, type AtmCredential, type TerminalKeyLookup } from '../../protocol/handshake.ts';

/** Deterministic "randomness": SHA-256 in counter mode over a seed. Tests only. */
export function fixedRandom(seed: number): RandomSource {
  let counter = 0;
  return (size) => {
    const out = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += 32) {
      counter += 1;
      createHash('sha256').update(`${seed}:${counter}`).digest().copy(out, offset);
    }
    return out;
  };
}

/** The bank's master terminal key in tests; ATMs only ever get keys derived from it. */
export const MASTER_TERMINAL_KEY = Buffer.alloc(32, 0x4d);

/** The bank's static X25519 key pair in tests (scalar from a fixed seed). */
export const BANK_STATIC_KEY = x25519KeyPair(fixedRandom(0x5ba));

/** What ATM `atmId` is provisioned with by the test bank. */
export function testCredential(atmId: number, bankPublicKey = BANK_STATIC_KEY.publicKey): AtmCredential {
  return { atmId, terminalKey: deriveTerminalKey(MASTER_TERMINAL_KEY, atmId), bankPublicKey };
}

/** The test bank's lookup: every number's derived key, except the revoked ones. */
export function testTerminalKeys(revoked: ReadonlySet<number> = new Set()): TerminalKeyLookup {
  return (atmId) => (revoked.has(atmId) ? null : deriveTerminalKey(MASTER_TERMINAL_KEY, atmId));
}

/** Bytes written as hex, spaces and newlines allowed (as in the RFCs' test vectors). */
export function hex(value: string): Buffer {
  return Buffer.from(value.replace(/\s+/g, ''), 'hex');
}

/** Asserts that `action` throws a ProtocolError with this code. */
export function expectCode(action: () => unknown, code: ProtocolErrorCode): void {
  let caught: unknown = null;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
}
