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
