//! [`AccountReader`] checks: a backend's own reader answers what its user,
//! password and TOTP stores answer one by one ([`SeparateAccounts`]).

use std::sync::Arc;

use super::{Fixture, t0};
use crate::store::{
    Account, AccountReader, NewUser, PasswordStore, SealedSecret, SeparateAccounts, TotpStore,
    UserId, UserStore,
};
use crate::{EmailAddress, PasswordHashString};

/// The stores an account is made of, and the backend's reader of them.
pub trait AccountStores: AccountReader + UserStore + PasswordStore + TotpStore {}

impl<T: AccountReader + UserStore + PasswordStore + TotpStore> AccountStores for T {}

/// What the account checks take.
pub type AccountFixture = Fixture<dyn AccountStores>;

/// Holds a store as the checks take it.
pub fn fixture<S: AccountStores + 'static>(
    store: Arc<S>,
    _users: Option<Arc<dyn UserStore>>,
) -> AccountFixture {
    Fixture::new(store, None)
}

/// Creates `name@accounts.example.com`, with a password unless `password`
/// is `None`.
async fn create(f: &AccountFixture, name: &str, password: Option<&str>) -> UserId {
    let id = UserId::new_random();
    let email = EmailAddress::parse(&format!("{name}@accounts.example.com")).unwrap();
    let new = NewUser {
        id,
        email,
        password_hash: password.map(PasswordHashString::new),
        created_at: t0(),
    };
    f.store.create_user(new).await.unwrap();
    id
}

/// The account as the backend reads it, by id and by email (which must
/// agree), and as the three stores read it one by one (which must agree too).
async fn read(f: &AccountFixture, id: UserId) -> Option<Account> {
    let store: Arc<dyn AccountStores> = Arc::clone(&f.store);
    let separate = SeparateAccounts::new(store.clone(), store.clone(), store.clone());
    let by_id = f.store.account(id).await.unwrap();
    assert_eq!(by_id, separate.account(id).await.unwrap(), "by id");
    if let Some(account) = &by_id {
        let email = account.user.email.normalized();
        assert_eq!(
            f.store.account_by_email(email).await.unwrap().as_ref(),
            Some(account)
        );
        assert_eq!(
            separate.account_by_email(email).await.unwrap().as_ref(),
            Some(account)
        );
    }
    by_id
}

/// A user with a password, one without, one with a pending and one with a
/// confirmed TOTP secret: each read whole, as the three stores hold it; a
/// later change shows in the next read; unknown ids and addresses are none.
pub async fn accounts_are_read_with_their_credentials(f: AccountFixture) {
    let hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA";
    let with_password = create(&f, "with-password", Some(hash)).await;
    let account = read(&f, with_password).await.unwrap();
    assert_eq!(account.user.id, with_password);
    assert_eq!(
        account.password.map(|p| p.hash),
        Some(PasswordHashString::new(hash))
    );
    assert!(!account.second_factor);

    let without = create(&f, "without-password", None).await;
    let account = read(&f, without).await.unwrap();
    assert_eq!((account.password, account.second_factor), (None, false));

    let sealed = SealedSecret {
        key_id: "k1".into(),
        sealed: vec![1; 40],
    };
    let pending = create(&f, "pending", Some(hash)).await;
    assert!(
        f.store
            .put_pending_totp(pending, &sealed, t0())
            .await
            .unwrap()
    );
    assert!(
        !read(&f, pending).await.unwrap().second_factor,
        "pending is no factor"
    );
    assert!(
        f.store
            .confirm_totp(pending, &sealed, 7, t0())
            .await
            .unwrap()
    );
    assert!(read(&f, pending).await.unwrap().second_factor, "confirmed");

    let newer = "$argon2id$v=19$m=64,t=1,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3";
    f.store
        .set_password(with_password, &PasswordHashString::new(newer), t0())
        .await
        .unwrap();
    f.store
        .set_disabled(with_password, Some(t0()), t0())
        .await
        .unwrap();
    let account = read(&f, with_password).await.unwrap();
    assert_eq!(
        account.password.map(|p| p.hash),
        Some(PasswordHashString::new(newer))
    );
    assert_eq!(account.user.disabled_at, Some(t0()));

    assert_eq!(read(&f, UserId::new_random()).await, None);
    let unknown = "nobody@accounts.example.com";
    assert_eq!(f.store.account_by_email(unknown).await.unwrap(), None);
}
