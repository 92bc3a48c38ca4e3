-- Credentials apart from identity (DESIGN.md sections 3 and 6): a user may
-- have a password, a TOTP secret and recovery codes, or none of them. Reverted
-- by the .down.sql file of the same version; tests run up, down, up.

-- Passwords move out of `users`, every existing hash with its change time.
CREATE TABLE password_credentials (
    user_id    uuid        NOT NULL,
    -- The PHC string.
    hash       text        NOT NULL,
    -- When the user last chose it (a transparent rehash does not move it).
    changed_at timestamptz NOT NULL,
    CONSTRAINT password_credentials_pkey PRIMARY KEY (user_id),
    CONSTRAINT password_credentials_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT password_credentials_hash_present CHECK (hash <> '')
);
-- '!' is what the down migration writes for a user without a password (no
-- hash format starts with it): such a user has no credential here.
INSERT INTO password_credentials (user_id, hash, changed_at)
SELECT id, password_hash, password_changed_at FROM users WHERE password_hash <> '!';
-- Its CHECK (users_password_hash_present) goes with the column.
ALTER TABLE users DROP COLUMN password_hash, DROP COLUMN password_changed_at;

-- At most one TOTP secret per user (S15), pending until `confirmed_at`. The
-- secret is sealed by the engine (AEAD, key `key_id`); `last_step` is the last
-- accepted time step, moved forward by a compare-and-swap UPDATE so a code is
-- accepted once.
CREATE TABLE totp_credentials (
    user_id      uuid        NOT NULL,
    key_id       text        NOT NULL,
    sealed       bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    confirmed_at timestamptz NULL,
    last_step    bigint      NULL,
    CONSTRAINT totp_credentials_pkey PRIMARY KEY (user_id),
    CONSTRAINT totp_credentials_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    -- A pending secret has accepted no code.
    CONSTRAINT totp_credentials_step_when_confirmed
        CHECK (last_step IS NULL OR confirmed_at IS NOT NULL)
);

-- Single-use recovery codes (S15), as keyed hashes. The primary key serves a
-- use (user and hash), the count of a user's codes and the cascade.
CREATE TABLE recovery_codes (
    user_id    uuid        NOT NULL,
    code_hash  bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz NULL,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (user_id, code_hash),
    CONSTRAINT recovery_codes_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT recovery_codes_hash_length CHECK (octet_length(code_hash) = 32)
);

-- Short-lived single-use challenges of every sign-in method (S4): the keyed
-- hash of the challenge token is the key; a take is one DELETE ... RETURNING
-- bound to the purpose. Rows live minutes, so the cascade from users needs no
-- index of its own.
CREATE TABLE challenges (
    hash       bytea       NOT NULL,
    purpose    text        COLLATE "C" NOT NULL,
    user_id    uuid        NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT challenges_pkey PRIMARY KEY (hash),
    CONSTRAINT challenges_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT challenges_hash_length CHECK (octet_length(hash) = 32),
    CONSTRAINT challenges_purpose_name CHECK (purpose ~ '^[a-z0-9_]{1,32}$'),
    CONSTRAINT challenges_expiry_after_creation CHECK (expires_at > created_at)
);
-- Cleanup of expired challenges.
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);

-- How the user proved who they are for each session (AuthMethod::to_storage,
-- first factor first). Sessions before this migration were password sign-ins.
-- A constant default fills existing rows without rewriting the table; dropping
-- it makes every new session name its methods.
ALTER TABLE sessions ADD COLUMN methods text[] NOT NULL DEFAULT '{password}';
ALTER TABLE sessions ALTER COLUMN methods DROP DEFAULT;
ALTER TABLE sessions ADD CONSTRAINT sessions_methods_present
    CHECK (cardinality(methods) > 0);
