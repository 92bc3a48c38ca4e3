//! [`PasswordStore`] checks (S2, S5).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::PasswordHashString;
use crate::store::{PasswordStore, StoreError, UserId, UserStore};

/// What the password checks take.
pub type PasswordFixture = Fixture<dyn PasswordStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: PasswordStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> PasswordFixture {
    Fixture::new(store, users)
}

fn hash(s: &str) -> PasswordHashString {
    PasswordHashString::new(format!("$argon2id${s}"))
}

/// A user created with a password has it from creation; a set password
/// replaces it and moves `changed_at`.
pub async fn created_password_is_found_and_set_moves_changed_at(f: PasswordFixture) {
    let user = f.user().await;
    let created = f.store.password(user).await.unwrap().unwrap();
    assert_eq!(created.changed_at, t0());
    let later = t0() + Duration::hours(1);
    f.store
        .set_password(user, &hash("new"), later)
        .await
        .unwrap();
    let got = f.store.password(user).await.unwrap().unwrap();
    assert_eq!((got.hash, got.changed_at), (hash("new"), later));
    assert_eq!(f.store.password(UserId::new_random()).await.unwrap(), None);
}

/// S5: a password change only replaces the hash its check read; of concurrent
/// changes from one checked hash exactly one wins, and none lands after a
/// reset replaced that hash.
pub async fn set_password_if_is_compare_and_swap(f: PasswordFixture) {
    let user = f.user().await;
    let checked = f.store.password(user).await.unwrap().unwrap().hash;
    let later = t0() + Duration::minutes(5);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, checked) = (Arc::clone(&f.store), checked.clone());
            tokio::spawn(async move {
                let new = hash(&format!("change{i}"));
                store
                    .set_password_if(user, &checked, &new, later)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one change from one checked hash");
    let current = f.store.password(user).await.unwrap().unwrap();
    assert_eq!(current.changed_at, later);
    f.store
        .set_password(user, &hash("reset"), later)
        .await
        .unwrap();
    assert!(
        !f.store
            .set_password_if(user, &current.hash, &hash("stale"), later)
            .await
            .unwrap()
    );
    let after = f.store.password(user).await.unwrap().unwrap();
    assert_eq!(after.hash, hash("reset"), "the reset's hash stays");
    assert!(
        !f.store
            .set_password_if(UserId::new_random(), &hash("reset"), &hash("x"), later)
            .await
            .unwrap(),
        "an unknown user changes nothing"
    );
}

/// S2: a rehash only replaces the hash it was computed from, and is not a
/// password change.
pub async fn replace_password_hash_is_compare_and_swap(f: PasswordFixture) {
    let user = f.user().await;
    let old = f.store.password(user).await.unwrap().unwrap().hash;
    let later = t0() + Duration::minutes(5);
    f.store
        .set_password(user, &hash("changed"), later)
        .await
        .unwrap();
    // The password changed after the login read the old hash: no replacement.
    assert!(
        !f.store
            .replace_password_hash(user, &old, &hash("rehash"))
            .await
            .unwrap()
    );
    assert!(
        f.store
            .replace_password_hash(user, &hash("changed"), &hash("rehash"))
            .await
            .unwrap()
    );
    let now = f.store.password(user).await.unwrap().unwrap();
    assert_eq!((now.hash, now.changed_at), (hash("rehash"), later));
    assert!(
        !f.store
            .replace_password_hash(UserId::new_random(), &hash("rehash"), &hash("x"))
            .await
            .unwrap()
    );
}

/// Setting the password of a user that does not exist says so.
pub async fn set_password_of_an_unknown_user_is_not_found(f: PasswordFixture) {
    assert!(matches!(
        f.store
            .set_password(UserId::new_random(), &hash("x"), t0())
            .await,
        Err(StoreError::NotFound)
    ));
}
