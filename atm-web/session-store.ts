/**
 * A persistent express-session store in SQLite, in the data directory, so
 * sessions survive an ATM restart and MemoryStore's leak is avoided. Written
 * here because the published better-sqlite3 stores are GPL-licensed or
 * unmaintained; it is the small Store contract and nothing more.
 * Sessions never hold keys: only the username and an opaque handle.
 */
import fs from 'node:fs';

import Database from 'better-sqlite3';
import session from 'express-session';

type Callback<T = void> = (error: unknown, value?: T) => void;

/** Room for every customer a busy ATM could have at once, many times over (a row is well under 1 KB). */
export const DEFAULT_MAX_SESSIONS = 10_000;

export type SessionStoreOptions = {
  clock?: () => number;
  /** Hard cap on rows; a new session beyond it first prunes expired rows, then the longest-idle ones. */
  maxSessions?: number;
};

export class SqliteSessionStore extends session.Store {
  private readonly db: Database.Database;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly clock: () => number;
  private readonly maxSessions: number;

  constructor(
    file: string,
    private readonly defaultTtlMs: number,
    options: SessionStoreOptions = {},
  ) {
    super();
    this.clock = options.clock ?? Date.now;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.db = new Database(file);
    fs.chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, expires INTEGER NOT NULL, data TEXT NOT NULL) STRICT',
    );
    this.db.exec('CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires)');
    this.sweepTimer = setInterval(() => this.sweep(), 60_000);
    this.sweepTimer.unref();
  }

  override get(sid: string, callback: Callback<session.SessionData | null>): void {
    this.run(callback, () => {
      const row = this.db
        .prepare<[string, number], { data: string }>('SELECT data FROM sessions WHERE sid = ? AND expires > ?')
        .get(sid, this.clock());
      return row ? (JSON.parse(row.data) as session.SessionData) : null;
    });
  }

  override set(sid: string, data: session.SessionData, callback?: Callback): void {
    this.run(callback, () => {
      if (!this.has(sid)) this.makeRoom();
      this.db
        .prepare(
          'INSERT INTO sessions (sid, expires, data) VALUES (?, ?, ?) ON CONFLICT (sid) DO UPDATE SET expires = excluded.expires, data = excluded.data',
        )
        .run(sid, this.expiry(data), JSON.stringify(data));
    });
  }

  override touch(sid: string, data: session.SessionData, callback?: Callback): void {
    this.run(callback, () => {
      this.db.prepare('UPDATE sessions SET expires = ? WHERE sid = ?').run(this.expiry(data), sid);
    });
  }

  override destroy(sid: string, callback?: Callback): void {
    this.run(callback, () => {
      this.db.prepare('DELETE FROM sessions WHERE sid = ?').run(sid);
    });
  }

  close(): void {
    clearInterval(this.sweepTimer);
    if (this.db.open) this.db.close();
  }

  private expiry(data: session.SessionData): number {
    const expires = data.cookie?.expires;
    return expires ? new Date(expires).getTime() : this.clock() + this.defaultTtlMs;
  }

  /** Rows stored now (tests and operators). */
  get size(): number {
    return this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM sessions').get()?.n ?? 0;
  }

  private has(sid: string): boolean {
    return (
      this.db.prepare<[string], { one: number }>('SELECT 1 AS one FROM sessions WHERE sid = ?').get(sid) !== undefined
    );
  }

  /**
   * Keeps the store under its cap whatever arrives: expired rows go first;
   * if that is not enough, the sessions idle longest (earliest expiry) make
   * way, so the store's size is bounded by the cap, not by a flood.
   */
  private makeRoom(): void {
    if (this.size < this.maxSessions) return;
    this.sweep();
    const excess = this.size - this.maxSessions + 1;
    if (excess > 0) {
      this.db
        .prepare('DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions ORDER BY expires LIMIT ?)')
        .run(excess);
    }
  }

  private sweep(): void {
    if (this.db.open) this.db.prepare('DELETE FROM sessions WHERE expires <= ?').run(this.clock());
  }

  private run<T>(callback: Callback<T> | undefined, work: () => T): void {
    let value: T;
    try {
      value = work();
    } catch (error) {
      callback?.(error);
      return;
    }
    callback?.(null, value);
  }
}
