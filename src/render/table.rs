//! A format-neutral table (named columns, JSON-typed cells) and its sinks:
//! CSV, NDJSON and JSON for machines, an aligned text table for people.

use std::io::Write;

use anyhow::Result;
use comfy_table::{presets, Cell, Color, ContentArrangement, Table as Comfy};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<Value>>,
}

impl Table {
    pub(crate) fn new(columns: Vec<&'static str>) -> Self {
        Table { columns, rows: Vec::new() }
    }

    pub(crate) fn objects(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let m: Map<String, Value> =
                    self.columns.iter().zip(r).map(|(c, v)| (c.to_string(), v.clone())).collect();
                Value::Object(m)
            })
            .collect()
    }

    pub(crate) fn write_csv(&self, w: &mut dyn Write, style: CsvStyle) -> Result<()> {
        stream_csv(&self.columns, self.rows.iter(), w, style)
    }

    pub(crate) fn write_ndjson(&self, w: &mut dyn Write) -> Result<()> {
        stream_ndjson(&self.columns, self.rows.iter(), w)
    }
}

/// Who reads a CSV: a program (every cell exactly as it is, what `replay`
/// reads back) or a spreadsheet (cells that would run as formulas defused,
/// see [`super::escape::csv_safe`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum CsvStyle {
    #[default]
    Exact,
    Spreadsheet,
}

/// Writes rows as CSV one at a time: memory holds one row, not the table
/// (a million activity groups would otherwise be a million rows of JSON
/// values at once).
pub(crate) fn stream_csv<R: AsRef<[Value]>>(
    columns: &[&str],
    rows: impl Iterator<Item = R>,
    w: &mut dyn Write,
    style: CsvStyle,
) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(columns)?;
    for r in rows {
        let cells = r.as_ref().iter().map(cell_text);
        match style {
            CsvStyle::Exact => c.write_record(cells)?,
            CsvStyle::Spreadsheet => {
                c.write_record(cells.map(|t| super::escape::csv_safe(&t).into_owned()))?
            }
        }
    }
    c.flush()?;
    Ok(())
}

/// [`stream_csv`] for NDJSON: one object per row, keys in column order.
pub(crate) fn stream_ndjson<R: AsRef<[Value]>>(
    columns: &[&str],
    rows: impl Iterator<Item = R>,
    w: &mut dyn Write,
) -> Result<()> {
    /// The row as a JSON object, written straight from the cells (no map
    /// of copies built per row).
    struct Object<'a>(&'a [&'a str], &'a [Value]);
    impl serde::Serialize for Object<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().zip(self.1))
        }
    }
    for r in rows {
        serde_json::to_writer(&mut *w, &Object(columns, r.as_ref()))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// One cell of a row, typed: what a column holds, from which both its JSON
/// value ([`TypedCell::into_json`]) and its CSV text ([`TypedCell::text_into`])
/// are read, so that the two cannot disagree.
pub(crate) enum TypedCell<'a> {
    Null,
    Text(std::borrow::Cow<'a, str>),
    Number(u64),
}

impl TypedCell<'_> {
    pub(crate) fn into_json(self) -> Value {
        match self {
            TypedCell::Null => Value::Null,
            TypedCell::Text(t) => Value::String(t.into_owned()),
            TypedCell::Number(n) => Value::from(n),
        }
    }

    /// The text a CSV cell holds ([`cell_text`] of the JSON value), appended
    /// to `out` without building a JSON value: with a million rows the
    /// values, not the writing, were the cost.
    pub(crate) fn text_into(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            TypedCell::Null => {}
            TypedCell::Text(t) => out.push_str(t),
            TypedCell::Number(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
}

/// Writes rows as CSV one at a time, as [`stream_csv`] writes their JSON
/// cells, from typed cells ([`TypedCell`]) into one set of cell buffers
/// for all rows.
pub(crate) fn stream_typed_csv<T>(
    rows: impl Iterator<Item = T>,
    columns: &[&'static str],
    typed: impl for<'r> Fn(&'r T, &str) -> TypedCell<'r>,
    w: &mut dyn Write,
    style: CsvStyle,
) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(columns)?;
    let mut cells = vec![String::new(); columns.len()];
    for r in rows {
        for (cell, column) in cells.iter_mut().zip(columns) {
            cell.clear();
            typed(&r, column).text_into(cell);
        }
        for cell in &cells {
            match style {
                CsvStyle::Exact => c.write_field(cell)?,
                CsvStyle::Spreadsheet => c.write_field(super::escape::csv_safe(cell).as_bytes())?,
            }
        }
        c.write_record(None::<&[u8]>)?;
    }
    c.flush()?;
    Ok(())
}

/// A cell as text: null is empty, strings are bare.
pub(crate) use crate::model::text::json_cell as cell_text;

/// Optional text to a JSON cell.
pub(crate) fn opt<T: ToString>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.to_string()))
}

/// A plain text table for terminals, at most `width` columns wide.
pub(crate) fn render_text(
    headers: &[&str],
    rows: &[Vec<String>],
    colors: &[Option<Color>],
    width: u16,
    color: bool,
) -> String {
    let mut t = Comfy::new();
    // Cells are clipped by the caller, so columns keep their natural width
    // and never wrap; two spaces between columns, no rules.
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_width(width)
        .set_header(headers.iter().map(|h| {
            let c = Cell::new(super::escape::visible(h));
            if color {
                c.add_attribute(comfy_table::Attribute::Bold)
            } else {
                c
            }
        }));
    for col in t.column_iter_mut() {
        col.set_padding((0, 2));
    }
    if !color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    for (i, r) in rows.iter().enumerate() {
        let c = colors.get(i).copied().flatten();
        t.add_row(r.iter().map(|x| {
            let cell = Cell::new(super::escape::visible(x));
            match (c, color) {
                (Some(c), true) => cell.fg(c),
                _ => cell,
            }
        }));
    }
    t.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// The terminal width, or 120 when it cannot be told.
/// The width of the terminal on stdout; `$COLUMNS` where it says (a
/// pipe, a CI log), else 120.
pub(crate) fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| w.0))
        .unwrap_or(120)
}

/// Text from a log for a table cell: its hidden characters made visible
/// ([`super::escape::visible`]) and shortened to `max` terminal columns
/// (wide characters count two), the cut marked with an ellipsis.
pub(crate) fn clip(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let s = super::escape::visible(s);
    if unicode_width::UnicodeWidthStr::width(s.as_ref()) <= max {
        return s.into_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Access types as short words for narrow tables.
pub(crate) fn short_access(a: crate::model::AccessType) -> &'static str {
    use crate::model::AccessType::*;
    match a {
        B2bCollaboration => "collab",
        B2bDirectConnect => "direct",
        MicrosoftSupport => "msSupport",
        ServiceProvider => "svcProvider",
        other => other.as_str(),
    }
}
