//! Study-type identification in SQL, the set-based twin of `domain::study_type::identify`
//! (a property test proves the two agree on both engines).
//!
//! `classified()` is a subquery over the legacy rows with ids in `[$1, $2]` (a
//! [`Span`](crate::domain::span::Span)), one row per legacy
//! row with its `verdict`: `school`, `self_study`, or `x:<reason>` for a row that goes to the
//! dead-letter table. Both SQLite and PostgreSQL run it as written.
//!
//! It is one flat `case` on purpose: nested subqueries that name an intermediate column several
//! times get flattened by the planner into copies of that column's expression, and the string
//! functions then run many times per row.

use crate::domain::study_type::{paces_in_sql, MAX_GRADE, MIN_GRADE};

/// The classified legacy rows with ids in `[$1, $2]`, as a parenthesised subquery.
///
/// The first arms are fast paths for the spellings that make up nearly all rows, written as
/// plain comparisons (string functions cost more than anything else per row); the last arm is
/// the general rule: `lower(trim(…))` of the type, which the domain's `-`/` ` → `_`
/// normalisation accepts exactly as `school` or one of the three `self…study` spellings.
pub fn classified() -> String {
    let paces = paces_in_sql();
    let has_school = "trim(coalesce(school_name, '')) <> ''";
    let has_pace = "trim(coalesce(pace, '')) <> ''";
    let as_school = format!(
        "case
            when not ({has_school}) then 'x:missing_school_name'
            when grade is not null and (grade < {MIN_GRADE} or grade > {MAX_GRADE}) then 'x:grade_out_of_range'
            else 'school'
        end"
    );
    let as_self_study = format!(
        "case
            when pace is null or pace in ({paces}) then 'self_study'
            when {has_pace} and lower(trim(pace)) not in ({paces}) then 'x:unknown_pace'
            else 'self_study'
        end"
    );
    format!(
        "(select id, school_name, grade, pace, goal_date, created_at,
            case
                when project_type = 'school' or project_type = 'School' then {as_school}
                when project_type = 'self_study' or project_type = 'self-study' then {as_self_study}
                else case lower(trim(coalesce(project_type, '')))
                    when 'school' then {as_school}
                    when 'self_study' then {as_self_study}
                    when 'self-study' then {as_self_study}
                    when 'self study' then {as_self_study}
                    else case
                        when {has_school} and {has_pace} then 'x:ambiguous'
                        when {has_school} then {as_school}
                        when {has_pace} then {as_self_study}
                        else 'x:unidentifiable'
                    end
                end
            end as verdict
        from projects
        {RANGE}) "
    )
}

/// How [`classified`] names its rows: the ids of a [`Span`](crate::domain::span::Span).
pub const RANGE: &str = "where id >= $1 and id <= $2";

/// The pace as stored in `self_study_projects`: trimmed and lower-cased, null when absent.
pub fn normalised_pace() -> String {
    format!(
        "case
    when pace is null or pace in ({}) then pace
    when trim(pace) <> '' then lower(trim(pace))
end",
        paces_in_sql()
    )
}

/// Which subtype table a statement writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subtype {
    School,
    SelfStudy,
}

impl Subtype {
    pub const ALL: [Subtype; 2] = [Subtype::School, Subtype::SelfStudy];

    pub fn table(self) -> &'static str {
        match self {
            Self::School => "school_projects",
            Self::SelfStudy => "self_study_projects",
        }
    }

    /// The verdict of [`classified`] that names this table.
    pub fn verdict(self) -> &'static str {
        match self {
            Self::School => "school",
            Self::SelfStudy => "self_study",
        }
    }

    /// The columns copied from the legacy row (besides the key and the provenance).
    pub fn copied(self) -> [&'static str; 3] {
        match self {
            Self::School => ["school_name", "grade", "created_at"],
            Self::SelfStudy => ["pace", "goal_date", "created_at"],
        }
    }

    /// A condition true when the subtype row `t` holds what a copy of the classified row `c`
    /// writes (its provenance aside); `c` must come from [`Subtype::copy_source`], whose columns
    /// are already what the copy writes.
    pub fn holds_copy(self, t: &str, c: &str) -> String {
        self.copied().map(|col| format!("{t}.{col} is {c}.{col}")).join(" and ")
    }

    /// The rows of `source` (a relation with the columns of [`classified`]) this table takes,
    /// with the values a copy writes (the pace normalised) under the table's own column names.
    pub fn copy_source(self, source: &str) -> String {
        let values = match self {
            Self::School => "school_name, grade, created_at".to_owned(),
            Self::SelfStudy => format!("{} as pace, goal_date, created_at", normalised_pace()),
        };
        format!("(select id, {values} from {source} s where verdict = '{}')", self.verdict())
    }

    /// [`Subtype::insert_from`] that brings a row already there up to date (writing `run_id`
    /// into it) when a copied column differs, and leaves it — its provenance too — when none does.
    pub fn upsert_from(self, source: &str, run_id: &str) -> String {
        let table = self.table();
        let set = self.copied().map(|c| format!("{c} = excluded.{c}")).join(", ");
        let differs =
            self.copied().map(|c| format!("{table}.{c} is distinct from excluded.{c}")).join(" or ");
        format!(
            "{} on conflict (project_id) do update set {set}, backfill_run_id = excluded.backfill_run_id
             where {differs}",
            self.insert_from(source, run_id, false)
        )
    }

    /// `insert into <table> (…) select … from <source> where verdict = '<type>'`: the copy of the
    /// identified rows of `source` (a relation with the columns of [`classified`]), provenance
    /// `run_id` (a parameter like `$3`, or a literal).
    pub fn insert_from(self, source: &str, run_id: &str, on_conflict: bool) -> String {
        let (head, values, verdict) = match self {
            Self::School => (
                "insert into school_projects (project_id, school_name, grade, backfill_run_id, created_at)",
                format!("id, school_name, grade, {run_id}, created_at"),
                "school",
            ),
            Self::SelfStudy => (
                "insert into self_study_projects (project_id, pace, goal_date, backfill_run_id, created_at)",
                format!("id, {}, goal_date, {run_id}, created_at", normalised_pace()),
                "self_study",
            ),
        };
        let conflict = if on_conflict { " on conflict (project_id) do nothing" } else { "" };
        format!("{head} select {values} from {source} c where verdict = '{verdict}'{conflict}")
    }
}

/// `insert into sti_backfill_dead_letters …` of the rejected rows of `source`.
pub fn insert_dead_letters_from(source: &str, run_id: &str, recorded_at: &str) -> String {
    format!(
        "insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at)
         select {run_id}, id, substr(verdict, 3), {recorded_at} from {source} c where verdict like 'x:%'
         on conflict (run_id, project_id) do nothing"
    )
}
