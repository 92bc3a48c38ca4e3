-- Reverts 20261202000000_session_authenticated_at.up.sql.
ALTER TABLE sessions DROP COLUMN authenticated_at;
