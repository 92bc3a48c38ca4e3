#![doc = include_str!("../README.md")]

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use auth_core::store::{
    Account, AccountReader, AttemptKey, AttemptState, AttemptStore, AuditEvent, AuditSink,
    Challenge, ChallengePurpose, ChallengeStore, NewChallenge, NewToken, NewUser,
    PasswordCredential, PasswordStore, RecoveryCodeStore, Role, RoleStore, SealedSecret, SessionId,
    SessionRecord, SessionStore, StoreError, TokenCheck, TokenStore, TotpCredential, TotpStore,
    User, UserId, UserStore,
};
use auth_core::{PasswordHashString, TokenHash, TokenPurpose};
use time::{Duration, OffsetDateTime};

/// Audit events kept by default.
pub const DEFAULT_AUDIT_CAPACITY: usize = 10_000;
/// Writes between two sweeps of expired records.
const SWEEP_EVERY: u64 = 1024;

/// Every store trait, in process.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    audit_capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    user_by_email: HashMap<String, UserId>,
    passwords: HashMap<UserId, PasswordCredential>,
    totp: HashMap<UserId, TotpCredential>,
    recovery_codes: HashMap<UserId, HashMap<TokenHash, Option<OffsetDateTime>>>,
    /// Sorted, so a listing needs no sort.
    roles: HashMap<UserId, BTreeSet<Role>>,
    challenges: HashMap<TokenHash, (ChallengePurpose, Challenge)>,
    tokens: HashMap<TokenHash, TokenRow>,
    sessions: HashMap<TokenHash, SessionRecord>,
    session_hash: HashMap<SessionId, TokenHash>,
    user_sessions: HashMap<UserId, HashSet<SessionId>>,
    attempts: HashMap<AttemptKey, Counter>,
    audit: VecDeque<AuditEvent>,
    /// Sequence number of `audit[0]`: events are numbered as they arrive.
    audit_first: u64,
    /// Aggregated records by key: their sequence number.
    aggregates: HashMap<String, u64>,
    writes: u64,
}

#[derive(Debug)]
struct TokenRow {
    purpose: TokenPurpose,
    user_id: UserId,
    expires_at: OffsetDateTime,
    consumed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    state: AttemptState,
    expires_at: OffsetDateTime,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::with_audit_capacity(DEFAULT_AUDIT_CAPACITY)
    }

    /// An empty store keeping at most `capacity` audit events (the oldest go first).
    #[must_use]
    pub fn with_audit_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            audit_capacity: capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks for a write at `now`, sweeping expired records every 1024 writes.
    fn write(&self, now: OffsetDateTime) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.writes += 1;
        if state.writes.is_multiple_of(SWEEP_EVERY) {
            state.sweep_tokens(now);
            state.sweep_sessions(now);
            state.sweep_attempts(now);
            state.sweep_challenges(now);
        }
        state
    }
}

impl State {
    /// The account of user `id`, read under the one lock.
    fn account(&self, id: UserId) -> Option<Account> {
        let user = self.users.get(&id)?.clone();
        let password = self.passwords.get(&id).cloned();
        let second_factor = self.totp.get(&id).is_some_and(TotpCredential::is_confirmed);
        Some(Account::new(user, password, second_factor))
    }

    /// Removes a user and everything kept of it; whether it existed.
    fn remove_user(&mut self, id: UserId) -> bool {
        let Some(user) = self.users.remove(&id) else {
            return false;
        };
        self.user_by_email.remove(user.email.normalized());
        self.passwords.remove(&id);
        self.totp.remove(&id);
        self.recovery_codes.remove(&id);
        self.roles.remove(&id);
        self.challenges.retain(|_, (_, c)| c.user_id != Some(id));
        self.tokens.retain(|_, t| t.user_id != id);
        for session in self.user_sessions.remove(&id).unwrap_or_default() {
            if let Some(hash) = self.session_hash.remove(&session) {
                self.sessions.remove(&hash);
            }
        }
        true
    }

    fn user_mut(&mut self, id: UserId) -> Result<&mut User, StoreError> {
        self.users.get_mut(&id).ok_or(StoreError::NotFound)
    }

    fn sweep_tokens(&mut self, now: OffsetDateTime) -> u64 {
        let before = self.tokens.len();
        self.tokens
            .retain(|_, t| t.consumed_at.is_none() && t.expires_at >= now);
        (before - self.tokens.len()) as u64
    }

    fn sweep_sessions(&mut self, now: OffsetDateTime) -> u64 {
        let dead: Vec<TokenHash> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.is_active(now))
            .map(|(h, _)| *h)
            .collect();
        for hash in &dead {
            if let Some(s) = self.sessions.remove(hash) {
                self.session_hash.remove(&s.id);
                if let Some(ids) = self.user_sessions.get_mut(&s.user_id) {
                    ids.remove(&s.id);
                    if ids.is_empty() {
                        self.user_sessions.remove(&s.user_id);
                    }
                }
            }
        }
        dead.len() as u64
    }

    /// Deadlines are inclusive: a challenge goes one instant after its own.
    fn sweep_challenges(&mut self, now: OffsetDateTime) -> u64 {
        let before = self.challenges.len();
        self.challenges.retain(|_, (_, c)| c.expires_at >= now);
        (before - self.challenges.len()) as u64
    }

    fn known(&self, user: UserId) -> Result<(), StoreError> {
        if self.users.contains_key(&user) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn sweep_attempts(&mut self, now: OffsetDateTime) -> u64 {
        let before = self.attempts.len();
        self.attempts.retain(|_, c| c.expires_at > now);
        (before - self.attempts.len()) as u64
    }

    fn check_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> TokenCheck {
        match self.tokens.get(hash) {
            Some(t) if t.purpose == purpose && t.consumed_at.is_none() => {
                if now <= t.expires_at {
                    TokenCheck::Valid(t.user_id)
                } else {
                    TokenCheck::Expired
                }
            }
            _ => TokenCheck::Invalid,
        }
    }

    fn session_mut(&mut self, id: SessionId) -> Option<&mut SessionRecord> {
        let hash = self.session_hash.get(&id)?;
        self.sessions.get_mut(hash)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn delete_unverified_users(
        &self,
        created_before: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        let mut state = self.lock();
        let gone: Vec<UserId> = state
            .users
            .values()
            .filter(|u| u.email_verified_at.is_none() && u.created_at < created_before)
            .map(|u| u.id)
            .collect();
        for id in &gone {
            state.remove_user(*id);
        }
        Ok(gone)
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        Ok(self.lock().remove_user(id))
    }

    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let mut state = self.write(new.created_at);
        let email = new.email.normalized().to_owned();
        if state.user_by_email.contains_key(&email) || state.users.contains_key(&new.id) {
            return Err(StoreError::Conflict);
        }
        let user = User {
            id: new.id,
            email: new.email,
            email_verified_at: None,
            created_at: new.created_at,
            updated_at: new.created_at,
            disabled_at: None,
            reset_required_at: None,
        };
        state.user_by_email.insert(email, user.id);
        state.users.insert(user.id, user.clone());
        if let Some(hash) = new.password_hash {
            let password = PasswordCredential {
                hash,
                changed_at: new.created_at,
            };
            state.passwords.insert(user.id, password);
        }
        Ok(user)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn user_by_email(&self, email_normalized: &str) -> Result<Option<User>, StoreError> {
        let state = self.lock();
        Ok(state
            .user_by_email
            .get(email_normalized)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn mark_email_verified(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut state = self.write(at);
        let user = state.user_mut(id)?;
        user.email_verified_at.get_or_insert(at);
        user.updated_at = at;
        Ok(())
    }

    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.write(now);
        let user = state.user_mut(id)?;
        user.disabled_at = at;
        user.updated_at = now;
        Ok(())
    }

    async fn set_reset_required(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.write(now);
        let user = state.user_mut(id)?;
        user.reset_required_at = at;
        user.updated_at = now;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError> {
        let mut state = self.write(token.created_at);
        if state.tokens.contains_key(&token.hash) {
            return Err(StoreError::Conflict);
        }
        let row = TokenRow {
            purpose: token.purpose,
            user_id: token.user_id,
            expires_at: token.expires_at,
            consumed_at: None,
        };
        state.tokens.insert(token.hash, row);
        Ok(())
    }

    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError> {
        let mut state = self.write(now);
        let check = state.check_token(purpose, hash, now);
        if let (TokenCheck::Valid(_), Some(row)) = (check, state.tokens.get_mut(hash)) {
            row.consumed_at = Some(now);
        }
        Ok(check)
    }

    async fn peek_token(
        &self,
        purpose: TokenPurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenCheck, StoreError> {
        Ok(self.lock().check_token(purpose, hash, now))
    }

    async fn revoke_tokens(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = self.write(now);
        let mut revoked = 0;
        for row in state.tokens.values_mut() {
            if row.user_id == user_id && row.purpose == purpose && row.consumed_at.is_none() {
                row.consumed_at = Some(now);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn delete_expired_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().sweep_tokens(before))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let mut state = self.write(session.created_at);
        if state.sessions.contains_key(&session.token_hash)
            || state.session_hash.contains_key(&session.id)
        {
            return Err(StoreError::Conflict);
        }
        state.session_hash.insert(session.id, session.token_hash);
        state
            .user_sessions
            .entry(session.user_id)
            .or_default()
            .insert(session.id);
        state.sessions.insert(session.token_hash, session);
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(hash).cloned())
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.write(last_seen_at);
        if let Some(s) = state
            .sessions
            .get_mut(hash)
            .filter(|s| s.revoked_at.is_none())
        {
            s.last_seen_at = last_seen_at;
            s.idle_expires_at = idle_expires_at.min(s.absolute_expires_at);
        }
        Ok(())
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        match state.session_mut(id) {
            Some(s) if s.user_id == user_id && s.revoked_at.is_none() => {
                s.revoked_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = self.write(at);
        let ids: Vec<SessionId> = state
            .user_sessions
            .get(&user_id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let mut revoked = 0;
        for id in ids.into_iter().filter(|id| Some(*id) != except) {
            if let Some(s) = state.session_mut(id).filter(|s| s.revoked_at.is_none()) {
                s.revoked_at = Some(at);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn revoke_all_sessions(&self, at: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.write(at);
        let mut revoked = 0;
        for s in state
            .sessions
            .values_mut()
            .filter(|s| s.revoked_at.is_none())
        {
            s.revoked_at = Some(at);
            revoked += 1;
        }
        Ok(revoked)
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let state = self.lock();
        let mut sessions: Vec<SessionRecord> = state
            .user_sessions
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                state
                    .session_hash
                    .get(id)
                    .and_then(|h| state.sessions.get(h))
            })
            .filter(|s| s.is_active(now))
            .cloned()
            .collect();
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().sweep_sessions(before))
    }
}

#[async_trait]
impl AttemptStore for MemoryStore {
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError> {
        let mut state = self.write(now);
        let counter = state.attempts.entry(key.clone()).or_insert(Counter {
            state: AttemptState::default(),
            expires_at: now,
        });
        if counter.expires_at <= now {
            counter.state = AttemptState::default();
        }
        counter.state.count = counter.state.count.saturating_add(1);
        counter.state.last_at = Some(now);
        counter.expires_at = now + ttl;
        Ok(counter.state)
    }

    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<AttemptState>, StoreError> {
        let mut state = self.write(now);
        let current = state
            .attempts
            .get(key)
            .filter(|c| c.expires_at > now)
            .map(|c| c.state)
            .unwrap_or_default();
        if current != expected {
            return Ok(None);
        }
        let counted = AttemptState {
            count: current.count.saturating_add(1),
            last_at: Some(now),
        };
        state.attempts.insert(
            key.clone(),
            Counter {
                state: counted,
                expires_at: now + ttl,
            },
        );
        Ok(Some(counted))
    }

    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError> {
        let state = self.lock();
        Ok(state
            .attempts
            .get(key)
            .filter(|c| c.expires_at > now)
            .map(|c| c.state)
            .unwrap_or_default())
    }

    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError> {
        self.lock().attempts.remove(key);
        Ok(())
    }

    async fn delete_expired_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().sweep_attempts(now))
    }
}

impl State {
    fn push_audit(&mut self, event: AuditEvent, capacity: usize) -> u64 {
        let mut popped = false;
        while self.audit.len() >= capacity {
            self.audit.pop_front();
            self.audit_first += 1;
            popped = true;
        }
        self.audit.push_back(event);
        let first = self.audit_first;
        if popped {
            self.aggregates.retain(|_, seq| *seq >= first);
        }
        first + self.audit.len() as u64 - 1
    }
}

#[async_trait]
impl AuditSink for MemoryStore {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        let mut state = self.lock();
        if self.audit_capacity == 0 {
            return Ok(());
        }
        state.push_audit(event, self.audit_capacity);
        Ok(())
    }

    async fn record_aggregated(
        &self,
        event: AuditEvent,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if self.audit_capacity == 0 {
            return Ok(());
        }
        let key = event.aggregate_key(window);
        let first = state.audit_first;
        if let Some(&seq) = state.aggregates.get(&key)
            && let Some(existing) = usize::try_from(seq - first)
                .ok()
                .and_then(|i| state.audit.get_mut(i))
        {
            existing.count = existing.count.saturating_add(1);
            return Ok(());
        }
        let seq = state.push_audit(event, self.audit_capacity);
        state.aggregates.insert(key, seq);
        Ok(())
    }

    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let mut gone = 0;
        // Events arrive in time order, so the old ones are at the front.
        while state.audit.front().is_some_and(|e| e.at < before) {
            state.audit.pop_front();
            state.audit_first += 1;
            gone += 1;
        }
        let first = state.audit_first;
        state.aggregates.retain(|_, seq| *seq >= first);
        Ok(gone)
    }

    async fn events_for_user(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let state = self.lock();
        Ok(state
            .audit
            .iter()
            .rev()
            .filter(|e| e.user_id == Some(user_id))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl AccountReader for MemoryStore {
    async fn account_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<Account>, StoreError> {
        let state = self.lock();
        Ok(state
            .user_by_email
            .get(email_normalized)
            .and_then(|&id| state.account(id)))
    }

    async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().account(id))
    }
}

#[async_trait]
impl PasswordStore for MemoryStore {
    async fn password(&self, user: UserId) -> Result<Option<PasswordCredential>, StoreError> {
        Ok(self.lock().passwords.get(&user).cloned())
    }

    async fn set_password(
        &self,
        user: UserId,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.write(at);
        state.known(user)?;
        let password = PasswordCredential {
            hash: hash.clone(),
            changed_at: at,
        };
        state.passwords.insert(user, password);
        Ok(())
    }

    async fn set_password_if(
        &self,
        user: UserId,
        expected: &PasswordHashString,
        hash: &PasswordHashString,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        match state.passwords.get_mut(&user) {
            Some(password) if password.hash == *expected => {
                password.hash = hash.clone();
                password.changed_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn replace_password_hash(
        &self,
        user: UserId,
        old: &PasswordHashString,
        new: &PasswordHashString,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.passwords.get_mut(&user) {
            Some(password) if password.hash == *old => {
                password.hash = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl TotpStore for MemoryStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError> {
        Ok(self.lock().totp.get(&user).cloned())
    }

    async fn put_pending_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        state.known(user)?;
        if state
            .totp
            .get(&user)
            .is_some_and(|t| t.confirmed_at.is_some())
        {
            return Ok(false);
        }
        let pending = TotpCredential {
            secret: secret.clone(),
            created_at: at,
            confirmed_at: None,
            last_step: None,
        };
        state.totp.insert(user, pending);
        Ok(true)
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        secret: &SealedSecret,
        step: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        match state.totp.get_mut(&user) {
            Some(t) if t.confirmed_at.is_none() && t.secret == *secret => {
                t.confirmed_at = Some(at);
                t.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.totp.get_mut(&user) {
            Some(t) if t.confirmed_at.is_some() && t.last_step.is_none_or(|last| step > last) => {
                t.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_totp(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.lock().totp.remove(&user).is_some())
    }
}

#[async_trait]
impl RoleStore for MemoryStore {
    async fn grant_role(
        &self,
        user: UserId,
        role: &Role,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        state.known(user)?;
        Ok(state.roles.entry(user).or_default().insert(role.clone()))
    }

    async fn revoke_role(&self, user: UserId, role: &Role) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(roles) = state.roles.get_mut(&user) else {
            return Ok(false);
        };
        let had = roles.remove(role);
        if roles.is_empty() {
            state.roles.remove(&user);
        }
        Ok(had)
    }

    async fn user_roles(&self, user: UserId) -> Result<Vec<Role>, StoreError> {
        let state = self.lock();
        Ok(state
            .roles
            .get(&user)
            .map(|roles| roles.iter().cloned().collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl RecoveryCodeStore for MemoryStore {
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.write(at);
        state.known(user)?;
        let fresh = codes.iter().map(|c| (*c, None)).collect();
        state.recovery_codes.insert(user, fresh);
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.write(at);
        let used = state
            .recovery_codes
            .get_mut(&user)
            .and_then(|codes| codes.get_mut(code))
            .filter(|used| used.is_none());
        Ok(used.map(|used| *used = Some(at)).is_some())
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let state = self.lock();
        let left = state
            .recovery_codes
            .get(&user)
            .map_or(0, |codes| codes.values().filter(|u| u.is_none()).count());
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }
}

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn insert_challenge(&self, new: NewChallenge) -> Result<(), StoreError> {
        let mut state = self.write(new.created_at);
        if state.challenges.contains_key(&new.hash) {
            return Err(StoreError::Conflict);
        }
        let challenge = Challenge {
            user_id: new.user_id,
            payload: new.payload,
            created_at: new.created_at,
            expires_at: new.expires_at,
        };
        state.challenges.insert(new.hash, (new.purpose, challenge));
        Ok(())
    }

    async fn take_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Challenge>, StoreError> {
        let mut state = self.lock();
        match state.challenges.get(hash) {
            Some((stored, _)) if *stored != purpose => Ok(None),
            Some(_) => Ok(state
                .challenges
                .remove(hash)
                .map(|(_, c)| c)
                .filter(|c| now <= c.expires_at)),
            None => Ok(None),
        }
    }

    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().sweep_challenges(now))
    }
}
