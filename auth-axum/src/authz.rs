//! Authorization for the application's routes: where a user's roles come
//! from ([`RoleSource`]: the stores' user-roles table by default, or the
//! application's own data) and which permissions each role grants
//! ([`Permissions`]). [`crate::RequireAuth::role`] and
//! [`crate::RequireAuth::permission`] check them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use auth_core::store::{Role, User};
use auth_core::{Auth, AuthError};

/// The future a [`RoleSource`] returns.
pub type RolesFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Role>, AuthError>> + Send + 'a>>;

/// Where a user's roles come from. [`StoredRoles`] (the default) reads the
/// engine's role store ([`Auth::roles`]); an application that keeps roles in
/// its own tables implements this instead and sets it with
/// [`crate::AuthState::with_role_source`].
///
/// ```
/// use auth_axum::{RoleSource, RolesFuture};
/// use auth_core::Auth;
/// use auth_core::store::{Role, User};
///
/// /// Everyone whose address is at the company is staff.
/// #[derive(Debug)]
/// struct StaffByDomain;
///
/// impl RoleSource for StaffByDomain {
///     fn roles<'a>(&'a self, _auth: &'a Auth, user: &'a User) -> RolesFuture<'a> {
///         Box::pin(async move {
///             let staff = user.email.as_str().ends_with("@example.com")
///                 && user.email_verified_at.is_some();
///             Ok(if staff { vec![Role::new("staff").unwrap_or_else(|_| unreachable!())] } else { vec![] })
///         })
///     }
/// }
/// ```
pub trait RoleSource: Send + Sync + fmt::Debug {
    /// The user's roles.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when they cannot be read (the guard answers
    /// 503, never lets the request through).
    fn roles<'a>(&'a self, auth: &'a Auth, user: &'a User) -> RolesFuture<'a>;
}

/// The roles kept by the stores' user-roles table ([`Auth::roles`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredRoles;

impl RoleSource for StoredRoles {
    fn roles<'a>(&'a self, auth: &'a Auth, user: &'a User) -> RolesFuture<'a> {
        Box::pin(auth.roles(user.id))
    }
}

/// Which permissions each role grants, for
/// [`crate::RequireAuth::permission`]. A permission is any string the
/// application chooses, like `posts:delete`.
///
/// ```
/// use auth_axum::Permissions;
/// use auth_core::store::Role;
///
/// # fn main() -> Result<(), auth_core::store::InvalidRole> {
/// let permissions = Permissions::new()
///     .grant(Role::new("editor")?, ["posts:write"])
///     .grant(Role::new("admin")?, ["posts:write", "posts:delete"]);
/// assert!(permissions.allows(&[Role::new("admin")?], "posts:delete"));
/// assert!(!permissions.allows(&[Role::new("editor")?], "posts:delete"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Permissions {
    by_role: BTreeMap<Role, BTreeSet<String>>,
}

impl Permissions {
    /// No role grants anything.
    pub fn new() -> Self {
        Self::default()
    }

    /// `role` grants `permissions` (in addition to what it granted before).
    pub fn grant<I, P>(mut self, role: Role, permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.by_role
            .entry(role)
            .or_default()
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Whether any of `roles` grants `permission`.
    #[must_use]
    pub fn allows(&self, roles: &[Role], permission: &str) -> bool {
        roles.iter().any(|role| {
            self.by_role
                .get(role)
                .is_some_and(|granted| granted.contains(permission))
        })
    }
}
