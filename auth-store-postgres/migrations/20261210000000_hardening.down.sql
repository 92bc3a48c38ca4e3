DROP INDEX IF EXISTS audit_log_created_at_idx;
DROP INDEX IF EXISTS audit_log_aggregate_key_idx;
ALTER TABLE audit_log
    DROP CONSTRAINT IF EXISTS audit_log_count_positive,
    DROP COLUMN IF EXISTS aggregate_key,
    DROP COLUMN IF EXISTS count;
DROP INDEX IF EXISTS users_unverified_created_at_idx;
