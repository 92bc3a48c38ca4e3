//! [`AuditSink`] checks (S12).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::store::{AuditEvent, AuditKind, AuditSink, UserStore};

/// What the audit checks take.
pub type AuditFixture = Fixture<dyn AuditSink>;

/// Holds a store as the checks take it.
pub fn fixture<S: AuditSink + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> AuditFixture {
    Fixture::new(store, users)
}

/// Events come back per user, newest first, every field intact, at most `limit`.
pub async fn events_are_listed_per_user_newest_first(f: AuditFixture) {
    let (user, other) = (f.user().await, f.user().await);
    let event = |n: i64, user, kind| AuditEvent {
        at: t0() + Duration::seconds(n),
        kind,
        user_id: Some(user),
        email: Some("someone@example.com".into()),
        ip: "203.0.113.9".parse().ok(),
        user_agent: Some("agent/1".into()),
        request_id: Some(format!("req-{n}")),
        detail: Some("detail".into()),
        count: 1,
    };
    let kinds = [
        AuditKind::Registered,
        AuditKind::EmailVerified,
        AuditKind::LoginSucceeded,
        AuditKind::Logout,
    ];
    for (n, kind) in (0_i64..).zip(kinds) {
        f.store.record(event(n, user, kind)).await.unwrap();
    }
    f.store
        .record(event(10, other, AuditKind::LoginFailed))
        .await
        .unwrap();
    let anonymous = AuditEvent {
        user_id: None,
        ..event(11, user, AuditKind::LoginFailed)
    };
    f.store.record(anonymous).await.unwrap();

    let got = f.store.events_for_user(user, 3).await.unwrap();
    let got_kinds: Vec<_> = got.iter().map(|e| e.kind).collect();
    assert_eq!(
        got_kinds,
        [
            AuditKind::Logout,
            AuditKind::LoginSucceeded,
            AuditKind::EmailVerified
        ]
    );
    assert_eq!(got[0], event(3, user, AuditKind::Logout));
    assert_eq!(f.store.events_for_user(other, 10).await.unwrap().len(), 1);
}

/// S12: occurrences with one aggregation key in one window are one record
/// with a count; another window or another key is another record; the
/// retention purge deletes by age.
pub async fn aggregated_records_count_and_retention_deletes_by_age(f: AuditFixture) {
    let user = f.user().await;
    let refused = |secs: i64, ip: &str| AuditEvent {
        at: t0() + Duration::seconds(secs),
        kind: AuditKind::RateLimited,
        user_id: Some(user),
        email: None,
        ip: ip.parse().ok(),
        user_agent: None,
        request_id: Some(format!("req-{secs}")),
        detail: Some("login".into()),
        count: 1,
    };
    let window = Duration::minutes(1);
    for secs in 0..50 {
        f.store
            .record_aggregated(refused(secs, "203.0.113.1"), window)
            .await
            .unwrap();
    }
    f.store
        .record_aggregated(refused(10, "203.0.113.2"), window)
        .await
        .unwrap();
    f.store
        .record_aggregated(refused(70, "203.0.113.1"), window)
        .await
        .unwrap();
    let got = f.store.events_for_user(user, 10).await.unwrap();
    let mut counts: Vec<_> = got
        .iter()
        .map(|e| (e.ip.map(|ip| ip.to_string()), e.count))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            (Some("203.0.113.1".into()), 1),
            (Some("203.0.113.1".into()), 50),
            (Some("203.0.113.2".into()), 1)
        ]
    );
    let first = got.iter().find(|e| e.count == 50).unwrap();
    assert_eq!(
        first.request_id.as_deref(),
        Some("req-0"),
        "the first occurrence"
    );

    let gone = f
        .store
        .delete_events_before(t0() + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(gone, 2);
    let left = f.store.events_for_user(user, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at, t0() + Duration::seconds(70));
}
