use std::io::Write as _;

use async_trait::async_trait;

use super::{EmailMessage, MailError, Mailer};

/// A development mailer that writes each message's plain text to standard output,
/// so the links it carries can be followed by hand. It writes to stdout, not to
/// the log: links carry tokens, and tokens never go to logs (S10). Do not use it
/// in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleMailer;

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, m: &EmailMessage) -> Result<(), MailError> {
        let out = format!(
            "----- email (console mailer) -----\nTo: {}\nSubject: {}\n\n{}\n----------------------------------\n",
            m.to, m.subject, m.text
        );
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}
