/**
 * The only module that imports `node:crypto`. Everything here composes
 * standard primitives (X25519, Ed25519, HKDF-SHA256 and -SHA512, AES-256, HMAC-SHA256, SHA-256);
 * nothing is hand-rolled. Callers get plain functions over Buffers.
 */
import * as nodeCrypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  hkdfSync,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';

export const KEY_BYTES = 32;
export const MAC_BYTES = 32;
export const AES_BLOCK_BYTES = 16;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const X25519_PUBLIC_BYTES = 32;

/** Source of randomness; injectable so tests can be deterministic. */
export type RandomSource = (size: number) => Buffer;

/**
 * Keys, X25519 scalars, master secrets, session ids: straight from the
 * CSPRNG, one call each, so no buffer in this process ever holds a secret
 * before it is needed (a memory dump must not reveal the next handshake's
 * scalar or the next login's master secret).
 */
export const secureRandom: RandomSource = (size) => nodeRandomBytes(size);

// IVs only: public the moment they are used, so serving them from a pooled
// CSPRNG draw exposes nothing, and one call into OpenSSL per 4 KiB instead of
// one per record is measurably cheaper (bench/random-pool.ts). Bytes handed
// out are zeroed in the pool.
const IV_POOL_BYTES = 4096;
let ivPool = Buffer.alloc(0);
let ivPoolOffset = 0;

/** Random bytes for IVs and nothing else (never for a key or a secret). */
export const pooledIvRandom: RandomSource = (size) => {
  if (size > 256) return nodeRandomBytes(size);
  if (ivPoolOffset + size > ivPool.length) {
    ivPool = nodeRandomBytes(IV_POOL_BYTES);
    ivPoolOffset = 0;
  }
  const out = Buffer.from(ivPool.subarray(ivPoolOffset, ivPoolOffset + size));
  ivPool.fill(0, ivPoolOffset, ivPoolOffset + size);
  ivPoolOffset += size;
  return out;
};

/**
 * HKDF-SHA256, extract then expand (RFC 5869 §2.2 and §2.3).
 * `length` is at most 255 * 32 bytes, as §2.3 requires.
 */
export function hkdfSha256(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/**
 * HKDF-Expand alone (RFC 5869 §2.3), for a key that is already uniformly
 * random (§3.3 allows skipping Extract then).
 */
export function hkdfExpandSha256(prk: Buffer, info: Buffer, length: number): Buffer {
  return hkdfExpand('sha256', MAC_BYTES, prk, info, length);
}

/** The SHA-512 output size, and so the most one HKDF-Expand-SHA512 block gives. */
export const SHA512_BYTES = 64;

/**
 * HKDF-Expand with SHA-512 (RFC 5869 §2.3). Used for the per-message
 * ratchet: its 64 bytes of new keys are one block, T(1) = HMAC-SHA512(PRK,
 * info | 0x01), so one HMAC per message where HKDF-Expand-SHA256 took two.
 */
export function hkdfExpandSha512(prk: Buffer, info: Buffer, length: number): Buffer {
  return hkdfExpand('sha512', SHA512_BYTES, prk, info, length);
}

const HKDF_FIRST_COUNTER = Buffer.of(1);

function hkdfExpand(hash: 'sha256' | 'sha512', hashBytes: number, prk: Buffer, info: Buffer, length: number): Buffer {
  if (length > 255 * hashBytes) throw new RangeError('HKDF-Expand output too long');
  if (length === hashBytes) {
    // The ratchet's case: T(1) is the whole output, a fresh buffer of its own
    // (outside Buffer's shared pool), so nothing else needs wiping.
    return createHmac(hash, prk).update(info).update(HKDF_FIRST_COUNTER).digest();
  }
  const blocks: Buffer[] = [];
  let previous: Buffer = Buffer.alloc(0);
  for (let counter = 1; blocks.length * hashBytes < length; counter += 1) {
    previous = createHmac(hash, prk).update(previous).update(info).update(Buffer.of(counter)).digest();
    blocks.push(previous);
  }
  const joined = Buffer.concat(blocks);
  const result = Buffer.from(joined.subarray(0, length));
  // The joined blocks hold the output: left in Buffer's shared pool they
  // would outlive the keys they copy.
  wipe(joined, ...blocks);
  return result;
}

export function hmacSha256(key: Buffer, ...parts: Buffer[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

// One-shot hashing (Node 20.12+; the engines field allows 20.11): no Hash
// object per call for the young-generation GC to finalize.
const oneShotHash = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : null;

/** SHA-256 of a string's UTF-8 bytes (an audit line's hash). */
export function sha256Text(text: string): Buffer {
  if (oneShotHash) return oneShotHash('sha256', text, 'buffer');
  return createHash('sha256').update(text, 'utf8').digest();
}

export function sha256(...parts: Buffer[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** Constant-time comparison; different lengths are unequal without leaking where. */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Overwrites key material we are done with, so a later memory read finds zeros. */
export function wipe(...buffers: Buffer[]): void {
  for (const buffer of buffers) buffer.fill(0);
}

/** AES-256-CBC with PKCS#7 padding; the caller supplies a fresh random IV. */
export function aes256CbcEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

/**
 * Decrypts AES-256-CBC. Only ever called after the record MAC has been
 * verified, so a padding failure cannot become a padding oracle. Returns null
 * instead of throwing so callers map it to their own error code.
 */
export function aes256CbcDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return null;
  }
}

export type GcmSealed = { iv: Buffer; ciphertext: Buffer; tag: Buffer };

/**
 * A symmetric key held by OpenSSL, for a key used many times (an audit log
 * subkey seals every line of its key period): the cipher takes it without
 * importing raw bytes again each time.
 */
export type SecretKey = KeyObject;

export function secretKey(bytes: Buffer): SecretKey {
  if (bytes.length !== KEY_BYTES) throw new RangeError('a secret key is 32 bytes');
  return createSecretKey(bytes);
}

/** AES-256-GCM authenticated encryption, used for the audit log. */
export function aes256GcmSeal(key: Buffer | SecretKey, iv: Buffer, plaintext: Buffer, aad: Buffer): GcmSealed {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Returns null when the tag does not verify; never returns unauthenticated plaintext. */
export function aes256GcmOpen(key: Buffer | SecretKey, sealed: GcmSealed, aad: Buffer): Buffer | null {
  if (sealed.iv.length !== GCM_IV_BYTES || sealed.tag.length !== GCM_TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    return null;
  }
}

export type X25519KeyPair = { privateKey: KeyObject; publicKey: Buffer };

// PKCS#8 DER prefix for an X25519 private key (RFC 8410 §7); the 32-byte
// scalar follows. Lets us build a key pair from injected random bytes.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
// SPKI DER prefix for an X25519 public key (RFC 8410 §4).
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * An X25519 key pair from a 32-byte scalar drawn from `random` (RFC 7748 §5
 * clamps it). The scalar and the PKCS#8 copy that carries it are wiped here;
 * the KeyObject keeps its own copy inside OpenSSL until it is garbage
 * collected (SECURITY.md), so callers drop it as soon as it has been used.
 */
export function x25519KeyPair(random: RandomSource): X25519KeyPair {
  const scalar = random(KEY_BYTES);
  const pair = x25519KeyPairFromScalar(scalar);
  wipe(scalar);
  return pair;
}

/** The key pair for a stored scalar (the bank's static key); the caller wipes `scalar`. */
export function x25519KeyPairFromScalar(scalar: Buffer): X25519KeyPair {
  if (scalar.length !== KEY_BYTES) throw new RangeError('an X25519 scalar is 32 bytes');
  const der = Buffer.concat([X25519_PKCS8_PREFIX, scalar]);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    wipe(der);
  }
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: Buffer.from(spki.subarray(X25519_SPKI_PREFIX.length)) };
}

/**
 * X25519 shared secret with a peer's raw 32-byte public key. Returns null for
 * malformed or low-order peer keys (OpenSSL refuses an all-zero result).
 */
export function x25519SharedSecret(own: X25519KeyPair, peerPublic: Buffer): Buffer | null {
  if (peerPublic.length !== X25519_PUBLIC_BYTES) return null;
  try {
    const publicKey = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, peerPublic]),
      format: 'der',
      type: 'spki',
    });
    return diffieHellman({ privateKey: own.privateKey, publicKey });
  } catch {
    return null;
  }
}

export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

// PKCS#8 and SPKI DER prefixes for Ed25519 (RFC 8410 §7 and §4): the 32-byte
// seed or public key follows, so raw RFC 8032 keys can be used directly.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** An Ed25519 signing key (RFC 8032 §5.1.5) made from its 32-byte seed. */
export type Ed25519Signer = { publicKey: Buffer; sign(message: Buffer): Buffer };

export function ed25519Signer(seed: Buffer): Ed25519Signer {
  if (seed.length !== ED25519_SEED_BYTES) throw new RangeError('an Ed25519 seed is 32 bytes');
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  wipe(der);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    publicKey: Buffer.from(spki.subarray(ED25519_SPKI_PREFIX.length)),
    sign: (message) => nodeSign(null, message, privateKey),
  };
}

/** Verifies an Ed25519 signature (RFC 8032 §5.1.7); false for malformed keys or signatures, never a throw. */
export function ed25519Verify(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (publicKey.length !== ED25519_PUBLIC_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    const key = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}
