//! [`TotpStore`] checks (S15).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::store::{SealedSecret, TotpStore, UserStore};

/// What the TOTP checks take.
pub type TotpFixture = Fixture<dyn TotpStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: TotpStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> TotpFixture {
    Fixture::new(store, users)
}

fn sealed(n: u8) -> SealedSecret {
    SealedSecret {
        key_id: format!("k{n}"),
        sealed: vec![n; 40],
    }
}

/// A pending secret is stored, replaced by a newer pending one, and
/// confirmed only when it is still the secret the code was checked against;
/// once confirmed, no pending secret replaces it.
pub async fn pending_then_confirmed(f: TotpFixture) {
    let user = f.user().await;
    assert_eq!(f.store.totp(user).await.unwrap(), None);
    assert!(
        f.store
            .put_pending_totp(user, &sealed(1), t0())
            .await
            .unwrap()
    );
    let later = t0() + Duration::minutes(1);
    assert!(
        f.store
            .put_pending_totp(user, &sealed(2), later)
            .await
            .unwrap()
    );
    let pending = f.store.totp(user).await.unwrap().unwrap();
    assert_eq!(
        (
            pending.secret,
            pending.created_at,
            pending.confirmed_at,
            pending.last_step
        ),
        (sealed(2), later, None, None)
    );
    assert!(
        !f.store
            .confirm_totp(user, &sealed(1), 7, later)
            .await
            .unwrap(),
        "the replaced secret cannot be confirmed"
    );
    assert!(
        f.store
            .confirm_totp(user, &sealed(2), 7, later)
            .await
            .unwrap()
    );
    let confirmed = f.store.totp(user).await.unwrap().unwrap();
    assert_eq!(
        (confirmed.confirmed_at, confirmed.last_step),
        (Some(later), Some(7))
    );
    assert!(
        !f.store
            .put_pending_totp(user, &sealed(3), later)
            .await
            .unwrap(),
        "a confirmed secret is not replaced"
    );
    assert!(
        !f.store
            .confirm_totp(user, &sealed(2), 9, later)
            .await
            .unwrap(),
        "confirming twice does nothing"
    );
    assert_eq!(f.store.totp(user).await.unwrap().unwrap().secret, sealed(2));
}

/// S15: a step is accepted once, only after the last accepted one, and only
/// for a confirmed secret; deleting removes the credential.
pub async fn steps_are_accepted_once_and_in_order(f: TotpFixture) {
    let user = f.user().await;
    f.store
        .put_pending_totp(user, &sealed(1), t0())
        .await
        .unwrap();
    assert!(
        !f.store.accept_totp_step(user, 10).await.unwrap(),
        "a pending secret accepts no code"
    );
    f.store
        .confirm_totp(user, &sealed(1), 10, t0())
        .await
        .unwrap();
    assert!(!f.store.accept_totp_step(user, 10).await.unwrap(), "replay");
    assert!(
        !f.store.accept_totp_step(user, 9).await.unwrap(),
        "older step"
    );
    assert!(f.store.accept_totp_step(user, 11).await.unwrap());
    assert!(!f.store.accept_totp_step(user, 11).await.unwrap());
    assert!(f.store.delete_totp(user).await.unwrap());
    assert!(!f.store.delete_totp(user).await.unwrap());
    assert_eq!(f.store.totp(user).await.unwrap(), None);
    assert!(!f.store.accept_totp_step(user, 12).await.unwrap());
}

/// S15: two (here 16) concurrent uses of one code: exactly one is accepted.
pub async fn concurrent_uses_of_one_step_have_one_winner(f: TotpFixture) {
    let user = f.user().await;
    f.store
        .put_pending_totp(user, &sealed(1), t0())
        .await
        .unwrap();
    f.store
        .confirm_totp(user, &sealed(1), 100, t0())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move { store.accept_totp_step(user, 101).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}
