//! Timestamps in every spelling the exports use.
//!
//! Graph and diagnostic streams: RFC 3339 with `Z` or an offset, up to seven
//! fraction digits. Log Analytics portal CSV: locale text such as
//! `9/19/2023, 1:45:17.287 PM`. Re-saved CSVs: day-first dates. A value
//! without an offset is UTC (every export names its time columns UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// How to read `a/b/yyyy` dates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DateOrder {
    /// Month first when the text has AM/PM (the US locale of the portals) or
    /// when the day is unmistakable (a number over 12); otherwise an error.
    #[default]
    Auto,
    /// Month first: 9/19/2023.
    Mdy,
    /// Day first: 19/9/2023.
    Dmy,
}

pub fn parse_time(s: &str, order: DateOrder) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    // Windows PowerShell 5.1's ConvertTo-Json: "/Date(1705314600000)/",
    // milliseconds since the epoch, sometimes with an offset suffix that
    // does not change the instant.
    if let Some(ms) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = ms.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
        let ms: i64 = digits.parse().map_err(|_| format!("`{t}` is not a timestamp this tool knows"))?;
        return DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("`{t}` is out of range"));
    }
    // `2023-09-19 13:45:17+00:00` and other near-RFC 3339 shapes.
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    let naive = t.strip_suffix(" UTC").unwrap_or(t);
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, f) {
            return Ok(dt.and_utc());
        }
    }
    parse_locale(naive, order).ok_or_else(|| format!("`{t}` is not a timestamp this tool knows"))
}

/// `M/D/YYYY[,] h:mm[:ss[.fff]] [AM|PM]`, `D/M/YYYY HH:mm[:ss]`,
/// `D.M.YYYY HH:mm[:ss]`.
fn parse_locale(t: &str, order: DateOrder) -> Option<DateTime<Utc>> {
    let (date, rest) = t.split_once([' ', ','])?;
    let rest = rest.trim_start_matches([',', ' ']);
    let (time, meridiem) = match rest.rsplit_once(' ') {
        Some((tm, m)) if m.eq_ignore_ascii_case("AM") || m.eq_ignore_ascii_case("PM") => {
            (tm.trim(), Some(m.eq_ignore_ascii_case("PM")))
        }
        _ => (rest.trim(), None),
    };
    let dotted = date.contains('.');
    let parts: Vec<&str> = date.split(['/', '.', '-']).collect();
    if parts.len() != 3 {
        return None;
    }
    let a: u32 = parts[0].parse().ok()?;
    let b: u32 = parts[1].parse().ok()?;
    let y: i32 = parts[2].parse().ok()?;
    if parts[2].len() != 4 {
        return None;
    }
    let month_first = match order {
        DateOrder::Mdy => true,
        DateOrder::Dmy => false,
        DateOrder::Auto if dotted => false,
        DateOrder::Auto if meridiem.is_some() => true,
        DateOrder::Auto if a > 12 => false,
        DateOrder::Auto if b > 12 => true,
        DateOrder::Auto if a == b => true,
        DateOrder::Auto => return None,
    };
    let (m, d) = if month_first { (a, b) } else { (b, a) };
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    let mut tp = time.split(':');
    let mut h: u32 = tp.next()?.parse().ok()?;
    let min: u32 = tp.next()?.parse().ok()?;
    let (sec, nanos) = match tp.next() {
        Some(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            let sec: u32 = whole.parse().ok()?;
            let mut digits: String = frac.chars().take(9).collect();
            if !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            while digits.len() < 9 {
                digits.push('0');
            }
            (sec, digits.parse().ok()?)
        }
        None => (0, 0),
    };
    if tp.next().is_some() {
        return None;
    }
    if let Some(pm) = meridiem {
        if !(1..=12).contains(&h) {
            return None;
        }
        h = match (h, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, true) => h + 12,
            (h, false) => h,
        };
    }
    let time = NaiveTime::from_hms_nano_opt(h, min, sec, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// Explains why a slash date could not be read, for the error message.
pub fn ambiguity_hint(s: &str) -> Option<&'static str> {
    let t = s.trim();
    if t.contains('/') && !t.to_ascii_uppercase().ends_with('M') {
        Some("day-first or month-first cannot be told from this value; pass --date-order mdy or dmy")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> String {
        parse_time(s, DateOrder::Auto).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    #[test]
    fn graph_and_diagnostic_spellings() {
        assert_eq!(iso("2024-03-05T10:11:12Z"), "2024-03-05T10:11:12.000Z");
        assert_eq!(iso("2022-01-24T05:10:08.6816663+00:00"), "2022-01-24T05:10:08.681Z");
        assert_eq!(iso("2021-07-30T06:20:59.7789167-05:00"), "2021-07-30T11:20:59.778Z");
        assert_eq!(iso("2024-03-05 10:11:12"), "2024-03-05T10:11:12.000Z");
    }

    #[test]
    fn windows_powershell_dates() {
        assert_eq!(iso("/Date(1705314600000)/"), "2024-01-15T10:30:00.000Z");
        assert_eq!(iso("/Date(1705314600000+0100)/"), "2024-01-15T10:30:00.000Z");
        assert!(parse_time("/Date(soon)/", DateOrder::Auto).is_err());
    }

    #[test]
    fn log_analytics_locale_text() {
        assert_eq!(iso("9/19/2023, 1:45:17.287 PM"), "2023-09-19T13:45:17.287Z");
        assert_eq!(iso("9/19/2023, 12:05:00.000 AM"), "2023-09-19T00:05:00.000Z");
        assert_eq!(iso("12/1/2023 12:00:00 PM"), "2023-12-01T12:00:00.000Z");
    }

    #[test]
    fn day_first_when_unmistakable_or_told() {
        assert_eq!(iso("19/09/2023 13:45:17"), "2023-09-19T13:45:17.000Z");
        assert_eq!(iso("19.09.2023 13:45"), "2023-09-19T13:45:00.000Z");
        assert!(parse_time("03/04/2023 13:45:17", DateOrder::Auto).is_err());
        let d = parse_time("03/04/2023 13:45:17", DateOrder::Dmy).unwrap();
        assert_eq!(d.to_rfc3339(), "2023-04-03T13:45:17+00:00");
        assert!(ambiguity_hint("03/04/2023 13:45:17").is_some());
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "yesterday", "13/13/2023 10:00", "2/30/2023, 1:00:00 PM", "1/2/23 10:00"] {
            assert!(parse_time(s, DateOrder::Auto).is_err(), "{s}");
        }
    }
}
