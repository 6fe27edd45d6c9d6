//! The calendar: one day type, [`Day`], and the civil-date arithmetic under it (UTC, proleptic
//! Gregorian). Every date the product reads — the D-day, the audit log's filter, a project's
//! goal date — is parsed here, and every instant it prints is turned into a date here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar day (UTC), counted from 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i32);

/// Milliseconds in a UTC day.
pub const MS_PER_DAY: i64 = 86_400_000;

impl Day {
    /// Parses `YYYY-MM-DD` as people type it (surrounding spaces are fine), refusing dates that
    /// do not exist.
    pub fn parse(text: &str) -> Result<Day, String> {
        Day::parse_exact(text.trim())
            .ok_or_else(|| format!("{text:?} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-10"))
    }

    /// Exactly `YYYY-MM-DD`: ten characters, digits where digits go, a year from 0001 to 9999
    /// and a day its month has (the OpenAPI `date` format). The only date parser: every other
    /// reading of a date goes through it.
    pub fn parse_exact(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            text.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit())).and_then(|d| d.parse().ok())
        };
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let year = i32::try_from(year).ok().filter(|y| *y >= 1)?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Day(days_from_civil(year, month, day)))
    }

    /// 00:00 UTC that day, in epoch milliseconds.
    pub fn start_ms(self) -> i64 {
        i64::from(self.0) * MS_PER_DAY
    }

    /// The day an epoch-milliseconds instant falls on (UTC).
    pub fn from_epoch_ms(ms: i64) -> Day {
        Day(ms.div_euclid(MS_PER_DAY) as i32)
    }

    /// `D+offset`.
    pub fn plus(self, offset: i32) -> Day {
        Day(self.0 + offset)
    }

    /// Whole days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Day) -> i32 {
        later.0 - self.0
    }

    /// `Dec 10`, for tables where the year is obvious.
    pub fn short(self) -> String {
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let (_, m, d) = civil_from_days(self.0);
        format!("{} {d}", MONTHS[(m - 1) as usize])
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the inverse of
/// [`days_from_civil`]).
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_exactly_ten_characters_of_a_day_that_exists() {
        for good in ["0001-01-01", "1970-01-01", "2000-02-29", "2026-12-10", "9999-12-31"] {
            let day = Day::parse_exact(good).unwrap_or_else(|| panic!("{good}"));
            assert_eq!(day.to_string(), good);
        }
        for bad in [
            "",
            "0000-01-01",
            "2026-13-01",
            "2026-00-10",
            "2026-02-30",
            "2025-02-29",
            "1900-02-29",
            "2026-1-05",
            "+202-01-01",
            "2026-01-1x",
            " 2026-12-10",
            "2026-12-10 ",
            "27/11/2026",
            "2026-11",
            "x-y-z",
        ] {
            assert_eq!(Day::parse_exact(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn people_may_type_spaces_around_a_date() {
        assert_eq!(Day::parse(" 2026-12-10 ").map(|d| d.to_string()), Ok("2026-12-10".to_owned()));
        assert!(Day::parse("2026-12-32").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn days_and_epoch_milliseconds_agree() {
        assert_eq!(Day::parse_exact("1970-01-01").map(Day::start_ms), Some(0));
        let day = Day::parse_exact("2026-11-27").unwrap();
        assert_eq!(Day::from_epoch_ms(day.start_ms() + MS_PER_DAY - 1), day);
        assert_eq!(Day::from_epoch_ms(-1).to_string(), "1969-12-31");
    }
}
