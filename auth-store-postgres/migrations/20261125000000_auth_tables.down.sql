-- Reverts 20261125000000_auth_tables.up.sql: drops every table; their indexes,
-- constraints, identity sequences and row types go with them.
DROP TABLE audit_log;
DROP TABLE attempt_counters;
DROP TABLE sessions;
DROP TABLE one_time_tokens;
DROP TABLE users;
