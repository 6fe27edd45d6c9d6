//! What may hold a waiting run up: the sessions of the target database that hold locks on the
//! rollout's tables, as the waiting box and `sti-rollout blockers` list them. A statement is
//! shown by its start with its literals taken out: they are the application's data.

use serde::{Deserialize, Serialize};

/// How much of a statement is shown.
pub const QUERY_CHARS: usize = 80;

/// One session of the target database, not the engine's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub pid: i64,
    pub user: String,
    /// Its `application_name`, often the best clue to who opened it.
    pub application: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// How long its transaction has been open; `None` outside a transaction.
    pub transaction_ms: Option<i64>,
    /// What it waits for itself (`Lock: relation`, `Client: ClientRead`), if anything.
    pub wait: Option<String>,
    /// The start of its current or last statement, literals replaced by `?` (see [`redacted`]).
    pub query: String,
    /// Whether one of the engine's sessions waits for it right now (else it holds a lock on the
    /// tables and may be what the runner met between two tries).
    pub blocking: bool,
}

/// What the target database says about who holds it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Blockers {
    /// PostgreSQL's sessions holding locks on the rollout's tables, the ones blocking the engine
    /// first, then the oldest transaction first.
    Sessions(Vec<Session>),
    /// The database cannot say (SQLite keeps no list of its lockers): what to check instead.
    Unknown(String),
}

/// `statement` with its string literals (`'…'`, `$$…$$`, `$tag$…$tag$`) and numbers replaced by
/// `?`, whitespace collapsed, cut at [`QUERY_CHARS`] characters: `update projects set title = ?
/// where id = ?`. Parameters (`$1`) stay: they carry no value.
pub fn redacted(statement: &str) -> String {
    let mut out = String::new();
    let mut chars = statement.chars().peekable();
    // what came before, to tell a number from the end of a name (`t1`) or a parameter (`$1`)
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // a string literal, `''` inside it included; an unterminated one runs to the end
                while let Some(inner) = chars.next() {
                    if inner == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push('?');
                previous = '?';
            }
            '$' if dollar_tag(chars.clone()).is_some() => {
                // a dollar-quoted string runs to its closing tag (or to the end)
                let tag = dollar_tag(chars.clone()).unwrap_or_default();
                for _ in 0..=tag.chars().count() {
                    chars.next();
                }
                let close = format!("${tag}$");
                let rest: String = chars.clone().collect();
                let skip = rest
                    .find(&close)
                    .map_or(rest.chars().count(), |at| rest[..at].chars().count() + close.chars().count());
                for _ in 0..skip {
                    chars.next();
                }
                out.push('?');
                previous = '?';
            }
            '0'..='9' if !(previous.is_alphanumeric() || previous == '_' || previous == '$') => {
                while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                    chars.next();
                }
                out.push('?');
                previous = '?';
            }
            c if c.is_whitespace() => {
                if !out.ends_with(' ') && !out.is_empty() {
                    out.push(' ');
                }
                previous = ' ';
            }
            c => {
                out.push(c);
                previous = c;
            }
        }
    }
    let out = out.trim_end();
    match out.char_indices().nth(QUERY_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out.to_owned(),
    }
}

/// The tag of a dollar quote that starts after a `$` (`""` for `$$`, `tag` for `$tag$`); `None`
/// when what follows is not one (a parameter `$1`).
fn dollar_tag(mut after: impl Iterator<Item = char>) -> Option<String> {
    let mut tag = String::new();
    for c in after.by_ref() {
        match c {
            '$' => return Some(tag),
            c if c.is_alphabetic() || c == '_' || (c.is_ascii_digit() && !tag.is_empty()) => tag.push(c),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_taken_out_and_parameters_stay() {
        assert_eq!(
            redacted("update projects\n   set title = 'Ana''s plan', hours = 12.5 where id = 42"),
            "update projects set title = ?, hours = ? where id = ?"
        );
        assert_eq!(
            redacted("select * from t1 where a = $1 and b in (3, 4)"),
            "select * from t1 where a = $1 and b in (?, ?)"
        );
        assert_eq!(redacted("select 'never closed secret"), "select ?");
        assert_eq!(
            redacted("select $$Ana's secret$$, $q$more$q$ from t where id = $1"),
            "select ?, ? from t where id = $1"
        );
    }

    #[test]
    fn a_long_statement_is_cut_at_its_start() {
        let long = format!("select {} from projects", "title, ".repeat(40));
        let shown = redacted(&long);
        assert_eq!(shown.chars().count(), QUERY_CHARS + 1);
        assert!(shown.starts_with("select title, title,") && shown.ends_with('…'));
    }
}
