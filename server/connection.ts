/**
 * One ATM's TCP connection to the bank: the handshake (through
 * `protocol/perform-handshake.ts`), then the secure channel
 * (`protocol/channel.ts`) hands it authenticated requests for the
 * connection's own session (signup, login) and for each customer session
 * opened by a login on it; this module dispatches them to the bank and
 * answers. Any protocol failure ends the whole connection with a generic
 * alert and an audit line; nothing a peer sends can throw out of here.
 */
import type net from 'node:net';
import type { RecordableHistogram } from 'node:perf_hooks';

import { endWithAlert, SecureChannel, type SessionId } from '../protocol/channel.ts';
import { KEY_BYTES, wipe, type RandomSource, type X25519KeyPair } from '../protocol/crypto.ts';
import { BankError, ProtocolError, type ProtocolErrorCode } from '../protocol/errors.ts';
import { FrameReader, type ReadResult } from '../protocol/frame-reader.ts';
import { ServerHandshake, type ChannelSecrets, type TerminalKeyLookup } from '../protocol/handshake.ts';
import {
  CHANNEL_OPS,
  RequestSchema,
  decodeMessage,
  encodeMessage,
  type Channel,
  type Notice,
  type Request,
  type Response,
  type ResponseResult,
} from '../protocol/messages.ts';
import { performServerHandshake } from '../protocol/perform-handshake.ts';
import { CHANNEL_SESSION_ID, SESSION_ID_BYTES, wipeDirectionalKeys } from '../protocol/record.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Actor, Bank, LoggedIn } from './bank.ts';
import type { CardDesk, CardResult, PreparedCard } from './card-desk.ts';

export type ConnectionLimits = {
  maxFrameBody: number;
  handshakeTimeoutMs: number;
  /** An open connection with no traffic for this long is closed (ATMs send pings). */
  idleTimeoutMs: number;
  maxSessionsPerConnection: number;
  /** How long a command-line conversation may hold its account between check and confirm. */
  confirmTimeoutMs: number;
  /**
   * Sessions one customer may hold on one ATM connection (a login past it
   * ends their oldest there), and logins of theirs in flight there at once.
   */
  maxSessionsPerCustomer: number;
};

const PASSWORD_CHANGED_MESSAGE = 'This session was ended because the password was changed. Log in again.';
const REPLACED_MESSAGE = 'This session was ended by a newer login of this account at this ATM. Log in again.';

/** What bin/bank prints: each command-line transaction applied, each conversation that broke. */
export type BankEvents = {
  cardCommitted?: (result: CardResult) => void;
  protocolError?: () => void;
};

/** A logged-in customer, and which kind of terminal they use (the audit log names it). */
type Customer = LoggedIn & { channel: Channel };

/** A command-line conversation checked and held by the bank, waiting for its confirm. */
type Conversation = { prepared: PreparedCard; timer: NodeJS.Timeout };

/** What the handshake needs of the bank's terminals (`terminals.ts`). */
export type TerminalAuthority = {
  staticKey: X25519KeyPair;
  terminalKeyFor: TerminalKeyLookup;
  isRevoked(atmId: number): boolean;
};

export type ConnectionDeps = {
  bank: Bank;
  terminals: TerminalAuthority;
  cards: CardDesk;
  events: BankEvents;
  /** Keys, scalars, master secrets and session ids: straight from the CSPRNG. */
  random: RandomSource;
  /** IVs only. */
  ivRandom: RandomSource;
  limits: ConnectionLimits;
  logger: Logger;
  /** Time from a request's arrival to its answer being written, in nanoseconds. */
  serviceTimes: RecordableHistogram;
  /** Ends every session of the account on every connection but `keep` (after a password change). */
  endSessionsOf?: (accountId: number, keep: { connection: BankConnection; session: string }) => void;
  /** Each answered request: its operation, `ok` or the error code sent, and its time in the bank. */
  answered?: (op: string, outcome: string, nanoseconds: number) => void;
  nowMs?: () => number;
  /** The newest signed audit checkpoint, sent to an ATM as soon as it asks to watch the chain. */
  currentCheckpoint?: () => Notice | null;
};

/** An ATM as the operator page lists it. */
export type ConnectionSummary = { atm: number; peer: string; connectedAtMs: number; requests: number };

/** A witnessing ATM as the operator page sees it: the newest checkpoint line sent to it, and when. */
export type ConnectionWitness = { atm: number; line: number; sentAtMs: number };

type State = 'handshake' | 'open' | 'closed';

export class BankConnection {
  readonly peer: string;
  private state: State = 'handshake';
  private readonly handshake: ServerHandshake;
  private channel: SecureChannel<Request> | null = null;
  /** Who is logged in on each customer session (the channel holds the sessions' keys). */
  private readonly customers = new Map<string, Customer>();
  /**
   * Sessions ended by the bank (the customer changed their password
   * elsewhere, or logged in here once too often), with what the ATM is told.
   * Their keys stay until the ATM logs them out, so the ATM's next request on
   * one gets "log in again" rather than breaking the whole connection with an
   * unknown session. The ATM logs them out when it learns; until then they
   * count under a cap of their own.
   */
  private readonly revoked = new Map<string, string>();
  private conversation: Conversation | null = null;
  private breakReported = false;
  /** The ATM sent `watch_audit`: it keeps a witness, so checkpoints go to it (never unasked). */
  private watchingAudit = false;
  /** The newest checkpoint sent to that witness, and when (for the operator page's witness lag). */
  private checkpointSent: { line: number; atMs: number } | null = null;
  /** Logins still being checked, in total and per (normalised) username: they hold a place under the caps. */
  private loginsInFlight = 0;
  private readonly loginsInFlightFor = new Map<string, number>();
  private inFlight = 0;
  private draining = false;
  private readonly idleWaiters: Array<() => void> = [];
  private connectedAtMs = 0;
  private answeredCount = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.handshake = new ServerHandshake({
      staticKey: deps.terminals.staticKey,
      terminalKeyFor: deps.terminals.terminalKeyFor,
      random: deps.random,
    });
    socket.setNoDelay(true);
    socket.setTimeout(deps.limits.idleTimeoutMs, () => this.closeQuietly('idle timeout'));
    // Kept for the socket's whole life: a peer resetting after our alert must not crash the bank.
    socket.on('error', () => this.closeQuietly('socket error'));
    const reader = new FrameReader(deps.limits.maxFrameBody);
    performServerHandshake(socket, this.handshake, reader, deps.limits.handshakeTimeoutMs).then(
      ({ secrets, rest }) => this.open(secrets, reader, rest),
      (error: unknown) => this.handshakeFailed(error),
    );
  }

  get isHandshaking(): boolean {
    return this.state === 'handshake';
  }

  /** The ATM number the handshake proved; null until then (a claimed number is not this). */
  get atmId(): number | null {
    return this.channel?.atmId ?? null;
  }

  /** Cuts the connection of a terminal revoked while connected (audited as ERR_ATM_REVOKED). */
  revoke(): void {
    this.channel?.close(new ProtocolError('ERR_ATM_REVOKED', 'this terminal was revoked'));
  }

  /** The connected ATM, once its handshake is complete; null before and after. */
  summary(): ConnectionSummary | null {
    const atm = this.channel?.atmId;
    if (this.state !== 'open' || atm === undefined) return null;
    return { atm, peer: this.peer, connectedAtMs: this.connectedAtMs, requests: this.answeredCount };
  }

  /** A watching ATM's newest checkpoint: the line it was sent and when; null if it does not watch. */
  witness(): ConnectionWitness | null {
    const atm = this.channel?.atmId;
    if (this.state !== 'open' || atm === undefined || !this.watchingAudit) return null;
    return { atm, line: this.checkpointSent?.line ?? 0, sentAtMs: this.checkpointSent?.atMs ?? this.connectedAtMs };
  }

  /** Stops taking new requests, lets in-flight ones answer, then closes. */
  async drain(): Promise<void> {
    this.draining = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.closeQuietly('bank shutting down');
  }

  private open(secrets: ChannelSecrets, reader: FrameReader, rest: ReadResult): void {
    if (this.state !== 'handshake') {
      wipeDirectionalKeys(secrets.channelKeys);
      return;
    }
    this.channel = new SecureChannel<Request>(this.socket, {
      role: 'bank',
      secrets,
      ivRandom: this.deps.ivRandom,
      reader,
      rest,
      decode: (plaintext) => decodeMessage(RequestSchema, plaintext),
      onMessage: (session, request) => this.onRequest(session, request),
      onClose: (reason) => this.onClosed(reason),
    });
    this.state = 'open';
    this.connectedAtMs = (this.deps.nowMs ?? Date.now)();
    this.deps.logger.info({ peer: this.peer, atm: secrets.atmId, action: 'connect', outcome: 'ok' }, 'ATM connected');
    // Revoked between its ClientHello and its ClientFinished.
    if (this.deps.terminals.isRevoked(secrets.atmId)) this.revoke();
  }

  /**
   * Tells a watching ATM the newest audit checkpoint; nothing if it never sent
   * `watch_audit` or the channel is not open.
   */
  sendNotice(notice: Notice): void {
    const channel = this.channel;
    if (!this.watchingAudit || this.state !== 'open' || !channel || channel.closed) return;
    try {
      channel.sendNotice(encodeMessage(notice));
      this.checkpointSent = { line: notice.line, atMs: (this.deps.nowMs ?? Date.now)() };
    } catch (error) {
      channel.close(error instanceof ProtocolError ? error : new ProtocolError('ERR_BAD_MESSAGE'));
    }
  }

  private sendCurrentCheckpoint(): void {
    const checkpoint = this.deps.currentCheckpoint?.();
    if (checkpoint) this.sendNotice(checkpoint);
  }

  private handshakeFailed(error: unknown): void {
    if (this.state !== 'handshake') return;
    this.state = 'closed';
    this.handshake.abandon();
    const code = error instanceof ProtocolError ? error.code : 'ERR_HANDSHAKE';
    if (code === 'ERR_CONNECTION_CLOSED') {
      this.socket.destroy();
      return;
    }
    this.recordFailure(code);
    // An ATM's alert needs no answer; any other failure gets the generic one.
    if (code === 'ERR_PEER_ALERT') this.socket.destroy();
    else endWithAlert(this.socket);
  }

  /** Ends this connection's sessions of the account, except `keep`; returns how many. */
  endSessionsOf(accountId: number, keep: string | null): number {
    let ended = 0;
    for (const [session, customer] of this.customers) {
      if (customer.accountId !== accountId || session === keep) continue;
      this.customers.delete(session);
      this.revoked.set(session, PASSWORD_CHANGED_MESSAGE);
      ended += 1;
    }
    return ended;
  }

  private onRequest(session: SessionId, request: Request): void {
    if (session !== null && this.revoked.has(session)) {
      this.answerRevoked(session, request);
      return;
    }
    const customer = session === null ? null : this.customers.get(session);
    if (customer === undefined) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'no customer on this session');
    if (this.draining) {
      this.send(session, { id: request.id, ok: false, code: 'ERR_UNAVAILABLE', message: 'The bank is shutting down.' });
      return;
    }
    this.inFlight += 1;
    const arrived = process.hrtime.bigint();
    void this.answer(session, customer, request)
      .then((response) => {
        if (response === null) return;
        this.send(session, response);
        const nanoseconds = Math.max(1, Number(process.hrtime.bigint() - arrived));
        this.deps.serviceTimes.record(nanoseconds);
        this.answeredCount += 1;
        this.deps.answered?.(request.op, response.ok ? 'ok' : response.code, nanoseconds);
        // After the answer, so the ATM's reply to watch_audit comes before the first checkpoint.
        if (response.ok && response.result.op === 'watch_audit') this.sendCurrentCheckpoint();
      })
      .finally(() => this.requestDone());
  }

  private requestDone(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The answer to send, or null when the request broke the protocol and the connection is ending. */
  private async answer(session: SessionId, customer: Customer | null, request: Request): Promise<Response | null> {
    const actor: Actor = {
      atmId: this.atmId,
      username: customer?.username ?? null,
      accountId: customer?.accountId ?? null,
      ...(customer ? { channel: customer.channel } : {}),
    };
    if ('client' in request && request.client !== undefined) actor.client = request.client;
    try {
      const result = await this.perform(session, actor, request);
      // Debug: one line per transaction costs more than the rest of its console (runtime/logger.ts).
      this.deps.logger.debug?.(
        { peer: this.peer, atm: actor.atmId, user: actor.username ?? undefined, action: request.op, outcome: 'ok' },
        describeResult(result),
      );
      return { id: request.id, ok: true, result };
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.channel?.close(error);
        return null;
      }
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
      return {
        id: request.id,
        ok: false,
        code: bankError.code,
        message: bankError.message,
        ...(bankError.lockedUntil === undefined ? {} : { lockedUntil: bankError.lockedUntil }),
      };
    }
  }

  private async perform(session: SessionId, actor: Actor, request: Request): Promise<ResponseResult> {
    const onChannel = session === null;
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
      case 'watch_audit':
        this.watchingAudit = true;
        return { op: 'watch_audit' };
      case 'signup':
        return { op: 'signup', ...(await bank.signup(actor, request.username, request.password)) };
      case 'login':
        return this.login(actor, request.username, request.password, request.channel ?? 'web');
      case 'resume': {
        this.checkSessionRoom(0);
        const { channel, ...customer } = await bank.resume(actor, request.ticket);
        return this.openSession({ ...actor, channel }, customer, channel, 'resume');
      }
      case 'card_login': {
        this.checkSessionRoom(0);
        const terminal = { ...actor, channel: 'terminal' as const };
        const customer = await this.deps.cards.login(terminal, request.account, request.card);
        return this.openSession(terminal, customer, 'terminal', 'card_login');
      }
      case 'card':
        return this.prepareCard(actor, request);
      case 'card_confirm':
        return this.confirmCard();
      case 'deposit':
      case 'withdraw':
        return bank.move(actor, request.op, request.txId, request.amountCents);
      case 'balance':
        return { op: 'balance', balanceCents: await bank.balance(actor) };
      case 'statement':
        return { op: 'statement', ...(await bank.statement(actor, request)) };
      case 'change_password':
        await bank.changePassword(actor, request.currentPassword, request.newPassword);
        if (session !== null && actor.accountId !== null) {
          this.deps.endSessionsOf?.(actor.accountId, { connection: this, session });
        }
        return { op: 'change_password' };
      case 'logout':
        await bank.logout(actor);
        if (session !== null) this.endSession(session);
        return { op: 'logout' };
    }
  }

  private async login(actor: Actor, username: string, password: string, channel: Channel): Promise<ResponseResult> {
    // A login in flight holds its place under the connection's cap, so
    // concurrent logins cannot get past it (issue 12, finding 4: 209 sessions
    // under a cap of 200), and one account has at most
    // maxSessionsPerCustomer logins in flight here, so it cannot fill the cap.
    const key = username.toLowerCase();
    this.checkSessionRoom(0);
    if ((this.loginsInFlightFor.get(key) ?? 0) >= this.deps.limits.maxSessionsPerCustomer) {
      throw new BankError('ERR_UNAVAILABLE', 'This account is already logging in at this ATM. Try again in a moment.');
    }
    this.loginsInFlight += 1;
    this.loginsInFlightFor.set(key, (this.loginsInFlightFor.get(key) ?? 0) + 1);
    try {
      const { lastLogin, ...account } = await this.deps.bank.login({ ...actor, channel }, username, password);
      return { ...this.openSession({ ...actor, channel }, account, channel, 'login', 1), lastLogin };
    } finally {
      this.loginsInFlight -= 1;
      const left = (this.loginsInFlightFor.get(key) ?? 1) - 1;
      if (left > 0) this.loginsInFlightFor.set(key, left);
      else this.loginsInFlightFor.delete(key);
    }
  }

  /** Room for one more session; `ownPlaces` are logins in flight that are the caller's own. */
  private checkSessionRoom(ownPlaces: number): void {
    const places = this.customers.size + this.loginsInFlight - ownPlaces;
    // Ended sessions wait for the ATM's logout; an ATM that never sends it fills only its own connection.
    const { maxSessionsPerConnection } = this.deps.limits;
    if (places >= maxSessionsPerConnection || this.revoked.size >= maxSessionsPerConnection) {
      throw new BankError('ERR_UNAVAILABLE', 'This ATM has too many customers logged in. Try again shortly.');
    }
  }

  /**
   * The account's sessions on this connection that one more would push past
   * maxSessionsPerCustomer, oldest first: a new login at an ATM replaces the
   * oldest one there.
   */
  private sessionsToReplace(accountId: number): string[] {
    const own = [...this.customers].filter(([, customer]) => customer.accountId === accountId);
    const excess = Math.max(0, own.length - this.deps.limits.maxSessionsPerCustomer + 1);
    return own.slice(0, excess).map(([session]) => session);
  }

  /** Step one of a command-line conversation: checked and held, nothing changed; one at a time per connection. */
  private async prepareCard(actor: Actor, request: Extract<Request, { op: 'card' }>): Promise<ResponseResult> {
    if (this.conversation) throw new ProtocolError('ERR_PHASE', 'a conversation is already held');
    const { mode, account, amountCents, card } = request;
    const prepared = await this.deps.cards.prepare(actor, { mode, account, amountCents, card });
    if (this.state !== 'open' || this.conversation) {
      prepared.abort();
      throw new ProtocolError('ERR_PHASE', 'conversation ended while it was checked');
    }
    const timer = setTimeout(
      () => this.channel?.close(new ProtocolError('ERR_CONFIRM_TIMEOUT', 'no confirm in time')),
      this.deps.limits.confirmTimeoutMs,
    );
    this.conversation = { prepared, timer };
    return { op: 'card', card: prepared.card };
  }

  /** Step two: apply what was held; only now is it reported as done. */
  private async confirmCard(): Promise<ResponseResult> {
    const conversation = this.conversation;
    if (!conversation) throw new ProtocolError('ERR_PHASE', 'nothing to confirm');
    this.conversation = null;
    clearTimeout(conversation.timer);
    const result = await conversation.prepared.confirm();
    this.deps.events.cardCommitted?.(result);
    return { op: 'card_confirm', balanceCents: result.balanceCents };
  }

  /**
   * Gives the customer a session of their own on this connection, with fresh
   * keys, and a ticket that reopens it (same channel) on any node of this bank.
   */
  private openSession<Op extends 'login' | 'card_login' | 'resume'>(
    actor: Actor,
    account: LoggedIn,
    kind: Channel,
    op: Op,
    ownPlaces = 0,
  ): { op: Op; username: string; sessionId: string; masterSecret: string; ticket?: string } {
    // Replaced in the same synchronous step as the opening, so racing logins cannot overshoot the cap.
    const replaced = this.sessionsToReplace(account.accountId);
    this.checkSessionRoom(ownPlaces + replaced.length);
    for (const session of replaced) {
      this.customers.delete(session);
      this.revoked.set(session, REPLACED_MESSAGE);
    }
    const channel = this.channel;
    if (!channel || channel.closed) throw new BankError('ERR_UNAVAILABLE', 'Connection closed.');
    let sessionId = this.deps.random(SESSION_ID_BYTES);
    while (sessionId.equals(CHANNEL_SESSION_ID) || channel.hasSession(sessionId.toString('hex'))) {
      sessionId = this.deps.random(SESSION_ID_BYTES);
    }
    // A fresh random master secret per customer session; both sides derive
    // the encryption and MAC keys from it, bound to this connection and id.
    const masterSecret = this.deps.random(KEY_BYTES);
    const id = channel.openSession(sessionId, masterSecret);
    this.customers.set(id, { ...account, channel: kind });
    const ticket = this.deps.bank.issueTicket(actor, account, kind);
    const result = {
      op,
      username: account.username,
      sessionId: id,
      masterSecret: masterSecret.toString('base64'),
      ...(ticket === null ? {} : { ticket }),
    };
    wipe(masterSecret);
    return result;
  }

  private answerRevoked(session: string, request: Request): void {
    if (request.op === 'logout') {
      this.send(session, { id: request.id, ok: true, result: { op: 'logout' } });
      this.revoked.delete(session);
      this.endSession(session);
      return;
    }
    const message = this.revoked.get(session) ?? PASSWORD_CHANGED_MESSAGE;
    this.send(session, { id: request.id, ok: false, code: 'ERR_NOT_LOGGED_IN', message });
  }

  private endSession(session: string): void {
    // The logout answer is sealed with this session's keys, so they are wiped
    // only after that answer is on its way.
    setImmediate(() => {
      this.customers.delete(session);
      this.channel?.endSession(session);
    });
  }

  private send(session: SessionId, response: Response): void {
    const channel = this.channel;
    if (!channel || channel.closed) return;
    try {
      channel.send(session, encodeMessage(response));
    } catch (error) {
      channel.close(error instanceof ProtocolError ? error : new ProtocolError('ERR_BAD_MESSAGE'));
    }
  }

  /** The channel ended: a failure is audited (the peer was told only the generic alert), a quiet end logged. */
  private onClosed(reason: ProtocolError): void {
    this.state = 'closed';
    this.customers.clear();
    if (this.conversation) {
      // Never confirmed, so never applied: letting go of the account is the whole rollback.
      clearTimeout(this.conversation.timer);
      this.conversation.prepared.abort();
      this.conversation = null;
      this.reportBreak();
    }
    if (reason.code !== 'ERR_CONNECTION_CLOSED') {
      this.recordFailure(reason.code);
      return;
    }
    this.deps.logger.info(
      { peer: this.peer, atm: this.atmId ?? undefined, action: 'disconnect', outcome: reason.message },
      'ATM disconnected',
    );
  }

  /** A conversation that broke: reported once (bin/bank prints `protocol_error`). */
  private reportBreak(): void {
    if (this.breakReported) return;
    this.breakReported = true;
    this.deps.events.protocolError?.();
  }

  /**
   * Audits a protocol failure. The ATM number is the event's only if the
   * handshake proved it; a number a failed handshake merely announced is
   * kept apart as `claimed:N@peer` (and `claimedAtm` in the log).
   */
  private recordFailure(code: ProtocolErrorCode): void {
    this.reportBreak();
    const atmId = this.atmId;
    const claimed = atmId === null ? this.handshake.claimedAtmId : null;
    const detail = claimed === null ? this.peer : `claimed:${claimed}@${this.peer}`;
    try {
      this.deps.bank.record({ atmId, username: null, accountId: null }, 'protocol_error', code, detail);
    } catch {
      // The audit log is unwritable; the connection still ends.
    }
    this.deps.logger.warn(
      { peer: this.peer, atm: atmId ?? undefined, claimedAtm: claimed ?? undefined, action: 'protocol', outcome: code },
      'connection ended',
    );
  }

  private closeQuietly(reason: string): void {
    if (this.state === 'open') {
      this.channel?.close(new ProtocolError('ERR_CONNECTION_CLOSED', reason));
      return;
    }
    this.state = 'closed';
    this.socket.destroy();
  }
}

function describeResult(result: ResponseResult): string {
  switch (result.op) {
    case 'deposit':
    case 'withdraw':
      return `${result.op} of ${result.amountCents} cents ${result.replayed ? 'replayed' : 'applied'}`;
    case 'login':
      return 'login successful';
    case 'resume':
      return 'session resumed';
    default:
      return `${result.op} done`;
  }
}
