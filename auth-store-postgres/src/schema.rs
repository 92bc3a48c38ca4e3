//! The PostgreSQL schema the store lives in.

use std::fmt;
use std::str::FromStr;

/// The PostgreSQL schema that holds the store's tables and its migration
/// history (`<schema>._sqlx_migrations`), so they never collide with an
/// application's own tables: an application links its rows to
/// `auth.users(id)`. Default `auth`.
///
/// The name is checked when it is built (1 to 63 bytes of `a-z`, `0-9` and `_`,
/// not starting with a digit, and not `pg_`-prefixed, which PostgreSQL
/// reserves), so a bad setting fails at start-up and the store can put the
/// name into its statements quoted, once.
///
/// ```
/// use auth_store_postgres::PgSchema;
///
/// assert_eq!(PgSchema::default().as_str(), "auth");
/// assert_eq!("tenant_7".parse::<PgSchema>().unwrap().as_str(), "tenant_7");
/// assert!(PgSchema::new("Auth; DROP TABLE users").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PgSchema(String);

/// A schema name [`PgSchema::new`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid PostgreSQL schema name {0:?}: use 1 to 63 characters of a-z, 0-9 and _, \
     not starting with a digit or pg_"
)]
pub struct InvalidSchema(pub String);

impl PgSchema {
    /// The default schema, `auth`.
    pub const DEFAULT: &'static str = "auth";

    /// Checks `name`.
    ///
    /// # Errors
    /// [`InvalidSchema`] for a name outside the rules above.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidSchema> {
        let name = name.into();
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidSchema(name))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier. The rules above leave nothing to
    /// escape; the quotes keep a name that is also a keyword (`user`) a name.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl Default for PgSchema {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for PgSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PgSchema {
    type Err = InvalidSchema;

    fn from_str(s: &str) -> Result<Self, InvalidSchema> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in [
            "auth",
            "_private",
            "a",
            "tenant_42",
            "user",
            &"a".repeat(63),
        ] {
            assert_eq!(PgSchema::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Auth",
            "9lives",
            "pg_auth",
            "auth.users",
            "auth\"; DROP SCHEMA public; --",
            "ä",
            "a b",
            &"a".repeat(64),
        ] {
            assert_eq!(PgSchema::new(bad), Err(InvalidSchema(bad.to_owned())));
        }
        assert_eq!(PgSchema::new("user").unwrap().quoted(), "\"user\"");
    }
}
