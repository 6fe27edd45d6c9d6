//! Who may do what (PRODUCT §6): roles, user names and the password rule.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A user's role; each role may do everything the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Stakeholders: read everything, sign their own checklist items.
    Viewer,
    /// Run backfills, verify, roll back, toggle flags.
    Operator,
    /// Everything, users and API keys included.
    Admin,
}

/// A role name that is not one of the three.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected viewer, operator or admin")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn parse(name: &str) -> Result<Self, UnknownRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == name.trim()).ok_or_else(|| UnknownRole(name.to_owned()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// The role with its article, as a sentence says it: `a viewer`, `an operator`, `an admin`.
    pub fn with_article(self) -> String {
        let article = if self.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {}", self.as_str())
    }

    /// Whether this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A user name: 3 to 64 characters, lower-case letters, digits, `.`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Username(String);

/// Why a user name or password is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("a user name has 3 to 64 characters: lower-case letters, digits, '.', '_' and '-'")]
    Username,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("a password has at most 1024 characters")]
    PasswordTooLong,
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

impl Username {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if (3..=64).contains(&raw.len()) && raw.chars().all(ok_char) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(CredentialError::Username)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Username {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The signed-in user of a request: the session guard puts it into the request, server
/// functions and pages read it from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: i64,
    pub username: Username,
    pub role: Role,
    /// Their password was generated: until they choose their own, only `/account` answers.
    pub must_change_password: bool,
}

impl CurrentUser {
    /// How the audit log and the run ledger name this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.username)
    }
}

/// Checks a new password against the rule (length only: long passphrases beat composition rules).
pub fn check_new_password(password: &str) -> Result<(), CredentialError> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_CHARS => Err(CredentialError::PasswordTooShort),
        n if n > 1024 => Err(CredentialError::PasswordTooLong),
        _ => Ok(()),
    }
}

/// What an API key may do in its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read flags and projects.
    Read,
    /// Read, and create, update and delete projects.
    Write,
}

/// A scope name that is neither `read` nor `write`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope '{0}': expected read or write")]
pub struct UnknownScope(pub String);

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    pub fn parse(name: &str) -> Result<Self, UnknownScope> {
        match name.trim() {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            _ => Err(UnknownScope(name.to_owned())),
        }
    }

    /// Whether a key with this scope may do what `required` needs.
    pub fn allows(self, required: Scope) -> bool {
        self == Scope::Write || required == Scope::Read
    }
}

impl std::str::FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The signed-in user, as the browser sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub role: Role,
}

/// An API key as the console lists it: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub environment: super::environment::Environment,
    pub scope: Scope,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_by: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    pub revoked: bool,
    /// When it stops working by itself (ms since the epoch), if ever.
    pub expires_at: Option<i64>,
    /// When an application last used it (to the minute), if ever.
    pub last_used_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_key_may_read_but_a_read_key_may_not_write() {
        assert!(Scope::Write.allows(Scope::Read) && Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read) && !Scope::Read.allows(Scope::Write));
        assert_eq!(
            Scope::parse("admin").unwrap_err().to_string(),
            "unknown scope 'admin': expected read or write"
        );
    }

    #[test]
    fn each_role_allows_what_the_roles_below_it_allow() {
        assert!(Role::Admin.allows(Role::Operator) && Role::Admin.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Viewer) && !Role::Operator.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Operator));
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(
            Role::parse("root").unwrap_err().to_string(),
            "unknown role 'root': expected viewer, operator or admin"
        );
    }

    #[test]
    fn user_names_are_short_lower_case_and_plain() {
        assert!(Username::parse("ana.lopez").is_ok());
        assert!(Username::parse("op_2").is_ok());
        for bad in ["ab", "Ana", "ana lopez", "ana@example.com", &"a".repeat(65), ""] {
            assert_eq!(Username::parse(bad), Err(CredentialError::Username), "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert_eq!(check_new_password("short"), Err(CredentialError::PasswordTooShort));
        assert_eq!(check_new_password("correct horse"), Ok(()));
        assert_eq!(check_new_password(&"x".repeat(1025)), Err(CredentialError::PasswordTooLong));
    }
}
