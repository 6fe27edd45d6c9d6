//! Database URLs as configuration names them: `sqlite:…` or `postgres://…`.

use super::pool::Dialect;
use std::fmt;

/// A database URL whose scheme we support. Display shows it without a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// A URL we cannot use, with the reason in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("database URL '{0}' has an unknown scheme: use sqlite:PATH or postgres://USER@HOST/DB")]
    UnknownScheme(String),
    #[error("database URL '{0}' names no database")]
    Empty(String),
}

impl DatabaseUrl {
    /// Accepts `sqlite:PATH`, `sqlite://PATH`, `postgres://…` and `postgresql://…`.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let rest = if let Some(rest) = raw.strip_prefix("sqlite:") {
            rest.trim_start_matches("//")
        } else if let Some(rest) =
            raw.strip_prefix("postgres://").or_else(|| raw.strip_prefix("postgresql://"))
        {
            rest
        } else {
            return Err(UrlError::UnknownScheme(redact(raw)));
        };
        if rest.is_empty() {
            return Err(UrlError::Empty(redact(raw)));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL for a SQLite file at `path`.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self(format!("sqlite://{}", path.display()))
    }

    /// The file a SQLite URL names; `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_file_path(&self) -> Option<std::path::PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?.trim_start_matches("//");
        let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
        (!path.is_empty() && path != ":memory:" && !params.contains("mode=memory")).then(|| path.into())
    }

    pub fn dialect(&self) -> Dialect {
        if self.0.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// The URL as given, credentials included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short description for people: `SQLite · data/dev.db`, `PostgreSQL · db.internal:5432/app`.
    pub fn describe(&self) -> String {
        match self.dialect() {
            Dialect::Sqlite => {
                let path = self.0.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = path.split('?').next().unwrap_or(path);
                format!("SQLite · {path}")
            }
            Dialect::Postgres => {
                let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
                let host_db = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
                let host_db = host_db.split('?').next().unwrap_or(host_db);
                format!("PostgreSQL · {host_db}")
            }
        }
    }
}

impl DatabaseUrl {
    /// Which database this names, whatever the spelling: a SQLite file's absolute path, or a
    /// PostgreSQL server's host, port (5432 when not given) and database, without the user,
    /// password or parameters. Two URLs with one identity are one database.
    pub fn identity(&self) -> String {
        match self.dialect() {
            Dialect::Sqlite => {
                let path = self.0.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
                // lexically: `a/./b` and `a/x/../b` are `a/b` (the file may not exist yet)
                let mut normal = std::path::PathBuf::new();
                for part in absolute.components() {
                    match part {
                        std::path::Component::ParentDir => {
                            normal.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => normal.push(other),
                    }
                }
                format!("sqlite:{}", normal.display())
            }
            Dialect::Postgres => {
                let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
                let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
                let rest = rest.split('?').next().unwrap_or(rest);
                let (host_port, db) = rest.split_once('/').unwrap_or((rest, ""));
                let (host, port) = match host_port.rsplit_once(':') {
                    Some((host, port)) if !port.contains(']') => (host, port),
                    _ => (host_port, "5432"),
                };
                format!("postgres://{}:{port}/{db}", host.to_ascii_lowercase())
            }
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => raw.to_owned(),
        },
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_urls_are_accepted_with_their_dialect() {
        assert_eq!(DatabaseUrl::parse("sqlite:data/dev.db").map(|u| u.dialect()), Ok(Dialect::Sqlite));
        assert_eq!(
            DatabaseUrl::parse("postgresql://app@db/prod").map(|u| u.dialect()),
            Ok(Dialect::Postgres)
        );
    }

    #[test]
    fn an_unknown_scheme_is_refused_naming_the_url() {
        let err = DatabaseUrl::parse("mysql://root@localhost/app").unwrap_err();
        assert!(matches!(err, UrlError::UnknownScheme(_)));
        assert!(err.to_string().contains("mysql://root@localhost/app"));
    }

    #[test]
    fn a_url_without_a_database_is_refused() {
        assert!(matches!(DatabaseUrl::parse("sqlite:"), Err(UrlError::Empty(_))));
    }

    #[test]
    fn passwords_never_appear_in_display_or_description() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/prod?sslmode=require").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db.internal:5432/prod?sslmode=require");
        assert_eq!(url.describe(), "PostgreSQL · db.internal:5432/prod");
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn two_spellings_of_one_database_have_one_identity() {
        let id = |raw: &str| DatabaseUrl::parse(raw).unwrap().identity();
        assert_eq!(
            id("postgres://a:x@DB.internal/app"),
            id("postgresql://b@db.internal:5432/app?sslmode=require")
        );
        assert_ne!(id("postgres://db.internal/app"), id("postgres://db.internal/app2"));
        assert_ne!(id("postgres://db.internal:5433/app"), id("postgres://db.internal/app"));
        assert_eq!(id("sqlite:data/dev.db"), id("sqlite://data/./x/../dev.db"));
        assert_ne!(id("sqlite:data/dev.db"), id("sqlite:data/staging.db"));
    }

    #[test]
    fn a_sqlite_file_is_described_by_its_path() {
        let url = DatabaseUrl::sqlite_file(std::path::Path::new("data/dev.db"));
        assert_eq!(url.describe(), "SQLite · data/dev.db");
    }
}
