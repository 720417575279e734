/**
 * The ATM side of the protocol over a real socket: connect and handshake,
 * then pipelined requests on the connection's own session (signup, login,
 * ping) and on customer sessions. Responses are verified exactly as the bank
 * verifies requests; any failure ends the connection and rejects everything
 * pending with ERR_CONNECTION_CLOSED.
 */
import net from 'node:net';

import { KEY_BYTES, secureRandom, wipe, type RandomSource } from './crypto.ts';
import { BankError, GENERIC_PROTOCOL_FAILURE, ProtocolError } from './errors.ts';
import { DEFAULT_MAX_FRAME_BODY, encodeFrame, FrameType, type Frame } from './frame.ts';
import { FrameReader } from './frame-reader.ts';
import { ClientHandshake, type ChannelSecrets } from './handshake.ts';
import {
  ResponseSchema,
  decodeMessage,
  encodeMessage,
  type MoneyResult,
  type RequestBody,
  type Response,
  type ResponseResult,
  type StatementEntry,
} from './messages.ts';
import {
  CHANNEL_SESSION_ID,
  ContentType,
  Direction,
  RecordSession,
  deriveSessionKeys,
  peekSessionId,
} from './record.ts';

export type BankClientOptions = {
  host: string;
  port: number;
  terminalKey: Buffer;
  atmId: number;
  random?: RandomSource;
  /** Deadline for connect plus handshake. */
  handshakeTimeoutMs?: number;
  /** Deadline for each answer; bcrypt at cost 12 takes a few hundred ms. */
  requestTimeoutMs?: number;
  maxFrameBody?: number;
};

/** A logged-in customer's session. Its keys stay inside this module. */
export class CustomerSession {
  constructor(
    readonly username: string,
    readonly id: string,
  ) {}
}

type Pending = {
  records: RecordSession;
  resolve: (response: Response) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
};

type Op = ResponseResult['op'];
type ResultOf<O extends Op> = Extract<ResponseResult, { op: O }>;

export class BankClient {
  private readonly reader: FrameReader;
  private readonly pending = new Map<number, Pending>();
  private readonly sessions = new WeakMap<CustomerSession, RecordSession>();
  private readonly liveSessions = new Map<string, RecordSession>();
  private readonly closeListeners: Array<(reason: ProtocolError) => void> = [];
  private nextId = 1;
  private closedWith: ProtocolError | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly channel: RecordSession,
    private readonly secrets: ChannelSecrets,
    private readonly random: RandomSource,
    private readonly requestTimeoutMs: number,
    reader: FrameReader,
  ) {
    this.reader = reader;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close(new ProtocolError('ERR_CONNECTION_CLOSED', 'socket error')));
    socket.on('close', () => this.close(new ProtocolError('ERR_CONNECTION_CLOSED', 'connection closed')));
    socket.resume();
  }

  static async connect(options: BankClientOptions): Promise<BankClient> {
    const random = options.random ?? secureRandom;
    const reader = new FrameReader(options.maxFrameBody ?? DEFAULT_MAX_FRAME_BODY);
    const handshake = new ClientHandshake(options.terminalKey, options.atmId, random);
    const socket = net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    const secrets = await new Promise<ChannelSecrets>((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new ProtocolError('ERR_HANDSHAKE_TIMEOUT', 'bank did not complete the handshake')),
        options.handshakeTimeoutMs ?? 5_000,
      );
      socket.once('error', (error) => fail(new ProtocolError('ERR_CONNECTION_CLOSED', error.message)));
      socket.once('close', () => fail(new ProtocolError('ERR_CONNECTION_CLOSED', 'bank closed the connection')));
      socket.once('connect', () => socket.write(encodeFrame(FrameType.ClientHello, handshake.start())));
      const onData = (chunk: Buffer): void => {
        const { frames, error } = reader.push(chunk);
        if (error) return fail(error);
        const frame = frames[0];
        if (!frame) return;
        socket.off('data', onData);
        // Hold further bytes until the client object is listening.
        socket.pause();
        if (frame.type !== FrameType.ServerHello || frames.length > 1) {
          return fail(new ProtocolError('ERR_HANDSHAKE', 'unexpected frame during handshake'));
        }
        try {
          const { clientFinished, secrets: result } = handshake.onServerHello(frame.body);
          socket.write(encodeFrame(FrameType.ClientFinished, clientFinished));
          clearTimeout(timer);
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          resolve(result);
        } catch (error) {
          fail(error instanceof Error ? error : new ProtocolError('ERR_HANDSHAKE'));
        }
      };
      socket.on('data', onData);
    });
    const keys = deriveSessionKeys(secrets.channelSecret, secrets.transcriptHash, CHANNEL_SESSION_ID);
    const channel = new RecordSession(CHANNEL_SESSION_ID, keys, Direction.AtmToBank, random);
    wipe(keys.encKey, keys.macKey);
    return new BankClient(socket, channel, secrets, random, options.requestTimeoutMs ?? 30_000, reader);
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Called once when the connection ends, for whatever reason. */
  onClose(listener: (reason: ProtocolError) => void): void {
    if (this.closedWith) listener(this.closedWith);
    else this.closeListeners.push(listener);
  }

  async signup(username: string, password: string): Promise<ResultOf<'signup'>> {
    return this.expect('signup', await this.request(this.channel, { op: 'signup', username, password }));
  }

  async login(username: string, password: string): Promise<CustomerSession> {
    const result = this.expect('login', await this.request(this.channel, { op: 'login', username, password }));
    const sessionId = Buffer.from(result.sessionId, 'hex');
    const masterSecret = Buffer.from(result.masterSecret, 'base64');
    if (masterSecret.length !== KEY_BYTES) throw new ProtocolError('ERR_BAD_MESSAGE', 'bad master secret');
    const keys = deriveSessionKeys(masterSecret, this.secrets.transcriptHash, sessionId);
    wipe(masterSecret);
    const records = new RecordSession(sessionId, keys, Direction.AtmToBank, this.random);
    wipe(keys.encKey, keys.macKey);
    const session = new CustomerSession(result.username, result.sessionId);
    this.sessions.set(session, records);
    this.liveSessions.set(result.sessionId, records);
    return session;
  }

  async ping(): Promise<void> {
    this.expect('ping', await this.request(this.channel, { op: 'ping' }));
  }

  async deposit(session: CustomerSession, txId: string, amountCents: number): Promise<MoneyResult> {
    return this.expect('deposit', await this.request(this.records(session), { op: 'deposit', txId, amountCents }));
  }

  async withdraw(session: CustomerSession, txId: string, amountCents: number): Promise<MoneyResult> {
    return this.expect('withdraw', await this.request(this.records(session), { op: 'withdraw', txId, amountCents }));
  }

  async balance(session: CustomerSession): Promise<number> {
    return this.expect('balance', await this.request(this.records(session), { op: 'balance' })).balanceCents;
  }

  async statement(session: CustomerSession): Promise<{ balanceCents: number; entries: StatementEntry[] }> {
    const { balanceCents, entries } = this.expect(
      'statement',
      await this.request(this.records(session), { op: 'statement' }),
    );
    return { balanceCents, entries };
  }

  async logout(session: CustomerSession): Promise<void> {
    const records = this.records(session);
    try {
      this.expect('logout', await this.request(records, { op: 'logout' }));
    } finally {
      this.sessions.delete(session);
      this.liveSessions.delete(session.id);
      records.destroy();
    }
  }

  /** True while this connection still holds the session's keys. */
  hasSession(session: CustomerSession): boolean {
    return !this.closed && this.sessions.has(session);
  }

  close(reason = new ProtocolError('ERR_CONNECTION_CLOSED', 'closed by the ATM')): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (reason.code !== 'ERR_CONNECTION_CLOSED' && !this.socket.destroyed) {
      // Tell the bank, without detail, that this end found a failure, so it is audited there too.
      this.socket.end(encodeFrame(FrameType.Alert, Buffer.from(GENERIC_PROTOCOL_FAILURE)));
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    } else {
      this.socket.destroy();
    }
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ProtocolError('ERR_CONNECTION_CLOSED', reason.message));
      this.pending.delete(id);
    }
    this.channel.destroy();
    for (const records of this.liveSessions.values()) records.destroy();
    this.liveSessions.clear();
    wipe(this.secrets.channelSecret);
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  private records(session: CustomerSession): RecordSession {
    const records = this.sessions.get(session);
    if (!records || this.closed) throw new BankError('ERR_NOT_LOGGED_IN', 'This session has ended. Log in again.');
    return records;
  }

  private expect<O extends Op>(op: O, response: Response): ResultOf<O> {
    if (!response.ok) throw new BankError(response.code, response.message);
    if (response.result.op !== op) {
      const error = new ProtocolError('ERR_BAD_MESSAGE', 'answer does not match the request');
      this.close(error);
      throw error;
    }
    return response.result as ResultOf<O>;
  }

  private request(records: RecordSession, body: RequestBody): Promise<Response> {
    if (this.closedWith) return Promise.reject(new ProtocolError('ERR_CONNECTION_CLOSED', this.closedWith.message));
    const id = this.nextId;
    this.nextId = this.nextId >= 0x7fff_ffff ? 1 : this.nextId + 1;
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        // An unanswered request leaves the sequence state unknowable; start over.
        this.close(new ProtocolError('ERR_TIMEOUT', 'bank did not answer in time'));
      }, this.requestTimeoutMs);
      this.pending.set(id, { records, resolve, reject, timer });
      try {
        const record = records.seal(ContentType.Request, encodeMessage({ ...body, id }));
        // Requests made in the same tick leave in one system call.
        if (this.socket.writableCorked === 0) {
          this.socket.cork();
          process.nextTick(() => this.socket.uncork());
        }
        this.socket.write(encodeFrame(FrameType.Record, record));
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error instanceof Error ? error : new ProtocolError('ERR_BAD_MESSAGE'));
      }
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith) return;
    const { frames, error } = this.reader.push(chunk);
    for (const frame of frames) {
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
    if (frame.type === FrameType.Alert) throw new ProtocolError('ERR_CONNECTION_CLOSED', 'bank ended the connection');
    if (frame.type !== FrameType.Record) throw new ProtocolError('ERR_PHASE', 'unexpected frame');
    const sessionId = peekSessionId(frame.body);
    if (!sessionId) throw new ProtocolError('ERR_TRUNCATED', 'record too short');
    const records = sessionId.equals(CHANNEL_SESSION_ID)
      ? this.channel
      : this.liveSessions.get(sessionId.toString('hex'));
    if (!records) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'answer for an unknown session');
    const opened = records.open(frame.body);
    if (opened.contentType !== ContentType.Response) throw new ProtocolError('ERR_BAD_MESSAGE', 'expected a response');
    const response = decodeMessage(ResponseSchema, opened.plaintext);
    wipe(opened.plaintext);
    if (!response) throw new ProtocolError('ERR_BAD_MESSAGE', 'response does not match the schema');
    const pending = this.pending.get(response.id);
    // An answer must come back on the session its request went out on.
    if (!pending || pending.records !== records) throw new ProtocolError('ERR_BAD_MESSAGE', 'answer to no request');
    this.pending.delete(response.id);
    clearTimeout(pending.timer);
    pending.resolve(response);
  }
}
