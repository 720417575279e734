/**
 * Load against the bank through the full protocol: C ATM connections with S
 * logged-in customer sessions each, a mix of deposits, withdrawals and
 * balance inquiries. Closed loop (each session waits for its answer) finds
 * peak throughput; open loop (requests on a fixed schedule, latency counted
 * from the scheduled time, so stalls are not hidden) measures latency at a
 * given rate.
 */
import type { AtmCredential } from '../protocol/handshake.ts';
import { BankClient, type CustomerSession } from '../protocol/client.ts';
import { BankError } from '../protocol/errors.ts';

/** A bank to load, and the credential of each ATM number the load generator plays (it acts as the operator). */
export type BankTarget = { host: string; port: number; credentialFor(atmId: number): AtmCredential };

export type Session = { client: BankClient; session: CustomerSession; next: number };

let txCounter = 0;
const txId = (): string => `bench-${process.pid}-${(txCounter += 1)}`;

/** One request a session makes in a load loop. */
export type Operation = (s: Session) => Promise<void>;

/** One operation of the mix: 40% deposit, 30% withdrawal, 30% balance. */
export async function mixedOperation(s: Session): Promise<void> {
  s.next = (s.next + 1) % 10;
  try {
    if (s.next < 4) await s.client.deposit(s.session, txId(), 1_00);
    else if (s.next < 7) await s.client.withdraw(s.session, txId(), 1_00);
    else await s.client.balance(s.session);
  } catch (error) {
    // An overdraft refusal is a completed transaction too.
    if (!(error instanceof BankError && error.code === 'ERR_INSUFFICIENT_FUNDS')) throw error;
  }
}

export async function openSessions(
  target: BankTarget,
  connections: number,
  sessionsEach: number,
  prefix: string,
): Promise<Session[]> {
  const sessions: Session[] = [];
  for (let c = 0; c < connections; c += 1) {
    const client = await BankClient.connect({
      host: target.host,
      port: target.port,
      credential: target.credentialFor(100 + c),
      requestTimeoutMs: 60_000,
    });
    const made = await Promise.all(
      Array.from({ length: sessionsEach }, async (_, s) => {
        const username = `${prefix}${c}x${s}`;
        await client.signup(username, 'bench-password');
        const session = await client.login(username, 'bench-password');
        // Start with money so withdrawals mostly succeed.
        await client.deposit(session, txId(), 1_000_00);
        return { client, session, next: s % 10 };
      }),
    );
    sessions.push(...made);
  }
  return sessions;
}

export async function closedLoop(sessions: Session[], seconds: number): Promise<{ tps: number; latencies: number[] }> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    sessions.map(async (s) => {
      while (performance.now() < deadline) {
        const start = performance.now();
        await mixedOperation(s);
        latencies.push(performance.now() - start);
      }
    }),
  );
  return { tps: latencies.length / seconds, latencies };
}

/**
 * A keepalive through the full record protocol (sealed, MAC-checked,
 * ratcheted both ways) that touches no ledger, audit log or disk: run at
 * the same rate as the mix, it shows the floor this load generator and
 * machine put under every latency.
 */
export const pingOperation: Operation = (s) => s.client.ping();

export async function openLoop(
  sessions: Session[],
  rate: number,
  seconds: number,
  operation: Operation = mixedOperation,
): Promise<{ tps: number; latencies: number[] }> {
  const latencies: number[] = [];
  const total = Math.floor(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  // Requests are due on a fixed schedule whatever the bank does. A session
  // runs one request at a time; a due request with no free session waits in
  // this queue, and that wait counts in its latency (no coordinated omission).
  const due: number[] = [];
  const free = [...sessions];
  let finished = 0;
  let wake: (() => void) | null = null;
  const dispatch = (): void => {
    while (due.length > 0 && free.length > 0) {
      const scheduled = due.shift() ?? 0;
      const session = free.pop();
      if (!session) break;
      void operation(session).then(() => {
        latencies.push(performance.now() - scheduled);
        free.push(session);
        finished += 1;
        dispatch();
        wake?.();
      });
    }
  };
  for (let i = 0; i < total; i += 1) {
    const scheduled = start + i * interval;
    // Never issue a request before its time: that would flatter the latency.
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
    due.push(scheduled);
    dispatch();
  }
  while (finished < total) await new Promise<void>((resolve) => (wake = resolve));
  return { tps: total / ((performance.now() - start) / 1000), latencies };
}

/** Logins back to back on their own connection (bcrypt on the bank's thread pool). */
export function loginStorm(client: BankClient, username: string, stop: () => boolean): Promise<number> {
  return (async () => {
    let count = 0;
    while (!stop()) {
      const session = await client.login(username, 'bench-password');
      await client.logout(session);
      count += 1;
    }
    return count;
  })();
}
