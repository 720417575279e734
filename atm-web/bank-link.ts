/**
 * The ATM's one persistent secure connection to the bank, opened at start
 * and kept: reconnects with capped exponential backoff, pings so an idle ATM
 * is not dropped, and holds every logged-in customer's bank session. Session
 * keys live only here, in memory; the web session holds an opaque handle.
 */
import { BankClient, type CustomerSession } from '../protocol/client.ts';
import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import type { LastLogin } from '../protocol/messages.ts';
import type { Logger } from '../runtime/logger.ts';

export type BankLinkOptions = {
  host: string;
  port: number;
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
  requestTimeoutMs?: number;
  clock?: () => number;
};

type Customer = { client: BankClient; session: CustomerSession; lastUsed: number };

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

  constructor(private readonly options: BankLinkOptions) {
    this.random = options.random ?? secureRandom;
    this.clock = options.clock ?? Date.now;
    this.backoffMs = options.initialBackoffMs ?? 100;
    this.pingTimer = setInterval(() => void this.ping(), options.pingIntervalMs ?? 60_000);
    this.pingTimer.unref();
    this.sweepTimer = setInterval(() => this.sweepIdleCustomers(), 60_000);
    this.sweepTimer.unref();
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
  async login(username: string, password: string): Promise<{ handle: string; username: string; lastLogin: LastLogin }> {
    const client = this.client();
    const session = await client.login(username, password);
    const handle = this.random(16).toString('hex');
    this.customers.set(handle, { client, session, lastUsed: this.clock() });
    return { handle, username: session.username, lastLogin: session.lastLogin };
  }

  /** The customer's live bank session, or null when it ended (logout, expiry, reconnect). */
  customer(handle: string): CustomerHandle | null {
    const customer = this.customers.get(handle);
    if (!customer) return null;
    if (!customer.client.hasSession(customer.session)) {
      this.customers.delete(handle);
      return null;
    }
    customer.lastUsed = this.clock();
    return { client: customer.client, session: customer.session };
  }

  async logout(handle: string): Promise<void> {
    const customer = this.customers.get(handle);
    this.customers.delete(handle);
    if (customer && customer.client.hasSession(customer.session)) {
      await customer.client.logout(customer.session).catch(() => undefined);
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
      if (handle === keepHandle || customer.session.username !== username) continue;
      void this.logout(handle);
      ended += 1;
    }
    return ended;
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
    const { host, port, credential, logger } = this.options;
    const atmId = credential.atmId;
    try {
      const client = await BankClient.connect({
        host,
        port,
        credential,
        ...(this.options.random ? { random: this.options.random } : {}),
        requestTimeoutMs: this.options.requestTimeoutMs ?? 30_000,
      });
      if (this.stopped) {
        client.close();
        return;
      }
      this.current = client;
      this.backoffMs = this.options.initialBackoffMs ?? 100;
      logger.info(
        { atm: atmId, action: 'bank_link', outcome: 'connected' },
        `connected to the bank at ${host}:${port}`,
      );
      client.onClose((reason) => this.onClientClosed(client, reason.code));
    } catch (error) {
      logger.warn(
        { atm: atmId, action: 'bank_link', outcome: error instanceof Error ? error.message : 'failed' },
        `bank unreachable; retrying in ${this.backoffMs} ms`,
      );
      this.scheduleRetry();
    }
  }

  private onClientClosed(client: BankClient, code: string): void {
    if (this.current !== client) return;
    this.current = null;
    for (const [handle, customer] of this.customers) if (customer.client === client) this.customers.delete(handle);
    if (this.stopped) return;
    this.options.logger.warn(
      { atm: this.options.credential.atmId, action: 'bank_link', outcome: code },
      'bank connection lost; reconnecting',
    );
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    // Jitter keeps many ATMs from reconnecting in lockstep after a bank restart.
    const delay = Math.round(this.backoffMs * (0.5 + Math.random() / 2));
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 5_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.start();
    }, delay);
    this.retryTimer.unref();
  }

  private async ping(): Promise<void> {
    const client = this.current;
    if (!client || client.closed) return;
    await client.ping().catch(() => undefined);
  }

  private sweepIdleCustomers(): void {
    const idleMs = this.options.customerIdleMs ?? 15 * 60_000;
    const now = this.clock();
    for (const [handle, customer] of this.customers) {
      if (now - customer.lastUsed > idleMs) void this.logout(handle);
    }
  }
}
