//! Engine checks against abuse of the mail, the address space and the audit
//! trail (S3, S6, S11, S12): issue 15. They run over a [`Stores`] bundle like
//! the checks in [`super::engine`].

use time::Duration;

use super::Stores;
use super::engine::Harness;
use crate::mail::MessageKind;
use crate::store::AuditKind;
use crate::{AuthError, Password, RequestContext};

const PW: &str = "purple otter sings";

fn resets(h: &Harness, to: &str) -> usize {
    h.mailer.messages_to(to, MessageKind::PasswordReset).len()
}

async fn request_reset(h: &Harness, email: &str, ctx: &RequestContext) {
    h.auth.request_password_reset(email, ctx).await.unwrap();
    h.auth.settle().await;
}

/// S6: mail limits are time-based. Three reset requests, then two hours
/// later a fourth: it is mailed (3 mails, then 1 min doubling up to 1 h after
/// the last mail sent). Then three mails an hour apart, and the next one
/// still goes out.
pub async fn reset_mail_limit_is_time_based(stores: Stores) {
    let h = Harness::new(stores);
    let owner = "limit-owner@example.com";
    h.verified_user(owner, PW).await;
    for _ in 0..3 {
        request_reset(&h, owner, &Harness::ctx(1)).await;
    }
    assert_eq!(resets(&h, owner), 3);
    // The fourth at once is over the limit.
    request_reset(&h, owner, &Harness::ctx(1)).await;
    assert_eq!(resets(&h, owner), 3);
    h.clock.advance(Duration::hours(2));
    request_reset(&h, owner, &Harness::ctx(1)).await;
    assert_eq!(
        resets(&h, owner),
        4,
        "the request two hours later is mailed"
    );
    for expected in 5..=8 {
        h.clock.advance(Duration::hours(1));
        request_reset(&h, owner, &Harness::ctx(1)).await;
        assert_eq!(resets(&h, owner), expected, "mails an hour apart go out");
    }
}

/// S6: an attacker requesting a reset for the victim every 23 hours, or a
/// burst of a hundred requests, never stops the owner from getting a reset
/// mail within the documented delay (at most 1 h after the last mail sent).
pub async fn attacker_requests_never_block_the_owners_reset(stores: Stores) {
    let h = Harness::new(stores);
    let owner = "victim@example.com";
    h.verified_user(owner, PW).await;
    for day in 0..10_u8 {
        request_reset(&h, owner, &Harness::ctx(100 + day)).await;
        h.clock.advance(Duration::hours(23));
    }
    let before = resets(&h, owner);
    request_reset(&h, owner, &Harness::ctx(1)).await;
    assert_eq!(resets(&h, owner), before + 1, "the owner gets a mail");

    // A burst from many addresses: the mails it gets out count, the refused
    // requests change nothing.
    for ip in 0..100_u8 {
        request_reset(&h, owner, &Harness::ctx(ip)).await;
    }
    let before = resets(&h, owner);
    h.clock.advance(Duration::hours(1));
    request_reset(&h, owner, &Harness::ctx(1)).await;
    assert_eq!(
        resets(&h, owner),
        before + 1,
        "one hour after the burst the owner gets a mail"
    );
}

/// S3, S11: registering a fullwidth variant of someone's address is refused;
/// an unverified registration of the real address is purged after
/// `unverified_account_ttl` (7 days), with its tokens, and the owner can then
/// register it.
pub async fn squatting_variants_are_refused_and_unverified_accounts_expire(stores: Stores) {
    let h = Harness::new(stores);
    let ctx = Harness::ctx(1);
    let pw = Password::new(PW);
    assert!(matches!(
        h.auth
            .register("\u{ff56}ictim@example.com", &pw, &ctx)
            .await,
        Err(AuthError::InvalidEmail(_))
    ));
    // A squatter registers the plain address and never verifies it.
    h.auth
        .register("squatted@example.com", &pw, &Harness::ctx(2))
        .await
        .unwrap();
    let squatter_link = h
        .token("squatted@example.com", MessageKind::Verification)
        .await;
    let squatter = h
        .stores
        .users
        .user_by_email("squatted@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    h.clock.advance(Duration::days(6));
    assert_eq!(h.auth.purge_expired().await.unwrap().unverified_users, 0);
    h.clock.advance(Duration::days(1) + Duration::seconds(1));
    assert_eq!(h.auth.purge_expired().await.unwrap().unverified_users, 1);
    assert!(
        h.stores
            .passwords
            .password(squatter)
            .await
            .unwrap()
            .is_none(),
        "the password goes with the purged account"
    );
    assert!(
        h.stores
            .users
            .user_by_email("squatted@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // The owner registers and verifies; the squatter's link is dead.
    h.auth
        .register("squatted@example.com", &pw, &Harness::ctx(3))
        .await
        .unwrap();
    h.auth.settle().await;
    let mails = h
        .mailer
        .messages_to("squatted@example.com", MessageKind::Verification);
    assert_eq!(mails.len(), 2, "a new verification mail, not a notice");
    let link = h
        .token("squatted@example.com", MessageKind::Verification)
        .await;
    assert!(h.auth.verify_email(&squatter_link, &ctx).await.is_err());
    h.auth.verify_email(&link, &ctx).await.unwrap();
}

/// S3, S6: 20 registrations of a taken address from 20 IPs send the owner at
/// most the per-account limit of notices (3 at once); while further notices
/// are refused, the owner's reset mail still goes out.
pub async fn registration_notices_share_the_mail_limit_and_resets_still_go_out(stores: Stores) {
    let h = Harness::new(stores);
    let owner = "bombed@example.com";
    h.verified_user(owner, PW).await;
    for ip in 0..20_u8 {
        h.auth
            .register(owner, &Password::new(PW), &Harness::ctx(100 + ip))
            .await
            .unwrap();
        // One after the other (concurrent ones may send fewer, never more).
        h.auth.settle().await;
    }
    let notices = |h: &Harness| {
        h.mailer
            .messages_to(owner, MessageKind::DuplicateRegistration)
            .len()
    };
    assert_eq!(notices(&h), 3, "the per-account limit: 3 at once");
    h.auth
        .register(owner, &Password::new(PW), &Harness::ctx(200))
        .await
        .unwrap();
    request_reset(&h, owner, &Harness::ctx(201)).await;
    assert_eq!(notices(&h), 3, "the notice is refused");
    assert_eq!(resets(&h, owner), 1, "the reset mail goes out");
}

/// S12: 10,001 requests refused by the per-IP limit are aggregated; the
/// earlier `login_succeeded` event of a user is still there (the memory sink
/// keeps 10,000 events, so one record per refusal evicted it).
pub async fn a_flood_of_refused_requests_keeps_earlier_evidence(stores: Stores) {
    let h = Harness::new(stores);
    let id = h.verified_user("evidence@example.com", PW).await;
    h.login("evidence@example.com", PW).await;
    let flood = Harness::ctx(250);
    let mut refused = 0;
    for _ in 0..10_011 {
        match h
            .auth
            .request_password_reset("someone@example.com", &flood)
            .await
        {
            Ok(()) => {}
            Err(AuthError::RateLimited { .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused >= 10_001, "{refused}");
    h.auth.settle().await;
    let kinds: Vec<_> = h
        .stores
        .audit
        .events_for_user(id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&AuditKind::LoginSucceeded), "{kinds:?}");
}

/// A request from `2001:db8:{site}:{subnet}::1`: the /64 `subnet` of the /48
/// `site`.
fn from_v6(site: u16, subnet: u16) -> RequestContext {
    RequestContext {
        ip: Some(format!("2001:db8:{site:x}:{subnet:x}::1").parse().unwrap()),
        user_agent: Some("rotator/1.0".into()),
        request_id: Some(format!("req-{site}-{subnet}")),
    }
}

/// S6: a client rotating through the /64s of one IPv6 /48 meets the /48's
/// own limit (defaults: 200 failed logins, 100 requests), although each /64
/// stays far under its own (20, 10). Another /48 and IPv4 clients are not
/// affected, and logins and requests count apart.
pub async fn rotating_through_the_64s_of_a_48_meets_its_network_limit(stores: Stores) {
    let h = Harness::new(stores);
    let (login_threshold, request_threshold) = (200_u16, 100_u16);
    let config = h.auth.config();
    assert_eq!(
        (
            config.network_login_limit.threshold,
            config.network_request_limit.threshold
        ),
        (u32::from(login_threshold), u32::from(request_threshold))
    );
    let login = |email: String, ctx: RequestContext| {
        let auth = h.auth.clone();
        async move { auth.login(&email, &Password::new(PW), false, &ctx).await }
    };
    for subnet in 0..login_threshold {
        let err = login(format!("n{subnet}@example.com"), from_v6(1, subnet))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_credentials", "login {subnet}: {err:?}");
    }
    let err = login("next@example.com".into(), from_v6(1, 0xfff0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::RateLimited { .. }),
        "the /48 is over its limit: {err:?}"
    );
    for (what, ctx) in [("another /48", from_v6(2, 0)), ("IPv4", Harness::ctx(77))] {
        let err = login("next@example.com".into(), ctx).await.unwrap_err();
        assert_eq!(err.code(), "invalid_credentials", "{what}: {err:?}");
    }
    // Requests have their own counters: the /48 refused for logins can
    // still ask for resets, up to its request limit.
    for subnet in 0..request_threshold {
        h.auth
            .request_password_reset("nobody@example.com", &from_v6(1, subnet))
            .await
            .unwrap_or_else(|e| panic!("request {subnet}: {e:?}"));
    }
    let err = h
        .auth
        .request_password_reset("nobody@example.com", &from_v6(1, 0xfff1))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::RateLimited { .. }), "{err:?}");
    h.auth
        .request_password_reset("nobody@example.com", &from_v6(3, 0))
        .await
        .unwrap();
    h.auth.settle().await;
}
