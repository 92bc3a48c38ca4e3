use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use time::Duration;

use super::{EmailMessage, Locale, MessageKind};
use crate::token::OpaqueToken;

/// What a template makes of one message: the subject line and the two bodies.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailContent {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body. Escape every value put in it ([`escape_html`]).
    pub html: String,
}

impl std::fmt::Debug for EmailContent {
    /// The bodies are left out: they may carry a link with a token (S10).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailContent")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl EmailContent {
    /// A message from its parts, as written by the template.
    #[must_use]
    pub fn new(
        subject: impl Into<String>,
        text: impl Into<String>,
        html: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
        }
    }

    /// The layout of the English defaults, for a template that only
    /// translates: subject `"{service_name}: {subject}"`, then each paragraph,
    /// the link if any, and the service name as the signature. Every value is
    /// escaped in the HTML body.
    ///
    /// ```
    /// use auth_core::mail::EmailContent;
    ///
    /// let m = EmailContent::from_paragraphs("Acme <Cloud>", "olá", &["Tudo bem?"], Some("https://a.test/x?a=1&b=2"));
    /// assert_eq!(m.subject, "Acme <Cloud>: olá");
    /// assert!(m.text.contains("https://a.test/x?a=1&b=2"));
    /// assert!(m.html.contains("Acme &lt;Cloud&gt;") && m.html.contains("a=1&amp;b=2"));
    /// ```
    #[must_use]
    pub fn from_paragraphs(
        service_name: &str,
        subject: &str,
        paragraphs: &[&str],
        link: Option<&str>,
    ) -> Self {
        let mut text = String::new();
        let mut html = String::from("<!doctype html><html><body>");
        for p in paragraphs {
            text.push_str(p);
            text.push_str("\n\n");
            let _ = write!(html, "<p>{}</p>", escape_html(p));
        }
        if let Some(link) = link {
            let _ = write!(text, "{link}\n\n");
            let _ = write!(html, "<p><a href=\"{0}\">{0}</a></p>", escape_html(link));
        }
        let _ = write!(text, "-- {service_name}");
        let _ = write!(
            html,
            "<p>&mdash; {}</p></body></html>",
            escape_html(service_name)
        );
        Self {
            subject: format!("{service_name}: {subject}"),
            text,
            html,
        }
    }
}

/// The text of every message the engine sends, per message kind and locale.
///
/// Each method has a default: the English text of [`DefaultTemplates`]. An
/// application overrides the kinds and locales it translates and says which
/// locales it serves in [`EmailTemplates::supports`]; the engine refuses to
/// start with a default locale its templates do not support. To fall back to
/// English inside an override, call the same method on [`DefaultTemplates`].
///
/// Links arrive built from the configured public URL, never from a request
/// (S3). Values in the HTML body must be escaped ([`escape_html`], or
/// [`EmailContent::from_paragraphs`], which escapes).
///
/// The engine has no per-user locale yet: every message is rendered in
/// `AuthConfig::default_locale`.
///
/// ```
/// use std::sync::Arc;
/// use auth_core::mail::{DefaultTemplates, EmailContent, EmailTemplates, Locale};
/// use time::Duration;
///
/// /// Portuguese reset mails; everything else in English.
/// struct Portuguese;
///
/// impl EmailTemplates for Portuguese {
///     fn supports(&self, locale: &Locale) -> bool {
///         matches!(locale.language(), "pt" | "en")
///     }
///
///     fn password_reset(&self, locale: &Locale, service_name: &str, link: &str, valid_for: Duration) -> EmailContent {
///         if locale.language() != "pt" {
///             return DefaultTemplates.password_reset(locale, service_name, link, valid_for);
///         }
///         let valid = format!("Abra este link em até {} minutos para escolher uma nova senha.", valid_for.whole_minutes());
///         EmailContent::from_paragraphs(service_name, "redefina a sua senha", &[&valid], Some(link))
///     }
/// }
///
/// let pt = Locale::new("pt-BR")?;
/// let m = Portuguese.password_reset(&pt, "Acme", "https://a.test/reset-password?token=t", Duration::minutes(30));
/// assert_eq!(m.subject, "Acme: redefina a sua senha");
/// let templates: Arc<dyn EmailTemplates> = Arc::new(Portuguese); // for AuthBuilder::templates
/// # Ok::<(), auth_core::mail::InvalidLocale>(())
/// ```
pub trait EmailTemplates: Send + Sync {
    /// Whether these templates write `locale`'s language. The default, like
    /// [`DefaultTemplates`], serves English (`en` and its regional forms).
    fn supports(&self, locale: &Locale) -> bool {
        locale.language() == Locale::ENGLISH.as_str()
    }

    /// Verify your address: `link` carries the verification token and works
    /// for `valid_for`.
    fn verification(
        &self,
        locale: &Locale,
        service_name: &str,
        link: &str,
        valid_for: Duration,
    ) -> EmailContent {
        let _ = locale;
        let valid = format!(
            "Open this link within {} to verify your email address:",
            human(valid_for)
        );
        EmailContent::from_paragraphs(
            service_name,
            "verify your email address",
            &[&valid],
            Some(link),
        )
    }

    /// Someone tried to register with an address that has an account;
    /// `reset_page` is the page where the owner can reset the password.
    fn duplicate_registration(
        &self,
        locale: &Locale,
        service_name: &str,
        reset_page: &str,
    ) -> EmailContent {
        let _ = locale;
        let lines = [
            "Someone tried to create an account with this email address, which already has one.",
            "If it was you, log in, or reset your password if you forgot it. If it was not you, you can ignore this message.",
        ];
        EmailContent::from_paragraphs(
            service_name,
            "an account already exists",
            &lines,
            Some(reset_page),
        )
    }

    /// Reset your password: `link` carries the reset token and works for
    /// `valid_for`.
    fn password_reset(
        &self,
        locale: &Locale,
        service_name: &str,
        link: &str,
        valid_for: Duration,
    ) -> EmailContent {
        let _ = locale;
        let valid = format!(
            "Open this link within {} to choose a new password. If you did not ask for it, ignore this message.",
            human(valid_for)
        );
        EmailContent::from_paragraphs(service_name, "reset your password", &[&valid], Some(link))
    }

    /// The password was changed or reset (and the other sessions ended).
    fn password_changed(&self, locale: &Locale, service_name: &str) -> EmailContent {
        let _ = locale;
        let lines = [
            "The password of your account was just changed, and your other sessions were signed out.",
            "If this was not you, reset your password now and contact support.",
        ];
        EmailContent::from_paragraphs(service_name, "your password was changed", &lines, None)
    }

    /// A new sign-in, from `ip` with `user_agent` (as the client sent it:
    /// untrusted text, escape it in HTML).
    fn new_session(
        &self,
        locale: &Locale,
        service_name: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> EmailContent {
        let _ = locale;
        let from = format!(
            "A new sign-in to your account from {} ({}).",
            ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
            user_agent.unwrap_or("unknown device")
        );
        let lines = [
            from.as_str(),
            "If this was not you, change your password and sign out your other sessions.",
        ];
        EmailContent::from_paragraphs(service_name, "new sign-in", &lines, None)
    }

    /// Sign-in was locked after failed attempts. `second_factor`: the codes
    /// failed after the right password, so whoever tried knows the password.
    fn lockout(
        &self,
        locale: &Locale,
        service_name: &str,
        second_factor: bool,
        reset_page: &str,
    ) -> EmailContent {
        let _ = locale;
        let lines = if second_factor {
            [
                "Sign-in to your account was temporarily locked after several wrong two-step codes.",
                "Your password was entered correctly: if this was not you, someone knows it; reset it now.",
            ]
        } else {
            [
                "Your account was temporarily locked after several failed sign-in attempts.",
                "If this was not you, someone may be guessing your password; you can reset it to be safe.",
            ]
        };
        EmailContent::from_paragraphs(
            service_name,
            "sign-in attempts blocked",
            &lines,
            Some(reset_page),
        )
    }

    /// Two-step sign-in was turned on (`enabled`) or off (S15).
    fn second_factor_changed(
        &self,
        locale: &Locale,
        service_name: &str,
        enabled: bool,
        reset_page: &str,
    ) -> EmailContent {
        let _ = locale;
        let (subject, line) = if enabled {
            (
                "two-step sign-in turned on",
                "Two-step sign-in with an authenticator app was turned on for your account.",
            )
        } else {
            (
                "two-step sign-in turned off",
                "Two-step sign-in was turned off for your account; signing in now needs only your password.",
            )
        };
        let lines = [line, "If this was not you, reset your password at once."];
        EmailContent::from_paragraphs(service_name, subject, &lines, Some(reset_page))
    }

    /// New recovery codes replaced the old ones (S15).
    fn recovery_codes_replaced(
        &self,
        locale: &Locale,
        service_name: &str,
        reset_page: &str,
    ) -> EmailContent {
        let _ = locale;
        let lines = [
            "New recovery codes were made for your account; the old ones no longer work.",
            "If this was not you, reset your password at once.",
        ];
        EmailContent::from_paragraphs(service_name, "new recovery codes", &lines, Some(reset_page))
    }

    /// A recovery code was used; `left` remain (S15).
    fn recovery_code_used(
        &self,
        locale: &Locale,
        service_name: &str,
        left: u32,
        reset_page: &str,
    ) -> EmailContent {
        let _ = locale;
        let left = format!("You have {left} unused recovery codes left.");
        let lines = [
            "A recovery code of your account was used (to sign in, or to change two-step sign-in).",
            &left,
            "If this was not you, reset your password and turn two-step sign-in off and on again.",
        ];
        EmailContent::from_paragraphs(
            service_name,
            "a recovery code was used",
            &lines,
            Some(reset_page),
        )
    }
}

/// The English text of every message: the engine's default templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultTemplates;

impl EmailTemplates for DefaultTemplates {}

/// Builds the messages of the flows from the templates: links start with the
/// configured public URL (S3), in the configured default locale.
pub(crate) struct Composer {
    pub(crate) templates: Arc<dyn EmailTemplates>,
    pub(crate) locale: Locale,
    pub(crate) service_name: String,
    pub(crate) public_url: String,
    pub(crate) verify_path: String,
    pub(crate) reset_path: String,
}

impl Composer {
    fn token_link(&self, path: &str, token: &OpaqueToken) -> String {
        format!(
            "{}{}?token={}",
            self.public_url,
            path,
            token.expose_secret()
        )
    }

    fn reset_page(&self) -> String {
        format!("{}{}", self.public_url, self.reset_path)
    }

    fn message(
        &self,
        kind: MessageKind,
        to: &str,
        link: Option<String>,
        content: EmailContent,
    ) -> EmailMessage {
        EmailMessage::new(kind, to, self.locale.clone(), content).with_link(link)
    }

    pub(crate) fn verification(
        &self,
        to: &str,
        token: &OpaqueToken,
        ttl: Duration,
    ) -> EmailMessage {
        let link = self.token_link(&self.verify_path, token);
        let content = self
            .templates
            .verification(&self.locale, &self.service_name, &link, ttl);
        self.message(MessageKind::Verification, to, Some(link), content)
    }

    pub(crate) fn duplicate_registration(&self, to: &str) -> EmailMessage {
        let link = self.reset_page();
        let content =
            self.templates
                .duplicate_registration(&self.locale, &self.service_name, &link);
        self.message(MessageKind::DuplicateRegistration, to, Some(link), content)
    }

    pub(crate) fn password_reset(
        &self,
        to: &str,
        token: &OpaqueToken,
        ttl: Duration,
    ) -> EmailMessage {
        let link = self.token_link(&self.reset_path, token);
        let content = self
            .templates
            .password_reset(&self.locale, &self.service_name, &link, ttl);
        self.message(MessageKind::PasswordReset, to, Some(link), content)
    }

    pub(crate) fn password_changed(&self, to: &str) -> EmailMessage {
        let content = self
            .templates
            .password_changed(&self.locale, &self.service_name);
        self.message(MessageKind::PasswordChanged, to, None, content)
    }

    pub(crate) fn new_session(
        &self,
        to: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> EmailMessage {
        let content = self
            .templates
            .new_session(&self.locale, &self.service_name, ip, user_agent);
        self.message(MessageKind::NewSession, to, None, content)
    }

    pub(crate) fn lockout(&self, to: &str, second_factor: bool) -> EmailMessage {
        let link = self.reset_page();
        let content =
            self.templates
                .lockout(&self.locale, &self.service_name, second_factor, &link);
        self.message(MessageKind::Lockout, to, Some(link), content)
    }

    pub(crate) fn second_factor_changed(&self, to: &str, enabled: bool) -> EmailMessage {
        let link = self.reset_page();
        let content =
            self.templates
                .second_factor_changed(&self.locale, &self.service_name, enabled, &link);
        self.message(MessageKind::SecondFactorChanged, to, Some(link), content)
    }

    pub(crate) fn recovery_codes_replaced(&self, to: &str) -> EmailMessage {
        let link = self.reset_page();
        let content =
            self.templates
                .recovery_codes_replaced(&self.locale, &self.service_name, &link);
        self.message(MessageKind::RecoveryCodesReplaced, to, Some(link), content)
    }

    pub(crate) fn recovery_code_used(&self, to: &str, left: u32) -> EmailMessage {
        let link = self.reset_page();
        let content =
            self.templates
                .recovery_code_used(&self.locale, &self.service_name, left, &link);
        self.message(MessageKind::RecoveryCodeUsed, to, Some(link), content)
    }
}

fn human(d: Duration) -> String {
    let minutes = d.whole_minutes();
    if minutes >= 120 && minutes % 60 == 0 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{minutes} minutes")
    }
}

/// Escapes text for HTML bodies and attribute values (`&`, `<`, `>`, `"`,
/// `'`).
#[must_use]
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer(templates: Arc<dyn EmailTemplates>, locale: &str) -> Composer {
        Composer {
            templates,
            locale: Locale::new(locale).unwrap(),
            service_name: "Acme <Cloud>".into(),
            public_url: "https://auth.example.com".into(),
            verify_path: "/verify-email".into(),
            reset_path: "/reset-password".into(),
        }
    }

    fn english() -> Composer {
        composer(Arc::new(DefaultTemplates), "en")
    }

    /// S3: links start with the configured public URL; the link field holds
    /// the link of the body, so a mailer never parses it out of the text.
    #[test]
    fn links_use_the_public_url_and_html_is_escaped() {
        let t = OpaqueToken::new("abc");
        let m = english().verification("a@example.com", &t, Duration::hours(24));
        let link = "https://auth.example.com/verify-email?token=abc";
        assert_eq!(m.link.as_deref(), Some(link));
        assert!(m.text.contains(link));
        assert!(m.text.contains("24 hours"));
        assert!(m.html.contains("Acme &lt;Cloud&gt;"));
        assert!(!m.html.contains("<Cloud>"));
        assert_eq!(m.subject, "Acme <Cloud>: verify your email address");
        assert_eq!(m.locale, Locale::ENGLISH);
        let r = english().password_reset("a@example.com", &t, Duration::minutes(30));
        let link = "https://auth.example.com/reset-password?token=abc";
        assert_eq!(r.link.as_deref(), Some(link));
        assert!(r.text.contains(link));
        assert!(r.text.contains("30 minutes"));
    }

    /// Every kind comes out with its own kind, the recipient, the link of its
    /// body (the reset page for notices, none for the two without one), and
    /// the untrusted user agent escaped.
    #[test]
    fn every_kind_has_its_kind_link_and_recipient() {
        let c = english();
        let to = "owner@example.com";
        let page = Some("https://auth.example.com/reset-password");
        let ip = Some(IpAddr::from([192, 0, 2, 7]));
        let cases = [
            (
                c.duplicate_registration(to),
                MessageKind::DuplicateRegistration,
                page,
            ),
            (c.password_changed(to), MessageKind::PasswordChanged, None),
            (
                c.new_session(to, ip, Some("<script>")),
                MessageKind::NewSession,
                None,
            ),
            (c.new_session(to, None, None), MessageKind::NewSession, None),
            (c.lockout(to, false), MessageKind::Lockout, page),
            (c.lockout(to, true), MessageKind::Lockout, page),
            (
                c.second_factor_changed(to, true),
                MessageKind::SecondFactorChanged,
                page,
            ),
            (
                c.second_factor_changed(to, false),
                MessageKind::SecondFactorChanged,
                page,
            ),
            (
                c.recovery_codes_replaced(to),
                MessageKind::RecoveryCodesReplaced,
                page,
            ),
            (
                c.recovery_code_used(to, 3),
                MessageKind::RecoveryCodeUsed,
                page,
            ),
        ];
        let mut subjects = Vec::new();
        for (m, kind, link) in cases {
            assert_eq!(m.kind, kind);
            assert_eq!(m.to, to);
            assert_eq!(m.link.as_deref(), link, "{kind:?}");
            if let Some(link) = link {
                assert!(m.text.contains(link) && m.html.contains(link), "{kind:?}");
            }
            assert!(m.subject.starts_with("Acme <Cloud>: "), "{kind:?}");
            assert!(!m.html.contains("<script>") && !m.html.contains("<Cloud>"));
            subjects.push((m.subject.clone(), m.text.clone()));
        }
        assert!(
            subjects
                .iter()
                .any(|(_, t)| t.contains("192.0.2.7 (<script>)"))
        );
        assert!(
            subjects
                .iter()
                .any(|(_, t)| t.contains("an unknown address (unknown device)"))
        );
        assert!(
            subjects
                .iter()
                .any(|(_, t)| t.contains("3 unused recovery codes"))
        );
        assert!(
            subjects
                .iter()
                .any(|(_, t)| t.contains("wrong two-step codes"))
        );
        assert!(subjects.iter().any(|(s, _)| s.ends_with("turned off")));
        assert_eq!(human(Duration::minutes(90)), "90 minutes");
    }

    /// An application overrides one kind for one locale; the others keep
    /// the English defaults, and the locale given is the configured one.
    #[test]
    fn one_kind_can_be_overridden_per_locale() {
        struct German;
        impl EmailTemplates for German {
            fn supports(&self, locale: &Locale) -> bool {
                locale.language() == "de"
            }
            fn password_changed(&self, locale: &Locale, service_name: &str) -> EmailContent {
                assert_eq!(locale.as_str(), "de-CH");
                EmailContent::from_paragraphs(
                    service_name,
                    "Passwort geändert",
                    &["Ihr Passwort wurde geändert."],
                    None,
                )
            }
        }
        let c = composer(Arc::new(German), "de-ch");
        let changed = c.password_changed("a@example.com");
        assert_eq!(changed.subject, "Acme <Cloud>: Passwort geändert");
        assert_eq!(changed.locale.as_str(), "de-CH");
        let reset = c.password_reset("a@example.com", &OpaqueToken::new("t"), Duration::hours(2));
        assert!(reset.text.contains("2 hours"), "English default kept");
        assert!(German.supports(&c.locale) && !DefaultTemplates.supports(&c.locale));
        assert!(DefaultTemplates.supports(&Locale::new("en-GB").unwrap()));
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let content = EmailContent::new("s", "t", "h");
        assert_eq!(
            format!("{content:?}"),
            r#"EmailContent { subject: "s", .. }"#
        );
    }
}
