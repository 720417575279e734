/**
 * What one bank node tells the others when they share a PostgreSQL ledger:
 * a terminal revoked on any node (`revoke-atm N` writes only that node's
 * `revoked-atms` file), and a customer whose sessions a password change
 * ended. Each node writes its signals to two small tables and polls both
 * every `pollMs` (README, "Several bank nodes": why a poll and not
 * LISTEN/NOTIFY).
 *
 * Delivery is at least once and never lost to a passing failure: a signal
 * that cannot be written yet stays queued and is retried at every poll; a
 * node that could not poll for a while asks, when it can again, for
 * everything since its last successful poll (with slack for transactions
 * that committed late), and skips what it has seen already.
 */
import pg from 'pg';

import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { Revocation } from '../runtime/key-files.ts';

/** Default poll interval: a revocation or a password change reaches every node within about a second. */
export const CLUSTER_POLL_MS = 500;
/** Session ends are asked for back to this long before the last poll (a row's time is its transaction's start). */
const SLACK_SECONDS = 30;
/** Session-end rows older than this are deleted (by whichever node polls); they matter only to live sessions. */
const KEEP_SESSION_ENDS = '1 day';

export type ClusterSignalsOptions = {
  url: string;
  nodeId: string;
  random?: RandomSource;
  pollMs?: number;
  /** A terminal revoked on some node (this one's own included); called at every poll for each. */
  onRevoked: (revocation: Revocation) => void;
  /** Another node ended every session of this account (a password change there). */
  onSessionsEnded: (accountId: number) => void;
  /** The database could not be reached; the signals wait and are retried. */
  onError: (error: Error) => void;
};

type SessionEndRow = { id: string; account_id: string; node_id: string };

const INSERT_REVOCATION =
  'INSERT INTO revoked_atms (atm_id, revoked_at) VALUES ($1, $2) ON CONFLICT (atm_id) DO NOTHING';

/**
 * Writes one revocation straight to the shared table: `revoke-atm N --ledger
 * URL`, which reaches every running node even when the node whose data dir
 * the operator used is stopped. Needs a ledger some node has migrated.
 */
export async function publishRevocation(url: string, revocation: Revocation): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(INSERT_REVOCATION, [revocation.atm, revocation.at]);
  } finally {
    await client.end();
  }
}

export class ClusterSignals {
  private readonly pool: pg.Pool;
  private readonly random: RandomSource;
  private readonly pollMs: number;
  private readonly outbox: { revocations: Revocation[]; sessionEnds: { id: string; accountId: number }[] } = {
    revocations: [],
    sessionEnds: [],
  };
  /** Session-end ids already acted on, with the poll time that first saw them. */
  private readonly seen = new Map<string, number>();
  /** The database's clock at the last successful poll. */
  private polledAt: Date;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private polls = 0;

  private constructor(
    private readonly options: ClusterSignalsOptions,
    pool: pg.Pool,
    polledAt: Date,
  ) {
    this.pool = pool;
    this.random = options.random ?? secureRandom;
    this.pollMs = options.pollMs ?? CLUSTER_POLL_MS;
    this.polledAt = polledAt;
  }

  /** Connects (the ledger has migrated the schema already) and starts polling. */
  static async open(options: ClusterSignalsOptions): Promise<ClusterSignals> {
    const pool = new pg.Pool({ connectionString: options.url, max: 1 });
    pool.on('error', (error) => options.onError(error));
    try {
      const { rows } = await pool.query<{ now: Date }>('SELECT now() AS now');
      const signals = new ClusterSignals(options, pool, rows[0]?.now ?? new Date(0));
      signals.schedule();
      return signals;
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  /** Tells every node about these revocations (written at the next poll; a repeat changes nothing). */
  publishRevocations(revocations: readonly Revocation[]): void {
    this.outbox.revocations.push(...revocations);
  }

  /** Tells every other node to end this account's sessions. */
  publishSessionEnd(accountId: number): void {
    this.outbox.sessionEnds.push({ id: this.random(16).toString('hex'), accountId });
  }

  /** Stops polling after one last try at writing what is queued. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.flush().catch(() => undefined);
    await this.pool.end();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.flush();
      await this.poll();
    } catch (error) {
      this.options.onError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private async flush(): Promise<void> {
    const { revocations, sessionEnds } = this.outbox;
    while (revocations.length > 0) {
      const next = revocations[0];
      if (!next) break;
      await this.pool.query(INSERT_REVOCATION, [next.atm, next.at]);
      revocations.shift();
    }
    while (sessionEnds.length > 0) {
      const next = sessionEnds[0];
      if (!next) break;
      // ON CONFLICT: a retry after a lost answer to an insert that did commit.
      await this.pool.query(
        'INSERT INTO session_ends (id, account_id, node_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
        [next.id, next.accountId, this.options.nodeId],
      );
      this.seen.set(next.id, Date.now());
      sessionEnds.shift();
    }
  }

  private async poll(): Promise<void> {
    const revoked = await this.pool.query<{ atm_id: number; revoked_at: string }>(
      'SELECT atm_id, revoked_at FROM revoked_atms ORDER BY atm_id',
    );
    for (const row of revoked.rows) this.options.onRevoked({ atm: row.atm_id, at: row.revoked_at });
    const ends = await this.pool.query<SessionEndRow & { polled_at: Date }>(
      `SELECT id, account_id, node_id, now() AS polled_at FROM session_ends
        WHERE created_at > $1::timestamptz - INTERVAL '${SLACK_SECONDS} seconds' ORDER BY created_at`,
      [this.polledAt],
    );
    for (const row of ends.rows) {
      if (this.seen.has(row.id)) continue;
      this.seen.set(row.id, Date.now());
      if (row.node_id !== this.options.nodeId) this.options.onSessionsEnded(Number(row.account_id));
    }
    const polledAt = ends.rows[0]?.polled_at;
    if (polledAt) this.polledAt = polledAt;
    else {
      const { rows } = await this.pool.query<{ now: Date }>('SELECT now() AS now');
      this.polledAt = rows[0]?.now ?? this.polledAt;
    }
    // What the slack window no longer returns can be forgotten.
    const forgetBefore = Date.now() - 2 * SLACK_SECONDS * 1000;
    for (const [id, at] of this.seen) if (at < forgetBefore) this.seen.delete(id);
    this.polls += 1;
    if (this.polls % 1000 === 0) {
      await this.pool.query(`DELETE FROM session_ends WHERE created_at < now() - INTERVAL '${KEEP_SESSION_ENDS}'`);
    }
  }
}
