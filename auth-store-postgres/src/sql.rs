//! The store's statements, qualified with its schema once per store.
//!
//! Each statement is written once, next to the code that runs it, with
//! `{schema}` where the schema goes. A store replaces it with the quoted,
//! validated schema name when it is built, so no statement depends on the
//! pool's `search_path` (an application's pool keeps its own) and a request
//! never builds SQL.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::schema::PgSchema;
use crate::{accounts, attempts, audit, challenges, credentials, roles, sessions, tokens, users};

/// The placeholder of the schema in a statement template.
const PLACEHOLDER: &str = "{schema}";

/// `template` with the schema in place of its placeholder.
pub(crate) fn qualify(template: &str, schema: &PgSchema) -> SqlStr {
    let sql: Arc<str> = template.replace(PLACEHOLDER, &schema.quoted()).into();
    AssertSqlSafe(sql).into_sql_str()
}

macro_rules! statements {
    ($($field:ident: $template:path,)*) => {
        /// Every statement of the store, qualified with its schema. Cloning one
        /// clones an `Arc`.
        pub(crate) struct Statements {
            $(pub(crate) $field: SqlStr,)*
        }

        impl Statements {
            pub(crate) fn new(schema: &PgSchema) -> Self {
                Self { $($field: qualify($template, schema),)* }
            }

            /// Every template, for the checks below.
            #[cfg(test)]
            const TEMPLATES: &[&str] = &[$($template,)*];
        }
    };
}

statements! {
    account_by_email: accounts::ACCOUNT_BY_EMAIL,
    account_by_id: accounts::ACCOUNT_BY_ID,
    grant_role: roles::GRANT_ROLE,
    revoke_role: roles::REVOKE_ROLE,
    user_roles: roles::USER_ROLES,
    increment: attempts::INCREMENT,
    increment_if_absent: attempts::INCREMENT_IF_ABSENT,
    increment_if_equal: attempts::INCREMENT_IF_EQUAL,
    attempts: attempts::ATTEMPTS,
    clear: attempts::CLEAR,
    delete_expired_attempts: attempts::DELETE_EXPIRED_ATTEMPTS,
    record: audit::RECORD,
    record_aggregated: audit::RECORD_AGGREGATED,
    delete_before: audit::DELETE_BEFORE,
    events_for_user: audit::EVENTS_FOR_USER,
    insert_challenge: challenges::INSERT_CHALLENGE,
    take_challenge: challenges::TAKE_CHALLENGE,
    delete_expired_challenges: challenges::DELETE_EXPIRED_CHALLENGES,
    password: credentials::PASSWORD,
    set_password: credentials::SET_PASSWORD,
    set_password_if: credentials::SET_PASSWORD_IF,
    replace_password_hash: credentials::REPLACE_PASSWORD_HASH,
    totp: credentials::TOTP,
    put_pending_totp: credentials::PUT_PENDING_TOTP,
    confirm_totp: credentials::CONFIRM_TOTP,
    accept_totp_step: credentials::ACCEPT_TOTP_STEP,
    delete_totp: credentials::DELETE_TOTP,
    lock_user: credentials::LOCK_USER,
    delete_recovery_codes: credentials::DELETE_RECOVERY_CODES,
    insert_recovery_codes: credentials::INSERT_RECOVERY_CODES,
    use_recovery_code: credentials::USE_RECOVERY_CODE,
    recovery_codes_left: credentials::RECOVERY_CODES_LEFT,
    create_session: sessions::CREATE_SESSION,
    session_by_token: sessions::SESSION_BY_TOKEN,
    touch_session: sessions::TOUCH_SESSION,
    revoke_all_sessions: sessions::REVOKE_ALL_SESSIONS,
    revoke_session: sessions::REVOKE_SESSION,
    revoke_user_sessions: sessions::REVOKE_USER_SESSIONS,
    list_user_sessions: sessions::LIST_USER_SESSIONS,
    delete_expired_sessions: sessions::DELETE_EXPIRED_SESSIONS,
    session_pages: sessions::SESSION_PAGES,
    insert_token: tokens::INSERT_TOKEN,
    consume_token: tokens::CONSUME_TOKEN,
    peek_token: tokens::PEEK_TOKEN,
    revoke_tokens: tokens::REVOKE_TOKENS,
    delete_expired_tokens: tokens::DELETE_EXPIRED_TOKENS,
    delete_consumed_tokens: tokens::DELETE_CONSUMED_TOKENS,
    create_user: users::CREATE_USER,
    user_by_id: users::USER_BY_ID,
    user_by_email: users::USER_BY_EMAIL,
    mark_email_verified: users::MARK_EMAIL_VERIFIED,
    delete_unverified: users::DELETE_UNVERIFIED,
    delete_user: users::DELETE_USER,
    set_disabled: users::SET_DISABLED,
    set_reset_required: users::SET_RESET_REQUIRED,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement names its tables through the placeholder, so none
    /// resolves through `search_path`.
    #[test]
    fn every_statement_is_qualified() {
        let schema = PgSchema::new("tenant_1").unwrap();
        for template in Statements::TEMPLATES {
            assert!(template.contains(PLACEHOLDER), "unqualified: {template}");
            let sql = qualify(template, &schema);
            assert!(!sql.as_str().contains('{'), "left over: {}", sql.as_str());
            assert!(sql.as_str().contains("\"tenant_1\"."), "{}", sql.as_str());
        }
    }
}
