//! [`TokenStore`] checks (S4).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::store::{NewToken, TokenCheck, TokenStore, UserId, UserStore};
use crate::{TokenHash, TokenPurpose};

/// What the token checks take.
pub type TokenFixture = Fixture<dyn TokenStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: TokenStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> TokenFixture {
    Fixture::new(store, users)
}

fn token(n: u8, user: UserId, purpose: TokenPurpose, ttl: Duration) -> NewToken {
    NewToken {
        hash: TokenHash([n; 32]),
        purpose,
        user_id: user,
        created_at: t0(),
        expires_at: t0() + ttl,
    }
}

const RESET: TokenPurpose = TokenPurpose::PasswordReset;
const VERIFY: TokenPurpose = TokenPurpose::EmailVerification;

/// Single use: the second consumption is invalid.
pub async fn consume_once(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(1, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    let h = TokenHash([1; 32]);
    assert_eq!(
        f.store.consume_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Valid(user)
    );
    assert_eq!(
        f.store.consume_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Invalid
    );
}

/// S4: valid at exactly its expiry, expired one second after.
pub async fn valid_at_exactly_expiry_and_expired_one_second_after(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(2, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    f.store
        .insert_token(token(3, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    let expiry = t0() + Duration::minutes(30);
    let late = expiry + Duration::seconds(1);
    assert_eq!(
        f.store
            .consume_token(RESET, &TokenHash([3; 32]), late)
            .await
            .unwrap(),
        TokenCheck::Expired
    );
    assert_eq!(
        f.store
            .consume_token(RESET, &TokenHash([2; 32]), expiry)
            .await
            .unwrap(),
        TokenCheck::Valid(user)
    );
}

/// S4: a token is only valid for its own purpose.
pub async fn tokens_are_purpose_bound(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(4, user, VERIFY, Duration::hours(24)))
        .await
        .unwrap();
    let h = TokenHash([4; 32]);
    assert_eq!(
        f.store.consume_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Invalid
    );
    assert_eq!(
        f.store.consume_token(VERIFY, &h, t0()).await.unwrap(),
        TokenCheck::Valid(user)
    );
}

/// S4: 50 concurrent consumptions of one token: exactly one wins.
pub async fn fifty_concurrent_consumptions_have_one_winner(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(5, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .consume_token(RESET, &TokenHash([5; 32]), t0())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            TokenCheck::Valid(id) => {
                assert_eq!(id, user);
                winners += 1;
            }
            other => assert_eq!(other, TokenCheck::Invalid),
        }
    }
    assert_eq!(winners, 1);
}

/// Peeking answers like consuming but leaves the token usable.
pub async fn peek_does_not_consume(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(6, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    let h = TokenHash([6; 32]);
    assert_eq!(
        f.store.peek_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Valid(user)
    );
    assert_eq!(
        f.store.peek_token(VERIFY, &h, t0()).await.unwrap(),
        TokenCheck::Invalid
    );
    assert_eq!(
        f.store
            .peek_token(RESET, &h, t0() + Duration::hours(1))
            .await
            .unwrap(),
        TokenCheck::Expired
    );
    assert_eq!(
        f.store.consume_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Valid(user)
    );
    assert_eq!(
        f.store.peek_token(RESET, &h, t0()).await.unwrap(),
        TokenCheck::Invalid
    );
}

/// S4: revoking kills the user's unused tokens of one purpose, nothing else.
pub async fn revoke_kills_unused_tokens_of_that_user_and_purpose_only(f: TokenFixture) {
    let (alice, bob) = (f.user().await, f.user().await);
    let ttl = Duration::minutes(30);
    for (n, user, purpose) in [
        (7, alice, RESET),
        (8, alice, RESET),
        (9, alice, VERIFY),
        (10, bob, RESET),
    ] {
        f.store
            .insert_token(token(n, user, purpose, ttl))
            .await
            .unwrap();
    }
    assert_eq!(f.store.revoke_tokens(alice, RESET, t0()).await.unwrap(), 2);
    for n in [7, 8] {
        assert_eq!(
            f.store
                .consume_token(RESET, &TokenHash([n; 32]), t0())
                .await
                .unwrap(),
            TokenCheck::Invalid
        );
    }
    assert_eq!(
        f.store
            .consume_token(VERIFY, &TokenHash([9; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Valid(alice)
    );
    assert_eq!(
        f.store
            .consume_token(RESET, &TokenHash([10; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Valid(bob)
    );
}

/// Cleanup removes expired tokens and keeps live ones.
pub async fn delete_expired_keeps_live_tokens(f: TokenFixture) {
    let user = f.user().await;
    f.store
        .insert_token(token(11, user, RESET, Duration::minutes(30)))
        .await
        .unwrap();
    f.store
        .insert_token(token(12, user, VERIFY, Duration::hours(24)))
        .await
        .unwrap();
    let removed = f
        .store
        .delete_expired_tokens(t0() + Duration::hours(1))
        .await
        .unwrap();
    assert!(removed >= 1, "{removed}");
    let late = t0() + Duration::hours(1);
    assert_eq!(
        f.store
            .consume_token(VERIFY, &TokenHash([12; 32]), late)
            .await
            .unwrap(),
        TokenCheck::Valid(user)
    );
    assert_eq!(
        f.store
            .consume_token(RESET, &TokenHash([11; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Invalid
    );
}

/// A hash never issued is invalid.
pub async fn unknown_hashes_are_invalid(f: TokenFixture) {
    assert_eq!(
        f.store
            .consume_token(RESET, &TokenHash([99; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Invalid
    );
    assert_eq!(
        f.store
            .peek_token(VERIFY, &TokenHash([99; 32]), t0())
            .await
            .unwrap(),
        TokenCheck::Invalid
    );
}
