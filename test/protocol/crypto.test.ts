import { expand as nobleHkdfExpand } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  aes256GcmOpen,
  aes256GcmSeal,
  constantTimeEqual,
  ed25519Signer,
  ed25519Verify,
  hkdfExpandSha256,
  hkdfExpandSha512,
  hkdfSha256,
  sha256Text,
  x25519KeyPair,
  x25519SharedSecret,
} from '../../protocol/crypto.ts';
import { fixedRandom, hex } from './fixtures.ts';

// RFC 5869 Appendix A, test cases 1 to 3 (the SHA-256 ones).
const RFC5869 = [
  {
    name: 'A.1 basic',
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '000102030405060708090a0b0c',
    info: 'f0f1f2f3f4f5f6f7f8f9',
    length: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs',
    ikm: Array.from({ length: 80 }, (_, i) => i.toString(16).padStart(2, '0')).join(''),
    salt: Array.from({ length: 80 }, (_, i) => (0x60 + i).toString(16).padStart(2, '0')).join(''),
    info: Array.from({ length: 80 }, (_, i) => (0xb0 + i).toString(16).padStart(2, '0')).join(''),
    length: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm: `b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09
          da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87`,
  },
  {
    name: 'A.3 empty salt and info',
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '',
    info: '',
    length: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

describe('HKDF-SHA256', () => {
  for (const vector of RFC5869) {
    it(`matches RFC 5869 ${vector.name}`, () => {
      const okm = hkdfSha256(hex(vector.ikm), hex(vector.salt), hex(vector.info), vector.length);
      expect(okm.toString('hex')).toBe(hex(vector.okm).toString('hex'));
    });
    it(`expands the RFC 5869 ${vector.name} PRK to its OKM (HKDF-Expand alone)`, () => {
      const okm = hkdfExpandSha256(hex(vector.prk), hex(vector.info), vector.length);
      expect(okm.toString('hex')).toBe(hex(vector.okm).toString('hex'));
    });
  }
});

describe('HKDF-Expand', () => {
  // RFC 5869 has no SHA-512 vectors: checked against @noble/hashes, an HKDF
  // written apart from OpenSSL's, at lengths below, at and past one block.
  const random = fixedRandom(5869);
  for (const length of [1, 32, 63, 64, 65, 128, 200]) {
    it(`with SHA-512 gives what an independent implementation gives, ${length} bytes`, () => {
      const prk = random(64);
      const info = random(length % 40);
      const ours = hkdfExpandSha512(prk, info, length);
      expect(ours.toString('hex')).toBe(Buffer.from(nobleHkdfExpand(nobleSha512, prk, info, length)).toString('hex'));
    });
    it(`with SHA-256 gives what an independent implementation gives, ${length} bytes`, () => {
      const prk = random(32);
      const info = random(length % 40);
      const ours = hkdfExpandSha256(prk, info, length);
      expect(ours.toString('hex')).toBe(Buffer.from(nobleHkdfExpand(nobleSha256, prk, info, length)).toString('hex'));
    });
  }

  it('refuses more than 255 blocks (RFC 5869 §2.3)', () => {
    expect(() => hkdfExpandSha512(Buffer.alloc(64), Buffer.alloc(0), 255 * 64 + 1)).toThrow(RangeError);
    expect(hkdfExpandSha512(Buffer.alloc(64), Buffer.alloc(0), 255 * 64)).toHaveLength(255 * 64);
  });
});

describe('SHA-256 of text', () => {
  it('matches FIPS 180-4 "abc" and hashes the UTF-8 bytes of any text', () => {
    expect(sha256Text('abc').toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const text = 'line 1 · user=zoë amount=5.00 €';
    expect(sha256Text(text).equals(createHash('sha256').update(Buffer.from(text, 'utf8')).digest())).toBe(true);
  });
});

describe('X25519', () => {
  it('matches the RFC 7748 §6.1 Diffie-Hellman vector', () => {
    const alice = x25519KeyPair(() => hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const bob = x25519KeyPair(() => hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    expect(alice.publicKey.toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(bob.publicKey.toString('hex')).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(x25519SharedSecret(alice, bob.publicKey)?.toString('hex')).toBe(shared);
    expect(x25519SharedSecret(bob, alice.publicKey)?.toString('hex')).toBe(shared);
  });

  it('leaves no copy of the private scalar in Buffer memory (the PKCS#8 encoding carrying it is wiped)', () => {
    for (let seed = 0; seed < 3; seed += 1) {
      // Kept outside Buffer's shared pool (Buffer.alloc never pools), so the scan cannot find this copy.
      const scalar = fixedRandom(1_000 + seed)(32);
      const pair = x25519KeyPair(() => {
        const drawn = Buffer.alloc(32);
        scalar.copy(drawn);
        return drawn;
      });
      // The pool slabs where the key pair's own buffers (and any copy made on the way) were allocated.
      const memory = Buffer.concat([Buffer.from(pair.publicKey.buffer), Buffer.from(Buffer.allocUnsafe(1).buffer)]);
      expect(memory.includes(pair.publicKey)).toBe(true);
      expect(memory.includes(scalar)).toBe(false);
    }
  });

  it('refuses a low-order peer key instead of returning an all-zero secret', () => {
    const own = x25519KeyPair(fixedRandom(1));
    expect(x25519SharedSecret(own, Buffer.alloc(32))).toBeNull();
    expect(x25519SharedSecret(own, Buffer.alloc(31))).toBeNull();
  });
});

describe('AES-256-GCM', () => {
  it('opens what it sealed and refuses a changed byte, tag or additional data', () => {
    const key = Buffer.alloc(32, 7);
    const sealed = aes256GcmSeal(key, Buffer.alloc(12, 1), Buffer.from('audit line'), Buffer.from('aad'));
    expect(aes256GcmOpen(key, sealed, Buffer.from('aad'))?.toString()).toBe('audit line');
    expect(aes256GcmOpen(key, sealed, Buffer.from('aaD'))).toBeNull();
    const flipped = Buffer.from(sealed.ciphertext);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(aes256GcmOpen(key, { ...sealed, ciphertext: flipped }, Buffer.from('aad'))).toBeNull();
    expect(aes256GcmOpen(key, { ...sealed, tag: Buffer.alloc(16) }, Buffer.from('aad'))).toBeNull();
  });
});

describe('constantTimeEqual', () => {
  it('is false for different lengths instead of throwing', () => {
    expect(constantTimeEqual(Buffer.alloc(3), Buffer.alloc(4))).toBe(false);
    expect(constantTimeEqual(Buffer.from('ab'), Buffer.from('ab'))).toBe(true);
  });
});

// RFC 8032 §7.1, TEST 1 (empty message), TEST 2 (one byte) and TEST 3 (two bytes).
const RFC8032 = [
  {
    name: 'TEST 1',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: `e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b`,
  },
  {
    name: 'TEST 2',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: `92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00`,
  },
  {
    name: 'TEST 3',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: `6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a`,
  },
];

describe('Ed25519', () => {
  for (const vector of RFC8032) {
    it(`derives the public key and signature of RFC 8032 ${vector.name}`, () => {
      const signer = ed25519Signer(hex(vector.seed));
      expect(signer.publicKey.toString('hex')).toBe(vector.publicKey);
      expect(signer.sign(hex(vector.message)).toString('hex')).toBe(vector.signature);
      expect(ed25519Verify(hex(vector.publicKey), hex(vector.message), hex(vector.signature))).toBe(true);
    });
  }

  it('rejects a signature over another message, a flipped bit, another key, and malformed input', () => {
    const [one, two] = [RFC8032[0], RFC8032[1]].map((vector) => vector!);
    const signature = hex(one.signature);
    expect(ed25519Verify(hex(one.publicKey), Buffer.from('x'), signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    expect(ed25519Verify(hex(one.publicKey), hex(one.message), flipped)).toBe(false);
    expect(ed25519Verify(hex(two.publicKey), hex(one.message), signature)).toBe(false);
    expect(ed25519Verify(Buffer.alloc(5), hex(one.message), signature)).toBe(false);
    expect(ed25519Verify(hex(one.publicKey), hex(one.message), signature.subarray(1))).toBe(false);
  });
});
