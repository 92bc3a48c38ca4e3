-- When the user last proved who they are for each session (S14: sensitive
-- operations need a recent sign-in). Existing sessions were signed in when
-- they were created.
ALTER TABLE sessions ADD COLUMN authenticated_at timestamptz NULL;
UPDATE sessions SET authenticated_at = created_at;
ALTER TABLE sessions ALTER COLUMN authenticated_at SET NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_authenticated_after_creation
    CHECK (authenticated_at >= created_at);
