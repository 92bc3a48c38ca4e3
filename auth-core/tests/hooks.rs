//! Lifecycle hooks and registration profiles: the application hears of every
//! account it must keep rows for, a refused profile stores nothing, and a
//! failing hook never undoes or fails the change it reports.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::conformance::{Harness, Stores};
use auth_core::hooks::{LifecycleHooks, Profile, ProfileRejected};
use auth_core::mail::MessageKind;
use auth_core::store::{SessionRecord, User, UserId};
use auth_core::{AuthError, BoxError, LoginOutcome, Password};
use auth_store_memory::MemoryStore;

const EMAIL: &str = "hooked@example.com";
const PW: &str = "purple otter sings";

/// Records what it heard; refuses profiles without `display_name`; fails
/// every hook when `fail` is set.
#[derive(Default)]
struct Recorder {
    heard: Mutex<Vec<String>>,
    fail: bool,
}

impl Recorder {
    fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }

    fn note(&self, what: String) -> Result<(), BoxError> {
        self.heard.lock().unwrap().push(what);
        if self.fail {
            Err("the application's database is down".into())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl LifecycleHooks for Recorder {
    fn check_profile(&self, profile: &Profile) -> Result<(), ProfileRejected> {
        if profile.as_json().contains("display_name") {
            Ok(())
        } else {
            Err(ProfileRejected::new("display_name is required"))
        }
    }

    async fn registered(&self, user: &User, profile: Option<&Profile>) -> Result<(), BoxError> {
        self.note(format!(
            "registered {} {}",
            user.email.as_str(),
            profile.map_or("-", Profile::as_json)
        ))
    }

    async fn email_verified(&self, user: &User) -> Result<(), BoxError> {
        self.note(format!("verified {}", user.email.as_str()))
    }

    async fn signed_in(&self, user: &User, session: &SessionRecord) -> Result<(), BoxError> {
        assert_eq!(session.user_id, user.id);
        self.note(format!("signed_in {}", user.email.as_str()))
    }

    async fn password_changed(&self, user: &User) -> Result<(), BoxError> {
        self.note(format!("password_changed {}", user.email.as_str()))
    }

    async fn user_deleted(&self, user: UserId) -> Result<(), BoxError> {
        self.note(format!("deleted {user}"))
    }
}

fn harness(hooks: Arc<Recorder>, enumeration_protection: bool) -> Harness {
    let mut config = Harness::config();
    config.enumeration_protection = enumeration_protection;
    Harness::with_builder(Stores::all(Arc::new(MemoryStore::new())), config, |b| {
        b.hooks(hooks)
    })
}

fn profile() -> Profile {
    Profile::from_json(r#"{"display_name":"Hooky"}"#)
}

#[tokio::test]
async fn without_enumeration_protection_register_returns_the_id_after_the_hook_ran() {
    let hooks = Arc::new(Recorder::default());
    let h = harness(hooks.clone(), false);
    let pw = Password::new(PW);
    let done = h
        .auth
        .register_with_profile(EMAIL, &pw, Some(profile()), &Harness::ctx(1))
        .await
        .unwrap();
    let id = done.user_id.unwrap();
    // The application's row exists when register returns.
    assert_eq!(
        hooks.heard(),
        [format!("registered {EMAIL} {{\"display_name\":\"Hooky\"}}")]
    );
    let stored = h.stores.users.user_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_str(), EMAIL);
}

#[tokio::test]
async fn with_enumeration_protection_the_hook_reports_the_account_created_in_the_background() {
    let hooks = Arc::new(Recorder::default());
    let h = harness(hooks.clone(), true);
    let done = h
        .auth
        .register_with_profile(EMAIL, &Password::new(PW), Some(profile()), &Harness::ctx(1))
        .await
        .unwrap();
    // S3: nothing in the answer depends on the address.
    assert_eq!(done.user_id, None);
    h.auth.settle().await;
    assert_eq!(hooks.heard().len(), 1, "{:?}", hooks.heard());
    // A taken address creates no account, so the hook hears nothing more.
    h.auth
        .register_with_profile(EMAIL, &Password::new(PW), Some(profile()), &Harness::ctx(1))
        .await
        .unwrap();
    h.auth.settle().await;
    assert_eq!(hooks.heard().len(), 1, "{:?}", hooks.heard());
}

#[tokio::test]
async fn a_refused_profile_answers_invalid_profile_and_stores_nothing() {
    for protection in [true, false] {
        let hooks = Arc::new(Recorder::default());
        let h = harness(hooks.clone(), protection);
        let refused = h
            .auth
            .register_with_profile(
                EMAIL,
                &Password::new(PW),
                Some(Profile::from_json("{}")),
                &Harness::ctx(1),
            )
            .await;
        let Err(err @ AuthError::InvalidProfile(_)) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(err.code(), "invalid_profile");
        assert_eq!(err.to_string(), "display_name is required");
        h.auth.settle().await;
        assert!(h.stores.users.user_by_email(EMAIL).await.unwrap().is_none());
        assert!(hooks.heard().is_empty());
        assert_eq!(h.mailer.messages().len(), 0);
    }
}

#[tokio::test]
async fn an_engine_without_hooks_refuses_any_profile_rather_than_drop_it() {
    let h = Harness::new(Stores::all(Arc::new(MemoryStore::new())));
    let refused = h
        .auth
        .register_with_profile(EMAIL, &Password::new(PW), Some(profile()), &Harness::ctx(1))
        .await;
    assert!(
        matches!(refused, Err(AuthError::InvalidProfile(_))),
        "{refused:?}"
    );
    // Without a profile, registration works as before.
    h.auth
        .register(EMAIL, &Password::new(PW), &Harness::ctx(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_lifecycle_step_is_heard_and_a_failing_hook_changes_no_outcome() {
    for fail in [false, true] {
        let hooks = Arc::new(Recorder {
            fail,
            ..Recorder::default()
        });
        let h = harness(hooks.clone(), true);
        let ctx = Harness::ctx(1);
        h.auth
            .register(EMAIL, &Password::new(PW), &ctx)
            .await
            .unwrap();
        let token = h.token(EMAIL, MessageKind::Verification).await;
        h.auth.verify_email(&token, &ctx).await.unwrap();
        let LoginOutcome::SignedIn(login) = h
            .auth
            .login(EMAIL, &Password::new(PW), false, &ctx)
            .await
            .unwrap()
        else {
            panic!("no second factor here");
        };
        let new_pw = Password::new("a different passphrase");
        h.auth
            .change_password(&login.session.token, &Password::new(PW), &new_pw, &ctx)
            .await
            .unwrap();
        let reset = h.reset_token(EMAIL).await;
        h.auth
            .reset_password(&reset, &Password::new("yet another passphrase"), &ctx)
            .await
            .unwrap();
        assert_eq!(
            hooks.heard(),
            [
                format!("registered {EMAIL} -"),
                format!("verified {EMAIL}"),
                format!("signed_in {EMAIL}"),
                format!("password_changed {EMAIL}"),
                format!("password_changed {EMAIL}"),
            ],
            "fail={fail}"
        );
    }
}

#[test]
fn a_profile_s_debug_shows_only_its_size() {
    let debug = format!("{:?}", Profile::from_json(r#"{"ssn":"078-05-1120"}"#));
    assert_eq!(debug, "Profile(21 bytes)");
}

#[tokio::test]
async fn deleting_an_account_frees_its_address_and_tells_the_application() {
    let hooks = Arc::new(Recorder::default());
    let h = harness(hooks.clone(), false);
    let ctx = Harness::ctx(1);
    let id = h
        .auth
        .register(EMAIL, &Password::new(PW), &ctx)
        .await
        .unwrap()
        .user_id
        .unwrap();
    assert!(h.auth.delete_user(id, &ctx).await.unwrap());
    assert!(!h.auth.delete_user(id, &ctx).await.unwrap());
    assert_eq!(hooks.heard().last(), Some(&format!("deleted {id}")));
    assert!(h.stores.users.user_by_id(id).await.unwrap().is_none());
    h.auth
        .register(EMAIL, &Password::new(PW), &ctx)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_purge_of_never_verified_accounts_tells_the_application() {
    let hooks = Arc::new(Recorder::default());
    let h = harness(hooks.clone(), false);
    let id = h
        .auth
        .register(EMAIL, &Password::new(PW), &Harness::ctx(1))
        .await
        .unwrap()
        .user_id
        .unwrap();
    let ttl = h.auth.config().unverified_account_ttl.unwrap();
    h.clock.advance(ttl + time::Duration::seconds(1));
    let purged = h.auth.purge_expired().await.unwrap();
    assert_eq!(purged.unverified_users, 1);
    assert_eq!(hooks.heard().last(), Some(&format!("deleted {id}")));
}
