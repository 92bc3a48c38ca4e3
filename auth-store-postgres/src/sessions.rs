//! [`SessionStore`] on the `sessions` table.

use std::net::IpAddr;

use async_trait::async_trait;
use auth_core::TokenHash;
use auth_core::store::{AuthMethod, SessionId, SessionRecord, SessionStore, StoreError, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;
use crate::error::InvalidRow;

/// The columns of [`SessionRow`], as a literal for `concat!`.
macro_rules! session_columns {
    () => {
        "id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, \
         absolute_expires_at, revoked_at, ip, user_agent, authenticated_at, methods"
    };
}

pub(crate) const CREATE_SESSION: &str = concat!(
    "INSERT INTO {schema}.sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

/// The authenticate hot path: one unique-index lookup.
pub(crate) const SESSION_BY_TOKEN: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM {schema}.sessions WHERE token_hash = $1"
);

/// Activity never revives a revoked session (the row lock makes a touch that
/// races a revocation re-check `revoked_at` after it commits) and never moves the
/// idle deadline past the absolute one.
pub(crate) const TOUCH_SESSION: &str = "\
UPDATE {schema}.sessions SET last_seen_at = $2, idle_expires_at = LEAST($3, absolute_expires_at)
WHERE token_hash = $1 AND revoked_at IS NULL";

/// Every live session of every user (incident response), in one statement.
pub(crate) const REVOKE_ALL_SESSIONS: &str =
    "UPDATE {schema}.sessions SET revoked_at = $1 WHERE revoked_at IS NULL";

pub(crate) const REVOKE_SESSION: &str = "\
UPDATE {schema}.sessions SET revoked_at = $3
WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL";

/// Every session of the user but `$2` (none when `$2` is NULL), in one statement.
pub(crate) const REVOKE_USER_SESSIONS: &str = "\
UPDATE {schema}.sessions SET revoked_at = $3
WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2";

pub(crate) const LIST_USER_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM {schema}.sessions WHERE user_id = $1 AND revoked_at IS NULL",
    " AND idle_expires_at > $2 AND absolute_expires_at > $2",
    " ORDER BY created_at DESC, id DESC"
);

/// Dead sessions: past a deadline, or revoked. The idle deadline is not indexed
/// (so touches stay heap-only updates): this scans the table, which suits a
/// periodic job.
/// One range of heap pages of the cleanup sweep (see
/// [`PgStore::delete_by_page_ranges`]): $2 the first page, $3 the page after
/// the last, read as a TID range scan.
pub(crate) const DELETE_EXPIRED_SESSIONS: &str = "\
DELETE FROM {schema}.sessions
WHERE ctid >= format('(%s,0)', $2::bigint)::tid AND ctid < format('(%s,0)', $3::bigint)::tid
  AND (idle_expires_at <= $1 OR absolute_expires_at <= $1 OR revoked_at <= $1)";

/// The heap pages of `sessions`, where the cleanup sweep ends, and the
/// server's version (a TID range scan needs 14).
pub(crate) const SESSION_PAGES: &str = "\
SELECT pg_relation_size('{schema}.sessions'::regclass) / current_setting('block_size')::bigint,
       current_setting('server_version_num')::int";

/// A `sessions` row.
#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    token_hash: [u8; 32],
    user_id: Uuid,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    authenticated_at: OffsetDateTime,
    /// [`AuthMethod::to_storage`] forms, first factor first.
    methods: Vec<String>,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        let methods = row
            .methods
            .iter()
            .map(|m| AuthMethod::from_storage(m).ok_or_else(|| InvalidRow::error("methods", m)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: SessionId(row.id),
            token_hash: TokenHash(row.token_hash),
            user_id: UserId(row.user_id),
            created_at: row.created_at,
            authenticated_at: row.authenticated_at,
            methods,
            last_seen_at: row.last_seen_at,
            idle_expires_at: row.idle_expires_at,
            absolute_expires_at: row.absolute_expires_at,
            revoked_at: row.revoked_at,
            ip: row.ip,
            user_agent: row.user_agent,
        })
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let methods: Vec<String> = session.methods.iter().map(AuthMethod::to_storage).collect();
        self.run(
            sqlx::query(self.sql.create_session.clone())
                .bind(session.id.0)
                .bind(session.token_hash.0)
                .bind(session.user_id.0)
                .bind(session.created_at)
                .bind(session.last_seen_at)
                .bind(session.idle_expires_at)
                .bind(session.absolute_expires_at)
                .bind(session.revoked_at)
                .bind(session.ip)
                .bind(session.user_agent.as_deref())
                .bind(session.authenticated_at)
                .bind(methods)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> = self
            .run(
                sqlx::query_as(self.sql.session_by_token.clone())
                    .bind(hash.0)
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.map(SessionRecord::try_from).transpose()
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.run(
            sqlx::query(self.sql.touch_session.clone())
                .bind(hash.0)
                .bind(last_seen_at)
                .bind(idle_expires_at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.revoke_session.clone())
                    .bind(user_id.0)
                    .bind(id.0)
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.revoke_user_sessions.clone())
                    .bind(user_id.0)
                    .bind(except.map(|id| id.0))
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn revoke_all_sessions(&self, at: OffsetDateTime) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query(self.sql.revoke_all_sessions.clone())
                    .bind(at)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<SessionRow> = self
            .run(
                sqlx::query_as(self.sql.list_user_sessions.clone())
                    .bind(user_id.0)
                    .bind(now)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_by_page_ranges(
            &self.sql.session_pages,
            &self.sql.delete_expired_sessions,
            before,
        )
        .await
    }
}
