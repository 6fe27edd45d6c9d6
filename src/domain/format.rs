//! How figures read on every page and in the CLI: counts with thousands separators, shares,
//! durations as people say them, instants in UTC. One home, so a count or a time reads the same
//! everywhere.

use super::calendar::Day;

/// `text` with its first letter upper-cased: a sentence made of a clause.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// Formats a count with thousands separators: `1000000` → `1,000,000`.
pub fn format_count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats a share between 0 and 1 as a percentage with one decimal: `0.4567` → `45.7%`.
pub fn format_percent(share: f64) -> String {
    format!("{}%", fixed(share * 100.0, 1))
}

/// `value` with `decimals` digits after the point (at most 3), an exact half to the even digit as
/// `format!("{:.1}")` does: `fixed(45.67, 1)` → `45.7`, `fixed(1.25, 1)` → `1.2`. Integer
/// arithmetic, so the browser's build carries no float formatter.
pub fn fixed(value: f64, decimals: u32) -> String {
    let scale = 10_i64.pow(decimals.min(3));
    let scaled = (value * scale as f64).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let (whole, part) = (scaled.unsigned_abs() / scale as u64, scaled.unsigned_abs() % scale as u64);
    match decimals.min(3) {
        0 => format!("{sign}{whole}"),
        d => format!("{sign}{whole}.{part:0width$}", width = d as usize),
    }
}

/// Seconds as people say them: `42 s`, `3 min 05 s`, `2 h 07 min`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// Epoch milliseconds as `2026-11-27 20:41 UTC` (the civil calendar, no time-zone data needed).
pub fn format_epoch_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{} {:02}:{:02} UTC", Day::from_epoch_ms(ms), secs / 3600, (secs % 3600) / 60)
}

/// Epoch milliseconds as `2026-11-27T20:41:07Z` (RFC 3339, UTC): what a spreadsheet reads as a
/// time, for exports.
pub fn rfc3339_ms(ms: i64) -> String {
    format!("{}T{}Z", Day::from_epoch_ms(ms), clock_ms(ms))
}

/// Epoch milliseconds as `20:41:07` (UTC).
pub fn clock_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// The time of day of an RFC 3339 UTC timestamp: `2026-11-27T17:45:12Z` → `17:45:12 UTC`.
pub fn time_of_day(rfc3339: &str) -> String {
    match rfc3339.get(11..19) {
        Some(time) if rfc3339.ends_with('Z') => format!("{time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(1_000_000), "1,000,000");
        assert_eq!(format_count(-12345), "-12,345");
    }

    #[test]
    fn fixed_point_reads_as_format_does() {
        for (value, decimals) in
            [(45.67, 1), (0.0, 2), (99.995, 0), (2.5, 0), (3.5, 0), (-1.25, 1), (1.25, 1), (0.125, 2)]
        {
            let expected = format!("{value:.0$}", decimals as usize, value = value);
            assert_eq!(fixed(value, decimals), expected, "{value} to {decimals}");
        }
        assert_eq!(fixed(0.04, 1), "0.0");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(12.3456, 3), "12.346");
    }

    #[test]
    fn a_utc_timestamp_is_shown_as_its_time_of_day() {
        assert_eq!(time_of_day("2026-11-27T17:45:12Z"), "17:45:12 UTC");
        assert_eq!(time_of_day("yesterday"), "yesterday");
    }

    #[test]
    fn epoch_times_read_as_utc_dates() {
        assert_eq!(format_epoch_ms(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_epoch_ms(1_795_811_267_000), "2026-11-27 20:27 UTC");
        assert_eq!(format_epoch_ms(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(clock_ms(1_795_811_267_000), "20:27:47");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0.4), "0 s");
        assert_eq!(format_duration(42.0), "42 s");
        assert_eq!(format_duration(185.0), "3 min 05 s");
        assert_eq!(format_duration(7620.0), "2 h 07 min");
    }
}
