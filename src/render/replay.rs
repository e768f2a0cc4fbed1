//! Rendering `replay` results: a summary per partner, then the rows.

use std::borrow::Cow;
use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use super::table::{clip, short_access, TypedCell};
use super::Each;
use super::{activity as act, SCHEMA_VERSION};
use crate::analysis::activity::GroupBy;
use crate::analysis::replay::{
    Impact, Mismatches, PartnerImpact, PartnerImpacts, ReplayRow, Summary, MISMATCHES_SHOWN,
};
use crate::model::rfc3339;

pub(crate) const EXTRA_COLUMNS: [&str; 11] = [
    "current",
    "proposed",
    "impact",
    "reason",
    "current_reason",
    "calibration",
    "severity",
    "severity_label",
    "finding_id",
    "event_time",
    "schema_version",
];

pub(crate) fn columns(by: GroupBy) -> Vec<&'static str> {
    let mut columns = act::columns(by);
    columns.extend(EXTRA_COLUMNS);
    columns
}

/// One row's cells in `columns` order.
#[cfg(test)]
fn cells(r: &ReplayRow, columns: &[&str]) -> Vec<Value> {
    columns.iter().map(|c| typed_cell(r, c).into_json()).collect()
}

/// A replay column, resolved from its name once per output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Current,
    Proposed,
    Impact,
    Reason,
    CurrentReason,
    Calibration,
    Severity,
    SeverityLabel,
    FindingId,
    EventTime,
    SchemaVersion,
    Activity(act::Column),
}

impl Column {
    fn of(name: &str) -> Column {
        match name {
            "current" => Column::Current,
            "proposed" => Column::Proposed,
            "impact" => Column::Impact,
            "reason" => Column::Reason,
            "current_reason" => Column::CurrentReason,
            "calibration" => Column::Calibration,
            "severity" => Column::Severity,
            "severity_label" => Column::SeverityLabel,
            "finding_id" => Column::FindingId,
            "event_time" => Column::EventTime,
            "schema_version" => Column::SchemaVersion,
            other => Column::Activity(act::Column::of(other)),
        }
    }
}

/// One cell of a row, typed: the one place that says what each replay
/// column holds (the activity columns: [`act::typed`]).
#[inline]
fn typed(r: &ReplayRow, column: Column) -> TypedCell<'_> {
    let text = |s| TypedCell::Text(Cow::Borrowed(s));
    match column {
        Column::Current => text(r.current.as_str()),
        Column::Proposed => text(r.proposed.as_str()),
        Column::Impact => text(r.impact.as_str()),
        Column::Reason => text(&r.reason),
        Column::CurrentReason => text(&r.current_reason),
        Column::Calibration => r.calibration.as_deref().map_or(TypedCell::Null, text),
        Column::Severity => TypedCell::Number(r.impact.severity().into()),
        Column::SeverityLabel => text(r.impact.severity_label()),
        Column::FindingId => TypedCell::Hash(r.finding_hash()),
        Column::EventTime => r.activity.counters.last_seen.map_or(TypedCell::Null, TypedCell::Time),
        Column::SchemaVersion => TypedCell::Number(SCHEMA_VERSION.into()),
        Column::Activity(c) => act::typed(&r.activity, c),
    }
}

/// [`typed`] by the column's name.
#[cfg(test)]
fn typed_cell<'a>(r: &'a ReplayRow, column: &str) -> TypedCell<'a> {
    typed(r, Column::of(column))
}

/// A row's CSV line as [`stream_csv`] writes it.
pub(crate) fn csv_line(
    columns: &[&'static str],
    style: super::table::CsvStyle,
) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    super::table::typed_csv_line(columns, Column::of, typed, style)
}

/// A row's NDJSON line: its object, keys in column order.
pub(crate) fn ndjson_line(columns: &[&'static str]) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    super::table::typed_json_object(columns, Column::of, typed, super::table::JsonLayout::Line)
}

/// A row as an element of the JSON document's rows
/// ([`write_json_document`]).
fn json_row(columns: &[&'static str]) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    super::table::typed_json_object(columns, Column::of, typed, super::table::JsonLayout::DocumentRow)
}

/// Writes rows as CSV one at a time ([`super::table::stream_typed_csv`]).
pub(crate) fn stream_csv(
    rows: impl Iterator<Item = ReplayRow>,
    columns: &[&'static str],
    w: &mut dyn std::io::Write,
    style: super::table::CsvStyle,
) -> anyhow::Result<()> {
    super::table::stream_typed_csv(rows, columns, Column::of, typed, w, style)
}

/// The summary's keys as the JSON document has them, each written as it
/// is made: the partners one at a time (a forged export naming a million
/// partners made a 4 GB value of the whole summary first).
fn summary_entries<M: serde::ser::SerializeMap>(s: &Summary, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry(
        "window",
        &json!({"first": s.window_first.as_ref().map(rfc3339), "last": s.window_last.as_ref().map(rfc3339)}),
    )?;
    map.serialize_entry("coverage_warnings", &s.coverage_warnings)?;
    let impacts: serde_json::Map<_, _> = s
        .impacts
        .iter()
        .map(|(k, (rows, sign_ins))| (k.to_string(), json!({"rows": rows, "sign_ins": sign_ins})))
        .collect();
    map.serialize_entry("impacts", &impacts)?;
    map.serialize_entry("partners", &PartnersJson(&s.partners))
}

/// The summary's partners, each written as it is read back.
struct PartnersJson<'a>(&'a PartnerImpacts);

impl serde::Serialize for PartnersJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut partners = self.0.take();
        let mut seq = s.serialize_seq(None)?;
        for p in partners.by_ref() {
            seq.serialize_element(&partner_json(&p))?;
        }
        partners.finish().map_err(serde::ser::Error::custom)?;
        seq.end()
    }
}

fn partner_json(p: &PartnerImpact) -> Value {
    json!({
        "partner_tenant_id": p.partner_tenant_id, "partner_tenant_name": p.partner_tenant_name,
        "lost_users": p.lost_users, "lost_apps": p.lost_apps, "lost_sign_ins": p.lost_sign_ins,
        "degraded_users": p.degraded_users, "degraded_sign_ins": p.degraded_sign_ins,
        "unknown_sign_ins": p.unknown_sign_ins, "gained_sign_ins": p.gained_sign_ins,
        "last_seen": p.last_seen.as_ref().map(rfc3339),
    })
}

/// The JSON document: what was run, the summary (its calibration
/// mismatches last, written as they are read), then `rows` written as they
/// come.
pub(crate) fn write_json_document(
    out: &mut dyn std::io::Write,
    rows: impl Iterator<Item = ReplayRow>,
    by: GroupBy,
    s: &Summary,
    mismatches: &mut Mismatches,
    run: Value,
) -> anyhow::Result<()> {
    /// `schema_version`, `by`, `run`, then the summary.
    struct Head<'a, I>(serde_json::Map<String, Value>, &'a Summary, &'a Each<I>);
    impl<I: Iterator<Item = String>> super::Head for Head<'_, I> {
        fn entries<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
            super::Head::entries(&self.0, map)?;
            map.serialize_entry("summary", &WithMismatches(self.1, self.2))
        }
    }
    /// The summary's keys, then `calibration_mismatches`.
    struct WithMismatches<'a, I>(&'a Summary, &'a Each<I>);
    impl<I: Iterator<Item = String>> serde::Serialize for WithMismatches<'_, I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            summary_entries(self.0, &mut map)?;
            map.serialize_entry("calibration_mismatches", self.1)?;
            map.end()
        }
    }
    let columns = columns(by);
    let mut head = serde_json::Map::new();
    head.insert("schema_version".into(), SCHEMA_VERSION.into());
    head.insert("by".into(), json!(by));
    head.insert("run".into(), run);
    let texts = Each::new(mismatches.all.by_ref().map(|m| m.0));
    let row = json_row(&columns);
    super::write_json_with_row_texts(out, Head(head, s, &texts), |w| {
        super::table::write_each_line(rows, row, w)
    })
}

fn impact_line(s: &Summary) -> String {
    let parts: Vec<String> = ["lost", "degraded", "unknown", "gained", "unchanged"]
        .iter()
        .map(|k| {
            let (n, si) = s.impacts.get(k).copied().unwrap_or_default();
            format!("{n} {k} ({si} sign-in{})", if si == 1 { "" } else { "s" })
        })
        .collect();
    format!("impact: {}", parts.join(", "))
}

fn who(r: &ReplayRow) -> String {
    let a = &r.activity;
    a.user_principal_name.as_deref().or(a.user_id.as_deref()).map(str::to_string).unwrap_or_else(|| {
        match a.distinct_users {
            Some(n) => format!("{n} user(s)"),
            None => "-".into(),
        }
    })
}

fn color(impact: Impact) -> &'static str {
    match impact {
        Impact::Lost => "31",
        Impact::Degraded => "33",
        Impact::Unknown => "35",
        Impact::Gained => "32",
        Impact::Unchanged => "0",
    }
}

/// The view for people: the summary, then `rows` (those to show: the
/// findings, or with `--all` every row) one at a time.
/// How many partners a terminal's summary table shows, most lost sign-ins
/// first; the documents list them all (a forged export can name a million,
/// and a table is sized from all of its rows).
const PARTNERS_SHOWN: usize = 100;

pub(crate) fn write_text(
    w: &mut dyn Write,
    rows: &mut dyn Iterator<Item = ReplayRow>,
    s: &Summary,
    first_mismatches: &[String],
    colored: bool,
    width: usize,
) -> Result<()> {
    let paint = |code: &str, t: &str| super::style::paint(colored, code, t);
    let mut out = String::new();
    for line in wrap(&impact_line(s), width) {
        out.push_str(&line);
        out.push('\n');
    }
    if let (Some(a), Some(b)) = (s.window_first, s.window_last) {
        out.push_str(&format!("window: {} to {}\n", rfc3339(&a), rfc3339(&b)));
    }
    for w in &s.coverage_warnings {
        for line in wrap(&format!("warning: {w}"), width) {
            out.push_str(&paint("33", &line));
            out.push('\n');
        }
    }
    if s.calibration_mismatch_count > 0 {
        out.push_str(&paint(
            "33",
            &format!(
                "calibration: {} group(s) where the current policy disagrees with the logs; trust the prediction less for them:",
                s.calibration_mismatch_count
            ),
        ));
        out.push('\n');
        for m in first_mismatches.iter().take(MISMATCHES_SHOWN) {
            out.push_str(&format!("  {}\n", clip(m, width.saturating_sub(2))));
        }
        if s.calibration_mismatch_count > MISMATCHES_SHOWN {
            out.push_str(&format!(
                "  ... and {} more (see --format json)\n",
                s.calibration_mismatch_count - MISMATCHES_SHOWN
            ));
        }
    }
    if !s.partners.is_empty() {
        out.push('\n');
        let headers = [
            "partner",
            "lost users",
            "lost apps",
            "lost sign-ins",
            "degraded users",
            "unknown",
            "gained",
            "last seen",
        ];
        let mut partners = s.partners.take();
        let body: Vec<Vec<String>> = partners
            .by_ref()
            .take(PARTNERS_SHOWN)
            .map(|p| {
                let name = match &p.partner_tenant_name {
                    Some(n) => clip(&format!("{} {n}", &p.partner_tenant_id[..8]), 26),
                    None => p.partner_tenant_id[..8].to_string(),
                };
                let mut row = vec![name];
                row.extend(p.count_cells());
                row.push(p.last_seen.map_or(String::new(), |t| t.format("%Y-%m-%d").to_string()));
                row
            })
            .collect();
        partners.finish()?;
        out.push_str(&super::table::render_text(&headers, &body, &[], colored));
        if s.partners.len() > PARTNERS_SHOWN {
            let more = s.partners.len() - PARTNERS_SHOWN;
            out.push_str(&format!("  ... and {more} more partner(s) (see --format json)\n"));
        }
        out.push('\n');
    }
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        out.push_str("\nno access changes\n");
        return Ok(w.write_all(out.as_bytes())?);
    }
    out.push('\n');
    for r in rows {
        super::write_when_full(&mut out, w)?;
        let a = &r.activity;
        let dir = if a.direction == crate::model::Direction::Inbound { "in " } else { "out" };
        let head = format!(
            "{:<9} {dir} {:<11} {:<18} {:<26} {:<22} {:>4} sign-ins  {}",
            r.impact.as_str().to_uppercase(),
            short_access(a.access_type),
            clip(&act::partner_label(a, 18), 18),
            clip(&act::app_label(a, 26), 26),
            clip(&who(&r), 22),
            a.counters.sign_ins,
            a.counters.last_seen.map_or(String::new(), |t| t.format("%Y-%m-%d").to_string()),
        );
        out.push_str(&paint(color(r.impact), head.trim_end()));
        out.push('\n');
        let why = format!("{} -> {}: {}", r.current.as_str(), r.proposed.as_str(), r.reason);
        for line in wrap(&why, width.saturating_sub(10)) {
            out.push_str(&format!("          {line}\n"));
        }
    }
    Ok(w.write_all(out.as_bytes())?)
}

/// Words to lines of at most `width` characters, hidden characters shown.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let s = super::escape::visible(s);
    let mut lines = vec![String::new()];
    for word in s.split(' ') {
        let cur = lines.last_mut().unwrap();
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width.max(20) {
            lines.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

/// For a change ticket: the summary, then `rows` (those to show) one at a time.
pub(crate) fn write_markdown(
    w: &mut dyn Write,
    rows: &mut dyn Iterator<Item = ReplayRow>,
    s: &Summary,
    mismatches: &mut Mismatches,
) -> Result<()> {
    let esc = super::escape::markdown;
    let mut out = String::from("### Impact of the proposed cross-tenant access policy\n\n");
    out.push_str(&format!("{}\n\n", impact_line(s)));
    if let (Some(a), Some(b)) = (s.window_first, s.window_last) {
        out.push_str(&format!("Logs from {} to {}.\n\n", rfc3339(&a), rfc3339(&b)));
    }
    for w in &s.coverage_warnings {
        out.push_str(&format!("> **Warning:** {}\n\n", esc(w)));
    }
    for m in mismatches.all.by_ref() {
        super::write_when_full(&mut out, w)?;
        out.push_str(&format!("> **Calibration:** {}\n\n", esc(&m.0)));
    }
    if !s.partners.is_empty() {
        out.push_str("| partner | lost users | lost apps | lost sign-ins | degraded users | unknown sign-ins | gained sign-ins | last seen |\n|---|---:|---:|---:|---:|---:|---:|---|\n");
        let mut partners = s.partners.take();
        for p in partners.by_ref() {
            super::write_when_full(&mut out, w)?;
            out.push_str(&format!(
                "| {} {} | {} | {} | {} | {} | {} | {} | {} |\n",
                p.partner_tenant_id,
                esc(p.partner_tenant_name.as_deref().unwrap_or("")),
                p.lost_users,
                p.lost_apps,
                p.lost_sign_ins,
                p.degraded_users,
                p.unknown_sign_ins,
                p.gained_sign_ins,
                p.last_seen.as_ref().map(rfc3339).unwrap_or_default()
            ));
        }
        partners.finish()?;
        out.push('\n');
    }
    out.push_str("| impact | direction | access | partner | app | user | sign-ins | why |\n|---|---|---|---|---|---|---:|---|\n");
    for r in rows {
        super::write_when_full(&mut out, w)?;
        let a = &r.activity;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.impact.as_str(),
            a.direction.as_str(),
            a.access_type.as_str(),
            esc(&a
                .partner_tenant_name
                .as_deref()
                .map_or_else(|| a.partner_tenant_id.to_string(), str::to_string)),
            esc(&act::app_label(a, 60)),
            esc(&who(&r)),
            a.counters.sign_ins,
            esc(&r.reason)
        ));
    }
    Ok(w.write_all(out.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::replay::Summarizer;
    use crate::model::Guid;
    use crate::policy::evaluate::Verdict;

    #[test]
    fn a_terminal_shows_the_partners_who_lose_most_and_says_how_many_more() {
        let mut summary = Summarizer::new(None, false, Some(8)).without_mismatches();
        for i in 0..(PARTNERS_SHOWN as u64 + 5) {
            let [mut activity, _] = act::tests::full_and_empty_rows();
            activity.partner_tenant_id = Guid(u128::from(i) + 1);
            activity.partner_tenant_name = Some(format!("Partner {i}").into());
            activity.counters.sign_ins = i + 1;
            summary.add(&crate::analysis::replay::tests::unexplained(activity, Impact::Lost)).unwrap();
        }
        let (s, _) = summary.finish().unwrap();
        let mut out = Vec::new();
        write_text(&mut out, &mut std::iter::empty(), &s, &[], false, 200).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("... and 5 more partner(s)"), "{out}");
        // The busiest are shown (the fewest lost sign-ins are left out).
        assert!(out.contains("Partner 104") && !out.contains("Partner 4 "), "{out}");
        assert_eq!(out.matches("Partner ").count(), PARTNERS_SHOWN);
    }

    #[test]
    fn a_csv_cell_written_as_text_is_the_text_of_its_json_cell() {
        let every_column: Vec<&str> =
            [GroupBy::User, GroupBy::App, GroupBy::Tenant].into_iter().flat_map(columns).collect();
        for (activity, calibration) in
            act::tests::full_and_empty_rows().into_iter().zip([Some("=1+1,\"x\"\n"), None])
        {
            let r = ReplayRow {
                activity,
                current: Verdict::Allowed,
                current_reason: "1 of 1 sign-ins succeeded".into(),
                proposed: Verdict::NotGoverned,
                impact: Impact::Degraded,
                reason: "partner X: <b>|".into(),
                calibration: calibration.map(str::to_string),
            };
            for column in &every_column {
                let mut text = String::new();
                typed_cell(&r, column).text_into(&mut text);
                assert_eq!(text, super::super::table::cell_text(&cells(&r, &[column])[0]), "{column}");
            }
        }
    }
}
