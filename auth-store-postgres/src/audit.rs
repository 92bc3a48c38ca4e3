//! [`AuditSink`] on the `audit_log` table.

use std::net::IpAddr;

use async_trait::async_trait;
use auth_core::store::{AuditEvent, AuditKind, AuditSink, StoreError, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;
use crate::error::InvalidRow;

pub(crate) const RECORD: &str = "\
INSERT INTO {schema}.audit_log (user_id, event, email, ip, user_agent, request_id, details, created_at)
VALUES ($1, $2, $3, $4, $5, $6, jsonb_strip_nulls(jsonb_build_object('detail', $7::text)), $8)";

/// One row per aggregation key: the first occurrence inserts it, the others
/// add one to its count, atomically (the unique partial index on
/// `aggregate_key`).
pub(crate) const RECORD_AGGREGATED: &str = "\
INSERT INTO {schema}.audit_log (user_id, event, email, ip, user_agent, request_id, details, created_at,
                       aggregate_key)
VALUES ($1, $2, $3, $4, $5, $6, jsonb_strip_nulls(jsonb_build_object('detail', $7::text)), $8, $9)
ON CONFLICT (aggregate_key) WHERE aggregate_key IS NOT NULL
DO UPDATE SET count = audit_log.count + 1";

/// One batch of retention ($2 rows at most), oldest first through the
/// index, so each batch starts where the last one ended.
pub(crate) const DELETE_BEFORE: &str = "\
DELETE FROM {schema}.audit_log WHERE id = ANY(ARRAY(
  SELECT id FROM {schema}.audit_log WHERE created_at < $1
  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED))";

pub(crate) const EVENTS_FOR_USER: &str = "\
SELECT user_id, event, email, ip, user_agent, request_id, details->>'detail' AS detail, created_at,
       count
FROM {schema}.audit_log WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2";

/// An `audit_log` row.
#[derive(sqlx::FromRow)]
struct AuditRow {
    user_id: Option<Uuid>,
    event: String,
    email: Option<String>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    request_id: Option<String>,
    detail: Option<String>,
    created_at: OffsetDateTime,
    count: i32,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let kind = AuditKind::from_name(&row.event)
            .ok_or_else(|| InvalidRow::error("event", &row.event))?;
        Ok(Self {
            at: row.created_at,
            kind,
            user_id: row.user_id.map(UserId),
            email: row.email,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            detail: row.detail,
            count: u32::try_from(row.count).unwrap_or(1),
        })
    }
}

#[async_trait]
impl AuditSink for PgStore {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.run(
            sqlx::query(self.sql.record.clone())
                .bind(event.user_id.map(|id| id.0))
                .bind(event.kind.as_str())
                .bind(event.email.as_deref())
                .bind(event.ip)
                .bind(event.user_agent.as_deref())
                .bind(event.request_id.as_deref())
                .bind(event.detail.as_deref())
                .bind(event.at)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn record_aggregated(
        &self,
        event: AuditEvent,
        window: time::Duration,
    ) -> Result<(), StoreError> {
        let key = event.aggregate_key(window);
        self.run(
            sqlx::query(self.sql.record_aggregated.clone())
                .bind(event.user_id.map(|id| id.0))
                .bind(event.kind.as_str())
                .bind(event.email.as_deref())
                .bind(event.ip)
                .bind(event.user_agent.as_deref())
                .bind(event.request_id.as_deref())
                .bind(event.detail.as_deref())
                .bind(event.at)
                .bind(key)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_in_batches(&self.sql.delete_before, before)
            .await
    }

    async fn events_for_user(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = self
            .run(
                sqlx::query_as(self.sql.events_for_user.clone())
                    .bind(user_id.0)
                    .bind(limit)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }
}
