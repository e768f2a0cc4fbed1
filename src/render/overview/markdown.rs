//! The overview as Markdown, for tickets and wikis.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use super::{headline, period, sections, Grid};
use crate::analysis::overview::Overview;
use crate::render::write_when_full;

fn md_cell(s: &str) -> String {
    crate::render::escape::markdown(s)
}

/// Writes the overview to `w`, a section at a time: the lists of partners
/// are read as they are written, never held whole.
pub(crate) fn markdown(o: Overview, w: &mut dyn Write) -> Result<()> {
    let mut m = format!("# {}\n\n{}\n\n", o.title, period(&o));
    m.push_str("| figure | value |\n|---|---:|\n");
    for (k, v) in headline(&o) {
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
        let Some(Grid { headers, rows }) = grid else { continue };
        let mut rows = rows.peekable();
        if rows.peek().is_none() {
            m.push_str("None.\n");
            continue;
        }
        let _ = writeln!(m, "| {} |", headers.join(" | "));
        let _ = writeln!(m, "|{}", "---|".repeat(headers.len()));
        for r in rows {
            let cells: Vec<String> = r?.iter().map(|c| md_cell(c)).collect();
            let _ = writeln!(m, "| {} |", cells.join(" | "));
            write_when_full(&mut m, w)?;
        }
    }
    w.write_all(m.as_bytes())?;
    Ok(())
}
