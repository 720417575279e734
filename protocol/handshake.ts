/**
 * Connection handshake as two pure state machines (no sockets, no timers).
 *
 *   ATM  -> bank  ClientHello    version(1) = 2 | atmId(2) | ephemeral X25519 public e_a(32)
 *   bank -> ATM   ServerHello    ephemeral X25519 public e_b(32) | serverFinished(32)
 *   ATM  -> bank  ClientFinished clientFinished(32)
 *
 * What each side holds before it starts:
 *   ATM N  its own terminal key K_N = HKDF(master terminal key, N) (never the
 *          master key) and the bank's static X25519 public key S, pinned when
 *          the ATM was provisioned (`AtmCredential`);
 *   bank   the master terminal key, from which it derives K_N for the number
 *          an ATM claims (refusing a revoked number), and S's private key s.
 *
 *   th   = SHA-256(label | S | ClientHello | e_b)
 *   okm  = HKDF-SHA256(ikm = X25519(e_a, e_b) | X25519(e_a, S), salt = K_N, info = label | th)
 *        = serverFinishedKey(32) | clientFinishedKey(32) | ATM->bank enc, mac | bank->ATM enc, mac (4 x 32)
 *   serverFinished = HMAC-SHA256(serverFinishedKey, label | th)
 *   clientFinished = HMAC-SHA256(clientFinishedKey, label | th | serverFinished)
 *
 * This is the shape of Noise's NKpsk0 pattern (the responder's static key is
 * known to the initiator, a pre-shared key authenticates the initiator),
 * composed from the same primitives. Consequences, each tested in
 * `test/protocol/handshake.test.ts`:
 * - only the bank can produce serverFinished: it needs s (for the
 *   ephemeral-static X25519) and K_N, so a stolen terminal key alone cannot
 *   pose as the bank, to that ATM or any other;
 * - only a holder of K_N can produce clientFinished for number N, and N is in
 *   the transcript, so key N cannot connect as M;
 * - the ephemeral-ephemeral X25519 gives every connection fresh keys, so a
 *   later leak of K_N, s or the master key opens no recorded connection;
 * - each direction has its own keys from the start.
 * Both sides keep nothing secret once the handshake is done: scalars are
 * dropped, derived material is wiped, and the caller wipes the channel keys
 * once its record session has copied them.
 */
import {
  KEY_BYTES,
  MAC_BYTES,
  X25519_PUBLIC_BYTES,
  constantTimeEqual,
  hkdfSha256,
  hmacSha256,
  sha256,
  wipe,
  x25519KeyPair,
  x25519SharedSecret,
  type RandomSource,
  type X25519KeyPair,
} from './crypto.ts';
import { ProtocolError } from './errors.ts';
import { splitDirectionalKeys, type DirectionalKeys } from './record.ts';

export const HANDSHAKE_VERSION = 2;
export const CLIENT_HELLO_BYTES = 1 + 2 + X25519_PUBLIC_BYTES;
export const SERVER_HELLO_BYTES = X25519_PUBLIC_BYTES + MAC_BYTES;
export const CLIENT_FINISHED_BYTES = MAC_BYTES;
export const MAX_ATM_ID = 0xffff;

const TRANSCRIPT_LABEL = Buffer.from('atm-bank/v2 handshake transcript');
const KEY_SCHEDULE_LABEL = Buffer.from('atm-bank/v2 handshake keys');
const SERVER_FINISHED_LABEL = Buffer.from('atm-bank/v2 server finished');
const CLIENT_FINISHED_LABEL = Buffer.from('atm-bank/v2 client finished');
const TERMINAL_KEY_LABEL = Buffer.from('atm-bank/v2 terminal key');

/** Everything an ATM needs to connect to its bank, and nothing more. */
export type AtmCredential = {
  atmId: number;
  /** K_N: this ATM's own key, derived from the bank's master terminal key for its number. */
  terminalKey: Buffer;
  /** The bank's static X25519 public key, pinned: a bank without its private key is refused. */
  bankPublicKey: Buffer;
};

/** What a completed handshake leaves both sides: nothing from which earlier keys can be rebuilt. */
export type ChannelSecrets = {
  /** Proven: the peer held the terminal key for this number. */
  atmId: number;
  /** Hash of the whole handshake; binds customer sessions to this connection. */
  transcriptHash: Buffer;
  /** The connection's own session keys, one pair per direction; wipe once installed. */
  channelKeys: DirectionalKeys;
};

/**
 * ATM N's terminal key, derived from the bank's master terminal key as banks
 * derive per-device keys from a base key (ANSI X9.24's idea, with HKDF-SHA256,
 * RFC 5869, in place of its DES-based derivation): K_N = HKDF(ikm = master,
 * salt = empty, info = label | N as 2 bytes). One-way: K_N reveals neither the
 * master key nor any other ATM's key.
 */
export function deriveTerminalKey(masterKey: Buffer, atmId: number): Buffer {
  if (masterKey.length !== KEY_BYTES) throw new RangeError('the master terminal key is 32 bytes');
  checkAtmId(atmId);
  const number = Buffer.alloc(2);
  number.writeUInt16BE(atmId);
  return hkdfSha256(masterKey, Buffer.alloc(0), Buffer.concat([TERMINAL_KEY_LABEL, number]), KEY_BYTES);
}

function checkAtmId(atmId: number): void {
  if (!Number.isInteger(atmId) || atmId < 0 || atmId > MAX_ATM_ID) {
    throw new ProtocolError('ERR_HANDSHAKE', 'ATM id must be an integer from 0 to 65535');
  }
}

function checkKey(key: Buffer, what: string): void {
  if (key.length !== KEY_BYTES) throw new ProtocolError('ERR_HANDSHAKE', `${what} must be 32 bytes`);
}

type Schedule = { serverFinishedKey: Buffer; clientFinishedKey: Buffer; channelKeys: DirectionalKeys };

function keySchedule(
  ephemeralShared: Buffer,
  staticShared: Buffer,
  terminalKey: Buffer,
  transcriptHash: Buffer,
): Schedule {
  const ikm = Buffer.concat([ephemeralShared, staticShared]);
  const okm = hkdfSha256(ikm, terminalKey, Buffer.concat([KEY_SCHEDULE_LABEL, transcriptHash]), 6 * KEY_BYTES);
  const schedule: Schedule = {
    serverFinishedKey: Buffer.from(okm.subarray(0, KEY_BYTES)),
    clientFinishedKey: Buffer.from(okm.subarray(KEY_BYTES, 2 * KEY_BYTES)),
    channelKeys: splitDirectionalKeys(okm.subarray(2 * KEY_BYTES)),
  };
  wipe(ikm, okm, ephemeralShared, staticShared);
  return schedule;
}

function transcript(bankPublicKey: Buffer, clientHello: Buffer, serverEphemeral: Buffer): Buffer {
  return sha256(TRANSCRIPT_LABEL, bankPublicKey, clientHello, serverEphemeral);
}

function wipeSchedule(schedule: Schedule): void {
  const { channelKeys } = schedule;
  wipe(schedule.serverFinishedKey, schedule.clientFinishedKey);
  wipe(channelKeys.atmToBank.encKey, channelKeys.atmToBank.macKey);
  wipe(channelKeys.bankToAtm.encKey, channelKeys.bankToAtm.macKey);
}

type ClientState = 'initial' | 'awaiting-server-hello' | 'done' | 'failed';

export class ClientHandshake {
  private state: ClientState = 'initial';
  /** Dropped once used: with it and the public hellos, the connection's keys could be rebuilt. */
  private ephemeral: X25519KeyPair | null;
  private readonly credential: AtmCredential;
  private clientHello: Buffer | null = null;

  constructor(credential: AtmCredential, random: RandomSource) {
    checkAtmId(credential.atmId);
    checkKey(credential.terminalKey, 'terminal key');
    checkKey(credential.bankPublicKey, "bank's public key");
    this.credential = credential;
    this.ephemeral = x25519KeyPair(random);
  }

  start(): Buffer {
    this.expect('initial');
    const ephemeral = this.ephemeral;
    if (!ephemeral) throw new ProtocolError('ERR_PHASE', 'handshake already used');
    const hello = Buffer.alloc(CLIENT_HELLO_BYTES);
    hello.writeUInt8(HANDSHAKE_VERSION, 0);
    hello.writeUInt16BE(this.credential.atmId, 1);
    ephemeral.publicKey.copy(hello, 3);
    this.clientHello = hello;
    this.state = 'awaiting-server-hello';
    return hello;
  }

  /** Verifies the bank's proof and returns the ClientFinished body and the channel's keys. */
  onServerHello(body: Buffer): { clientFinished: Buffer; secrets: ChannelSecrets } {
    this.expect('awaiting-server-hello');
    this.state = 'failed';
    const ephemeral = this.ephemeral;
    this.ephemeral = null;
    if (body.length !== SERVER_HELLO_BYTES || !this.clientHello || !ephemeral) {
      throw new ProtocolError('ERR_HANDSHAKE', 'malformed server hello');
    }
    const { bankPublicKey, terminalKey, atmId } = this.credential;
    const serverPublic = body.subarray(0, X25519_PUBLIC_BYTES);
    const serverFinished = body.subarray(X25519_PUBLIC_BYTES);
    const ephemeralShared = x25519SharedSecret(ephemeral, serverPublic);
    const staticShared = x25519SharedSecret(ephemeral, bankPublicKey);
    if (!ephemeralShared || !staticShared) {
      wipe(...[ephemeralShared, staticShared].filter((secret) => secret !== null));
      throw new ProtocolError('ERR_HANDSHAKE', 'bad server key share');
    }
    const transcriptHash = transcript(bankPublicKey, this.clientHello, serverPublic);
    const schedule = keySchedule(ephemeralShared, staticShared, terminalKey, transcriptHash);
    const expected = hmacSha256(schedule.serverFinishedKey, SERVER_FINISHED_LABEL, transcriptHash);
    if (!constantTimeEqual(expected, serverFinished)) {
      wipeSchedule(schedule);
      throw new ProtocolError('ERR_HANDSHAKE', 'server failed to prove the terminal key and static key');
    }
    const clientFinished = hmacSha256(
      schedule.clientFinishedKey,
      CLIENT_FINISHED_LABEL,
      transcriptHash,
      serverFinished,
    );
    wipe(schedule.clientFinishedKey, schedule.serverFinishedKey);
    this.state = 'done';
    return { clientFinished, secrets: { atmId, transcriptHash, channelKeys: schedule.channelKeys } };
  }

  private expect(state: ClientState): void {
    if (this.state !== state) throw new ProtocolError('ERR_PHASE', `handshake is ${this.state}, not ${state}`);
  }
}

/**
 * The bank's terminal key for a claimed ATM number: a fresh buffer the
 * handshake wipes after use, or null when that terminal is revoked.
 */
export type TerminalKeyLookup = (atmId: number) => Buffer | null;

export type ServerHandshakeOptions = {
  /** The bank's static X25519 key pair, whose public half every ATM pins. */
  staticKey: X25519KeyPair;
  terminalKeyFor: TerminalKeyLookup;
  random: RandomSource;
};

/**
 * The bank's two X25519 results for a client's ephemeral key. The bank's own
 * ephemeral key pair lives only inside this call: its scalar must not outlive
 * the one exchange it is for.
 */
function bankKeyShares(
  staticKey: X25519KeyPair,
  clientPublic: Buffer,
  random: RandomSource,
): { serverPublic: Buffer; ephemeralShared: Buffer; staticShared: Buffer } {
  const ephemeral = x25519KeyPair(random);
  const ephemeralShared = x25519SharedSecret(ephemeral, clientPublic);
  const staticShared = x25519SharedSecret(staticKey, clientPublic);
  if (!ephemeralShared || !staticShared) {
    wipe(...[ephemeralShared, staticShared].filter((secret) => secret !== null));
    throw new ProtocolError('ERR_HANDSHAKE', 'bad client key share');
  }
  return { serverPublic: ephemeral.publicKey, ephemeralShared, staticShared };
}

type ServerState = 'awaiting-client-hello' | 'awaiting-client-finished' | 'done' | 'failed';

export class ServerHandshake {
  private state: ServerState = 'awaiting-client-hello';
  private claimed: number | null = null;
  private pending: { atmId: number; schedule: Schedule; transcriptHash: Buffer; serverFinished: Buffer } | null = null;

  constructor(private readonly options: ServerHandshakeOptions) {}

  /**
   * The ATM number the peer announced in its ClientHello. Unproven until the
   * handshake completes: log it as claimed, never as the ATM's.
   */
  get claimedAtmId(): number | null {
    return this.claimed;
  }

  onClientHello(body: Buffer): Buffer {
    this.expect('awaiting-client-hello');
    this.state = 'failed';
    if (body.length !== CLIENT_HELLO_BYTES || body.readUInt8(0) !== HANDSHAKE_VERSION) {
      throw new ProtocolError('ERR_HANDSHAKE', 'malformed client hello');
    }
    const atmId = body.readUInt16BE(1);
    this.claimed = atmId;
    const terminalKey = this.options.terminalKeyFor(atmId);
    if (!terminalKey) throw new ProtocolError('ERR_ATM_REVOKED', `terminal ${atmId} is revoked`);
    try {
      const { staticKey } = this.options;
      const { serverPublic, ephemeralShared, staticShared } = bankKeyShares(
        staticKey,
        body.subarray(3),
        this.options.random,
      );
      const transcriptHash = transcript(staticKey.publicKey, body, serverPublic);
      const schedule = keySchedule(ephemeralShared, staticShared, terminalKey, transcriptHash);
      const serverFinished = hmacSha256(schedule.serverFinishedKey, SERVER_FINISHED_LABEL, transcriptHash);
      wipe(schedule.serverFinishedKey);
      this.pending = { atmId, schedule, transcriptHash, serverFinished };
      this.state = 'awaiting-client-finished';
      return Buffer.concat([serverPublic, serverFinished]);
    } finally {
      wipe(terminalKey);
    }
  }

  onClientFinished(body: Buffer): ChannelSecrets {
    this.expect('awaiting-client-finished');
    this.state = 'failed';
    const pending = this.pending;
    // Whatever happens next, this object keeps no key material.
    this.pending = null;
    if (!pending) throw new ProtocolError('ERR_PHASE', 'no handshake in progress');
    const { schedule, transcriptHash } = pending;
    const expected = hmacSha256(
      schedule.clientFinishedKey,
      CLIENT_FINISHED_LABEL,
      transcriptHash,
      pending.serverFinished,
    );
    wipe(schedule.clientFinishedKey);
    if (body.length !== CLIENT_FINISHED_BYTES || !constantTimeEqual(expected, body)) {
      wipeSchedule(schedule);
      throw new ProtocolError('ERR_HANDSHAKE', 'client failed to prove the terminal key for its number');
    }
    this.state = 'done';
    return { atmId: pending.atmId, transcriptHash, channelKeys: schedule.channelKeys };
  }

  /** Wipes whatever a handshake abandoned half-way (timeout, socket closed) still holds. */
  abandon(): void {
    if (this.pending) wipeSchedule(this.pending.schedule);
    this.pending = null;
    if (this.state !== 'done') this.state = 'failed';
  }

  private expect(state: ServerState): void {
    if (this.state !== state) throw new ProtocolError('ERR_PHASE', `handshake is ${this.state}, not ${state}`);
  }
}
