import { createHash } from 'node:crypto';

import type { RandomSource } from '../../protocol/crypto.ts';

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

export const TERMINAL_KEY = Buffer.alloc(32, 0x42);
