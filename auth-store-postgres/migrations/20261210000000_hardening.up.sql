-- Hardening II (issue 15).
-- Purging unverified accounts (S3): `Auth::purge_expired` deletes accounts
-- whose email was never verified, some days after creation. A partial index
-- keeps that a short range scan however many verified users there are.
CREATE INDEX users_unverified_created_at_idx ON users (created_at)
    WHERE email_verified_at IS NULL;
