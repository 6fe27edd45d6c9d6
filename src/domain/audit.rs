//! The audit log as the console shows and exports it, and the filter's date parsing.

use super::calendar::Day;
use serde::{Deserialize, Serialize};

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Epoch milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub environment: Option<String>,
    /// JSON text of the state before and after, when the action has them.
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
}

/// A page of entries, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Entries matching the filter, over every page.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// `YYYY-MM-DD` as epoch milliseconds at 00:00 UTC that day; `None` when it is not a date, or a
/// day before the audit log can have begun (1970).
pub fn parse_day(text: &str) -> Option<i64> {
    Day::parse(text).ok().map(Day::start_ms).filter(|ms| *ms >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::format::format_epoch_ms;

    #[test]
    fn days_parse_to_utc_midnight_and_back() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        for day in ["2026-11-27", "2000-02-29", "2024-12-31", "2026-03-01"] {
            let ms = parse_day(day).unwrap();
            assert_eq!(format_epoch_ms(ms), format!("{day} 00:00 UTC"));
        }
    }

    #[test]
    fn what_is_not_a_date_is_refused() {
        for bad in
            ["", "2026-13-01", "2026-02-30", "2025-02-29", "27/11/2026", "2026-11", "1969-12-31", "x-y-z"]
        {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
