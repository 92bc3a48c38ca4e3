//! [`RecoveryCodeStore`] checks (S15).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::TokenHash;
use crate::store::{RecoveryCodeStore, UserStore};

/// What the recovery-code checks take.
pub type RecoveryFixture = Fixture<dyn RecoveryCodeStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: RecoveryCodeStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> RecoveryFixture {
    Fixture::new(store, users)
}

fn codes(from: u8, n: u8) -> Vec<TokenHash> {
    (from..from + n).map(|i| TokenHash([i; 32])).collect()
}

/// S15: each code is used once; codes are per user; a replacement drops every
/// older code, used or not.
pub async fn codes_are_single_use_per_user_and_replaced_whole(f: RecoveryFixture) {
    let (alice, bob) = (f.user().await, f.user().await);
    assert_eq!(f.store.recovery_codes_left(alice).await.unwrap(), 0);
    f.store
        .replace_recovery_codes(alice, &codes(1, 10), t0())
        .await
        .unwrap();
    assert_eq!(f.store.recovery_codes_left(alice).await.unwrap(), 10);
    let at = t0() + Duration::minutes(1);
    assert!(
        !f.store
            .use_recovery_code(bob, &TokenHash([1; 32]), at)
            .await
            .unwrap(),
        "another user's code"
    );
    assert!(
        f.store
            .use_recovery_code(alice, &TokenHash([1; 32]), at)
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .use_recovery_code(alice, &TokenHash([1; 32]), at)
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .use_recovery_code(alice, &TokenHash([99; 32]), at)
            .await
            .unwrap()
    );
    assert_eq!(f.store.recovery_codes_left(alice).await.unwrap(), 9);
    f.store
        .replace_recovery_codes(alice, &codes(50, 10), at)
        .await
        .unwrap();
    assert_eq!(f.store.recovery_codes_left(alice).await.unwrap(), 10);
    assert!(
        !f.store
            .use_recovery_code(alice, &TokenHash([2; 32]), at)
            .await
            .unwrap(),
        "an old code is gone"
    );
    f.store
        .replace_recovery_codes(alice, &[], at)
        .await
        .unwrap();
    assert_eq!(f.store.recovery_codes_left(alice).await.unwrap(), 0);
}

/// S15: 16 concurrent uses of one code: exactly one succeeds.
pub async fn concurrent_uses_of_one_code_have_one_winner(f: RecoveryFixture) {
    let user = f.user().await;
    f.store
        .replace_recovery_codes(user, &codes(1, 3), t0())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .use_recovery_code(user, &TokenHash([2; 32]), t0())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(f.store.recovery_codes_left(user).await.unwrap(), 2);
}
