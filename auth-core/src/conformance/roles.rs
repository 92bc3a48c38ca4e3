//! [`RoleStore`] checks: grants, revocations and listings of user roles.

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::store::{Role, RoleStore, StoreError, UserId, UserStore};

/// What the role checks take; its users are created in the same store.
pub type RoleFixture = Fixture<dyn RoleStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: RoleStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> RoleFixture {
    Fixture::new(store, users)
}

fn role(name: &str) -> Role {
    Role::new(name).unwrap()
}

/// A grant answers whether it was new, a revocation whether the user had the
/// role; both are idempotent, and the listing is sorted without duplicates.
pub async fn grant_revoke_and_list(f: RoleFixture) {
    let user = f.user().await;
    assert!(f.store.user_roles(user).await.unwrap().is_empty());
    assert!(
        f.store
            .grant_role(user, &role("editor"), t0())
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .grant_role(user, &role("editor"), t0())
            .await
            .unwrap()
    );
    assert!(
        f.store
            .grant_role(user, &role("admin"), t0())
            .await
            .unwrap()
    );
    assert!(
        f.store
            .grant_role(user, &role("billing:read"), t0())
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.user_roles(user).await.unwrap(),
        [role("admin"), role("billing:read"), role("editor")]
    );
    assert!(f.store.revoke_role(user, &role("editor")).await.unwrap());
    assert!(!f.store.revoke_role(user, &role("editor")).await.unwrap());
    assert!(!f.store.revoke_role(user, &role("never")).await.unwrap());
    assert_eq!(
        f.store.user_roles(user).await.unwrap(),
        [role("admin"), role("billing:read")]
    );
    // Granted again after a revocation, it is new again.
    assert!(
        f.store
            .grant_role(user, &role("editor"), t0())
            .await
            .unwrap()
    );
}

/// A grant to an unknown user is `NotFound`; an unknown user has no roles and
/// nothing to revoke.
pub async fn unknown_users_are_not_found_and_have_no_roles(f: RoleFixture) {
    let _known = f.user().await;
    let nobody = UserId::new_random();
    assert!(matches!(
        f.store.grant_role(nobody, &role("admin"), t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(f.store.user_roles(nobody).await.unwrap().is_empty());
    assert!(!f.store.revoke_role(nobody, &role("admin")).await.unwrap());
}

/// One user's role is not another's, and revoking it from one leaves the other's.
pub async fn roles_belong_to_one_user(f: RoleFixture) {
    let (alice, bob) = (f.user().await, f.user().await);
    f.store
        .grant_role(alice, &role("admin"), t0())
        .await
        .unwrap();
    assert!(f.store.user_roles(bob).await.unwrap().is_empty());
    assert!(!f.store.revoke_role(bob, &role("admin")).await.unwrap());
    assert!(f.store.grant_role(bob, &role("admin"), t0()).await.unwrap());
    assert!(f.store.revoke_role(alice, &role("admin")).await.unwrap());
    assert_eq!(f.store.user_roles(bob).await.unwrap(), [role("admin")]);
}

/// Deleting a user (the purge of unverified accounts) deletes its roles: a user
/// created again under a new id starts with none, and the old id is unknown.
pub async fn deleting_the_user_removes_its_roles(f: RoleFixture) {
    let (gone, stays) = (f.user().await, f.user().await);
    for user in [gone, stays] {
        f.store
            .grant_role(user, &role("admin"), t0())
            .await
            .unwrap();
    }
    let users = f.users.clone().unwrap();
    users.mark_email_verified(stays, t0()).await.unwrap();
    let purged = users
        .delete_unverified_users(t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged.len(), 1);
    assert!(f.store.user_roles(gone).await.unwrap().is_empty());
    assert!(matches!(
        f.store.grant_role(gone, &role("admin"), t0()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(f.store.user_roles(stays).await.unwrap(), [role("admin")]);
}

/// 20 concurrent grants of one role to one user: exactly one is new.
pub async fn twenty_concurrent_grants_have_one_winner(f: RoleFixture) {
    let user = f.user().await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move { store.grant_role(user, &role("admin"), t0()).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(f.store.user_roles(user).await.unwrap(), [role("admin")]);
}
