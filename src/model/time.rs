//! Times as every output writes them, and the window a run looks at.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC to the second: every export carries at least that, so
/// the same sign-ins give the same text whatever format they came in.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
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
