use std::sync::Arc;

use super::{Auth, Engine, background::Background};
use crate::clock::{Clock, SystemClock};
use crate::hooks::{LifecycleHooks, NoHooks};
use crate::log_sampling::LogSampler;
use crate::mail::{Composer, DefaultTemplates, EmailTemplates, Mailer, Outbox};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::store::{
    AccountReader, AllStores, AttemptStore, AuditSink, ChallengeStore, PasswordStore,
    RecoveryCodeStore, RoleStore, SeparateAccounts, SessionStore, SessionUserCache, TokenStore,
    TotpStore, UserStore,
};
use crate::token::SecretKey;
use crate::{AuthConfig, ConfigError};

/// Builds an [`Auth`]. Every store, the mailer and the secret key are required;
/// the clock defaults to the system clock, the hasher to OWASP parameters, the
/// policy to its defaults (with the configured service name as a context word),
/// the email templates to [`DefaultTemplates`] (English).
///
/// ```
/// use std::sync::Arc;
/// use auth_core::mail::ConsoleMailer;
/// use auth_core::{Auth, AuthConfig, SecretKey};
/// use auth_store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), auth_core::ConfigError> {
/// let mut config = AuthConfig::default();
/// config.public_url = "https://auth.example.com".into();
/// let auth = Auth::builder()
///     .config(config)
///     .stores(Arc::new(MemoryStore::new())) // or each store separately
///     .mailer(Arc::new(ConsoleMailer))
///     .secret_key(SecretKey::new(*b"0123456789abcdef0123456789abcdef")?)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use]
pub struct AuthBuilder {
    config: AuthConfig,
    users: Option<Arc<dyn UserStore>>,
    accounts: Option<Arc<dyn AccountReader>>,
    passwords: Option<Arc<dyn PasswordStore>>,
    totp: Option<Arc<dyn TotpStore>>,
    recovery_codes: Option<Arc<dyn RecoveryCodeStore>>,
    challenges: Option<Arc<dyn ChallengeStore>>,
    tokens: Option<Arc<dyn TokenStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    session_cache: Option<Arc<dyn SessionUserCache>>,
    attempts: Option<Arc<dyn AttemptStore>>,
    audit: Option<Arc<dyn AuditSink>>,
    roles: Option<Arc<dyn RoleStore>>,
    mailer: Option<Arc<dyn Mailer>>,
    templates: Option<Arc<dyn EmailTemplates>>,
    clock: Option<Arc<dyn Clock>>,
    hasher: Option<PasswordHasher>,
    policy: Option<PasswordPolicy>,
    key: Option<SecretKey>,
    hooks: Option<Arc<dyn LifecycleHooks>>,
}

impl std::fmt::Debug for AuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthBuilder {
    /// Settings (default [`AuthConfig::default`]).
    pub fn config(mut self, config: AuthConfig) -> Self {
        self.config = config;
        self
    }

    /// Every store from one backend that implements them all, its
    /// [`AccountReader`] included.
    pub fn stores<S: AllStores + 'static>(mut self, store: Arc<S>) -> Self {
        self.users = Some(store.clone());
        self.accounts = Some(store.clone());
        self.passwords = Some(store.clone());
        self.totp = Some(store.clone());
        self.recovery_codes = Some(store.clone());
        self.challenges = Some(store.clone());
        self.tokens = Some(store.clone());
        self.sessions = Some(store.clone());
        self.attempts = Some(store.clone());
        self.audit = Some(store.clone());
        self.roles = Some(store);
        self
    }

    /// The application's lifecycle hooks (default [`NoHooks`]).
    pub fn hooks(mut self, hooks: Arc<dyn LifecycleHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// The user store. Setting it (or the password or TOTP store) apart
    /// from the others drops an [`AccountReader`] given before, which may
    /// read another store's users: accounts are then read from the three
    /// stores one by one ([`SeparateAccounts`]) unless [`Self::accounts`]
    /// comes after.
    pub fn users(mut self, store: Arc<dyn UserStore>) -> Self {
        self.users = Some(store);
        self.accounts = None;
        self
    }

    /// Optional: reads a user with their password and second factor in one
    /// call (a backend holding the user, password and TOTP stores given
    /// here; [`Self::stores`] sets it). Without it accounts are read from
    /// those three stores one by one.
    pub fn accounts(mut self, reader: Arc<dyn AccountReader>) -> Self {
        self.accounts = Some(reader);
        self
    }

    /// The password store (drops an [`AccountReader`] given before, as
    /// [`Self::users`] does).
    pub fn passwords(mut self, store: Arc<dyn PasswordStore>) -> Self {
        self.passwords = Some(store);
        self.accounts = None;
        self
    }

    /// The TOTP secret store (drops an [`AccountReader`] given before, as
    /// [`Self::users`] does).
    pub fn totp(mut self, store: Arc<dyn TotpStore>) -> Self {
        self.totp = Some(store);
        self.accounts = None;
        self
    }

    /// The recovery-code store.
    pub fn recovery_codes(mut self, store: Arc<dyn RecoveryCodeStore>) -> Self {
        self.recovery_codes = Some(store);
        self
    }

    /// The challenge store (second-factor steps, and the next methods'
    /// challenges).
    pub fn challenges(mut self, store: Arc<dyn ChallengeStore>) -> Self {
        self.challenges = Some(store);
        self
    }

    /// The token store.
    pub fn tokens(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.tokens = Some(store);
        self
    }

    /// The session store.
    pub fn sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// Optional: user snapshots kept with the sessions, so that
    /// [`Auth::authenticate`] reads one store once and the user store not at
    /// all while the snapshot is warm (DESIGN 8). Give the same backend as
    /// [`Self::sessions`] (the snapshot lives with the session record). The
    /// engine drops a user's snapshots on every change that requests must see
    /// at once, before the changing call returns.
    pub fn session_cache(mut self, cache: Arc<dyn SessionUserCache>) -> Self {
        self.session_cache = Some(cache);
        self
    }

    /// The attempt counters.
    pub fn attempts(mut self, store: Arc<dyn AttemptStore>) -> Self {
        self.attempts = Some(store);
        self
    }

    /// The audit sink.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The user roles.
    pub fn roles(mut self, store: Arc<dyn RoleStore>) -> Self {
        self.roles = Some(store);
        self
    }

    /// The mailer the outbox sends through.
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The text of the emails (default [`DefaultTemplates`], English). They
    /// must support `AuthConfig::default_locale`, the locale every message
    /// is written in ([`EmailTemplates::supports`]).
    pub fn templates(mut self, templates: Arc<dyn EmailTemplates>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// The clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The password hasher (default: OWASP parameters, one permit per CPU).
    pub fn hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// The password policy (default: [`PasswordPolicy`] defaults with the
    /// configured service name).
    pub fn policy(mut self, policy: PasswordPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The secret key of token and session hashes. Keep it stable: changing it
    /// invalidates every token and session.
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Checks everything and starts the mail outbox on the current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] for a missing component, [`ConfigError::Invalid`]
    /// for a bad setting (a default locale the templates do not support
    /// among them), [`ConfigError::NoRuntime`] outside a tokio runtime.
    pub fn build(self) -> Result<Auth, ConfigError> {
        let config = self.config;
        config.validate()?;
        let templates = self.templates.unwrap_or_else(|| Arc::new(DefaultTemplates));
        if !templates.supports(&config.default_locale) {
            return Err(ConfigError::Invalid(
                "default_locale is not supported by the email templates",
            ));
        }
        let policy = match self.policy {
            Some(policy) => policy,
            None => PasswordPolicy::builder()
                .service_name(config.service_name.clone())
                .build()?,
        };
        let hasher = match self.hasher {
            Some(hasher) => hasher,
            None => PasswordHasher::builder().build()?,
        };
        let mailer = self.mailer.ok_or(ConfigError::Missing("mailer"))?;
        let log = LogSampler::new(config.log_sampling);
        let outbox = Outbox::start(mailer, &config.outbox, log.clone())?;
        let mail = Composer {
            templates,
            locale: config.default_locale.clone(),
            service_name: config.service_name.clone(),
            public_url: config.public_url.clone(),
            verify_path: config.verify_path.clone(),
            reset_path: config.reset_path.clone(),
        };
        let users = self.users.ok_or(ConfigError::Missing("user store"))?;
        let passwords = self
            .passwords
            .ok_or(ConfigError::Missing("password store"))?;
        let totp = self.totp.ok_or(ConfigError::Missing("TOTP store"))?;
        let accounts = self.accounts.unwrap_or_else(|| {
            Arc::new(SeparateAccounts::new(
                Arc::clone(&users),
                Arc::clone(&passwords),
                Arc::clone(&totp),
            ))
        });
        Ok(Auth {
            inner: Arc::new(Engine {
                users,
                accounts,
                passwords,
                totp,
                recovery_codes: self
                    .recovery_codes
                    .ok_or(ConfigError::Missing("recovery-code store"))?,
                challenges: self
                    .challenges
                    .ok_or(ConfigError::Missing("challenge store"))?,
                tokens: self.tokens.ok_or(ConfigError::Missing("token store"))?,
                sessions: self.sessions.ok_or(ConfigError::Missing("session store"))?,
                session_cache: self.session_cache,
                attempts: self.attempts.ok_or(ConfigError::Missing("attempt store"))?,
                audit: self.audit.ok_or(ConfigError::Missing("audit sink"))?,
                roles: self.roles.ok_or(ConfigError::Missing("role store"))?,
                key: self.key.ok_or(ConfigError::Missing("secret key"))?,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                hasher,
                policy,
                outbox,
                mail,
                background: Background::new(log.clone()),
                hooks: self.hooks.unwrap_or_else(|| Arc::new(NoHooks)),
                log,
                config,
            }),
        })
    }
}
