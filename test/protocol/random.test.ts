import * as nodeCrypto from 'node:crypto';

import { describe, expect, it, vi } from 'vitest';

import { pooledIvRandom, secureRandom } from '../../protocol/crypto.ts';

// Watch every buffer the CSPRNG hands out, to see what the process holds.
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof nodeCrypto>();
  return { ...original, randomBytes: vi.fn((size: number) => original.randomBytes(size)) };
});

const draws = (): Buffer[] => vi.mocked(nodeCrypto.randomBytes).mock.results.map((result) => result.value as Buffer);

describe('secureRandom (keys, scalars, master secrets)', () => {
  it('draws each key straight from the CSPRNG, so no buffer holds the next key before it is drawn', () => {
    vi.mocked(nodeCrypto.randomBytes).mockClear();
    const keys = [secureRandom(32), secureRandom(32), secureRandom(8)];
    // One CSPRNG call per key, exactly its size: nothing drawn ahead, no pool of future secrets.
    expect(vi.mocked(nodeCrypto.randomBytes).mock.calls.map(([size]) => size)).toEqual([32, 32, 8]);
    expect(draws().every((drawn, index) => drawn === keys[index])).toBe(true);
  });

  it('never hands out the same bytes twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i += 1) seen.add(secureRandom(16).toString('hex'));
    expect(seen.size).toBe(2_000);
  });
});

describe('pooledIvRandom (IVs only)', () => {
  it('serves IVs from one 4 KiB draw and zeroes what it handed out', () => {
    vi.mocked(nodeCrypto.randomBytes).mockClear();
    const ivs = Array.from({ length: 300 }, () => pooledIvRandom(16));
    expect(new Set(ivs.map((iv) => iv.toString('hex'))).size).toBe(300);
    const pools = draws();
    expect(pools.length).toBeLessThanOrEqual(3);
    // The pool never keeps bytes already given out.
    for (const iv of ivs) for (const pool of pools) expect(pool.includes(iv)).toBe(false);
    expect(pooledIvRandom(1_000)).toHaveLength(1_000);
  });
});
