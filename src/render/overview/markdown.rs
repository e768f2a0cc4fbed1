//! The overview as Markdown, for tickets and wikis.

use std::fmt::Write as _;

use super::{headline, period, sections};
use crate::analysis::overview::Overview;

fn md_cell(s: &str) -> String {
    crate::render::escape::markdown(s)
}

pub(crate) fn markdown(o: &Overview) -> String {
    let mut m = format!("# {}\n\n{}\n\n", o.title, period(o));
    m.push_str("| figure | value |\n|---|---:|\n");
    for (k, v) in headline(o) {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    if !o.days.is_empty() {
        let noun = o.bucket.noun();
        let _ = write!(m, "\n## Sign-ins per {noun}\n\n| {noun} | inbound | outbound |\n|---|---:|---:|\n");
        let get =
            |name: &str, i: usize| o.per_direction.iter().find(|(k, _)| k == name).map_or(0, |(_, v)| v[i]);
        for (i, d) in o.days.iter().enumerate() {
            let _ = writeln!(m, "| {d} | {} | {} |", get("inbound", i), get("outbound", i));
        }
    }
    for (title, intro, grid) in sections(o) {
        let _ = write!(m, "\n## {title}\n\n");
        if !intro.is_empty() {
            let _ = write!(m, "{intro}\n\n");
        }
        if let Some((headers, rows)) = grid {
            if rows.is_empty() {
                m.push_str("None.\n");
                continue;
            }
            let _ = writeln!(m, "| {} |", headers.join(" | "));
            let _ = writeln!(m, "|{}", "---|".repeat(headers.len()));
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                let _ = writeln!(m, "| {} |", cells.join(" | "));
            }
        }
    }
    m
}
