/**
 * The ATM side of the protocol: connect and handshake
 * (`perform-handshake.ts`), then typed, pipelined calls over the secure
 * channel (`channel.ts`) on the connection's own session (signup, login,
 * ping) and on customer sessions. Responses are verified exactly as the bank
 * verifies requests; any failure ends the connection and rejects everything
 * pending with ERR_CONNECTION_CLOSED. A request past its deadline fails
 * alone (ERR_TIMEOUT): the connection and every other customer's requests
 * carry on, and its answer, if it comes, is verified and dropped.
 */
import net from 'node:net';

import { SecureChannel, endWithAlert, type SessionId } from './channel.ts';
import { KEY_BYTES, pooledIvRandom, secureRandom, wipe, type RandomSource } from './crypto.ts';
import { BankError, ProtocolError } from './errors.ts';
import { DEFAULT_MAX_FRAME_BODY } from './frame.ts';
import { FrameReader } from './frame-reader.ts';
import { ClientHandshake, type AtmCredential, type ChannelSecrets } from './handshake.ts';
import {
  CLIENT_ADDRESS_PATTERN,
  NoticeSchema,
  ResponseSchema,
  decodeMessage,
  encodeMessage,
  type CardMode,
  type LastLogin,
  type MoneyResult,
  type Notice,
  type RequestBody,
  type Response,
  type ResponseResult,
  type StatementEntry,
} from './messages.ts';
import { performClientHandshake } from './perform-handshake.ts';

/** Where the bank is, or an already connected socket to it (the caller told "nothing listens" apart). */
type Endpoint =
  { host: string; port: number; socket?: undefined } | { socket: net.Socket; host?: undefined; port?: undefined };

export type BankClientOptions = Endpoint & {
  /** This ATM's number, its own terminal key and the bank's pinned public key (`atm-N.key`). */
  credential: AtmCredential;
  /** Randomness for keys and IVs alike; tests inject a deterministic one. */
  random?: RandomSource;
  /** Deadline for connect plus handshake. */
  handshakeTimeoutMs?: number;
  /** Deadline for each answer; bcrypt at cost 12 takes a few hundred ms. */
  requestTimeoutMs?: number;
  maxFrameBody?: number;
  /** Each audit checkpoint the bank sends after `watchAudit()` (valid by schema; its signature is the auditor's to check). */
  onNotice?: (notice: Notice) => void;
};

/**
 * Who a call is made for: the customer's address as the ATM saw it, which
 * the bank writes into the call's audit line. An address the protocol would
 * refuse is left out rather than sent (the bank would end the connection).
 */
export type CallContext = { client?: string | undefined };

function withClient<B extends object>(body: B, context: CallContext): B & { client?: string } {
  const client = context.client;
  return client !== undefined && CLIENT_ADDRESS_PATTERN.test(client) ? { ...body, client } : body;
}

/**
 * The ATM's handle on a logged-in customer's bank session. Its keys stay in
 * the channel; the handle is only good on the connection that issued it.
 */
export class CustomerSession {
  constructor(
    readonly username: string,
    readonly id: string,
    /** The customer's previous login, as the bank told it at this login (null on the first). */
    readonly lastLogin: LastLogin = null,
    /** Reopens the session on another connection (`BankClient.resume`); opaque here, null if the bank issues none. */
    readonly ticket: string | null = null,
  ) {}
}

type Pending = {
  session: SessionId;
  resolve: (response: Response) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
};

type Op = ResponseResult['op'];

/**
 * Requests given up on whose answers may still come. Past this many the bank
 * is not answering at all, and the connection is started over.
 */
const MAX_EXPIRED = 10_000;
type ResultOf<O extends Op> = Extract<ResponseResult, { op: O }>;

export class BankClient {
  private readonly channel: SecureChannel<Response>;
  private readonly pending = new Map<number, Pending>();
  /** Timed-out request ids and the session each went out on. */
  private readonly expired = new Map<number, SessionId>();
  private readonly sessions = new WeakSet<CustomerSession>();
  private readonly closeListeners: Array<(reason: ProtocolError) => void> = [];
  private nextId = 1;
  private closedWith: ProtocolError | null = null;

  private constructor(
    socket: net.Socket,
    secrets: ChannelSecrets,
    ivRandom: RandomSource,
    reader: FrameReader,
    private readonly requestTimeoutMs: number,
    onNotice: ((notice: Notice) => void) | undefined,
  ) {
    this.channel = new SecureChannel<Response>(socket, {
      role: 'atm',
      secrets,
      ivRandom,
      reader,
      decode: (plaintext) => decodeMessage(ResponseSchema, plaintext),
      onMessage: (session, response) => this.onResponse(session, response),
      onNotice: (plaintext) => {
        const notice = decodeMessage(NoticeSchema, plaintext);
        if (!notice) throw new ProtocolError('ERR_BAD_MESSAGE', 'notice does not match the schema');
        onNotice?.(notice);
      },
      onClose: (reason) => this.onClosed(reason),
    });
  }

  static async connect(options: BankClientOptions): Promise<BankClient> {
    const reader = new FrameReader(options.maxFrameBody ?? DEFAULT_MAX_FRAME_BODY);
    const handshake = new ClientHandshake(options.credential, options.random ?? secureRandom);
    const socket =
      options.socket === undefined ? net.connect({ host: options.host, port: options.port }) : options.socket;
    socket.setNoDelay(true);
    let secrets: ChannelSecrets;
    try {
      secrets = await performClientHandshake(socket, handshake, reader, options.handshakeTimeoutMs ?? 5_000);
    } catch (error) {
      // A handshake this end found broken is reported to the bank (and audited there), like later
      // failures; the bank's own alert, or a closed connection, needs no answer.
      const broken =
        error instanceof ProtocolError && error.code !== 'ERR_CONNECTION_CLOSED' && error.code !== 'ERR_PEER_ALERT';
      if (broken) endWithAlert(socket);
      else socket.destroy();
      throw error;
    }
    return new BankClient(
      socket,
      secrets,
      options.random ?? pooledIvRandom,
      reader,
      options.requestTimeoutMs ?? 30_000,
      options.onNotice,
    );
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Called once when the connection ends, for whatever reason. */
  onClose(listener: (reason: ProtocolError) => void): void {
    if (this.closedWith) listener(this.closedWith);
    else this.closeListeners.push(listener);
  }

  async signup(username: string, password: string, context: CallContext = {}): Promise<ResultOf<'signup'>> {
    return this.expect('signup', await this.request(null, withClient({ op: 'signup', username, password }, context)));
  }

  /** `channel` names the kind of terminal in the bank's audit log; web ATMs leave it out. */
  async login(
    username: string,
    password: string,
    channel?: 'terminal',
    context: CallContext = {},
  ): Promise<CustomerSession> {
    const body: RequestBody = withClient({ op: 'login', username, password, ...(channel ? { channel } : {}) }, context);
    return this.openSession(this.expect('login', await this.request(null, body)));
  }

  /** A card account's session (the terminal ATM's card login). */
  async cardLogin(account: string, card: string): Promise<CustomerSession> {
    return this.openSession(this.expect('card_login', await this.request(null, { op: 'card_login', account, card })));
  }

  /** Step one of a command-line conversation: the bank checks and holds it, changing nothing. */
  async card(request: {
    mode: CardMode;
    account: string;
    amountCents: number;
    card: string;
  }): Promise<ResultOf<'card'>> {
    return this.expect('card', await this.request(null, { op: 'card', ...request }));
  }

  /** Step two: the bank applies what it holds; the answer means it is durable. */
  async cardConfirm(): Promise<ResultOf<'card_confirm'>> {
    return this.expect('card_confirm', await this.request(null, { op: 'card_confirm' }));
  }

  /** Reopens a customer's session on this connection with the ticket of an earlier one (no password). */
  async resume(ticket: string): Promise<CustomerSession> {
    return this.openSession(this.expect('resume', await this.request(null, { op: 'resume', ticket })));
  }

  private openSession(result: ResultOf<'login' | 'card_login' | 'resume'>): CustomerSession {
    const masterSecret = Buffer.from(result.masterSecret, 'base64');
    try {
      if (masterSecret.length !== KEY_BYTES) throw new ProtocolError('ERR_BAD_MESSAGE', 'bad master secret');
      this.channel.openSession(Buffer.from(result.sessionId, 'hex'), masterSecret);
    } finally {
      wipe(masterSecret);
    }
    // A card login's answer does not say (the terminal ATM shows no account summary), nor does a
    // resumption (the web session keeps what its login was told).
    const lastLogin = result.op === 'login' ? result.lastLogin : null;
    const session = new CustomerSession(result.username, result.sessionId, lastLogin, result.ticket ?? null);
    this.sessions.add(session);
    return session;
  }

  async ping(): Promise<void> {
    this.expect('ping', await this.request(null, { op: 'ping' }));
  }

  /** Asks the bank for its signed audit checkpoints on this connection (given to `onNotice`). */
  async watchAudit(): Promise<void> {
    this.expect('watch_audit', await this.request(null, { op: 'watch_audit' }));
  }

  deposit(
    session: CustomerSession,
    txId: string,
    amountCents: number,
    context: CallContext = {},
  ): Promise<MoneyResult> {
    return this.moveMoney('deposit', session, txId, amountCents, context);
  }

  withdraw(
    session: CustomerSession,
    txId: string,
    amountCents: number,
    context: CallContext = {},
  ): Promise<MoneyResult> {
    return this.moveMoney('withdraw', session, txId, amountCents, context);
  }

  private async moveMoney(
    op: 'deposit' | 'withdraw',
    session: CustomerSession,
    txId: string,
    amountCents: number,
    context: CallContext,
  ): Promise<MoneyResult> {
    const body = withClient({ op, txId, amountCents }, context);
    return this.expect(op, await this.request(this.sessionOf(session), body));
  }

  async balance(session: CustomerSession, context: CallContext = {}): Promise<number> {
    const body = withClient({ op: 'balance' as const }, context);
    return this.expect('balance', await this.request(this.sessionOf(session), body)).balanceCents;
  }

  /** A page of the statement, newest first (default: the newest 10); `more` says whether older ones exist. */
  async statement(
    session: CustomerSession,
    page: { offset?: number; limit?: number } = {},
    context: CallContext = {},
  ): Promise<{ balanceCents: number; entries: StatementEntry[]; more: boolean }> {
    const body = withClient({ op: 'statement' as const, ...page }, context);
    const { balanceCents, entries, more } = this.expect('statement', await this.request(this.sessionOf(session), body));
    return { balanceCents, entries, more };
  }

  /** Changes the logged-in customer's password; the bank ends their other sessions. */
  async changePassword(session: CustomerSession, currentPassword: string, newPassword: string): Promise<void> {
    this.expect(
      'change_password',
      await this.request(this.sessionOf(session), { op: 'change_password', currentPassword, newPassword }),
    );
  }

  async logout(session: CustomerSession, context: CallContext = {}): Promise<void> {
    const id = this.sessionOf(session);
    try {
      this.expect('logout', await this.request(id, withClient({ op: 'logout' as const }, context)));
    } finally {
      this.sessions.delete(session);
      this.channel.endSession(id);
    }
  }

  /** True while this connection still holds the session's keys. */
  hasSession(session: CustomerSession): boolean {
    return !this.closed && this.sessions.has(session);
  }

  close(reason = new ProtocolError('ERR_CONNECTION_CLOSED', 'closed by the ATM')): void {
    this.channel.close(reason);
  }

  private onClosed(reason: ProtocolError): void {
    this.closedWith = reason;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ProtocolError('ERR_CONNECTION_CLOSED', reason.message));
      this.pending.delete(id);
    }
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  private sessionOf(session: CustomerSession): string {
    if (!this.sessions.has(session) || this.closed || !this.channel.hasSession(session.id)) {
      throw new BankError('ERR_NOT_LOGGED_IN', 'This session has ended. Log in again.');
    }
    return session.id;
  }

  private expect<O extends Op>(op: O, response: Response): ResultOf<O> {
    if (!response.ok) throw new BankError(response.code, response.message, response.lockedUntil);
    if (response.result.op !== op) {
      const error = new ProtocolError('ERR_BAD_MESSAGE', 'answer does not match the request');
      this.close(error);
      throw error;
    }
    return response.result as ResultOf<O>;
  }

  private request(session: SessionId, body: RequestBody): Promise<Response> {
    if (this.closedWith) return Promise.reject(new ProtocolError('ERR_CONNECTION_CLOSED', this.closedWith.message));
    let id = this.nextId;
    // Skip ids whose late answers may still arrive.
    while (this.expired.has(id)) id = id >= 0x7fff_ffff ? 1 : id + 1;
    this.nextId = id >= 0x7fff_ffff ? 1 : id + 1;
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => this.expire(id), this.requestTimeoutMs);
      this.pending.set(id, { session, resolve, reject, timer });
      try {
        this.channel.send(session, encodeMessage({ ...body, id }));
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error instanceof Error ? error : new ProtocolError('ERR_BAD_MESSAGE'));
      }
    });
  }

  /**
   * Fails one request that was not answered in time, and only it (issue 12,
   * finding 2: one slow login used to take every customer of the ATM down).
   * Records are sequenced per session by the channel, so a late answer still
   * verifies in order; it is dropped when it comes.
   */
  private expire(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.expired.set(id, pending.session);
    pending.reject(new ProtocolError('ERR_TIMEOUT', 'bank did not answer in time'));
    if (this.expired.size > MAX_EXPIRED) this.close(new ProtocolError('ERR_TIMEOUT', 'bank stopped answering'));
  }

  /** A late answer: nobody waits for it; a login it grants is ended at once, so no session is left open. */
  private onLateResponse(response: Response): void {
    this.expired.delete(response.id);
    if (!response.ok || response.result.op !== 'login') return;
    const masterSecret = Buffer.from(response.result.masterSecret, 'base64');
    try {
      if (masterSecret.length !== KEY_BYTES) throw new ProtocolError('ERR_BAD_MESSAGE', 'bad master secret');
      this.channel.openSession(Buffer.from(response.result.sessionId, 'hex'), masterSecret);
    } finally {
      wipe(masterSecret);
    }
    const id = response.result.sessionId;
    void this.request(id, { op: 'logout' })
      .catch(() => undefined)
      .finally(() => this.channel.endSession(id));
  }

  private onResponse(session: SessionId, response: Response): void {
    if (this.expired.get(response.id) === session && !this.pending.has(response.id)) {
      this.onLateResponse(response);
      return;
    }
    const pending = this.pending.get(response.id);
    // An answer must come back on the session its request went out on.
    if (!pending || pending.session !== session) throw new ProtocolError('ERR_BAD_MESSAGE', 'answer to no request');
    this.pending.delete(response.id);
    clearTimeout(pending.timer);
    pending.resolve(response);
  }
}
