/**
 * Connection handshake as two pure state machines (no sockets, no timers).
 *
 *   ATM  -> bank  ClientHello    version(1) | atmId(2) | ephemeral X25519 public(32)
 *   bank -> ATM   ServerHello    ephemeral X25519 public(32) | serverFinished(32)
 *   ATM  -> bank  ClientFinished clientFinished(32)
 *
 * Both sides compute prk = HKDF-SHA256(ikm = X25519(eph_a, eph_b), salt = terminal key,
 * info = label | transcript hash). The terminal key is the shared secret from
 * `bank.auth`: only a holder of it can produce the finished MACs, so the bank
 * proves itself in ServerHello and the ATM in ClientFinished. The ephemeral
 * keys give each connection fresh keys and forward secrecy against a later
 * leak of the terminal key. No key material crosses the wire in the clear.
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

export const HANDSHAKE_VERSION = 1;
export const CLIENT_HELLO_BYTES = 1 + 2 + X25519_PUBLIC_BYTES;
export const SERVER_HELLO_BYTES = X25519_PUBLIC_BYTES + MAC_BYTES;
export const CLIENT_FINISHED_BYTES = MAC_BYTES;
export const MAX_ATM_ID = 0xffff;

const TRANSCRIPT_LABEL = Buffer.from('atm-bank/v1 handshake transcript');
const KEY_SCHEDULE_LABEL = Buffer.from('atm-bank/v1 handshake keys');
const SERVER_FINISHED_LABEL = Buffer.from('atm-bank/v1 server finished');
const CLIENT_FINISHED_LABEL = Buffer.from('atm-bank/v1 client finished');

/** What a completed handshake gives both sides. */
export type ChannelSecrets = {
  atmId: number;
  /** Hash of the whole handshake; binds customer sessions to this connection. */
  transcriptHash: Buffer;
  /** Secret from which the connection's own record keys are derived. */
  channelSecret: Buffer;
};

type Schedule = { serverFinishedKey: Buffer; clientFinishedKey: Buffer; channelSecret: Buffer; transcriptHash: Buffer };

function keySchedule(shared: Buffer, terminalKey: Buffer, clientHello: Buffer, serverPublic: Buffer): Schedule {
  const transcriptHash = sha256(TRANSCRIPT_LABEL, clientHello, serverPublic);
  const okm = hkdfSha256(shared, terminalKey, Buffer.concat([KEY_SCHEDULE_LABEL, transcriptHash]), 3 * KEY_BYTES);
  const schedule = {
    serverFinishedKey: Buffer.from(okm.subarray(0, KEY_BYTES)),
    clientFinishedKey: Buffer.from(okm.subarray(KEY_BYTES, 2 * KEY_BYTES)),
    channelSecret: Buffer.from(okm.subarray(2 * KEY_BYTES)),
    transcriptHash,
  };
  wipe(okm, shared);
  return schedule;
}

function checkTerminalKey(terminalKey: Buffer): void {
  if (terminalKey.length !== KEY_BYTES) throw new ProtocolError('ERR_HANDSHAKE', 'terminal key must be 32 bytes');
}

type ClientState = 'initial' | 'awaiting-server-hello' | 'done' | 'failed';

export class ClientHandshake {
  private state: ClientState = 'initial';
  private readonly ephemeral: X25519KeyPair;
  private clientHello: Buffer | null = null;

  constructor(
    private readonly terminalKey: Buffer,
    private readonly atmId: number,
    random: RandomSource,
  ) {
    checkTerminalKey(terminalKey);
    if (!Number.isInteger(atmId) || atmId < 0 || atmId > MAX_ATM_ID) {
      throw new ProtocolError('ERR_HANDSHAKE', 'ATM id must be an integer from 0 to 65535');
    }
    this.ephemeral = x25519KeyPair(random);
  }

  start(): Buffer {
    this.expect('initial');
    const hello = Buffer.alloc(CLIENT_HELLO_BYTES);
    hello.writeUInt8(HANDSHAKE_VERSION, 0);
    hello.writeUInt16BE(this.atmId, 1);
    this.ephemeral.publicKey.copy(hello, 3);
    this.clientHello = hello;
    this.state = 'awaiting-server-hello';
    return hello;
  }

  /** Verifies the bank's proof and returns the ClientFinished body and the secrets. */
  onServerHello(body: Buffer): { clientFinished: Buffer; secrets: ChannelSecrets } {
    this.expect('awaiting-server-hello');
    this.state = 'failed';
    if (body.length !== SERVER_HELLO_BYTES || !this.clientHello) {
      throw new ProtocolError('ERR_HANDSHAKE', 'malformed server hello');
    }
    const serverPublic = body.subarray(0, X25519_PUBLIC_BYTES);
    const serverFinished = body.subarray(X25519_PUBLIC_BYTES);
    const shared = x25519SharedSecret(this.ephemeral, serverPublic);
    if (!shared) throw new ProtocolError('ERR_HANDSHAKE', 'bad server key share');
    const schedule = keySchedule(shared, this.terminalKey, this.clientHello, serverPublic);
    const expected = hmacSha256(schedule.serverFinishedKey, SERVER_FINISHED_LABEL, schedule.transcriptHash);
    if (!constantTimeEqual(expected, serverFinished)) {
      wipe(schedule.channelSecret, schedule.clientFinishedKey, schedule.serverFinishedKey);
      throw new ProtocolError('ERR_HANDSHAKE', 'server failed to prove the terminal key');
    }
    const clientFinished = hmacSha256(
      schedule.clientFinishedKey,
      CLIENT_FINISHED_LABEL,
      schedule.transcriptHash,
      serverFinished,
    );
    wipe(schedule.clientFinishedKey, schedule.serverFinishedKey);
    this.state = 'done';
    return {
      clientFinished,
      secrets: { atmId: this.atmId, transcriptHash: schedule.transcriptHash, channelSecret: schedule.channelSecret },
    };
  }

  private expect(state: ClientState): void {
    if (this.state !== state) throw new ProtocolError('ERR_PHASE', `handshake is ${this.state}, not ${state}`);
  }
}

type ServerState = 'awaiting-client-hello' | 'awaiting-client-finished' | 'done' | 'failed';

export class ServerHandshake {
  private state: ServerState = 'awaiting-client-hello';
  private pending: { atmId: number; schedule: Schedule; serverFinished: Buffer } | null = null;

  constructor(
    private readonly terminalKey: Buffer,
    private readonly random: RandomSource,
  ) {
    checkTerminalKey(terminalKey);
  }

  /** The ATM id the client announced; known after ClientHello. */
  get atmId(): number | null {
    return this.pending?.atmId ?? null;
  }

  onClientHello(body: Buffer): Buffer {
    this.expect('awaiting-client-hello');
    this.state = 'failed';
    if (body.length !== CLIENT_HELLO_BYTES || body.readUInt8(0) !== HANDSHAKE_VERSION) {
      throw new ProtocolError('ERR_HANDSHAKE', 'malformed client hello');
    }
    const atmId = body.readUInt16BE(1);
    const ephemeral = x25519KeyPair(this.random);
    const shared = x25519SharedSecret(ephemeral, body.subarray(3));
    if (!shared) throw new ProtocolError('ERR_HANDSHAKE', 'bad client key share');
    const schedule = keySchedule(shared, this.terminalKey, body, ephemeral.publicKey);
    const serverFinished = hmacSha256(schedule.serverFinishedKey, SERVER_FINISHED_LABEL, schedule.transcriptHash);
    wipe(schedule.serverFinishedKey);
    this.pending = { atmId, schedule, serverFinished };
    this.state = 'awaiting-client-finished';
    return Buffer.concat([ephemeral.publicKey, serverFinished]);
  }

  onClientFinished(body: Buffer): ChannelSecrets {
    this.expect('awaiting-client-finished');
    this.state = 'failed';
    const pending = this.pending;
    if (!pending) throw new ProtocolError('ERR_PHASE', 'no handshake in progress');
    const { schedule } = pending;
    const expected = hmacSha256(
      schedule.clientFinishedKey,
      CLIENT_FINISHED_LABEL,
      schedule.transcriptHash,
      pending.serverFinished,
    );
    wipe(schedule.clientFinishedKey);
    if (body.length !== CLIENT_FINISHED_BYTES || !constantTimeEqual(expected, body)) {
      wipe(schedule.channelSecret);
      throw new ProtocolError('ERR_HANDSHAKE', 'client failed to prove the terminal key');
    }
    this.state = 'done';
    return { atmId: pending.atmId, transcriptHash: schedule.transcriptHash, channelSecret: schedule.channelSecret };
  }

  private expect(state: ServerState): void {
    if (this.state !== state) throw new ProtocolError('ERR_PHASE', `handshake is ${this.state}, not ${state}`);
  }
}
