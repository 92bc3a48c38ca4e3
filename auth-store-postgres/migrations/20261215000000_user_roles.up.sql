-- User roles (DESIGN.md section 7): the roles an application's authorization
-- reads, one row per (user, role). Runs in the store's schema (default
-- `auth`), like every migration. Reverted by the .down.sql file of the same
-- version; tests run up, down, up.
--
-- The primary key makes a grant one INSERT ... ON CONFLICT DO NOTHING (of
-- concurrent grants exactly one inserts), serves a user's listing in role
-- order and the cascade. "C" collation orders roles by their bytes, as
-- `Role`'s `Ord` does; the CHECK repeats `Role::new`'s rules.
CREATE TABLE user_roles (
    user_id    uuid        NOT NULL,
    role       text        COLLATE "C" NOT NULL,
    granted_at timestamptz NOT NULL,
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role),
    CONSTRAINT user_roles_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_roles_role_name CHECK (role ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$')
);
