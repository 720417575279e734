/**
 * The ATM's one persistent secure connection to the bank, opened at start
 * and kept: pings so an idle ATM is not dropped, and holds every logged-in
 * customer's bank session. Session keys live only here, in memory; the web
 * session holds an opaque handle.
 *
 * The bank may be several nodes (`--bank host:port,host:port`). When the
 * link dies the ATM moves straight on to the next node; only when it has
 * tried every node in turn does it back off (capped exponential, jittered).
 *
 * No transaction in doubt: a customer's call (`run`) that loses its link or
 * passes its deadline is sent again, unchanged (the same transaction id), on
 * the next link, to whichever node that is; the bank answers a repeat with
 * the original outcome, so the customer sees what really happened. The
 * customer's session follows the link: it is reopened on the new connection
 * with the resumption ticket the bank issued at login (`BankClient.resume`).
 * Only when no node answers within `inDoubtBudgetMs` does the call fail.
 */
import { checkpointFromNotice } from '../audit/checkpoint.ts';
import { BankClient, type CallContext, type CustomerSession } from '../protocol/client.ts';
import { BankError, ProtocolError } from '../protocol/errors.ts';
import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import type { LastLogin, Notice } from '../protocol/messages.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AuditWitness } from './audit-witness.ts';

export type BankEndpoint = { host: string; port: number };

export type BankLinkOptions = {
  /** The bank's nodes, tried in turn starting with the first. */
  banks: BankEndpoint[];
  /** This ATM's `atm-N.key`: its number, its own terminal key, the bank's pinned public key. */
  credential: AtmCredential;
  logger: Logger;
  random?: RandomSource;
  /** First retry delay; doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  pingIntervalMs?: number;
  /** A customer idle this long is logged out at the bank (matches the web session timeout). */
  customerIdleMs?: number;
  /** Deadline for each answer; past it the link is dropped and the call re-sent on the next one. */
  requestTimeoutMs?: number;
  /** How long a customer's call keeps trying (link after link) before the customer is told the bank is unavailable. */
  inDoubtBudgetMs?: number;
  /** Deadline for connecting to one node (connect plus handshake) before trying the next. */
  connectTimeoutMs?: number;
  /**
   * Bank sessions one customer keeps here; a login past it logs out their
   * oldest. The bank enforces its own `--max-sessions-per-customer` (default
   * 4 too): this end lets go first, so the bank's ended sessions do not wait
   * here for their logout.
   */
  maxSessionsPerCustomer?: number;
  clock?: () => number;
  /** Keeps the bank's signed audit checkpoints (`atm-N.audit-head`): this ATM is a witness. */
  witness?: AuditWitness;
};

/** A logged-in customer: the live session (null while the link is moving) and the ticket that reopens it. */
type Customer = {
  username: string;
  client: BankClient | null;
  session: CustomerSession | null;
  ticket: string | null;
  lastUsed: number;
  resuming: Promise<void> | null;
};

/** What a route gets for a logged-in customer. */
export type CustomerHandle = { client: BankClient; session: CustomerSession };

export class BankUnavailableError extends Error {
  override readonly name = 'BankUnavailableError';
}

export class BankLink {
  private current: BankClient | null = null;
  private readonly customers = new Map<string, Customer>();
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly sweepTimer: NodeJS.Timeout;
  private backoffMs: number;
  private stopped = false;
  private connecting: Promise<void> | null = null;
  private readonly random: RandomSource;
  private readonly clock: () => number;
  /** The node to try next, and how many nodes have failed in a row. */
  private nextBank = 0;
  private failedInARow = 0;
  private currentBank: BankEndpoint | null = null;

  constructor(private readonly options: BankLinkOptions) {
    if (options.banks.length === 0) throw new Error('an ATM needs at least one bank address');
    this.random = options.random ?? secureRandom;
    this.clock = options.clock ?? Date.now;
    this.backoffMs = options.initialBackoffMs ?? 100;
    this.pingTimer = setInterval(() => void this.ping(), options.pingIntervalMs ?? 60_000);
    this.pingTimer.unref();
    this.sweepTimer = setInterval(() => this.sweepIdleCustomers(), 60_000);
    this.sweepTimer.unref();
  }

  /** The node the link is on now, or null while it is moving. */
  get connectedTo(): BankEndpoint | null {
    return this.available ? this.currentBank : null;
  }

  get available(): boolean {
    return this.current !== null && !this.current.closed;
  }

  /** Connects now; resolves once connected or after the first failure (then retries in the background). */
  start(): Promise<void> {
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Resolves when the link is up, or rejects after `timeoutMs`. */
  async waitUntilAvailable(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.available) {
      if (Date.now() > deadline) throw new BankUnavailableError('bank unavailable');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  client(): BankClient {
    const client = this.current;
    if (!client || client.closed) throw new BankUnavailableError('bank unavailable');
    return client;
  }

  /** Logs a customer in at the bank; returns the opaque handle to keep in the web session. */
  async login(
    username: string,
    password: string,
    context: CallContext = {},
  ): Promise<{ handle: string; username: string; lastLogin: LastLogin }> {
    const client = this.client();
    const session = await client.login(username, password, undefined, context);
    // A login past the customer's few sessions here replaces their oldest
    // (a forgotten tab, another browser): one account cannot fill the link.
    const own = [...this.customers].filter(([, customer]) => customer.username === session.username);
    const excess = own.length - (this.options.maxSessionsPerCustomer ?? 4) + 1;
    await Promise.all(own.slice(0, Math.max(0, excess)).map(([handle]) => this.logout(handle)));
    const handle = this.random(16).toString('hex');
    this.customers.set(handle, {
      username: session.username,
      client,
      session,
      ticket: session.ticket,
      lastUsed: this.clock(),
      resuming: null,
    });
    return { handle, username: session.username, lastLogin: session.lastLogin };
  }

  /** True while the customer is logged in here: with a live session, or one the next link can reopen. */
  hasCustomer(handle: string): boolean {
    const customer = this.customers.get(handle);
    if (!customer) return false;
    if (this.isLive(customer) || customer.ticket !== null) return true;
    this.customers.delete(handle);
    return false;
  }

  /** The customer's live bank session on the current link, or null (logged out, or the link is moving). */
  customer(handle: string): CustomerHandle | null {
    const customer = this.customers.get(handle);
    if (!customer || !this.isLive(customer) || !customer.client || !customer.session) return null;
    customer.lastUsed = this.clock();
    return { client: customer.client, session: customer.session };
  }

  /**
   * Runs a customer's call on their live session, reopening the session on
   * the next link when the link moved. A call that fails without an answer
   * (link lost, deadline passed) runs again, unchanged, on the next link,
   * until `inDoubtBudgetMs` has passed: a money call carries its transaction
   * id, so a repeat is answered with the original outcome, never applied
   * twice. A refusal from the bank (BankError) is an answer and is returned.
   */
  async run<T>(handle: string, call: (client: BankClient, session: CustomerSession) => Promise<T>): Promise<T> {
    const deadline = this.clock() + (this.options.inDoubtBudgetMs ?? 8_000);
    for (;;) {
      const { client, session } = await this.liveSession(handle, deadline);
      try {
        return await call(client, session);
      } catch (error) {
        // The bank ended this session (a newer login, a password change): let go of its keys there too.
        if (error instanceof BankError && error.code === 'ERR_NOT_LOGGED_IN') void this.logout(handle);
        if (!(error instanceof ProtocolError) || this.clock() >= deadline) throw error;
        // No answer: treat this node as gone, so the repeat goes to the next one.
        if (!client.closed) client.close(new ProtocolError('ERR_TIMEOUT', 'no answer in time; moving on'));
      }
    }
  }

  async logout(handle: string, context: CallContext = {}): Promise<void> {
    const customer = this.customers.get(handle);
    this.customers.delete(handle);
    if (customer && this.isLive(customer) && customer.client && customer.session) {
      await customer.client.logout(customer.session, context).catch(() => undefined);
    }
  }

  /**
   * Forgets every other session of this customer on this ATM (after a
   * password change): their web sessions find no bank session and are asked
   * to log in again. The bank has already ended them on its side.
   */
  endOtherSessions(username: string, keepHandle: string): number {
    let ended = 0;
    for (const [handle, customer] of this.customers) {
      if (handle === keepHandle || customer.username !== username) continue;
      void this.logout(handle);
      ended += 1;
    }
    return ended;
  }

  private isLive(customer: Customer): boolean {
    return customer.client !== null && customer.session !== null && customer.client.hasSession(customer.session);
  }

  /** The customer's session on the current link, reopened with their ticket if the link moved. */
  private async liveSession(handle: string, deadline: number): Promise<CustomerHandle> {
    for (;;) {
      const customer = this.customers.get(handle);
      if (!customer) throw sessionEnded();
      customer.lastUsed = this.clock();
      if (this.isLive(customer) && customer.client && customer.session) {
        return { client: customer.client, session: customer.session };
      }
      const ticket = customer.ticket;
      if (ticket === null) {
        this.customers.delete(handle);
        throw sessionEnded();
      }
      await this.waitUntilAvailable(Math.max(0, deadline - this.clock()));
      const client = this.client();
      customer.resuming ??= client
        .resume(ticket)
        .then((session) => {
          customer.client = client;
          customer.session = session;
          customer.ticket = session.ticket ?? ticket;
        })
        .finally(() => (customer.resuming = null));
      try {
        await customer.resuming;
      } catch (error) {
        if (error instanceof BankError) {
          // The bank would not reopen it (expired, account locked): the customer logs in again.
          this.customers.delete(handle);
          throw sessionEnded();
        }
        if (this.clock() >= deadline) throw error;
      }
    }
  }

  get customerCount(): number {
    return this.customers.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pingTimer);
    clearInterval(this.sweepTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const handles = [...this.customers.keys()];
    await Promise.all(handles.map((handle) => this.logout(handle)));
    this.current?.close();
    this.current = null;
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.available) return;
    const { banks, credential, logger } = this.options;
    const atmId = credential.atmId;
    const index = this.nextBank % banks.length;
    const { host, port } = banks[index] ?? { host: '', port: 0 };
    try {
      const client = await BankClient.connect({
        host,
        port,
        credential,
        random: this.random,
        handshakeTimeoutMs: this.options.connectTimeoutMs ?? 1_500,
        requestTimeoutMs: this.options.requestTimeoutMs ?? 5_000,
        onNotice: (notice) => this.witness(notice),
      });
      if (this.stopped) {
        client.close();
        return;
      }
      this.current = client;
      this.currentBank = { host, port };
      this.failedInARow = 0;
      this.backoffMs = this.options.initialBackoffMs ?? 100;
      if (this.options.witness) this.watchAudit(client);
      logger.info(
        { atm: atmId, action: 'bank_link', outcome: 'connected' },
        `connected to the bank at ${host}:${port}`,
      );
      client.onClose((reason) => this.onClientClosed(client, reason.code));
    } catch (error) {
      this.nextBank = index + 1;
      this.failedInARow += 1;
      logger.warn(
        { atm: atmId, action: 'bank_link', outcome: error instanceof Error ? error.message : 'failed' },
        `bank node ${host}:${port} unreachable`,
      );
      this.scheduleRetry();
    }
  }

  private onClientClosed(client: BankClient, code: string): void {
    if (this.current !== client) return;
    this.current = null;
    // Customers with a ticket stay logged in: their sessions reopen on the next link when next used.
    for (const [handle, customer] of this.customers) {
      if (customer.client !== client) continue;
      if (customer.ticket === null) this.customers.delete(handle);
      customer.client = null;
      customer.session = null;
    }
    if (this.stopped) return;
    this.options.logger.warn(
      { atm: this.options.credential.atmId, action: 'bank_link', outcome: code },
      'bank connection lost; moving to the next node',
    );
    // That node just failed us: start with the next one, at once.
    this.nextBank += 1;
    this.failedInARow = 1;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    // Another node not yet tried in this round: go now. Otherwise back off, with
    // jitter so many ATMs do not reconnect in lockstep after a bank restart.
    const untried = this.failedInARow < this.options.banks.length;
    const delay = untried ? 0 : Math.round(this.backoffMs * (0.5 + Math.random() / 2));
    if (!untried) {
      this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 5_000);
      this.failedInARow = 0;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.start();
    }, delay);
    this.retryTimer.unref();
  }

  /** Subscribes to the bank's checkpoints; a refusal costs a log line (and this connection's witness), never the link. */
  private watchAudit(client: BankClient): void {
    client.watchAudit().catch((error: unknown) => {
      if (client.closed) return;
      this.options.logger.warn(
        {
          atm: this.options.credential.atmId,
          action: 'audit_witness',
          outcome: error instanceof Error ? error.message : 'failed',
        },
        'the bank did not agree to send audit checkpoints',
      );
    });
  }

  /** Keeps a newer audit checkpoint; a disk that refuses it costs a log line, never the link. */
  private witness(notice: Notice): void {
    const witness = this.options.witness;
    if (!witness || notice.kind !== 'audit_checkpoint') return;
    try {
      witness.offer(checkpointFromNotice(notice));
    } catch (error) {
      this.options.logger.warn(
        {
          atm: this.options.credential.atmId,
          action: 'audit_witness',
          outcome: (error as NodeJS.ErrnoException).code ?? 'error',
        },
        'could not keep the audit checkpoint',
      );
    }
  }

  private async ping(): Promise<void> {
    const client = this.current;
    if (!client || client.closed) return;
    await client.ping().catch((error: unknown) => {
      // A request timing out fails alone; a ping that does means the bank is not answering at all: reconnect.
      if (error instanceof ProtocolError && error.code === 'ERR_TIMEOUT') client.close(error);
    });
  }

  private sweepIdleCustomers(): void {
    const idleMs = this.options.customerIdleMs ?? 15 * 60_000;
    const now = this.clock();
    for (const [handle, customer] of this.customers) {
      if (now - customer.lastUsed > idleMs) void this.logout(handle);
    }
  }
}

function sessionEnded(): BankError {
  return new BankError('ERR_NOT_LOGGED_IN', 'Your session has ended. Please log in again.');
}
