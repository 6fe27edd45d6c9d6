//! Which errors a run waits out, which it isolates to the rows that cause them, and which end
//! it. A database that restarts, a lock or statement timeout, a serialization failure or a
//! deadlock, SQLite's busy database: retried with backoff. A row the target refuses (a
//! constraint, a trigger, a value it cannot take): the chunk is split down to that row, which
//! becomes a dead letter. Anything else — a missing table, a permission refused, our own
//! bookkeeping — fails the run with its reason.

use super::EngineError;
use crate::db::DbError;

/// What an error means for the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Wait and try again; the reason is what the page says (`database restarting`).
    Retryable(String),
    /// The rows of the chunk: split it to find the one.
    Rows(String),
    /// The run fails with it.
    Fatal,
}

/// Classifies `error` (the run's own errors — a lost lease, a corrupt run row — are fatal).
pub fn classify(error: &EngineError) -> Fault {
    match error {
        EngineError::Db(DbError::Query(e)) | EngineError::Db(DbError::Connect { source: e, .. }) => {
            of_sqlx(e)
        }
        _ => Fault::Fatal,
    }
}

pub(super) fn of_sqlx(error: &sqlx::Error) -> Fault {
    use sqlx::Error as E;
    match error {
        E::Io(e) => Fault::Retryable(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "connection lost".into()
            }
            _ => format!("connection lost ({e})"),
        }),
        E::PoolTimedOut => Fault::Retryable("no database connection within the pool's timeout".into()),
        E::Tls(_) | E::Protocol(_) => Fault::Retryable("connection lost".into()),
        E::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            of_code(&code, db.message())
        }
        _ => Fault::Fatal,
    }
}

/// By SQLSTATE (PostgreSQL: always five characters, often all digits) or extended result code
/// (SQLite: a number of at most four digits).
fn of_code(code: &str, message: &str) -> Fault {
    if let (true, Ok(sqlite)) = (code.len() < 5, code.parse::<i64>()) {
        return match sqlite & 0xff {
            5 => Fault::Retryable("database is busy (SQLITE_BUSY)".into()),
            6 => Fault::Retryable("table is locked (SQLITE_LOCKED)".into()),
            10 => Fault::Retryable("disk I/O error".into()),
            19 | 20 | 25 => Fault::Rows(first_line(message)),
            _ => Fault::Fatal,
        };
    }
    let retry = |why: &str| Fault::Retryable(format!("{why} ({code})"));
    match code {
        "57P01" | "57P02" => retry("database shutting down"),
        "57P03" => retry("database starting up"),
        "55P03" => retry("lock timeout"),
        "57014" => retry("statement timeout"),
        "40001" => retry("serialization failure"),
        "40P01" => retry("deadlock"),
        "53300" => retry("too many connections"),
        c if c.starts_with("08") => retry("connection lost"),
        c if c.starts_with("53") => retry("database out of resources"),
        c if c.starts_with("23") || c.starts_with("22") || c == "P0001" => {
            Fault::Rows(format!("{} ({code})", first_line(message)))
        }
        _ => Fault::Fatal,
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_of_a_restarting_or_contended_database_are_waited_out() {
        for code in ["57P01", "57P03", "55P03", "57014", "40001", "40P01", "08006", "53300", "5", "517", "6"]
        {
            assert!(matches!(of_code(code, "x"), Fault::Retryable(_)), "{code}");
        }
        assert_eq!(of_code("55P03", "x"), Fault::Retryable("lock timeout (55P03)".into()));
        assert_eq!(of_code("5", "x"), Fault::Retryable("database is busy (SQLITE_BUSY)".into()));
    }

    #[test]
    fn a_refused_row_is_isolated_and_a_broken_schema_is_fatal() {
        assert_eq!(
            of_code("23514", "new row violates check constraint\nDETAIL: …"),
            Fault::Rows("new row violates check constraint (23514)".into())
        );
        assert!(matches!(of_code("P0001", "no"), Fault::Rows(_)));
        assert!(matches!(of_code("1811", "trigger said no"), Fault::Rows(_)), "SQLITE_CONSTRAINT_TRIGGER");
        for fatal in ["42P01", "42501", "42703", "XX000", "1"] {
            assert_eq!(of_code(fatal, "x"), Fault::Fatal, "{fatal}");
        }
    }

    #[test]
    fn a_refused_connection_is_retryable_and_our_own_errors_are_not() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&EngineError::from(refused)), Fault::Retryable("connection refused".into()));
        assert_eq!(classify(&EngineError::LeaseLost { run_id: 1 }), Fault::Fatal);
        assert_eq!(classify(&EngineError::Corrupt("x".into())), Fault::Fatal);
    }
}
