//! The audit log as the console shows and exports it, and the filter's date parsing.

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

/// `YYYY-MM-DD` as epoch milliseconds at 00:00 UTC that day; `None` when it is not a date.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month[(month - 1) as usize] {
        return None;
    }
    // days from the civil date (H. Hinnant's algorithm), the inverse of `live::format_epoch_ms`
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::live::format_epoch_ms;

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
