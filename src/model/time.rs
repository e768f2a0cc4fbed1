//! Times as every output writes them, and the window a run looks at.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC to the second: every export carries at least that, so
/// the same sign-ins give the same text whatever format they came in.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// [`rfc3339`]'s text without formatting machinery or an allocation, for
/// writers of a row per group (two times a row, a million rows): the
/// common case, years 0 to 9999 outside a leap second; `None` for the
/// rest, which [`rfc3339`] writes.
pub fn rfc3339_fixed(t: &DateTime<Utc>) -> Option<[u8; 20]> {
    use chrono::{Datelike, Timelike};
    // The naive time: `DateTime`'s own accessors add the (zero) offset first.
    let t = t.naive_utc();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    if t.nanosecond() >= 1_000_000_000 {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00Z";
    let two = |out: &mut [u8; 20], at: usize, v: u32| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 0, year / 100);
    two(&mut out, 2, year % 100);
    two(&mut out, 5, t.month());
    two(&mut out, 8, t.day());
    two(&mut out, 11, t.hour());
    two(&mut out, 14, t.minute());
    two(&mut out, 17, t.second());
    Some(out)
}

/// The earlier of two times either of which may be unknown (`Option::min`
/// would take an unknown one as the earliest).
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `[since, until)`: the part of time a run reads. Either end may be open.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    pub fn new(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Window {
        Window { since, until }
    }

    /// Whether `t` falls in the window: at or after `since`, before `until`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fixed-buffer text is chrono's, wherever it gives one.
        #[test]
        fn the_fixed_text_of_a_time_is_its_rfc3339_text(
            secs in -70_000_000_000i64..300_000_000_000,
            nanos in prop_oneof![0u32..1_000_000_000, 1_000_000_000u32..2_000_000_000],
        ) {
            if let Some(t) = DateTime::from_timestamp(secs, nanos) {
                match rfc3339_fixed(&t) {
                    Some(fixed) => prop_assert_eq!(std::str::from_utf8(&fixed).unwrap(), rfc3339(&t)),
                    None => prop_assert!(
                        nanos >= 1_000_000_000 || !(0..=9999).contains(&chrono::Datelike::year(&t))
                    ),
                }
            }
        }
    }

    #[test]
    fn the_fixed_text_covers_the_edges_of_four_digit_years() {
        for text in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-28T09:05:07Z"] {
            let t: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(rfc3339_fixed(&t).as_ref().map(|b| std::str::from_utf8(b).unwrap()), Some(text));
        }
        let leap: DateTime<Utc> = "2016-12-31T23:59:60Z".parse().unwrap();
        assert_eq!(rfc3339_fixed(&leap), None);
    }

    #[test]
    fn a_window_includes_its_start_and_excludes_its_end() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let w = Window::new(Some(at("2026-11-01T00:00:00Z")), Some(at("2026-11-02T00:00:00Z")));
        assert!(w.contains(at("2026-11-01T00:00:00Z")));
        assert!(!w.contains(at("2026-11-02T00:00:00Z")));
        assert!(!w.contains(at("2026-10-31T23:59:59Z")));
        assert!(Window::default().contains(at("1999-01-01T00:00:00Z")));
        assert_eq!(rfc3339(&at("2026-11-01T10:00:00.987Z")), "2026-11-01T10:00:00Z");
    }
}
