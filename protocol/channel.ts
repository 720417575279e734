/**
 * An established secure connection, the same for both roles (as ws has one
 * WebSocket class for client and server): the read loop over frames, the
 * table of record sessions (the connection's own and one per logged-in
 * customer), key installation, corked writes, and alert-then-close. The ATM
 * side (`client.ts`) adds typed calls on top; the bank side
 * (`server/connection.ts`) adds dispatch.
 *
 * Anything wrong in what the peer sends ends the whole connection: a generic
 * Alert to the peer, the real code to `onClose`. Nothing the peer sends can
 * throw out of here.
 */
import type net from 'node:net';

import { wipe, type RandomSource } from './crypto.ts';
import { GENERIC_PROTOCOL_FAILURE, ProtocolError } from './errors.ts';
import { encodeFrame, FrameType, type Frame } from './frame.ts';
import type { FrameReader, ReadResult } from './frame-reader.ts';
import type { ChannelSecrets } from './handshake.ts';
import {
  CHANNEL_SESSION_ID,
  ContentType,
  Direction,
  RecordSession,
  deriveSessionKeys,
  peekSessionId,
  wipeDirectionalKeys,
  type DirectionalKeys,
} from './record.ts';

/** A session on the channel: null is the connection's own, else a customer session's id in hex. */
export type SessionId = string | null;

/** Which way this end sends, and what it expects to receive. */
export type ChannelRole = 'atm' | 'bank';

const ROLES = {
  atm: { sends: Direction.AtmToBank, receives: ContentType.Response, sealsAs: ContentType.Request },
  bank: { sends: Direction.BankToAtm, receives: ContentType.Request, sealsAs: ContentType.Response },
} as const;

/** How long a peer that never reads may keep a connection after its alert. */
const ALERT_LINGER_MS = 1_000;

export type ChannelOptions<In> = {
  role: ChannelRole;
  /** The handshake's result: its channel keys are installed and wiped at once. */
  secrets: ChannelSecrets;
  /** IVs only (`pooledIvRandom` in production); keys never come from here. */
  ivRandom: RandomSource;
  /** The reader the handshake used, and what it had read behind the handshake. */
  reader: FrameReader;
  rest?: ReadResult;
  /** Validates a decrypted message; null ends the connection with ERR_BAD_MESSAGE. */
  decode: (plaintext: Buffer) => In | null;
  /** One authenticated message. A ProtocolError thrown here ends the connection with its code. */
  onMessage: (session: SessionId, message: In) => void;
  /**
   * ATM role only: a notice the bank sent unasked on the connection's own
   * session (an audit checkpoint), still to be validated; the buffer is wiped
   * after the call. Without it, a notice ends the connection.
   */
  onNotice?: (plaintext: Buffer) => void;
  /**
   * Called once when the connection ends: ERR_CONNECTION_CLOSED for a quiet
   * end (socket closed, or `close()` without a failure), ERR_PEER_ALERT when
   * the peer sent an alert, else the failure this end found.
   */
  onClose: (reason: ProtocolError) => void;
};

export class SecureChannel<In> {
  private readonly role: (typeof ROLES)[ChannelRole];
  private readonly own: RecordSession;
  private readonly sessions = new Map<string, RecordSession>();
  private closedWith: ProtocolError | null = null;
  /**
   * All this connection keeps of its handshake: nothing from which the keys
   * of an earlier message could be rebuilt (a memory dump at message n must
   * not open message 0).
   */
  private readonly binding: { atmId: number; transcriptHash: Buffer };
  private readonly options: Omit<ChannelOptions<In>, 'secrets'>;

  constructor(
    private readonly socket: net.Socket,
    { secrets, ...options }: ChannelOptions<In>,
  ) {
    this.options = options;
    this.role = ROLES[options.role];
    this.binding = { atmId: secrets.atmId, transcriptHash: secrets.transcriptHash };
    this.own = this.installKeys(CHANNEL_SESSION_ID, secrets.channelKeys);
    socket.on('data', (chunk: Buffer) => this.onRead(options.reader.push(chunk)));
    socket.on('error', (error) => this.close(new ProtocolError('ERR_CONNECTION_CLOSED', error.message)));
    socket.on('close', () => this.close(new ProtocolError('ERR_CONNECTION_CLOSED', 'connection closed')));
    // Reading starts once the owner holds this object, since its handlers use it.
    process.nextTick(() => {
      if (options.rest) this.onRead(options.rest);
      if (!this.closedWith) socket.resume();
    });
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  get atmId(): number {
    return this.binding.atmId;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  hasSession(id: string): boolean {
    return this.sessions.has(id);
  }

  /**
   * Installs a customer session: both sides derive its keys from the fresh
   * master secret the bank drew, bound to this connection (the handshake's
   * transcript hash) and to the session id.
   */
  openSession(sessionId: Buffer, masterSecret: Buffer): string {
    const id = sessionId.toString('hex');
    if (sessionId.equals(CHANNEL_SESSION_ID) || this.sessions.has(id)) {
      throw new ProtocolError('ERR_UNKNOWN_SESSION', 'session id already in use');
    }
    if (this.closed) throw new ProtocolError('ERR_CONNECTION_CLOSED', 'connection closed');
    this.sessions.set(
      id,
      this.installKeys(sessionId, deriveSessionKeys(masterSecret, this.binding.transcriptHash, sessionId)),
    );
    return id;
  }

  /** Forgets a customer session and wipes its keys. */
  endSession(id: string): void {
    this.sessions.get(id)?.destroy();
    this.sessions.delete(id);
  }

  /**
   * Seals a message on a session and writes it. Throws (writing nothing) if
   * the connection is closed, the session unknown, or its sequence exhausted.
   */
  send(session: SessionId, plaintext: Buffer): void {
    if (this.closedWith) throw new ProtocolError('ERR_CONNECTION_CLOSED', this.closedWith.message);
    const records = this.records(session);
    if (!records) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'no such session on this connection');
    const record = records.seal(this.role.sealsAs, plaintext);
    // Many answers (a group commit's) or requests (a tick's) leave in one system call.
    if (this.socket.writableCorked === 0) {
      this.socket.cork();
      process.nextTick(() => this.socket.uncork());
    }
    this.socket.write(encodeFrame(FrameType.Record, record));
  }

  /**
   * Bank role only: seals a notice (something the ATM did not ask for, such
   * as an audit checkpoint) on the connection's own session and writes it.
   * Throws, writing nothing, if the connection is closed.
   */
  sendNotice(plaintext: Buffer): void {
    if (this.options.role !== 'bank') throw new Error('only the bank sends notices');
    if (this.closedWith) throw new ProtocolError('ERR_CONNECTION_CLOSED', this.closedWith.message);
    const record = this.own.seal(ContentType.Notice, plaintext);
    if (this.socket.writableCorked === 0) {
      this.socket.cork();
      process.nextTick(() => this.socket.uncork());
    }
    this.socket.write(encodeFrame(FrameType.Record, record));
  }

  /**
   * Ends the connection once. A failure (any code but ERR_CONNECTION_CLOSED
   * and ERR_PEER_ALERT) first tells the peer, without detail, that this end
   * found one, so it is audited there too.
   */
  close(reason = new ProtocolError('ERR_CONNECTION_CLOSED', 'closed by this end')): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (isFailure(reason)) endWithAlert(this.socket);
    else this.socket.destroy();
    this.own.destroy();
    for (const records of this.sessions.values()) records.destroy();
    this.sessions.clear();
    this.options.onClose(reason);
  }

  /** A record session over `keys`, which are wiped here once it has copied them. */
  private installKeys(sessionId: Buffer, keys: DirectionalKeys): RecordSession {
    try {
      return new RecordSession(sessionId, keys, this.role.sends, this.options.ivRandom);
    } finally {
      wipeDirectionalKeys(keys);
    }
  }

  private records(session: SessionId): RecordSession | undefined {
    return session === null ? this.own : this.sessions.get(session);
  }

  private onRead({ frames, error }: ReadResult): void {
    for (const frame of frames) {
      // A frame handled earlier in this loop may have ended the connection.
      if (this.closedWith) return;
      try {
        this.onFrame(frame);
      } catch (caught) {
        this.close(caught instanceof ProtocolError ? caught : new ProtocolError('ERR_BAD_MESSAGE'));
        return;
      }
    }
    if (error) this.close(error);
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.Alert) {
      // Alerts are unauthenticated: a note that the peer gave up, nothing more.
      throw new ProtocolError('ERR_PEER_ALERT', 'the peer ended the connection with an alert');
    }
    if (frame.type !== FrameType.Record) throw new ProtocolError('ERR_PHASE', 'frame not allowed in this phase');
    const sessionId = peekSessionId(frame.body);
    if (!sessionId) throw new ProtocolError('ERR_TRUNCATED', 'record too short');
    const session = sessionId.equals(CHANNEL_SESSION_ID) ? null : sessionId.toString('hex');
    const records = this.records(session);
    if (!records) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'no such session on this connection');
    const opened = records.open(frame.body);
    const onNotice = this.options.onNotice;
    if (opened.contentType === ContentType.Notice && session === null && this.options.role === 'atm' && onNotice) {
      try {
        onNotice(opened.plaintext);
      } finally {
        wipe(opened.plaintext);
      }
      return;
    }
    if (opened.contentType !== this.role.receives) throw new ProtocolError('ERR_BAD_MESSAGE', 'wrong content type');
    const message = this.options.decode(opened.plaintext);
    wipe(opened.plaintext);
    if (message === null) throw new ProtocolError('ERR_BAD_MESSAGE', 'message does not match the schema');
    this.options.onMessage(session, message);
  }
}

/**
 * Tells the peer, without detail, that this end found a failure, and closes.
 * Also for a failed handshake, before there is a channel.
 */
export function endWithAlert(socket: net.Socket): void {
  if (socket.destroyed) return;
  // The socket is being given up: a peer that already hung up answers the
  // alert with a reset, and an 'error' nobody listens for would end the process.
  socket.on('error', () => socket.destroy());
  socket.end(encodeFrame(FrameType.Alert, Buffer.from(GENERIC_PROTOCOL_FAILURE)));
  // Do not wait for a peer that never reads.
  setTimeout(() => socket.destroy(), ALERT_LINGER_MS).unref();
}

function isFailure(reason: ProtocolError): boolean {
  return reason.code !== 'ERR_CONNECTION_CLOSED' && reason.code !== 'ERR_PEER_ALERT';
}
