/**
 * The login storm (issue 12, finding 2): logged-in customers deposit in a
 * closed loop, first alone and then while 400 logins for made-up usernames
 * arrive from 20 ATMs at once (each bcrypt-checked against the dummy hash).
 * What matters is the customers' deposit latency, not the storm's: the
 * password checks run in nice-10 workers behind a bounded fair queue, and
 * what the queue cannot take is refused at once ("busy").
 */
import { BankClient } from '../protocol/client.ts';
import { BankError } from '../protocol/errors.ts';
import { secureRandom } from '../protocol/crypto.ts';
import type { BankTarget } from './load.ts';
import { summarize, type LatencySummary } from './stats.ts';

export type StormResult = {
  /** Deposits with no storm, for comparison. */
  quiet: LatencySummary;
  /** Deposits while the storm ran. */
  storm: LatencySummary;
  stormSeconds: number;
  logins: { refused: number; busy: number; failed: number };
};

const txId = (): string => `storm-${secureRandom(12).toString('base64url')}`;

async function depositLoop(
  customers: Array<{ client: BankClient; session: Awaited<ReturnType<BankClient['login']>> }>,
  until: () => boolean,
): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    customers.map(async ({ client, session }) => {
      while (!until()) {
        const started = performance.now();
        await client.deposit(session, txId(), 100);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

export async function loginStormPhase(
  target: BankTarget,
  options: { customers: number; quietSeconds: number; logins: number; atms: number },
): Promise<StormResult> {
  const connect = (atmId: number): Promise<BankClient> =>
    BankClient.connect({
      host: target.host,
      port: target.port,
      credential: target.credentialFor(atmId),
      requestTimeoutMs: 60_000,
    });
  const home = await connect(500);
  const customers = [];
  for (let i = 0; i < options.customers; i += 1) {
    const username = `storm-customer-${i}`;
    await home.signup(username, 'bench-password');
    customers.push({ client: home, session: await home.login(username, 'bench-password') });
  }
  const quietEnd = performance.now() + options.quietSeconds * 1000;
  const quiet = await depositLoop(customers, () => performance.now() > quietEnd);

  const attackers = await Promise.all(Array.from({ length: options.atms }, (_, i) => connect(600 + i)));
  const logins = { refused: 0, busy: 0, failed: 0 };
  let stormOver = false;
  const started = performance.now();
  const perAtm = Math.ceil(options.logins / options.atms);
  const storm = Promise.all(
    attackers.map((client, a) =>
      Promise.all(
        Array.from({ length: perAtm }, async (_, i) => {
          try {
            await client.login(`nobody-${a}-${i}`, 'not-the-password');
            logins.failed += 1;
          } catch (error) {
            if (error instanceof BankError && error.code === 'ERR_AUTH_FAILED') logins.refused += 1;
            else if (error instanceof BankError && error.code === 'ERR_BUSY') logins.busy += 1;
            else logins.failed += 1;
          }
        }),
      ),
    ),
  ).then(() => {
    stormOver = true;
  });
  const during = await depositLoop(customers, () => stormOver);
  await storm;
  const stormSeconds = (performance.now() - started) / 1000;
  for (const client of [home, ...attackers]) client.close();
  return { quiet: summarize(quiet), storm: summarize(during), stormSeconds, logins };
}
