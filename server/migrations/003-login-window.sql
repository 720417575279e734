-- The lockout counts password checks in fixed windows (SECURITY.md,
-- "Lockout"): when the account's current window closes, in epoch
-- milliseconds. NULL until the first check after this migration.
ALTER TABLE accounts ADD COLUMN login_window_ends_at BIGINT;
