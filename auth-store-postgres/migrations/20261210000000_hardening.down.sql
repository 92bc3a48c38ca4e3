DROP INDEX IF EXISTS users_unverified_created_at_idx;
