/**
 * Assembles ATM number N: its bank link, session store and secret (kept in
 * the data directory), and the web app. `main.ts` and `bin/start.ts` call this;
 * it is the only place the web app listens.
 */
import fs from 'node:fs';
import path from 'node:path';

import { atmKeyFileName, createSecretFile, readAtmCredential } from '../runtime/key-files.ts';
import { secureRandom } from '../protocol/crypto.ts';
import { silentLogger, type Logger } from '../runtime/logger.ts';
import { listenOn } from '../runtime/listen.ts';
import { createApp, SESSION_IDLE_MS, type AtmAppDeps } from './app.ts';
import { AuditWitness, auditHeadFile } from './audit-witness.ts';
import { BankLink, type BankEndpoint, type BankLinkOptions } from './bank-link.ts';
import { createLimitedServer, DEFAULT_HTTP_LIMITS, type HttpLimits } from './http-limits.ts';
import { SqliteSessionStore } from './session-store.ts';

export const ATM_PORT_BASE = 5000;
export const MAX_ATM_NUMBER = 65535 - ATM_PORT_BASE;

export type AtmOptions = {
  atmId: number;
  /** The bank's nodes; the ATM moves to the next when its link dies. */
  banks: BankEndpoint[];
  dataDir: string;
  host: string;
  /** Defaults to 5000 + atmId; 0 picks a free port (tests). */
  port?: number;
  secureCookies?: boolean;
  authRateLimit?: AtmAppDeps['authRateLimit'];
  signupRateLimit?: AtmAppDeps['signupRateLimit'];
  sessionIdleMs?: number;
  /** The zone times are shown in when the browser runs no script (default: this process's zone). */
  timeZone?: string;
  /** Connection caps and request deadlines of the HTTP server (defaults in DEFAULT_HTTP_LIMITS). */
  httpLimits?: Partial<HttpLimits>;
  /** Hard cap on stored web sessions. */
  maxWebSessions?: number;
  link?: Partial<Pick<BankLinkOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'pingIntervalMs' | 'requestTimeoutMs'>>;
  logger?: Logger;
  /** The process's metrics registry, served at the ATM's `/metrics`. */
  metricsRegistry?: AtmAppDeps['metricsRegistry'];
};

export type RunningAtm = { url: string; port: number; link: BankLink; close(): Promise<void> };

/** The web session secret: generated on first run, kept 0600 in the data directory. */
function sessionSecret(dataDir: string, atmId: number): string {
  const file = path.join(dataDir, `atm-${atmId}.session-secret`);
  createSecretFile(file, `${secureRandom(32).toString('hex')}\n`);
  return fs.readFileSync(file, 'utf8').trim();
}

export async function startAtm(options: AtmOptions): Promise<RunningAtm> {
  const logger = options.logger ?? silentLogger;
  const keyFile = path.join(options.dataDir, atmKeyFileName(options.atmId));
  if (!fs.existsSync(keyFile)) {
    throw new Error(
      `${keyFile} not found: provision this ATM at the bank first (npm run bank -- provision-atm ${options.atmId} --data-dir <the bank's data dir>) and copy the file here`,
    );
  }
  const credential = readAtmCredential(keyFile, options.atmId);
  const link = new BankLink({
    banks: options.banks,
    credential,
    logger,
    customerIdleMs: options.sessionIdleMs ?? SESSION_IDLE_MS,
    witness: new AuditWitness(auditHeadFile(options.dataDir, options.atmId), options.atmId),
    ...options.link,
  });
  // Connect before serving, but serve even if the bank is down: pages answer 503 until it is back.
  await link.start();
  const sessionStore = new SqliteSessionStore(
    path.join(options.dataDir, `atm-${options.atmId}-sessions.db`),
    SESSION_IDLE_MS,
    options.maxWebSessions === undefined ? {} : { maxSessions: options.maxWebSessions },
  );
  const app = createApp({
    atmId: options.atmId,
    bank: link,
    sessionStore,
    sessionSecret: sessionSecret(options.dataDir, options.atmId),
    secureCookies: options.secureCookies ?? false,
    authRateLimit: options.authRateLimit,
    signupRateLimit: options.signupRateLimit,
    sessionIdleMs: options.sessionIdleMs ?? SESSION_IDLE_MS,
    ...(options.timeZone === undefined ? {} : { timeZone: options.timeZone }),
    logger,
    ...(options.metricsRegistry ? { metricsRegistry: options.metricsRegistry } : {}),
  });
  const server = createLimitedServer(app, { ...DEFAULT_HTTP_LIMITS, ...options.httpLimits });
  const address = await listenOn(server, options.port ?? ATM_PORT_BASE + options.atmId, options.host);
  let closing: Promise<void> | null = null;
  return {
    url: `http://${options.host}:${address.port}`,
    port: address.port,
    link,
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await link.stop();
        server.closeAllConnections();
        await closed;
        sessionStore.close();
      })();
      return closing;
    },
  };
}
