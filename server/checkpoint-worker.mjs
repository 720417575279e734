// Runs SQLite WAL checkpoints on a thread of their own. The bank's own
// connection never checkpoints (wal_autocheckpoint = 0), so copying WAL pages
// into the database file and fsyncing it never stalls the event loop that
// answers transactions. PASSIVE checkpoints never block writers.
//
// Plain JavaScript on purpose: Node 20 worker threads do not get tsx's
// TypeScript loader, and this file has nothing worth typing.
import { parentPort, workerData } from 'node:worker_threads';

import Database from 'better-sqlite3';

const { file, intervalMs } = workerData;
const db = new Database(file);
db.pragma('busy_timeout = 1000');

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or closing: the next tick tries again.
  }
}, intervalMs);

parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
