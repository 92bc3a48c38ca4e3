//! The conformance suite every backend runs (feature `test-util`).
//!
//! Each check is a `pub async fn` over one store trait (held as `Arc<dyn …>` so
//! concurrency checks can share it), or over a whole engine built on a
//! [`Stores`] bundle. A backend runs all of them with one macro call in an
//! integration test; its crate needs `tokio` (with `macros` and
//! `rt-multi-thread`) as a dev-dependency:
//!
//! ```text
//! // Every trait from one backend:
//! auth_core::store_conformance_tests!(MyStore::connect().await);
//! // Only some traits (the rest of the engine checks run on the memory store):
//! auth_core::session_store_tests!(MySessions::new().await);
//! auth_core::attempt_store_tests!(MyCounters::new().await);
//! auth_core::engine_conformance_tests!(my_stores_bundle().await);
//! ```
//!
//! The expression is evaluated once per test, so each test gets a fresh store
//! (a fresh database, a fresh key prefix) and the tests run in parallel. No check
//! sleeps: times are passed explicitly, or come from a [`crate::clock::MockClock`].

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::missing_panics_doc,
    clippy::indexing_slicing,
    reason = "the conformance suite is test code: a failed check panics with its reason"
)]

pub mod abuse;
pub mod attempts;
pub mod audit;
pub mod engine;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use time::OffsetDateTime;

pub use engine::Harness;

use crate::store::{
    AllStores, AttemptStore, AuditSink, NewUser, SessionStore, TokenStore, UserId, UserStore,
};
use crate::{EmailAddress, PasswordHashString};

/// One store of each kind, possibly from different backends.
#[derive(Clone)]
pub struct Stores {
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Attempt counters.
    pub attempts: Arc<dyn AttemptStore>,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// Every store from one backend.
    pub fn all<S: AllStores + 'static>(store: Arc<S>) -> Self {
        Self {
            users: store.clone(),
            tokens: store.clone(),
            sessions: store.clone(),
            attempts: store.clone(),
            audit: store,
        }
    }
}

/// The fixed instant the checks start at: 2030-01-01 00:00:00 UTC.
#[must_use]
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What a store check works on: the store, and where to create the users its
/// records belong to (backends with foreign keys need real users; others take any
/// id).
pub struct Fixture<T: ?Sized> {
    /// The store under test.
    pub store: Arc<T>,
    users: Option<Arc<dyn UserStore>>,
}

impl<T: ?Sized> std::fmt::Debug for Fixture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("creates_users", &self.users.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Fixture<T> {
    /// A fixture; with `users`, [`Self::user`] creates real users there.
    pub fn new(store: Arc<T>, users: Option<Arc<dyn UserStore>>) -> Self {
        Self { store, users }
    }

    /// A user id for records to belong to: a created user when the fixture has a
    /// user store, else a fresh id.
    pub async fn user(&self) -> UserId {
        let Some(users) = &self.users else {
            return UserId::new_random();
        };
        let id = UserId::new_random();
        let email = EmailAddress::parse(&format!("{}@fixture.example.com", id.0.simple()))
            .unwrap_or_else(|e| panic!("fixture email: {e}"));
        let hash = PasswordHashString::new("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA");
        let new = NewUser {
            id,
            email,
            password_hash: hash,
            created_at: t0(),
        };
        users
            .create_user(new)
            .await
            .unwrap_or_else(|e| panic!("fixture user: {e}"))
            .id
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_users {
    (none, $store:ident) => {
        None
    };
    (same, $store:ident) => {
        Some($store.clone() as ::std::sync::Arc<dyn $crate::store::UserStore>)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($module:ident, $make:expr, $users:tt, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = ::std::sync::Arc::new($make);
                let users = $crate::__conformance_users!($users, store);
                let fixture = $crate::conformance::$module::fixture(store, users);
                $crate::conformance::$module::$case(fixture).await;
            }
        )*
    };
}

/// Runs every [`UserStore`] check; `$make` evaluates to a fresh store.
#[macro_export]
macro_rules! user_store_tests {
    ($make:expr) => {
        mod user_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                users,
                $make,
                none,
                [
                    create_and_find,
                    email_is_unique_by_normalized_form,
                    concurrent_creations_of_one_email_make_one_user,
                    set_password_moves_changed_at_and_clears_reset_required,
                    set_password_if_is_compare_and_swap,
                    replace_password_hash_is_compare_and_swap,
                    mark_email_verified_keeps_the_first_time,
                    disabled_and_reset_required_round_trip,
                    updates_of_unknown_users_are_not_found,
                    delete_unverified_users_removes_only_old_unverified_ones,
                ]
            );
        }
    };
}

/// Runs every [`TokenStore`] check; `$make` evaluates to a fresh store. Add
/// `, users_in_same_store` when the store also implements [`UserStore`] and its
/// tokens must belong to existing users.
#[macro_export]
macro_rules! token_store_tests {
    ($make:expr) => { $crate::token_store_tests!(@ $make, none); };
    ($make:expr, users_in_same_store) => { $crate::token_store_tests!(@ $make, same); };
    (@ $make:expr, $users:tt) => {
        mod token_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(tokens, $make, $users, [
                consume_once, valid_at_exactly_expiry_and_expired_one_second_after, tokens_are_purpose_bound,
                fifty_concurrent_consumptions_have_one_winner, peek_does_not_consume,
                revoke_kills_unused_tokens_of_that_user_and_purpose_only, delete_expired_keeps_live_tokens,
                unknown_hashes_are_invalid,
            ]);
        }
    };
}

/// Runs every [`SessionStore`] check; `$make` evaluates to a fresh store. Add
/// `, users_in_same_store` as for [`token_store_tests!`].
#[macro_export]
macro_rules! session_store_tests {
    ($make:expr) => { $crate::session_store_tests!(@ $make, none); };
    ($make:expr, users_in_same_store) => { $crate::session_store_tests!(@ $make, same); };
    (@ $make:expr, $users:tt) => {
        mod session_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(sessions, $make, $users, [
                create_and_find_by_token, touch_records_activity, touch_never_revives_a_revoked_session,
                revoke_one_is_scoped_to_its_owner, revoke_all_but_the_current_one, list_shows_active_sessions_newest_first,
                delete_expired_keeps_live_sessions, revoke_all_racing_touches_leaves_no_usable_session,
                revoke_all_sessions_ends_every_users_sessions,
            ]);
        }
    };
}

/// Runs every [`AttemptStore`] check; `$make` evaluates to a fresh store.
#[macro_export]
macro_rules! attempt_store_tests {
    ($make:expr) => {
        mod attempt_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                attempts,
                $make,
                none,
                [
                    increment_counts_and_records_the_time,
                    fifty_concurrent_increments_count_fifty,
                    increment_if_unchanged_counts_only_from_the_expected_state,
                    fifty_concurrent_increments_if_unchanged_have_one_winner,
                    counters_expire_ttl_after_the_last_increment,
                    clear_resets_to_zero,
                    keys_are_independent,
                    delete_expired_forgets_only_expired_counters,
                ]
            );
        }
    };
}

/// Runs every [`AuditSink`] check; `$make` evaluates to a fresh store. Add
/// `, users_in_same_store` as for [`token_store_tests!`].
#[macro_export]
macro_rules! audit_sink_tests {
    ($make:expr) => { $crate::audit_sink_tests!(@ $make, none); };
    ($make:expr, users_in_same_store) => { $crate::audit_sink_tests!(@ $make, same); };
    (@ $make:expr, $users:tt) => {
        mod audit_sink_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(audit, $make, $users, [
                events_are_listed_per_user_newest_first,
                aggregated_records_count_and_retention_deletes_by_age,
            ]);
        }
    };
}

/// Runs every engine check over a [`Stores`] bundle; `$make` evaluates to one.
#[macro_export]
macro_rules! engine_conformance_tests {
    ($make:expr) => {
        mod engine_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__engine_cases!(
                $make,
                [
                    full_journey,
                    fifty_concurrent_failed_logins_verify_exactly_the_threshold,
                    bursts_after_each_lock_cannot_reach_the_hard_limit,
                    logins_racing_a_reset_leave_no_session,
                    a_change_racing_a_reset_leaves_the_resets_password,
                    a_disabled_accounts_reset_link_is_refused,
                    sign_ins_beyond_the_cap_end_the_oldest_sessions,
                    revoking_other_sessions_needs_a_recent_sign_in,
                    twenty_concurrent_registrations_make_one_user,
                    sixteen_concurrent_resets_have_one_winner,
                    revoke_all_racing_authenticate_leaves_no_usable_session,
                    reset_revokes_every_session_without_login,
                    change_rotates_the_session_and_revokes_the_others,
                    email_case_variants_share_account_and_counter,
                    idle_timeout_and_touch,
                    verification_token_expiry,
                ]
            );
        }
        mod abuse_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__engine_cases!(
                @abuse $make,
                [
                    reset_mail_limit_is_time_based,
                    attacker_requests_never_block_the_owners_reset,
                    squatting_variants_are_refused_and_unverified_accounts_expire,
                    registration_notices_share_the_mail_limit_and_resets_still_go_out,
                    a_flood_of_refused_requests_keeps_earlier_evidence,
                    rotating_through_the_64s_of_a_48_meets_its_network_limit,
                ]
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __engine_cases {
    (@abuse $make:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let stores: $crate::conformance::Stores = $make;
                $crate::conformance::abuse::$case(stores).await;
            }
        )*
    };
    ($make:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let stores: $crate::conformance::Stores = $make;
                $crate::conformance::engine::$case(stores).await;
            }
        )*
    };
}

/// Runs the whole suite against a backend that implements every store trait;
/// `$make` evaluates to a fresh store (not wrapped in `Arc`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::user_store_tests!($make);
        $crate::token_store_tests!($make, users_in_same_store);
        $crate::session_store_tests!($make, users_in_same_store);
        $crate::attempt_store_tests!($make);
        $crate::audit_sink_tests!($make, users_in_same_store);
        $crate::engine_conformance_tests!($crate::conformance::Stores::all(::std::sync::Arc::new(
            $make
        )));
    };
}

#[cfg(test)]
mod tests {
    /// Every check (a top-level `pub async fn` of a check module with one
    /// parameter, the store or bundle) is named in the macros of this file,
    /// so no check can exist without running in every backend (DESIGN 2).
    #[test]
    fn every_check_runs_in_the_macros() {
        let macros = include_str!("mod.rs");
        let modules = [
            ("abuse", include_str!("abuse.rs")),
            ("attempts", include_str!("attempts.rs")),
            ("audit", include_str!("audit.rs")),
            ("engine", include_str!("engine.rs")),
            ("sessions", include_str!("sessions.rs")),
            ("tokens", include_str!("tokens.rs")),
            ("users", include_str!("users.rs")),
        ];
        let mut checks = 0;
        for (module, source) in modules {
            for item in source.split("\npub async fn ").skip(1) {
                let (name, rest) = item.split_once('(').unwrap();
                let params = rest.split_once(')').unwrap().0;
                if params.matches(':').count() != 1 {
                    continue; // a helper for other crates' tests, not a check
                }
                checks += 1;
                let listed = macros
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == name);
                assert!(listed, "{module}::{name} is in no conformance macro");
            }
        }
        assert!(checks > 50, "{checks} checks found: the parsing broke");
    }
}
