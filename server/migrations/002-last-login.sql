-- The previous successful login (ISO 8601 time and ATM number), shown to the
-- customer at the next one. Both NULL until the first login after this
-- migration.
ALTER TABLE accounts ADD COLUMN last_login_at TEXT;
ALTER TABLE accounts ADD COLUMN last_login_atm INTEGER;
