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
pub mod accounts;
pub mod attempts;
pub mod audit;
pub mod challenges;
pub mod engine;
pub mod passwords;
pub mod recovery_codes;
pub mod roles;
pub mod session_cache;
pub mod sessions;
pub mod tokens;
pub mod totp;
pub mod users;

use std::sync::Arc;

use time::OffsetDateTime;

pub use engine::Harness;

use crate::store::{
    AccountReader, AllStores, AttemptStore, AuditSink, ChallengeStore, NewUser, PasswordStore,
    RecoveryCodeStore, RoleStore, SessionStore, SessionUserCache, TokenStore, TotpStore, UserId,
    UserStore,
};
use crate::{EmailAddress, PasswordHashString};

/// One store of each kind, possibly from different backends.
#[derive(Clone)]
pub struct Stores {
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// The reader of users with their credentials, when the backend keeps
    /// them together (the engine checks then run over it).
    pub accounts: Option<Arc<dyn AccountReader>>,
    /// Passwords.
    pub passwords: Arc<dyn PasswordStore>,
    /// TOTP secrets.
    pub totp: Arc<dyn TotpStore>,
    /// Recovery codes.
    pub recovery_codes: Arc<dyn RecoveryCodeStore>,
    /// Challenges.
    pub challenges: Arc<dyn ChallengeStore>,
    /// Tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The sessions' user snapshots, when the session backend keeps them
    /// (the engine checks then run over them too).
    pub session_cache: Option<Arc<dyn SessionUserCache>>,
    /// Attempt counters.
    pub attempts: Arc<dyn AttemptStore>,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
    /// User roles.
    pub roles: Arc<dyn RoleStore>,
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
            accounts: Some(store.clone()),
            passwords: store.clone(),
            totp: store.clone(),
            recovery_codes: store.clone(),
            challenges: store.clone(),
            tokens: store.clone(),
            sessions: store.clone(),
            session_cache: None,
            attempts: store.clone(),
            audit: store.clone(),
            roles: store,
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
            password_hash: Some(hash),
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
                    mark_email_verified_keeps_the_first_time,
                    disabled_and_reset_required_round_trip,
                    updates_of_unknown_users_are_not_found,
                    delete_unverified_users_removes_only_old_unverified_ones,
                    delete_user_removes_the_account_and_frees_its_address,
                ]
            );
        }
    };
}

/// Runs every [`PasswordStore`], [`TotpStore`] and [`RecoveryCodeStore`]
/// check; `$make` evaluates to a fresh store that also implements
/// [`UserStore`] (credentials belong to existing users).
#[macro_export]
macro_rules! credential_store_tests {
    ($make:expr) => {
        mod password_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                passwords,
                $make,
                same,
                [
                    created_password_is_found_and_set_moves_changed_at,
                    set_password_if_is_compare_and_swap,
                    replace_password_hash_is_compare_and_swap,
                    set_password_of_an_unknown_user_is_not_found,
                ]
            );
        }
        mod totp_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                totp,
                $make,
                same,
                [
                    pending_then_confirmed,
                    steps_are_accepted_once_and_in_order,
                    concurrent_uses_of_one_step_have_one_winner,
                ]
            );
        }
        mod recovery_code_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                recovery_codes,
                $make,
                same,
                [
                    codes_are_single_use_per_user_and_replaced_whole,
                    concurrent_uses_of_one_code_have_one_winner,
                ]
            );
        }
    };
}

/// Runs every [`RoleStore`] check; `$make` evaluates to a fresh store that
/// also implements [`UserStore`] (roles belong to existing users).
#[macro_export]
macro_rules! role_store_tests {
    ($make:expr) => {
        mod role_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                roles,
                $make,
                same,
                [
                    grant_revoke_and_list,
                    unknown_users_are_not_found_and_have_no_roles,
                    roles_belong_to_one_user,
                    deleting_the_user_removes_its_roles,
                    twenty_concurrent_grants_have_one_winner,
                ]
            );
        }
    };
}

/// Runs every [`ChallengeStore`] check; `$make` evaluates to a fresh store.
/// Add `, users_in_same_store` as for [`token_store_tests!`](crate::token_store_tests).
#[macro_export]
macro_rules! challenge_store_tests {
    ($make:expr) => { $crate::challenge_store_tests!(@ $make, none); };
    ($make:expr, users_in_same_store) => { $crate::challenge_store_tests!(@ $make, same); };
    (@ $make:expr, $users:tt) => {
        mod challenge_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(challenges, $make, $users, [
                take_once_with_payload, challenges_are_purpose_bound,
                valid_at_the_deadline_and_not_after, fifty_concurrent_takes_have_one_winner,
            ]);
        }
    };
}

/// Runs every [`AccountReader`](crate::store::AccountReader) check; `$make`
/// evaluates to a fresh store that is also the user, password and TOTP
/// store the accounts are read from.
#[macro_export]
macro_rules! account_reader_tests {
    ($make:expr) => {
        mod account_reader_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                accounts,
                $make,
                none,
                [accounts_are_read_with_their_credentials]
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
/// `, users_in_same_store` as for [`token_store_tests!`](crate::token_store_tests).
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
                revoke_all_sessions_ends_every_users_sessions, creating_a_session_counts_the_users_active_sessions,
            ]);
        }
    };
}

/// Runs every [`SessionUserCache`] check; `$make` evaluates to a fresh store
/// that is also the [`SessionStore`] the snapshots belong to. Add
/// `, users_in_same_store` as for [`token_store_tests!`](crate::token_store_tests).
#[macro_export]
macro_rules! session_cache_tests {
    ($make:expr) => { $crate::session_cache_tests!(@ $make, none); };
    ($make:expr, users_in_same_store) => { $crate::session_cache_tests!(@ $make, same); };
    (@ $make:expr, $users:tt) => {
        mod session_cache_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(session_cache, $make, $users, [
                snapshots_are_kept_with_their_session,
                a_put_with_an_old_stamp_is_refused,
                invalidation_reaches_every_session_of_the_user_only,
                revoked_sessions_keep_no_snapshot,
                a_stale_snapshot_can_never_outlive_the_change,
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
                    counters_read_together_read_as_each_alone,
                ]
            );
        }
    };
}

/// Runs every [`AuditSink`] check; `$make` evaluates to a fresh store. Add
/// `, users_in_same_store` as for [`token_store_tests!`](crate::token_store_tests).
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
                    totp_sign_in_journey,
                    concurrent_uses_of_one_totp_code_have_one_winner,
                    totp_skew_and_lockout,
                    second_factor_challenges_expire_and_bind_the_password,
                    totp_enrolment_needs_a_recent_sign_in_and_off_needs_proof,
                    regenerating_recovery_codes_needs_a_code_and_mails_the_owner,
                    second_factor_failures_mail_the_owner_and_reach_the_hard_limit,
                    a_locked_second_factor_counts_the_ip_and_a_reset_clears_it,
                    the_seam_asks_for_the_second_factor_the_methods_lack,
                    codes_are_not_spent_for_an_account_that_cannot_sign_in,
                    enabling_totp_ends_the_other_sessions,
                    the_session_that_turned_totp_on_can_change_the_password,
                    an_administrator_removes_a_lost_second_factor,
                    fifty_concurrent_mail_requests_admit_exactly_the_ip_limit,
                    twenty_concurrent_registrations_make_one_user,
                    sixteen_concurrent_resets_have_one_winner,
                    revoke_all_racing_authenticate_leaves_no_usable_session,
                    reset_revokes_every_session_without_login,
                    change_rotates_the_session_and_revokes_the_others,
                    email_case_variants_share_account_and_counter,
                    idle_timeout_and_touch,
                    verification_token_expiry,
                    roles_are_granted_revoked_and_audited,
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
        $crate::account_reader_tests!($make);
        $crate::credential_store_tests!($make);
        $crate::role_store_tests!($make);
        $crate::challenge_store_tests!($make, users_in_same_store);
        $crate::token_store_tests!($make, users_in_same_store);
        $crate::session_store_tests!($make, users_in_same_store);
        $crate::attempt_store_tests!($make);
        $crate::audit_sink_tests!($make, users_in_same_store);
        $crate::engine_conformance_tests!($crate::conformance::Stores::all(::std::sync::Arc::new(
            $make
        )));
    };
}

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or
/// `false`), where a missing service fails a test instead of skipping it.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The value of the environment variable `var` that names a service the
/// calling test needs (`DATABASE_URL`, `REDIS_URL`, ...), or `None` after
/// printing why the test skips (once per `var` and process).
///
/// # Panics
/// In CI ([`in_ci`]) when `var` is unset: CI runs every test.
#[must_use]
pub fn service_url(var: &str, example: &str) -> Option<String> {
    use std::io::Write as _;
    if let Ok(url) = std::env::var(var)
        && !url.trim().is_empty()
    {
        return Some(url);
    }
    assert!(
        !in_ci(),
        "CI is set but {var} is not: these tests must run in CI (for example {var}={example})"
    );
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.iter().any(|v| v == var) {
        said.push(var.to_owned());
        // Past the test harness's capture, so the reason shows without --nocapture.
        let _ = writeln!(
            std::io::stderr(),
            "skipping the tests that need {var}: it is not set (e.g. {var}={example}; \
             with CI=true they fail instead of skipping)"
        );
    }
    None
}

#[cfg(test)]
mod tests {
    /// Every check module's source, by file name.
    const MODULES: [(&str, &str); 14] = [
        ("abuse", include_str!("abuse.rs")),
        ("accounts", include_str!("accounts.rs")),
        ("attempts", include_str!("attempts.rs")),
        ("audit", include_str!("audit.rs")),
        ("challenges", include_str!("challenges.rs")),
        ("engine", include_str!("engine.rs")),
        ("passwords", include_str!("passwords.rs")),
        ("recovery_codes", include_str!("recovery_codes.rs")),
        ("roles", include_str!("roles.rs")),
        ("session_cache", include_str!("session_cache.rs")),
        ("sessions", include_str!("sessions.rs")),
        ("tokens", include_str!("tokens.rs")),
        ("totp", include_str!("totp.rs")),
        ("users", include_str!("users.rs")),
    ];
    /// Public async functions that are helpers for backends' own tests, not
    /// checks (they take several engines).
    const HELPERS: [&str; 1] = ["concurrent_failed_logins_lock_every_engine"];

    /// DESIGN 2: a check cannot exist without running in every backend. Every
    /// top-level `pub async fn` of a check module is named in this file's
    /// macro lists, which every backend invokes.
    #[test]
    fn every_check_is_in_a_macro_list() {
        let lists = include_str!("mod.rs");
        let lists = lists.split("#[cfg(test)]").next().unwrap_or(lists);
        let mut missing = Vec::new();
        let mut checks = 0;
        for (module, source) in MODULES {
            for line in source.lines() {
                let Some(rest) = line.strip_prefix("pub async fn ") else {
                    continue;
                };
                let name = rest.split('(').next().unwrap_or(rest).trim();
                if HELPERS.contains(&name) {
                    continue;
                }
                checks += 1;
                let listed = lists.match_indices(name).any(|(at, _)| {
                    let before = lists[..at].chars().next_back();
                    let after = lists[at + name.len()..].chars().next();
                    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !word(before) && !word(after)
                });
                if !listed {
                    missing.push(format!("{module}::{name}"));
                }
            }
        }
        assert!(checks > 50, "found only {checks} checks");
        assert!(missing.is_empty(), "checks no backend runs: {missing:?}");
    }
}
