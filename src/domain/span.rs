//! The id ranges the engine walks: `(after, through]`, an exclusive lower bound (a checkpoint:
//! the last id done) and an inclusive end.
//!
//! `i64` has no value below −2^63 to stand for "before it", so [`BEFORE_ALL`] (`i64::MIN`) as a
//! lower bound means "before every id": nothing lies below it that it could exclude, and the id
//! −2^63 is walked like any other. In return no range may end at `i64::MIN` — a checkpoint there
//! would read as "nothing done" — so [`end`] moves such an end one up: the range
//! `(BEFORE_ALL, −2^63 + 1]` holds the two least ids.

/// The lower bound before every id, −2^63 included.
pub const BEFORE_ALL: i64 = i64::MIN;

/// The ids of `(after, through]` as an inclusive pair, the way SQL binds them
/// (`id >= first and id <= last`); empty when `first > last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub last: i64,
}

impl Span {
    /// The ids after `after` up to `through`.
    pub fn after(after: i64, through: i64) -> Self {
        match after {
            BEFORE_ALL => Self { first: i64::MIN, last: through },
            // nothing is after the greatest id
            i64::MAX => Self { first: i64::MAX, last: i64::MAX - 1 },
            after => Self { first: after + 1, last: through },
        }
    }

    /// Every id.
    pub const ALL: Span = Span { first: i64::MIN, last: i64::MAX };

    pub fn contains(self, id: i64) -> bool {
        self.first <= id && id <= self.last
    }

    pub fn is_empty(self) -> bool {
        self.first > self.last
    }
}

/// The lower bound just before `id`: `id − 1`, and [`BEFORE_ALL`] for the least id.
pub fn before(id: i64) -> i64 {
    id.saturating_sub(1)
}

/// `id` as the end of a range the engine keeps (a chunk's, a slice's, a run's): never
/// `i64::MIN`, which as a checkpoint means "nothing done".
pub fn end(id: i64) -> i64 {
    id.max(i64::MIN + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_after_an_id_starts_at_the_next_one() {
        assert_eq!(Span::after(0, 10), Span { first: 1, last: 10 });
        assert_eq!(Span::after(-6, -5), Span { first: -5, last: -5 });
    }

    #[test]
    fn the_least_id_is_inside_a_range_from_before_every_id() {
        let span = Span::after(BEFORE_ALL, end(i64::MIN));
        assert!(span.contains(i64::MIN));
        assert!(span.contains(i64::MIN + 1));
        assert_eq!(before(i64::MIN), BEFORE_ALL, "the bound before the least id is before every id");
    }

    #[test]
    fn nothing_is_after_the_greatest_id() {
        assert!(Span::after(i64::MAX, i64::MAX).is_empty());
        assert!(!Span::after(i64::MAX - 1, i64::MAX).is_empty());
        assert!(Span::after(i64::MAX - 1, i64::MAX).contains(i64::MAX));
    }

    #[test]
    fn a_range_that_ends_where_it_starts_is_empty() {
        assert!(Span::after(7, 7).is_empty());
        assert!(Span::after(7, 3).is_empty());
    }

    #[test]
    fn no_range_ends_at_the_least_id() {
        assert_eq!(end(i64::MIN), i64::MIN + 1);
        assert_eq!(end(-5), -5);
    }
}
