//! [`AuditSink`] on the `audit_log` table.

use std::net::IpAddr;

use async_trait::async_trait;
use auth_core::store::{AuditEvent, AuditKind, AuditSink, StoreError, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgStore;
use crate::error::InvalidRow;

const RECORD: &str = "\
INSERT INTO audit_log (user_id, event, email, ip, user_agent, request_id, details, created_at)
VALUES ($1, $2, $3, $4, $5, $6, jsonb_strip_nulls(jsonb_build_object('detail', $7::text)), $8)";

pub(crate) const EVENTS_FOR_USER: &str = "\
SELECT user_id, event, email, ip, user_agent, request_id, details->>'detail' AS detail, created_at
FROM audit_log WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2";

/// Every kind this build knows, to read `event` names back. `AuditKind` is
/// non-exhaustive: a kind added to auth-core must be added here too, or rows of
/// that kind fail to load (`StoreError::Other`) instead of being misread.
const KINDS: [AuditKind; 20] = [
    AuditKind::Registered,
    AuditKind::RegistrationDuplicate,
    AuditKind::EmailVerified,
    AuditKind::VerificationResent,
    AuditKind::LoginSucceeded,
    AuditKind::LoginFailed,
    AuditKind::LoginLocked,
    AuditKind::RateLimited,
    AuditKind::AccountLocked,
    AuditKind::ResetRequired,
    AuditKind::PasswordRehashed,
    AuditKind::Logout,
    AuditKind::LogoutAll,
    AuditKind::PasswordResetRequested,
    AuditKind::PasswordReset,
    AuditKind::PasswordChanged,
    AuditKind::PasswordChangeFailed,
    AuditKind::SessionRevoked,
    AuditKind::AccountUnlocked,
    AuditKind::AccountDisabled,
];

fn kind_from_name(name: &str) -> Option<AuditKind> {
    KINDS.into_iter().find(|k| k.as_str() == name)
}

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
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let kind =
            kind_from_name(&row.event).ok_or_else(|| InvalidRow::error("event", &row.event))?;
        Ok(Self {
            at: row.created_at,
            kind,
            user_id: row.user_id.map(UserId),
            email: row.email,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            detail: row.detail,
        })
    }
}

#[async_trait]
impl AuditSink for PgStore {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.run(
            sqlx::query(RECORD)
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

    async fn events_for_user(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = self
            .run(
                sqlx::query_as(EVENTS_FOR_USER)
                    .bind(user_id.0)
                    .bind(limit)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_reads_back_and_is_distinct() {
        for kind in KINDS {
            assert_eq!(kind_from_name(kind.as_str()), Some(kind));
        }
        let mut names: Vec<_> = KINDS.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        assert_eq!(kind_from_name("no_such_event"), None);
    }
}
