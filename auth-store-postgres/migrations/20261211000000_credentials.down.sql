-- Reverts 20261211000000_credentials.up.sql. The password hashes go back onto
-- `users`; a user without a password gets '!', which no hash format produces
-- and no password verifies against, so the NOT NULL and CHECK of the earlier
-- schema hold (and the up migration leaves that user without a password
-- again). TOTP secrets, recovery codes, challenges and session methods are
-- dropped.
ALTER TABLE sessions DROP CONSTRAINT sessions_methods_present;
ALTER TABLE sessions DROP COLUMN methods;
DROP TABLE challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_credentials;

ALTER TABLE users ADD COLUMN password_hash text NULL,
                  ADD COLUMN password_changed_at timestamptz NULL;
UPDATE users u SET password_hash = p.hash, password_changed_at = p.changed_at
FROM password_credentials p WHERE p.user_id = u.id;
UPDATE users SET password_hash = '!', password_changed_at = created_at
WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL,
                  ALTER COLUMN password_changed_at SET NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_password_hash_present CHECK (password_hash <> '');
DROP TABLE password_credentials;
