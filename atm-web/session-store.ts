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

export class SqliteSessionStore extends session.Store {
  private readonly db: Database.Database;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    file: string,
    private readonly defaultTtlMs: number,
    private readonly clock: () => number = Date.now,
  ) {
    super();
    this.db = new Database(file);
    fs.chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, expires INTEGER NOT NULL, data TEXT NOT NULL) STRICT',
    );
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
