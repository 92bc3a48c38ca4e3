-- Every table of the auth store (DESIGN.md section 3). Reverted by the .down.sql
-- file of the same version; tests run up, down, up on a fresh database.

-- Accounts. `email_normalized` (NFKC + lowercase, computed by auth-core) is the
-- identity; "C" collation makes its unique index compare bytes.
CREATE TABLE users (
    id                  uuid        NOT NULL,
    email               text        NOT NULL,
    email_normalized    text        COLLATE "C" NOT NULL,
    password_hash       text        NOT NULL,
    email_verified_at   timestamptz NULL,
    password_changed_at timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    disabled_at         timestamptz NULL,
    -- Set when the account reached the hard lockout limit (S6); cleared by a
    -- password reset or an administrator's unlock.
    reset_required_at   timestamptz NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_normalized_key UNIQUE (email_normalized),
    CONSTRAINT users_email_length CHECK (octet_length(email) BETWEEN 3 AND 254),
    CONSTRAINT users_password_hash_present CHECK (password_hash <> '')
);

-- Single-use tokens of every purpose in one table: the purpose is a column
-- that every lookup binds, so a token is only ever found for its own purpose.
-- The keyed hash is the primary key (the trait never addresses a token by id).
CREATE TABLE one_time_tokens (
    token_hash  bytea       NOT NULL,
    purpose     text        NOT NULL,
    user_id     uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz NULL,
    CONSTRAINT one_time_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT one_time_tokens_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT one_time_tokens_purpose_known
        CHECK (purpose IN ('email_verification', 'password_reset')),
    CONSTRAINT one_time_tokens_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT one_time_tokens_expiry_after_creation CHECK (expires_at > created_at)
);
-- revoke_tokens (user, purpose) and the foreign key's cascade (user).
CREATE INDEX one_time_tokens_user_id_purpose_idx ON one_time_tokens (user_id, purpose);
-- Cleanup: expired, or used.
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);
CREATE INDEX one_time_tokens_consumed_at_idx ON one_time_tokens (consumed_at)
    WHERE consumed_at IS NOT NULL;

-- Login sessions (S5), found by the keyed hash of the session token. No index
-- covers last_seen_at or idle_expires_at, so the frequent touch updates stay HOT
-- (heap-only) and the fillfactor leaves room on each page for them.
CREATE TABLE sessions (
    id                  uuid        NOT NULL,
    token_hash          bytea       NOT NULL,
    user_id             uuid        NOT NULL,
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    revoked_at          timestamptz NULL,
    ip                  inet        NULL,
    user_agent          text        NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT sessions_absolute_after_creation CHECK (absolute_expires_at > created_at),
    CONSTRAINT sessions_idle_within_absolute CHECK (idle_expires_at <= absolute_expires_at)
) WITH (fillfactor = 90);
-- A user's sessions: list (newest first), revoke-all, and the cascade.
CREATE INDEX sessions_user_id_created_at_idx ON sessions (user_id, created_at DESC);
-- Cleanup of revoked sessions.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Lockout and rate-limit counters (S6), keyed by AttemptKey::storage_key()
-- (`login:a:<email>`, `login:ip:<addr>`, ...). Incremented by one atomic
-- INSERT ... ON CONFLICT DO UPDATE that restarts an expired counter.
CREATE TABLE attempt_counters (
    counter_key text        COLLATE "C" NOT NULL,
    count       integer     NOT NULL,
    last_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CONSTRAINT attempt_counters_pkey PRIMARY KEY (counter_key),
    CONSTRAINT attempt_counters_count_positive CHECK (count > 0)
);
-- Cleanup of expired counters.
CREATE INDEX attempt_counters_expires_at_idx ON attempt_counters (expires_at);

-- The audit trail (S12). No foreign key to users: the trail outlives accounts
-- and also records events about accounts that do not exist.
CREATE TABLE audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    user_id     uuid        NULL,
    event       text        NOT NULL,
    -- The normalised email the request named (failed logins, reset requests).
    email       text        NULL,
    ip          inet        NULL,
    user_agent  text        NULL,
    request_id  text        NULL,
    -- {"detail": "..."} today; room for structured details later.
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id)
);
-- A user's events, newest first.
CREATE INDEX audit_log_user_id_created_at_idx ON audit_log (user_id, created_at DESC, id DESC)
    WHERE user_id IS NOT NULL;
