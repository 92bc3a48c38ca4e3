//! [`UserStore`] checks (S3, S6).

use std::sync::Arc;

use time::Duration;

use super::t0;
use crate::store::{NewUser, StoreError, UserId, UserStore};
use crate::{EmailAddress, PasswordHashString};

/// Holds a store as the checks take it.
pub fn fixture<S: UserStore + 'static>(
    store: Arc<S>,
    _users: Option<Arc<dyn UserStore>>,
) -> Arc<dyn UserStore> {
    store
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::new_random(),
        email: EmailAddress::parse(email).unwrap_or_else(|e| panic!("{email}: {e}")),
        password_hash: Some(PasswordHashString::new(
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
        )),
        created_at: t0(),
    }
}

/// A created user is found by id and by normalised email, with every field.
pub async fn create_and_find(store: Arc<dyn UserStore>) {
    let created = store
        .create_user(new_user("Alice@Example.com"))
        .await
        .unwrap();
    assert_eq!(created.email.as_str(), "Alice@Example.com");
    assert_eq!(created.email.normalized(), "alice@example.com");
    assert_eq!(created.created_at, t0());
    assert_eq!(
        (
            created.email_verified_at,
            created.disabled_at,
            created.reset_required_at
        ),
        (None, None, None)
    );
    let by_id = store.user_by_id(created.id).await.unwrap().unwrap();
    let by_email = store
        .user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, created);
    assert_eq!(by_email, created);
    assert!(
        store
            .user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .user_by_id(UserId::new_random())
            .await
            .unwrap()
            .is_none()
    );
}

/// S3/S6: case variants are one account; a second creation is a conflict.
pub async fn email_is_unique_by_normalized_form(store: Arc<dyn UserStore>) {
    store
        .create_user(new_user("bob@example.com"))
        .await
        .unwrap();
    let again = store.create_user(new_user("BOB@Example.COM")).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    // A lookalike is another account.
    store
        .create_user(new_user("b\u{f6}b@example.com"))
        .await
        .unwrap();
}

/// S3: of 20 concurrent registrations of one email, exactly one creates a user.
pub async fn concurrent_creations_of_one_email_make_one_user(store: Arc<dyn UserStore>) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create_user(new_user("race@example.com")).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
}

/// Verification keeps its first time.
pub async fn mark_email_verified_keeps_the_first_time(store: Arc<dyn UserStore>) {
    let user = store
        .create_user(new_user("erin@example.com"))
        .await
        .unwrap();
    store
        .mark_email_verified(user.id, t0() + Duration::minutes(1))
        .await
        .unwrap();
    store
        .mark_email_verified(user.id, t0() + Duration::minutes(2))
        .await
        .unwrap();
    let user = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(user.email_verified_at, Some(t0() + Duration::minutes(1)));
}

/// Disabled and reset-required flags are set and cleared.
pub async fn disabled_and_reset_required_round_trip(store: Arc<dyn UserStore>) {
    let user = store
        .create_user(new_user("frank@example.com"))
        .await
        .unwrap();
    let at = t0() + Duration::minutes(3);
    store.set_disabled(user.id, Some(at), at).await.unwrap();
    store
        .set_reset_required(user.id, Some(at), at)
        .await
        .unwrap();
    let got = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(
        (got.disabled_at, got.reset_required_at, got.updated_at),
        (Some(at), Some(at), at)
    );
    store.set_disabled(user.id, None, at).await.unwrap();
    store.set_reset_required(user.id, None, at).await.unwrap();
    let got = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!((got.disabled_at, got.reset_required_at), (None, None));
}

/// Updates of a missing user say so.
pub async fn updates_of_unknown_users_are_not_found(store: Arc<dyn UserStore>) {
    let id = UserId::new_random();
    assert!(matches!(
        store.mark_email_verified(id, t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_disabled(id, Some(t0()), t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_reset_required(id, None, t0()).await,
        Err(StoreError::NotFound)
    ));
}

/// S3: purging unverified accounts removes exactly the ones never verified and
/// created before the bound, and frees their addresses.
pub async fn delete_unverified_users_removes_only_old_unverified_ones(store: Arc<dyn UserStore>) {
    let old_unverified = store
        .create_user(new_user("old-unverified@example.com"))
        .await
        .unwrap();
    let old_verified = store
        .create_user(new_user("old-verified@example.com"))
        .await
        .unwrap();
    store
        .mark_email_verified(old_verified.id, t0() + Duration::hours(1))
        .await
        .unwrap();
    let mut young = new_user("young@example.com");
    young.created_at = t0() + Duration::days(7);
    let young = store.create_user(young).await.unwrap();

    let gone = store
        .delete_unverified_users(t0() + Duration::days(7))
        .await
        .unwrap();
    assert_eq!(gone, [old_unverified.id]);
    assert!(store.user_by_id(old_unverified.id).await.unwrap().is_none());
    assert!(
        store
            .user_by_email("old-unverified@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.user_by_id(old_verified.id).await.unwrap().is_some());
    assert!(store.user_by_id(young.id).await.unwrap().is_some());
    // The address is free again.
    store
        .create_user(new_user("old-unverified@example.com"))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_unverified_users(t0() + Duration::days(7))
            .await
            .unwrap()
            .len(),
        1,
        "the new one is also older than the bound (same created_at)"
    );
}

/// Deleting an account removes it and frees its address; another account
/// stays; deleting it again reports that nothing was there.
pub async fn delete_user_removes_the_account_and_frees_its_address(store: Arc<dyn UserStore>) {
    let gone = store
        .create_user(new_user("leaving@example.com"))
        .await
        .unwrap();
    let stays = store
        .create_user(new_user("staying@example.com"))
        .await
        .unwrap();
    assert!(store.delete_user(gone.id).await.unwrap());
    assert!(store.user_by_id(gone.id).await.unwrap().is_none());
    assert!(
        store
            .user_by_email("leaving@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.user_by_id(stays.id).await.unwrap().is_some());
    assert!(!store.delete_user(gone.id).await.unwrap());
    store
        .create_user(new_user("leaving@example.com"))
        .await
        .unwrap();
}
