//! The rollout's calendar: a D-day, each environment's planned window around it (dev D-7..D-5,
//! staging D-4..D-2, prod D-1..D+3), and how the actual rollout compares — on time, at risk or
//! late. Pure: the overview, the CLI and the tests share [`schedule`].

use super::calendar::Day;
use super::environment::Environment;
use serde::{Deserialize, Serialize};

/// The planned window of `env`, as offsets from D-day, both days included.
pub fn window(env: Environment) -> (i32, i32) {
    match env {
        Environment::Dev => (-7, -5),
        Environment::Staging => (-4, -2),
        Environment::Prod => (-1, 3),
    }
}

/// `D-7`, `D`, `D+3`.
pub fn offset_label(offset: i32) -> String {
    match offset {
        0 => "D".to_owned(),
        n if n > 0 => format!("D+{n}"),
        n => format!("D{n}"),
    }
}

/// `D-7..D-5`: the window of `env` around D-day.
pub fn window_label(env: Environment) -> String {
    let (from, to) = window(env);
    format!("{}..{}", offset_label(from), offset_label(to))
}

/// How an environment stands against its window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Schedule {
    /// Its window has not opened and nothing makes it look late.
    Upcoming,
    OnTrack,
    AtRisk(String),
    Late(String),
    DoneOnTime,
    /// Done, this many days after its window closed.
    DoneLate(i32),
}

impl Schedule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Schedule::Upcoming => "upcoming",
            Schedule::OnTrack => "on_track",
            Schedule::AtRisk(_) => "at_risk",
            Schedule::Late(_) => "late",
            Schedule::DoneOnTime => "done_on_time",
            Schedule::DoneLate(_) => "done_late",
        }
    }

    /// In words, with the reason.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Upcoming => "Upcoming".into(),
            Schedule::OnTrack => "On track".into(),
            Schedule::AtRisk(why) => format!("At risk: {why}"),
            Schedule::Late(why) => format!("Late: {why}"),
            Schedule::DoneOnTime => "Done on time".into(),
            Schedule::DoneLate(days) => format!("Done {} late", plural_days(*days)),
        }
    }
}

fn plural_days(n: i32) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// What really happened in one environment, in days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actual {
    /// The first dry-run or run there.
    pub started: Option<Day>,
    /// The day every phase was done (the last sign-off), if they are.
    pub done: Option<Day>,
    /// Whether a backfill there has completed (and not been rolled back).
    pub backfilled: bool,
}

impl Actual {
    /// `Not started`, `Started <day>` or `<day> → <day>`, each day written by `day`.
    pub fn describe(&self, day: impl Fn(Day) -> String) -> String {
        match (self.started, self.done) {
            (None, _) => "Not started".to_owned(),
            (Some(started), None) => format!("Started {}", day(started)),
            (Some(started), Some(done)) => format!("{} → {}", day(started), day(done)),
        }
    }
}

/// One environment on the calendar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSchedule {
    pub environment: Environment,
    pub planned_start: Day,
    pub planned_end: Day,
    pub actual: Actual,
    pub schedule: Schedule,
}

/// The whole calendar, as the overview shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// `None` until someone sets a D-day.
    pub d_day: Option<Day>,
    /// Where the D-day comes from: "set by user:ana on 2026-12-01", "the config file".
    pub source: String,
    pub today: Day,
    pub environments: Vec<EnvironmentSchedule>,
}

/// Places every environment (dev, staging, prod, in that order, with what actually happened
/// there) against the windows around `d_day`, as of `today`. An environment whose predecessor is
/// late is at risk before its window opens: it cannot start before the gate does. The lateness
/// travels down the chain only until an environment after it is done or on track: prod's gate is
/// staging, and a staging done on time does not wait for a dev that never got its last sign-off.
pub fn schedule(d_day: Day, today: Day, actuals: &[(Environment, Actual)]) -> Vec<EnvironmentSchedule> {
    let mut previous_late: Option<Environment> = None;
    actuals
        .iter()
        .map(|&(environment, actual)| {
            let (from, to) = window(environment);
            let (start, end) = (d_day.plus(from), d_day.plus(to));
            let schedule = place(start, end, today, actual, previous_late);
            previous_late = match schedule {
                Schedule::Late(_) => Some(environment),
                Schedule::OnTrack | Schedule::DoneOnTime | Schedule::DoneLate(_) => None,
                Schedule::Upcoming | Schedule::AtRisk(_) => previous_late,
            };
            EnvironmentSchedule { environment, planned_start: start, planned_end: end, actual, schedule }
        })
        .collect()
}

fn place(start: Day, end: Day, today: Day, actual: Actual, previous_late: Option<Environment>) -> Schedule {
    if let Some(done) = actual.done {
        return match end.days_until(done) {
            late if late > 0 => Schedule::DoneLate(late),
            _ => Schedule::DoneOnTime,
        };
    }
    if today > end {
        return Schedule::Late(format!("its window closed {} ago", plural_days(end.days_until(today))));
    }
    if today < start {
        if actual.started.is_some() {
            // begun before its window: whatever comes next, it is ahead
            return Schedule::OnTrack;
        }
        return match previous_late {
            Some(env) => Schedule::AtRisk(format!("{env} is late and gates this environment")),
            None => Schedule::Upcoming,
        };
    }
    let middle = start.plus((start.days_until(end) + 1) / 2);
    match (actual.started, previous_late) {
        (None, Some(late)) => Schedule::AtRisk(format!("{late} is late and gates this environment")),
        (None, None) if today > start => {
            Schedule::AtRisk(format!("not started, {} into its window", plural_days(start.days_until(today))))
        }
        _ if today == end => Schedule::AtRisk("last day of its window and not done".into()),
        _ if today >= middle && !actual.backfilled => {
            Schedule::AtRisk("past the middle of its window and not backfilled".into())
        }
        _ => Schedule::OnTrack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Environment::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    #[test]
    fn days_parse_print_and_count_across_months_years_and_leap_days() {
        assert_eq!(day("1970-01-01"), Day(0));
        assert_eq!(day("2026-12-10").to_string(), "2026-12-10");
        assert_eq!(day("2024-02-29").plus(1).to_string(), "2024-03-01");
        assert_eq!(day("2026-12-31").plus(1).to_string(), "2027-01-01");
        assert_eq!(day("2026-12-10").plus(-7).to_string(), "2026-12-03");
        assert_eq!(day("1969-12-31"), Day(-1));
        assert_eq!(day("2026-12-10").short(), "Dec 10");
        assert_eq!(Day::from_epoch_ms(1_764_547_200_000 + 3_600_000).to_string(), "2025-12-01");
        for text in (0..800).map(|n| day("2025-11-01").plus(n).to_string()) {
            assert_eq!(day(&text).to_string(), text);
        }
    }

    #[test]
    fn impossible_or_malformed_dates_are_refused() {
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "10/12/2026",
            "2026-1-5",
            "",
            "2026-12-10-1",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        assert!(Day::parse(" 2026-12-10 ").is_ok(), "surrounding spaces are fine");
    }

    #[test]
    fn windows_sit_around_d_day_as_the_plan_says() {
        assert_eq!(window(Dev), (-7, -5));
        assert_eq!(window(Staging), (-4, -2));
        assert_eq!(window(Prod), (-1, 3));
        assert_eq!(offset_label(-7), "D-7");
        assert_eq!(offset_label(0), "D");
        assert_eq!(offset_label(3), "D+3");
    }

    fn at(today: i32, actuals: [Actual; 3]) -> Vec<Schedule> {
        let d = day("2026-12-10");
        let actuals = [(Dev, actuals[0]), (Staging, actuals[1]), (Prod, actuals[2])];
        schedule(d, d.plus(today), &actuals).into_iter().map(|e| e.schedule).collect()
    }

    const NOTHING: Actual = Actual { started: None, done: None, backfilled: false };

    fn started(offset: i32) -> Actual {
        Actual { started: Some(day("2026-12-10").plus(offset)), ..NOTHING }
    }

    #[test]
    fn before_any_window_everything_is_upcoming() {
        assert_eq!(at(-9, [NOTHING; 3]), [Schedule::Upcoming, Schedule::Upcoming, Schedule::Upcoming]);
    }

    #[test]
    fn a_window_that_opened_without_a_start_is_at_risk_after_its_first_day() {
        assert_eq!(at(-7, [NOTHING; 3])[0], Schedule::OnTrack);
        assert!(matches!(&at(-6, [NOTHING; 3])[0], Schedule::AtRisk(why) if why.contains("not started")));
    }

    #[test]
    fn started_but_not_backfilled_past_the_middle_is_at_risk_and_on_the_last_day_too() {
        assert_eq!(at(-7, [started(-7), NOTHING, NOTHING])[0], Schedule::OnTrack);
        assert!(
            matches!(&at(-6, [started(-7), NOTHING, NOTHING])[0], Schedule::AtRisk(why) if why.contains("backfilled"))
        );
        let backfilled = Actual { backfilled: true, ..started(-7) };
        assert_eq!(at(-6, [backfilled, NOTHING, NOTHING])[0], Schedule::OnTrack);
        assert!(
            matches!(&at(-5, [backfilled, NOTHING, NOTHING])[0], Schedule::AtRisk(why) if why.contains("last day"))
        );
    }

    #[test]
    fn past_its_window_and_not_done_is_late_and_puts_the_next_environment_at_risk() {
        let schedules = at(-4, [started(-7), NOTHING, NOTHING]);
        assert_eq!(schedules[0], Schedule::Late("its window closed 1 day ago".into()));
        // staging's window opens today: its first day, but dev's lateness gates it
        assert_eq!(schedules[1], Schedule::AtRisk("dev is late and gates this environment".into()));
        assert_eq!(
            at(-4, [Actual { done: Some(day("2026-12-05")), ..started(-7) }, NOTHING, NOTHING])[1],
            Schedule::OnTrack
        );
        let schedules = at(-6, [NOTHING; 3]);
        assert_eq!(schedules[2], Schedule::Upcoming, "dev at risk does not yet touch prod");
        let schedules = at(-3, [started(-7), NOTHING, NOTHING]);
        assert!(
            matches!(&schedules[2], Schedule::AtRisk(why) if why.contains("staging is late") || why.contains("dev is late"))
        );
    }

    #[test]
    fn done_is_on_time_within_the_window_and_late_after_it_whatever_today_is() {
        let d = day("2026-12-10");
        let done_on =
            |offset| Actual { started: Some(d.plus(-7)), done: Some(d.plus(offset)), backfilled: true };
        assert_eq!(
            at(10, [done_on(-5), done_on(-3), done_on(3)]),
            [Schedule::DoneOnTime, Schedule::DoneOnTime, Schedule::DoneOnTime]
        );
        assert_eq!(at(10, [done_on(-3), done_on(-3), done_on(5)])[0], Schedule::DoneLate(2));
        assert_eq!(Schedule::DoneLate(2).describe(), "Done 2 days late");
        assert_eq!(at(10, [done_on(-3), done_on(-3), done_on(5)])[2], Schedule::DoneLate(2));
    }

    #[test]
    fn a_late_environment_gates_only_until_one_after_it_is_done() {
        let d = day("2026-12-10");
        // dev never got its last sign-off; staging, its successor, was done on time
        let staging_done = Actual { started: Some(d.plus(-4)), done: Some(d.plus(-3)), backfilled: true };
        let schedules = at(-2, [started(-7), staging_done, NOTHING]);
        assert!(matches!(schedules[0], Schedule::Late(_)));
        assert_eq!(schedules[1], Schedule::DoneOnTime);
        assert_eq!(schedules[2], Schedule::Upcoming, "staging is prod's gate, and it is done");
    }

    #[test]
    fn an_environment_that_started_before_its_window_is_not_upcoming() {
        let d = day("2026-12-10");
        let done = |offset| Actual {
            started: Some(d.plus(offset - 1)),
            done: Some(d.plus(offset)),
            backfilled: true,
        };
        let prod = Actual { started: Some(d.plus(-3)), done: None, backfilled: true };
        assert_eq!(at(-3, [done(-6), done(-4), prod])[2], Schedule::OnTrack);
        assert_eq!(at(-3, [done(-6), done(-4), started(-3)])[2], Schedule::OnTrack);
    }

    #[test]
    fn prod_after_d_plus_3_without_sign_off_is_late() {
        let backfilled = Actual { backfilled: true, ..started(-1) };
        assert_eq!(
            at(3, [NOTHING, NOTHING, backfilled])[2],
            Schedule::AtRisk("last day of its window and not done".into())
        );
        assert_eq!(
            at(4, [NOTHING, NOTHING, backfilled])[2],
            Schedule::Late("its window closed 1 day ago".into())
        );
    }
}
