-- What one bank node tells the others (server/cluster-signals.ts): terminals
-- revoked on any node, and customers whose sessions a password change ended.
-- Every node polls both tables; plain tables and a timestamp range, which
-- CockroachDB and YugabyteDB accept too (neither has LISTEN/NOTIFY).

CREATE TABLE revoked_atms (
  atm_id     INTEGER PRIMARY KEY CHECK (atm_id >= 0 AND atm_id <= 65535),
  -- ISO 8601, as in each node's revoked-atms file.
  revoked_at TEXT    NOT NULL
);

CREATE TABLE session_ends (
  -- Drawn by the node (random), so no sequence is shared between nodes.
  id         TEXT        PRIMARY KEY,
  account_id BIGINT      NOT NULL REFERENCES accounts (id),
  node_id    TEXT        NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX session_ends_by_time ON session_ends (created_at);
