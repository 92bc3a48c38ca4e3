//! [`ChallengeStore`] checks (S4, S15, S16, S17: short-lived single-use
//! challenges).

use std::sync::Arc;

use time::Duration;

use super::{Fixture, t0};
use crate::TokenHash;
use crate::store::{ChallengePurpose, ChallengeStore, NewChallenge, StoreError, UserStore};

/// What the challenge checks take.
pub type ChallengeFixture = Fixture<dyn ChallengeStore>;

/// Holds a store as the checks take it.
pub fn fixture<S: ChallengeStore + 'static>(
    store: Arc<S>,
    users: Option<Arc<dyn UserStore>>,
) -> ChallengeFixture {
    Fixture::new(store, users)
}

const OTHER: ChallengePurpose = ChallengePurpose::new("conformance_other");

fn challenge(n: u8, purpose: ChallengePurpose) -> NewChallenge {
    NewChallenge {
        hash: TokenHash([n; 32]),
        purpose,
        user_id: None,
        payload: vec![n, 0, 255, n],
        created_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    }
}

/// A challenge is taken once, with its user and payload; a second take finds
/// nothing; a hash collision is a conflict.
pub async fn take_once_with_payload(f: ChallengeFixture) {
    let user = f.user().await;
    let mut new = challenge(1, ChallengePurpose::SECOND_FACTOR);
    new.user_id = Some(user);
    f.store.insert_challenge(new.clone()).await.unwrap();
    assert!(matches!(
        f.store.insert_challenge(new.clone()).await,
        Err(StoreError::Conflict)
    ));
    let taken = f
        .store
        .take_challenge(ChallengePurpose::SECOND_FACTOR, &new.hash, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            taken.user_id,
            taken.payload,
            taken.created_at,
            taken.expires_at
        ),
        (Some(user), new.payload, new.created_at, new.expires_at)
    );
    let again = f
        .store
        .take_challenge(ChallengePurpose::SECOND_FACTOR, &new.hash, t0())
        .await
        .unwrap();
    assert_eq!(again, None);
}

/// A challenge is bound to its purpose: taking it for another finds nothing
/// and leaves it for its own.
pub async fn challenges_are_purpose_bound(f: ChallengeFixture) {
    let new = challenge(2, ChallengePurpose::SECOND_FACTOR);
    f.store.insert_challenge(new.clone()).await.unwrap();
    assert_eq!(
        f.store
            .take_challenge(OTHER, &new.hash, t0())
            .await
            .unwrap(),
        None
    );
    assert!(
        f.store
            .take_challenge(ChallengePurpose::SECOND_FACTOR, &new.hash, t0())
            .await
            .unwrap()
            .is_some()
    );
}

/// Valid at exactly its deadline, gone one second after; cleanup removes only
/// expired ones.
pub async fn valid_at_the_deadline_and_not_after(f: ChallengeFixture) {
    let (on_time, late, live) = (
        challenge(3, OTHER),
        challenge(4, OTHER),
        challenge(5, OTHER),
    );
    for c in [&on_time, &late] {
        f.store.insert_challenge(c.clone()).await.unwrap();
    }
    let mut live = live;
    live.expires_at = t0() + Duration::hours(1);
    f.store.insert_challenge(live.clone()).await.unwrap();
    let deadline = on_time.expires_at;
    assert!(
        f.store
            .take_challenge(OTHER, &on_time.hash, deadline)
            .await
            .unwrap()
            .is_some()
    );
    let after = deadline + Duration::seconds(1);
    assert_eq!(
        f.store
            .take_challenge(OTHER, &late.hash, after)
            .await
            .unwrap(),
        None
    );
    f.store.delete_expired_challenges(after).await.unwrap();
    assert!(
        f.store
            .take_challenge(OTHER, &live.hash, after)
            .await
            .unwrap()
            .is_some(),
        "a live challenge survives cleanup"
    );
}

/// 50 concurrent takes of one challenge: exactly one gets it.
pub async fn fifty_concurrent_takes_have_one_winner(f: ChallengeFixture) {
    let new = challenge(6, ChallengePurpose::SECOND_FACTOR);
    f.store.insert_challenge(new.clone()).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .take_challenge(ChallengePurpose::SECOND_FACTOR, &new.hash, t0())
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}
