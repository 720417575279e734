/**
 * One ATM's TCP connection to the bank: frames in, handshake, then sealed
 * requests for the connection's own session (signup, login) and for each
 * customer session opened by a login on it. Any protocol failure ends the
 * whole connection with a generic alert and an audit line; nothing a peer
 * sends can throw out of here.
 */
import type net from 'node:net';
import type { RecordableHistogram } from 'node:perf_hooks';

import { KEY_BYTES, wipe, type RandomSource } from '../protocol/crypto.ts';
import { BankError, GENERIC_PROTOCOL_FAILURE, ProtocolError, type ProtocolErrorCode } from '../protocol/errors.ts';
import { encodeFrame, FrameType, type Frame } from '../protocol/frame.ts';
import { FrameReader } from '../protocol/frame-reader.ts';
import { ServerHandshake, type ChannelSecrets } from '../protocol/handshake.ts';
import {
  CHANNEL_OPS,
  RequestSchema,
  decodeMessage,
  encodeMessage,
  type Request,
  type Response,
  type ResponseResult,
} from '../protocol/messages.ts';
import {
  CHANNEL_SESSION_ID,
  ContentType,
  Direction,
  RecordSession,
  SESSION_ID_BYTES,
  deriveSessionKeys,
  peekSessionId,
} from '../protocol/record.ts';
import type { Actor, Bank } from './bank.ts';
import type { Logger } from '../runtime/logger.ts';

export type ConnectionLimits = {
  maxFrameBody: number;
  handshakeTimeoutMs: number;
  /** An open connection with no traffic for this long is closed (ATMs send pings). */
  idleTimeoutMs: number;
  maxSessionsPerConnection: number;
};

export type ConnectionDeps = {
  bank: Bank;
  terminalKey: Buffer;
  random: RandomSource;
  limits: ConnectionLimits;
  logger: Logger;
  /** Time from a request's arrival to its answer being written, in nanoseconds. */
  serviceTimes: RecordableHistogram;
};

type CustomerSession = { records: RecordSession; accountId: number; username: string };

type State = 'handshake' | 'open' | 'closed';

export class BankConnection {
  readonly peer: string;
  private state: State = 'handshake';
  private readonly reader: FrameReader;
  private readonly handshake: ServerHandshake;
  private secrets: ChannelSecrets | null = null;
  private channel: RecordSession | null = null;
  private readonly sessions = new Map<string, CustomerSession>();
  private handshakeTimer: NodeJS.Timeout | null;
  private inFlight = 0;
  private draining = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.reader = new FrameReader(deps.limits.maxFrameBody);
    this.handshake = new ServerHandshake(deps.terminalKey, deps.random);
    this.handshakeTimer = setTimeout(() => this.fail('ERR_HANDSHAKE_TIMEOUT'), deps.limits.handshakeTimeoutMs);
    socket.setNoDelay(true);
    socket.setTimeout(deps.limits.idleTimeoutMs, () => this.closeQuietly('idle timeout'));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.closeQuietly('socket error'));
    socket.on('close', () => this.teardown());
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  get isHandshaking(): boolean {
    return this.state === 'handshake';
  }

  private get atmId(): number | null {
    return this.secrets?.atmId ?? this.handshake.atmId;
  }

  /** Stops taking new requests, lets in-flight ones answer, then closes. */
  async drain(): Promise<void> {
    this.draining = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.closeQuietly('bank shutting down');
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const { frames, error } = this.reader.push(chunk);
    for (const frame of frames) {
      // A frame handled earlier in this loop may have ended the connection.
      if (this.isClosed()) return;
      try {
        this.onFrame(frame);
      } catch (caught) {
        this.fail(caught instanceof ProtocolError ? caught.code : 'ERR_BAD_MESSAGE');
        return;
      }
    }
    if (error) this.fail(error.code);
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.ClientHello && this.state === 'handshake') {
      this.write(FrameType.ServerHello, this.handshake.onClientHello(frame.body));
      return;
    }
    if (frame.type === FrameType.ClientFinished && this.state === 'handshake') {
      this.completeHandshake(this.handshake.onClientFinished(frame.body));
      return;
    }
    if (frame.type === FrameType.Record && this.state === 'open') {
      this.onRecord(frame.body);
      return;
    }
    if (frame.type === FrameType.Alert) {
      // The ATM found a failure on its side (a tampered answer, say). Alerts are
      // unauthenticated, so this is a note for the auditor, nothing more.
      this.recordFailure('ERR_PEER_ALERT');
      this.closeQuietly('peer sent alert');
      return;
    }
    throw new ProtocolError('ERR_PHASE', 'frame not allowed in this phase');
  }

  private completeHandshake(secrets: ChannelSecrets): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.secrets = secrets;
    const keys = deriveSessionKeys(secrets.channelSecret, secrets.transcriptHash, CHANNEL_SESSION_ID);
    this.channel = new RecordSession(CHANNEL_SESSION_ID, keys, Direction.BankToAtm, this.deps.random);
    wipe(keys.encKey, keys.macKey);
    this.state = 'open';
    this.deps.logger.info({ peer: this.peer, atm: secrets.atmId, action: 'connect', outcome: 'ok' }, 'ATM connected');
  }

  private onRecord(record: Buffer): void {
    const sessionId = peekSessionId(record);
    if (!sessionId) throw new ProtocolError('ERR_TRUNCATED', 'record too short');
    const customer = sessionId.equals(CHANNEL_SESSION_ID) ? null : this.sessions.get(sessionId.toString('hex'));
    if (customer === undefined) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'no such session on this connection');
    const records = customer ? customer.records : this.channel;
    if (!records) throw new ProtocolError('ERR_PHASE', 'no channel');
    const opened = records.open(record);
    if (opened.contentType !== ContentType.Request) throw new ProtocolError('ERR_BAD_MESSAGE', 'expected a request');
    const request = decodeMessage(RequestSchema, opened.plaintext);
    wipe(opened.plaintext);
    if (!request) throw new ProtocolError('ERR_BAD_MESSAGE', 'request does not match the schema');
    if (this.draining) {
      this.send(records, { id: request.id, ok: false, code: 'ERR_UNAVAILABLE', message: 'The bank is shutting down.' });
      return;
    }
    this.inFlight += 1;
    const arrived = process.hrtime.bigint();
    void this.answer(customer, request)
      .then((response) => {
        this.send(records, response);
        this.deps.serviceTimes.record(Math.max(1, Number(process.hrtime.bigint() - arrived)));
      })
      .finally(() => this.requestDone());
  }

  private requestDone(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async answer(customer: CustomerSession | null, request: Request): Promise<Response> {
    const actor: Actor = {
      atmId: this.atmId,
      username: customer?.username ?? null,
      accountId: customer?.accountId ?? null,
    };
    try {
      const result = await this.perform(customer, actor, request);
      this.deps.logger.info(
        { peer: this.peer, atm: actor.atmId, user: actor.username ?? undefined, action: request.op, outcome: 'ok' },
        describeResult(result),
      );
      return { id: request.id, ok: true, result };
    } catch (error) {
      const bankError =
        error instanceof BankError ? error : new BankError('ERR_INTERNAL', 'The bank could not complete the request.');
      if (!(error instanceof BankError)) {
        this.deps.logger.error(
          { peer: this.peer, atm: actor.atmId, action: request.op, err: String(error) },
          'internal error',
        );
      }
      this.deps.logger.info(
        {
          peer: this.peer,
          atm: actor.atmId,
          user: actor.username ?? undefined,
          action: request.op,
          outcome: bankError.code,
        },
        'refused',
      );
      return { id: request.id, ok: false, code: bankError.code, message: bankError.message };
    }
  }

  private async perform(customer: CustomerSession | null, actor: Actor, request: Request): Promise<ResponseResult> {
    const onChannel = customer === null;
    if (onChannel !== CHANNEL_OPS.has(request.op)) {
      this.deps.bank.record(actor, 'protocol_error', 'ERR_PHASE', `${request.op} on the wrong session`);
      throw onChannel
        ? new BankError('ERR_NOT_LOGGED_IN', 'Log in first.')
        : new BankError('ERR_BAD_REQUEST', 'Not allowed in a customer session.');
    }
    const bank = this.deps.bank;
    switch (request.op) {
      case 'ping':
        return { op: 'ping' };
      case 'signup':
        return { op: 'signup', ...(await bank.signup(actor, request.username, request.password)) };
      case 'login':
        return this.login(actor, request.username, request.password);
      case 'deposit':
      case 'withdraw':
        return bank.move(actor, request.op, request.txId, request.amountCents);
      case 'balance':
        return { op: 'balance', balanceCents: await bank.balance(actor) };
      case 'statement':
        return { op: 'statement', ...(await bank.statement(actor)) };
      case 'logout':
        await bank.logout(actor);
        this.endSession(customer);
        return { op: 'logout' };
    }
  }

  private async login(actor: Actor, username: string, password: string): Promise<ResponseResult> {
    if (this.sessions.size >= this.deps.limits.maxSessionsPerConnection) {
      throw new BankError('ERR_UNAVAILABLE', 'This ATM has too many customers logged in. Try again shortly.');
    }
    const account = await this.deps.bank.login(actor, username, password);
    const secrets = this.secrets;
    if (!secrets || this.state !== 'open') throw new BankError('ERR_UNAVAILABLE', 'Connection closed.');
    let sessionId = this.deps.random(SESSION_ID_BYTES);
    while (sessionId.equals(CHANNEL_SESSION_ID) || this.sessions.has(sessionId.toString('hex'))) {
      sessionId = this.deps.random(SESSION_ID_BYTES);
    }
    // A fresh random master secret per customer session; both sides derive
    // the encryption and MAC keys from it, bound to this connection and id.
    const masterSecret = this.deps.random(KEY_BYTES);
    const keys = deriveSessionKeys(masterSecret, secrets.transcriptHash, sessionId);
    const records = new RecordSession(sessionId, keys, Direction.BankToAtm, this.deps.random);
    wipe(keys.encKey, keys.macKey);
    this.sessions.set(sessionId.toString('hex'), { records, accountId: account.accountId, username: account.username });
    const result: ResponseResult = {
      op: 'login',
      username: account.username,
      sessionId: sessionId.toString('hex'),
      masterSecret: masterSecret.toString('base64'),
    };
    wipe(masterSecret);
    return result;
  }

  private endSession(customer: CustomerSession | null): void {
    if (!customer) return;
    const key = customer.records.sessionId.toString('hex');
    // The logout answer is sealed with this session's keys, so it is wiped
    // only after that answer is on its way.
    setImmediate(() => {
      this.sessions.delete(key);
      customer.records.destroy();
    });
  }

  private send(records: RecordSession, response: Response): void {
    if (this.state !== 'open') return;
    try {
      this.write(FrameType.Record, records.seal(ContentType.Response, encodeMessage(response)));
    } catch (error) {
      this.fail(error instanceof ProtocolError ? error.code : 'ERR_BAD_MESSAGE');
    }
  }

  private write(type: FrameType, body: Buffer): void {
    // A group commit answers many requests at once: cork so they leave in
    // one system call rather than one each.
    if (this.socket.writableCorked === 0) {
      this.socket.cork();
      process.nextTick(() => this.socket.uncork());
    }
    this.socket.write(encodeFrame(type, body));
  }

  /** Ends the connection for a protocol violation: generic alert to the peer, the real code to the audit log. */
  private fail(code: ProtocolErrorCode): void {
    if (this.state === 'closed') return;
    this.recordFailure(code);
    this.socket.end(encodeFrame(FrameType.Alert, Buffer.from(GENERIC_PROTOCOL_FAILURE)));
    this.teardown();
    // Do not wait for a peer that never reads.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private recordFailure(code: ProtocolErrorCode): void {
    const atmId = this.atmId;
    try {
      this.deps.bank.record({ atmId, username: null, accountId: null }, 'protocol_error', code, this.peer);
    } catch {
      // The audit log is unwritable; the connection still ends.
    }
    this.deps.logger.warn(
      { peer: this.peer, atm: atmId ?? undefined, action: 'protocol', outcome: code },
      'connection ended',
    );
  }

  private closeQuietly(reason: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      this.deps.logger.info(
        { peer: this.peer, atm: this.atmId ?? undefined, action: 'disconnect', outcome: reason },
        'ATM disconnected',
      );
    }
    this.teardown();
    this.socket.destroy();
  }

  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.channel?.destroy();
    for (const session of this.sessions.values()) session.records.destroy();
    this.sessions.clear();
    if (this.secrets) wipe(this.secrets.channelSecret);
  }
}

function describeResult(result: ResponseResult): string {
  switch (result.op) {
    case 'deposit':
    case 'withdraw':
      return `${result.op} of ${result.amountCents} cents ${result.replayed ? 'replayed' : 'applied'}`;
    case 'login':
      return 'login successful';
    default:
      return `${result.op} done`;
  }
}
