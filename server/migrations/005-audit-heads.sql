-- Audit continuity at a node's start (issue 12.6, 16.5): each node's audit
-- files are its own chain, and every group that moves money stores where
-- that chain stood (the keyed chain head: line number, the SHA-256 of that
-- line, and an HMAC under a key derived from audit.key) in the group's own
-- transaction. At start a node refuses to serve unless its files reach its
-- head. One row per node, overwritten by each such group.
CREATE TABLE audit_heads (
  node_id     TEXT   PRIMARY KEY,
  line_number BIGINT NOT NULL CHECK (line_number >= 0),
  chain_hash  BYTEA  NOT NULL CHECK (octet_length(chain_hash) = 32),
  mac         BYTEA  NOT NULL CHECK (octet_length(mac) = 32)
);

-- Which node applied each movement, so a node whose head row is gone while
-- the journal holds its movements is refused (NULL for rows written before
-- this migration, which no node can vouch for). Counted only at a node's
-- start, and only when its head row is missing, so it has no index.
ALTER TABLE journal ADD COLUMN node_id TEXT;
