-- Hardening II (issue 15).
-- Purging unverified accounts (S3): `Auth::purge_expired` deletes accounts
-- whose email was never verified, some days after creation. A partial index
-- keeps that a short range scan however many verified users there are.
CREATE INDEX users_unverified_created_at_idx ON users (created_at)
    WHERE email_verified_at IS NULL;

-- Aggregated audit records (S12): refused requests are one row per kind,
-- client, detail and window, with a count, so a flood writes one row. The
-- unique partial index makes the first occurrence insert and the others add
-- one, atomically.
ALTER TABLE audit_log
    ADD COLUMN count integer NOT NULL DEFAULT 1,
    ADD COLUMN aggregate_key text NULL,
    ADD CONSTRAINT audit_log_count_positive CHECK (count >= 1);
CREATE UNIQUE INDEX audit_log_aggregate_key_idx ON audit_log (aggregate_key)
    WHERE aggregate_key IS NOT NULL;
-- Retention (S12): the purge deletes by age.
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);
