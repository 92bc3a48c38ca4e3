use std::fmt::Write as _;

use time::Duration;

use super::{EmailMessage, MessageKind};
use crate::token::OpaqueToken;

/// Builds the messages of the flows. Links start with the configured public URL.
#[derive(Debug, Clone)]
pub(crate) struct Templates {
    pub(crate) service_name: String,
    pub(crate) public_url: String,
    pub(crate) verify_path: String,
    pub(crate) reset_path: String,
}

impl Templates {
    fn link(&self, path: &str, token: &OpaqueToken) -> String {
        format!(
            "{}{}?token={}",
            self.public_url,
            path,
            token.expose_secret()
        )
    }

    fn message(
        &self,
        kind: MessageKind,
        to: &str,
        subject: &str,
        paragraphs: &[&str],
        link: Option<&str>,
    ) -> EmailMessage {
        let mut text = String::new();
        let mut html = String::from("<!doctype html><html><body>");
        for p in paragraphs {
            text.push_str(p);
            text.push_str("\n\n");
            let _ = write!(html, "<p>{}</p>", escape(p));
        }
        if let Some(link) = link {
            let _ = write!(text, "{link}\n\n");
            let _ = write!(html, "<p><a href=\"{0}\">{0}</a></p>", escape(link));
        }
        let _ = write!(text, "-- {}", self.service_name);
        let _ = write!(
            html,
            "<p>&mdash; {}</p></body></html>",
            escape(&self.service_name)
        );
        EmailMessage {
            kind,
            to: to.to_owned(),
            subject: format!("{}: {subject}", self.service_name),
            text,
            html,
        }
    }

    pub(crate) fn verification(
        &self,
        to: &str,
        token: &OpaqueToken,
        ttl: Duration,
    ) -> EmailMessage {
        let valid = format!(
            "Open this link within {} to verify your email address:",
            human(ttl)
        );
        let link = self.link(&self.verify_path, token);
        self.message(
            MessageKind::Verification,
            to,
            "verify your email address",
            &[&valid],
            Some(&link),
        )
    }

    pub(crate) fn duplicate_registration(&self, to: &str) -> EmailMessage {
        let forgot = format!("{}{}", self.public_url, self.reset_path);
        let lines = [
            "Someone tried to create an account with this email address, which already has one.",
            "If it was you, log in, or reset your password if you forgot it. If it was not you, you can ignore this message.",
        ];
        self.message(
            MessageKind::DuplicateRegistration,
            to,
            "an account already exists",
            &lines,
            Some(&forgot),
        )
    }

    pub(crate) fn password_reset(
        &self,
        to: &str,
        token: &OpaqueToken,
        ttl: Duration,
    ) -> EmailMessage {
        let valid = format!(
            "Open this link within {} to choose a new password. If you did not ask for it, ignore this message.",
            human(ttl)
        );
        let link = self.link(&self.reset_path, token);
        self.message(
            MessageKind::PasswordReset,
            to,
            "reset your password",
            &[&valid],
            Some(&link),
        )
    }

    pub(crate) fn password_changed(&self, to: &str) -> EmailMessage {
        let lines = [
            "The password of your account was just changed, and your other sessions were signed out.",
            "If this was not you, reset your password now and contact support.",
        ];
        self.message(
            MessageKind::PasswordChanged,
            to,
            "your password was changed",
            &lines,
            None,
        )
    }

    pub(crate) fn new_session(
        &self,
        to: &str,
        ip: Option<std::net::IpAddr>,
        user_agent: Option<&str>,
    ) -> EmailMessage {
        let from = format!(
            "A new sign-in to your account from {} ({}).",
            ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
            user_agent.unwrap_or("unknown device")
        );
        let lines = [
            from.as_str(),
            "If this was not you, change your password and sign out your other sessions.",
        ];
        self.message(MessageKind::NewSession, to, "new sign-in", &lines, None)
    }

    /// `second_factor`: the codes failed after the right password, which
    /// means the password is known to whoever tried.
    pub(crate) fn lockout(&self, to: &str, second_factor: bool) -> EmailMessage {
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
        let link = format!("{}{}", self.public_url, self.reset_path);
        self.message(
            MessageKind::Lockout,
            to,
            "sign-in attempts blocked",
            &lines,
            Some(&link),
        )
    }

    pub(crate) fn second_factor_changed(&self, to: &str, enabled: bool) -> EmailMessage {
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
        let link = format!("{}{}", self.public_url, self.reset_path);
        self.message(
            MessageKind::SecondFactorChanged,
            to,
            subject,
            &lines,
            Some(&link),
        )
    }

    pub(crate) fn recovery_codes_replaced(&self, to: &str) -> EmailMessage {
        let lines = [
            "New recovery codes were made for your account; the old ones no longer work.",
            "If this was not you, reset your password at once.",
        ];
        let link = format!("{}{}", self.public_url, self.reset_path);
        self.message(
            MessageKind::SecondFactorChanged,
            to,
            "new recovery codes",
            &lines,
            Some(&link),
        )
    }

    pub(crate) fn recovery_code_used(&self, to: &str, left: u32) -> EmailMessage {
        let left = format!("You have {left} unused recovery codes left.");
        let lines = [
            "A recovery code of your account was used (to sign in, or to change two-step sign-in).",
            &left,
            "If this was not you, reset your password and turn two-step sign-in off and on again.",
        ];
        let link = format!("{}{}", self.public_url, self.reset_path);
        self.message(
            MessageKind::RecoveryCodeUsed,
            to,
            "a recovery code was used",
            &lines,
            Some(&link),
        )
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

/// Escapes text for HTML bodies and attributes.
fn escape(s: &str) -> String {
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

    fn templates() -> Templates {
        Templates {
            service_name: "Acme <Cloud>".into(),
            public_url: "https://auth.example.com".into(),
            verify_path: "/verify-email".into(),
            reset_path: "/reset-password".into(),
        }
    }

    #[test]
    fn links_use_the_public_url_and_html_is_escaped() {
        let t = OpaqueToken::new("abc");
        let m = templates().verification("a@example.com", &t, Duration::hours(24));
        assert!(
            m.text
                .contains("https://auth.example.com/verify-email?token=abc")
        );
        assert!(m.text.contains("24 hours"));
        assert!(m.html.contains("Acme &lt;Cloud&gt;"));
        assert!(!m.html.contains("<Cloud>"));
        let r = templates().password_reset("a@example.com", &t, Duration::minutes(30));
        assert!(
            r.text
                .contains("https://auth.example.com/reset-password?token=abc")
        );
        assert!(r.text.contains("30 minutes"));
    }
}
