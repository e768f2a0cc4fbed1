//! A format-neutral table (named columns, JSON-typed cells) and its sinks,
//! fed rows as they come: CSV, NDJSON and JSON for machines, an aligned
//! text table for people.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde_json::Value;

use crate::analysis::runs::{on_the_pool_in_chunks, Line, Stream};
use crate::model::time::rfc3339_fixed;
use crate::model::{rfc3339, Guid};

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
    for r in rows {
        serde_json::to_writer(&mut *w, &RowObject(columns, r.as_ref()))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// A row as a JSON object (keys: the columns), written straight from the
/// cells: no map of copies built per row.
pub(crate) struct RowObject<'a>(pub(crate) &'a [&'a str], pub(crate) &'a [Value]);

impl serde::Serialize for RowObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().zip(self.1))
    }
}

/// One cell of a row, typed: what a column holds, from which both its JSON
/// ([`typed_json_object`]) and its CSV text ([`typed_csv_line`]; cells
/// with nothing to escape through one [`push_plain`]) are written, so that
/// the two cannot disagree. Ids and times stay values
/// until written: formatted on the stack, a row of them costs no allocation.
pub(crate) enum TypedCell<'a> {
    Null,
    Text(std::borrow::Cow<'a, str>),
    Number(u64),
    Guid(Guid),
    Time(DateTime<Utc>),
    /// A finding's id: the hash as 16 lowercase hex digits.
    Hash(u64),
}

impl TypedCell<'_> {
    /// The cell's JSON value: what [`typed_json_object`] writes, which the
    /// tests check against serde_json writing this.
    #[cfg(test)]
    pub(crate) fn into_json(self) -> Value {
        match self {
            TypedCell::Null => Value::Null,
            TypedCell::Text(t) => Value::String(t.into_owned()),
            TypedCell::Number(n) => Value::from(n),
            TypedCell::Guid(g) => Value::String(g.to_string()),
            TypedCell::Time(t) => Value::String(rfc3339(&t)),
            TypedCell::Hash(h) => Value::String(format!("{h:016x}")),
        }
    }

    /// Calls `f` with the text a CSV cell holds ([`cell_text`] of the JSON
    /// value), without building a JSON value or, but for the rare time
    /// [`rfc3339_fixed`] leaves to chrono, a string: with a million rows
    /// these, not the writing, were the cost.
    pub(crate) fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            TypedCell::Null => f(""),
            TypedCell::Text(t) => f(t),
            TypedCell::Number(n) => f(itoa::Buffer::new().format(*n)),
            TypedCell::Guid(g) => f(g.hyphenated().as_str()),
            TypedCell::Time(t) => match rfc3339_fixed(t) {
                Some(text) => f(std::str::from_utf8(&text).unwrap_or_default()),
                None => f(&rfc3339(t)),
            },
            TypedCell::Hash(h) => f(std::str::from_utf8(&hex16(*h)).unwrap_or_default()),
        }
    }

    /// The CSV text appended to `out`.
    #[cfg(test)]
    pub(crate) fn text_into(&self, out: &mut String) {
        self.with_text(|t| out.push_str(t))
    }
}

/// `h` as 16 lowercase hex digits, on the stack (`format!` made a string a
/// row), a byte at a time as ids are ([`crate::model::hex_pair`]).
pub(super) fn hex16(h: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (digits, byte) in out.chunks_exact_mut(2).zip(h.to_be_bytes()) {
        digits.copy_from_slice(&crate::model::hex_pair(byte));
    }
    out
}

/// Writes rows as CSV one at a time, from typed cells ([`TypedCell`])
/// straight into byte buffers, formatted on the pool
/// ([`write_each_line`]). Each column name is resolved once (`resolve`),
/// not once a row: a match on some thirty names per cell cost more than
/// formatting it. The CSV is what the csv crate writes with its defaults
/// ([`push_csv_text`]), without its per-field state machine, which at a
/// million rows was the writer's largest cost.
pub(crate) fn stream_typed_csv<T: Send + Sync, C: Copy + Send + Sync>(
    rows: impl Iterator<Item = T>,
    columns: &[&'static str],
    resolve: impl Fn(&str) -> C,
    typed: impl for<'r> Fn(&'r T, C) -> TypedCell<'r> + Sync,
    w: &mut dyn Write,
    style: CsvStyle,
) -> Result<()> {
    write_csv_header(columns, w)?;
    let resolved: Vec<C> = columns.iter().map(|name| resolve(name)).collect();
    write_each_line(rows, |r, buf| push_csv_row(buf, r, &resolved, &typed, style), w)?;
    w.flush()?;
    Ok(())
}

/// Writes each row's line (`line` may write nothing for a row).
///
/// The rows are formatted up to [`CHUNK_ROWS`] at a time on the thread
/// pool, split between its threads, while this thread takes the next chunk
/// and writes the previous one ([`on_the_pool_in_chunks`]): formatting on
/// one thread was most of a replay's last tenth of a second, and most of
/// writing a million rows' JSON document. The bytes are those of
/// formatting row after row. A chunk holds about [`CHUNK_BYTES`] of text
/// by the rows before it (the first few rows, until there are rows before
/// it): 4,096 rows of hostile 256 KB names were 134 MB of buffers at once.
pub(crate) fn write_each_line<T: Send + Sync>(
    rows: impl IntoIterator<Item = T>,
    line: impl Fn(&T, &mut Vec<u8>) + Sync,
    w: &mut dyn Write,
) -> Result<()> {
    // A row's text, as long as the last chunk's were on average (and a
    // little more; 0 before the first chunk is formatted): a buffer sized
    // so is not grown, and copied, row by row. Room for at most 64 KiB a
    // row: longer rows (hostile names) grow their buffer.
    let row_bytes = AtomicUsize::new(0);
    let format = |chunk: Vec<T>| -> Vec<Vec<u8>> {
        let part = chunk.len().div_ceil(rayon::current_num_threads().max(1));
        let estimate = match row_bytes.load(Ordering::Relaxed) {
            0 => 256,
            bytes => bytes.min(64 << 10),
        };
        let formatted: Vec<Vec<u8>> = chunk
            .par_chunks(part)
            .map(|part| {
                let mut buf = Vec::with_capacity((part.len() + 1) * estimate);
                for r in part {
                    line(r, &mut buf);
                }
                buf
            })
            .collect();
        let bytes: usize = formatted.iter().map(Vec::len).sum();
        row_bytes.store(bytes / chunk.len() + 64, Ordering::Relaxed);
        formatted
    };
    let chunk_len = || match row_bytes.load(Ordering::Relaxed) {
        0 => FIRST_CHUNK_ROWS,
        bytes => (CHUNK_BYTES / bytes).clamp(1, CHUNK_ROWS),
    };
    on_the_pool_in_chunks(&mut rows.into_iter(), chunk_len, format, |formatted| {
        formatted.iter().try_for_each(|b| w.write_all(b)).map_err(Into::into)
    })
}

/// The header line of a CSV of `columns`.
pub(crate) fn write_csv_header(columns: &[&str], w: &mut dyn Write) -> Result<()> {
    w.write_all(&csv_text_line(columns))?;
    Ok(())
}

/// A line of text fields ([`push_csv_text`]).
fn csv_text_line<S: AsRef<str>>(fields: &[S]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_csv_text(&mut line, f.as_ref());
    }
    line.push(b'\n');
    line
}

/// One row's line as [`stream_typed_csv`] writes it, for rows written
/// out where they are sorted ([`Line`]).
pub(crate) fn typed_csv_line<T, C: Copy + Send + Sync>(
    columns: &[&'static str],
    resolve: impl Fn(&str) -> C,
    typed: impl for<'r> Fn(&'r T, C) -> TypedCell<'r> + Sync,
    style: CsvStyle,
) -> impl Fn(&T, &mut Vec<u8>) + Sync {
    let resolved: Vec<C> = columns.iter().map(|name| resolve(name)).collect();
    move |r, buf| push_csv_row(buf, r, &resolved, &typed, style)
}

/// Where a row's object goes, and so how serde_json lays it out: a line
/// of its own as `to_writer` writes it, or an element of the `rows` array
/// of a document as `to_writer_pretty` writes it (with the comma that goes
/// before every element but the first: [`write_json_with_row_texts`] drops
/// it from the first).
///
/// [`write_json_with_row_texts`]: super::write_json_with_row_texts
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum JsonLayout {
    Line,
    DocumentRow,
}

/// A row's object, written from its typed cells the way serde_json writes
/// the [`RowObject`] of the cells' JSON values (`TypedCell::into_json`; a property test
/// compares them), without building a JSON value, and so a string, per
/// cell: at a million rows that was most of the time spent writing JSON.
/// Each key is written once, with what goes before it and after it.
pub(crate) fn typed_json_object<T, C: Copy + Send + Sync>(
    columns: &[&'static str],
    resolve: impl Fn(&str) -> C,
    typed: impl for<'r> Fn(&'r T, C) -> TypedCell<'r> + Sync,
    layout: JsonLayout,
) -> impl Fn(&T, &mut Vec<u8>) + Sync {
    let (open, between, colon, close, empty): (&str, &str, &str, &str, &str) = match layout {
        JsonLayout::Line => ("{", ",", ":", "}\n", "{}\n"),
        JsonLayout::DocumentRow => (",\n    {\n      ", ",\n      ", ": ", "\n    }", ",\n    {}"),
    };
    let keys: Vec<(Vec<u8>, C)> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut key = if i == 0 { open } else { between }.as_bytes().to_vec();
            push_json_text(&mut key, name);
            key.extend_from_slice(colon.as_bytes());
            (key, resolve(name))
        })
        .collect();
    move |r, buf| {
        if keys.is_empty() {
            buf.extend_from_slice(empty.as_bytes());
            return;
        }
        let mut times = LastTime::default();
        for (key, column) in &keys {
            buf.extend_from_slice(key);
            push_json_cell(buf, typed(r, *column), &mut times);
        }
        buf.extend_from_slice(close.as_bytes());
    }
}

/// A cell's JSON value, as serde_json writes the value `into_json` makes;
/// `times`: the row's ([`LastTime`]).
pub(super) fn push_json_cell(buf: &mut Vec<u8>, cell: TypedCell<'_>, times: &mut LastTime) {
    match &cell {
        TypedCell::Null => buf.extend_from_slice(b"null"),
        TypedCell::Text(t) => push_json_text(buf, t),
        TypedCell::Number(_) => push_plain(buf, &cell, times),
        TypedCell::Guid(_) | TypedCell::Time(_) | TypedCell::Hash(_) => {
            buf.push(b'"');
            push_plain(buf, &cell, times);
            buf.push(b'"');
        }
    }
}

/// Appends a cell that holds nothing to escape in CSV or JSON: a number,
/// an id, a time or a finding id (digits, hyphens, time punctuation),
/// written straight from its value, a time through the row's `times`. A
/// text or a null appends nothing here: their writers escape or spell them.
/// Inlined: as a call, its second match on the cell cost a row writer 0.7%.
#[inline(always)]
fn push_plain(buf: &mut Vec<u8>, cell: &TypedCell<'_>, times: &mut LastTime) {
    match cell {
        TypedCell::Null | TypedCell::Text(_) => {}
        TypedCell::Number(n) => buf.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        TypedCell::Guid(g) => buf.extend_from_slice(g.hyphenated().as_bytes()),
        TypedCell::Hash(h) => buf.extend_from_slice(&hex16(*h)),
        TypedCell::Time(t) => times.push(buf, t),
    }
}

/// A JSON string, escaped as serde_json escapes it (its own escaper).
fn push_json_text(buf: &mut Vec<u8>, text: &str) {
    // Into a Vec: the only error serde_json could give is the writer's.
    let _ = serde_json::to_writer(&mut *buf, text);
}

/// Writes lines in order ([`Stream::write_text`]).
pub(crate) fn write_lines(lines: Stream<Line>, w: &mut dyn Write) -> Result<()> {
    lines.write_text(w)?;
    w.flush()?;
    Ok(())
}

/// Rows handed to the pool at a time by [`stream_typed_csv`]: a few MB of
/// rows and of their text, enough to share between the threads.
const CHUNK_ROWS: usize = 4096;
/// The text a chunk of rows is meant to hold at most ([`stream_typed_csv`]).
const CHUNK_BYTES: usize = 4 << 20;
/// The rows of the first chunk, before any row's length is known.
const FIRST_CHUNK_ROWS: usize = 64;

/// The text of the last time cell a row wrote, for the next one: a
/// replayed row's event time is its last sign-in's, and a group of one
/// sign-in was first seen when it was last seen (a time's digits were
/// some 150 instructions a cell).
#[derive(Default)]
pub(super) struct LastTime(Option<(DateTime<Utc>, [u8; 20])>);

impl LastTime {
    /// Appends `t`'s text ([`rfc3339`]).
    fn push(&mut self, buf: &mut Vec<u8>, t: &DateTime<Utc>) {
        match self.0 {
            Some((seen, text)) if seen == *t => buf.extend_from_slice(&text),
            _ => match rfc3339_fixed(t) {
                Some(text) => {
                    buf.extend_from_slice(&text);
                    self.0 = Some((*t, text));
                }
                None => buf.extend_from_slice(rfc3339(t).as_bytes()),
            },
        }
    }
}

/// Appends one row's CSV line.
fn push_csv_row<T, C: Copy>(
    buf: &mut Vec<u8>,
    r: &T,
    resolved: &[C],
    typed: &impl for<'r> Fn(&'r T, C) -> TypedCell<'r>,
    style: CsvStyle,
) {
    let mut times = LastTime::default();
    for (i, &column) in resolved.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let cell = typed(r, column);
        match style {
            CsvStyle::Exact => match &cell {
                TypedCell::Text(text) => push_csv_text(buf, text),
                // Null is empty; digits, ids and times hold nothing to quote.
                plain => push_plain(buf, plain, &mut times),
            },
            CsvStyle::Spreadsheet => {
                cell.with_text(|text| push_csv_text(buf, &super::escape::csv_safe(text)))
            }
        }
    }
    buf.push(b'\n');
}

/// Whether a field holds a comma, a quote, CR or LF. A short text (ids,
/// names: most cells) is tested eight bytes at a time as a 64-bit word:
/// first whether any byte is below all four, then, in a word where one
/// is, for each of the four bytes at once (the has-zero-byte test of the word
/// XOR that byte repeated: exact for whether any byte is it), the last
/// few bytes padded with NULs, which match none of them. A byte-by-byte
/// test compiled to a byte at a time and was a sixth of finishing the
/// partitions at a million rows; two memchr calls per cell cost more
/// still. A long text is searched with memchr, a vector's worth of bytes
/// at a time.
fn needs_quotes(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    fn holds(word: u64, byte: u8) -> u64 {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    fn any_of_four(word: u64) -> bool {
        // All four are below `-`: a word with no byte below it (ids,
        // addresses, digits, words without spaces) holds none of them,
        // which one test of three operations tells (has-less-than: exact
        // for whether any byte is).
        if word.wrapping_sub(ONES * u64::from(b'-')) & !word & HIGHS == 0 {
            return false;
        }
        holds(word, b',') | holds(word, b'"') | holds(word, b'\n') | holds(word, b'\r') != 0
    }
    if bytes.len() > 128 {
        return memchr::memchr3(b',', b'"', b'\n', bytes).is_some() || memchr::memchr(b'\r', bytes).is_some();
    }
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if any_of_four(u64::from_le_bytes(w)) {
            return true;
        }
    }
    let rest = words.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    any_of_four(u64::from_le_bytes(last))
}

/// Appends the text of one CSV field as the csv crate writes it by
/// default: quoted, with its quotes doubled, when it holds a comma, a
/// quote, CR or LF, and as it is otherwise (the comma before it is the
/// caller's). A record of one empty field, which the crate writes as `""`,
/// never occurs here: every table has several columns.
fn push_csv_text(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !needs_quotes(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    // Each quote doubled, found with memchr: a reason that names an app
    // table (`..., source learn`) is quoted on every row, and splitting it
    // at quotes tested its 300 bytes one at a time.
    out.push(b'"');
    let mut rest = bytes;
    while let Some(at) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=at]);
        out.push(b'"');
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// A cell as text: null is empty, strings are bare.
pub(crate) use crate::model::text::json_cell as cell_text;

/// Optional text to a JSON cell.
pub(crate) fn opt<T: ToString>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.to_string()))
}

/// A plain text table for terminals: every column as wide as its widest
/// cell, two spaces after each, no rules, left-aligned, trailing blanks
/// trimmed. The bytes are those comfy-table writes for such a table (its
/// `NOTHING` preset, padding (0, 2), arrangement disabled), checked by a
/// test; laid out here instead so that a table of a million rows is
/// written a row at a time: [`TextLayout::measure`] every row first (a
/// first reading), then [`TextLayout::header`] and [`TextLayout::row`].
pub(crate) fn render_text(
    headers: &[&str],
    rows: &[Vec<String>],
    colors: &[Option<Color>],
    color: bool,
) -> String {
    let mut layout = TextLayout::new(headers);
    for r in rows {
        layout.measure(r);
    }
    let mut out = String::new();
    layout.header(headers, color, &mut out);
    for (i, r) in rows.iter().enumerate() {
        out.push('\n');
        layout.row(r, colors.get(i).copied().flatten().filter(|_| color), &mut out);
    }
    out
}

/// The colour of a row of a text table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Color {
    Red,
}

/// The column widths of a text table ([`render_text`]), found by
/// measuring every row before any is written.
pub(crate) struct TextLayout {
    widths: Vec<usize>,
}

impl TextLayout {
    pub(crate) fn new(headers: &[&str]) -> TextLayout {
        let mut layout = TextLayout { widths: vec![1; headers.len()] };
        layout.measure(headers);
        layout
    }

    /// Widens the columns to fit `cells` (as [`super::escape::visible`] shows them).
    pub(crate) fn measure<S: AsRef<str>>(&mut self, cells: &[S]) {
        for (width, cell) in self.widths.iter_mut().zip(cells) {
            *width = (*width).max(text_width(&super::escape::visible(cell.as_ref())));
        }
    }

    /// The header line (bold with `color`), without its line end.
    pub(crate) fn header(&self, headers: &[&str], color: bool, out: &mut String) {
        self.line(headers, color.then_some(BOLD), out);
    }

    /// A row's line, in `color` if any, without its line end.
    pub(crate) fn row<S: AsRef<str>>(&self, cells: &[S], color: Option<Color>, out: &mut String) {
        self.line(cells, color.map(|Color::Red| RED), out);
    }

    fn line<S: AsRef<str>>(&self, cells: &[S], style: Option<(&str, &str)>, out: &mut String) {
        let start = out.len();
        for (width, cell) in self.widths.iter().zip(cells) {
            let text = super::escape::visible(cell.as_ref());
            if let Some((on, _)) = style {
                out.push_str(on);
            }
            out.push_str(&text);
            // The padding is inside the styling, as comfy-table writes it.
            let blanks = width.saturating_sub(text_width(&text)) + 2;
            out.extend(std::iter::repeat_n(' ', blanks));
            if let Some((_, off)) = style {
                out.push_str(off);
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
    }
}

/// Bold and red as crossterm writes them (set, then reset).
const BOLD: (&str, &str) = ("\x1b[1m", "\x1b[0m");
const RED: (&str, &str) = ("\x1b[38;5;9m", "\x1b[39m");

fn text_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The table as comfy-table lays it out (what [`render_text`] used to call).
    fn comfy_text(headers: &[&str], rows: &[Vec<String>], colors: &[Option<Color>], color: bool) -> String {
        use comfy_table::{presets, Attribute, Cell, ContentArrangement, Table};
        let mut t = Table::new();
        t.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(
            headers.iter().map(|h| {
                let c = Cell::new(crate::render::escape::visible(h));
                if color {
                    c.add_attribute(Attribute::Bold)
                } else {
                    c
                }
            }),
        );
        for col in t.column_iter_mut() {
            col.set_padding((0, 2));
        }
        if color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        for (i, r) in rows.iter().enumerate() {
            let red = colors.get(i).copied().flatten().is_some() && color;
            t.add_row(r.iter().map(|x| {
                let cell = Cell::new(crate::render::escape::visible(x));
                if red {
                    cell.fg(comfy_table::Color::Red)
                } else {
                    cell
                }
            }));
        }
        t.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n")
    }

    /// Rows are formatted a chunk at a time on the pool, in parts: the
    /// bytes are still those of the rows one after another, across chunk
    /// and part boundaries, as the csv crate writes them, whatever the
    /// chunks' lengths (rows of a megabyte among them make them short).
    #[test]
    fn rows_formatted_in_chunks_on_the_pool_are_the_csv_of_the_rows_in_order() {
        let rows: Vec<(u64, String)> = (0..(2 * CHUNK_ROWS as u64 + 7))
            .map(|i| {
                let long = match i {
                    100 | 5000 => 1 << 20,
                    6000..=6009 => 300 << 10,
                    _ => 0,
                };
                (i, format!("name {i}{}{}", "x".repeat(long), [",", "\"", "", "\n"][i as usize % 4]))
            })
            .collect();
        let mut ours = Vec::new();
        fn typed(r: &(u64, String), column: usize) -> TypedCell<'_> {
            match column {
                0 => TypedCell::Number(r.0),
                _ => TypedCell::Text(std::borrow::Cow::Borrowed(&r.1)),
            }
        }
        let resolve = |name: &str| usize::from(name == "name");
        stream_typed_csv(rows.iter().cloned(), &["n", "name"], resolve, typed, &mut ours, CsvStyle::Exact)
            .unwrap();
        let mut theirs = csv::Writer::from_writer(Vec::new());
        theirs.write_record(["n", "name"]).unwrap();
        for (n, name) in &rows {
            theirs.write_record([n.to_string().as_str(), name]).unwrap();
        }
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs.into_inner().unwrap()).unwrap()
        );
    }

    #[test]
    fn a_hash_is_the_sixteen_hex_digits_format_writes() {
        for h in [0, 1, 0xf, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, u64::MAX] {
            let mut text = String::new();
            TypedCell::Hash(h).text_into(&mut text);
            assert_eq!(text, format!("{h:016x}"));
            assert_eq!(TypedCell::Hash(h).into_json(), Value::String(text));
        }
    }

    #[test]
    fn an_empty_text_table_is_its_header() {
        assert_eq!(render_text(&["a", "bb"], &[], &[], false), comfy_text(&["a", "bb"], &[], &[], false));
    }

    proptest! {
        /// [`render_text`] writes the bytes comfy-table writes, with and without
        /// colour, for cells with wide and hidden characters, blanks at either
        /// end and empty cells.
        #[test]
        fn a_text_table_is_the_table_comfy_table_writes(
            rows in proptest::collection::vec(
                (proptest::collection::vec("[a-z é中\u{1b}\n\t\u{202e}]{0,6}", 3), any::<bool>()),
                0..6,
            ),
            color in any::<bool>(),
        ) {
            let headers = ["dir", "", "last seen"];
            let colors: Vec<Option<Color>> = rows.iter().map(|(_, red)| red.then_some(Color::Red)).collect();
            let rows: Vec<Vec<String>> = rows.into_iter().map(|(r, _)| r).collect();
            prop_assert_eq!(
                render_text(&headers, &rows, &colors, color),
                comfy_text(&headers, &rows, &colors, color)
            );
        }

        /// Whether a field needs quotes is whether any of its bytes is a
        /// comma, a quote, CR or LF: at every length (the eight-byte words,
        /// the padded rest, the long search) and next to bytes one away
        /// from those, NULs and high bytes.
        #[test]
        fn a_field_needs_quotes_exactly_when_a_byte_is_a_comma_a_quote_cr_or_lf(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b',', b'"', b'\n', b'\r', 0, 0x80, 0xFF, 0x7F, b'a', b'+', b'-', b'.', b' ', b'!', b'#', 0x0B, 0x0C, 0x0E, 0x2C ^ 0x80, 0x22 ^ 0x80]),
                0..200,
            ),
            plain in 0usize..200,
        ) {
            // A long run of plain bytes first, so that what may need quoting
            // falls anywhere in a word.
            let mut field = vec![b'a'; plain];
            field.extend(&bytes);
            let expected = field.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
            prop_assert_eq!(needs_quotes(&field), expected);
        }

        /// A row of [`push_csv_text`] fields is the row the csv crate writes, for
        /// text with every byte that needs quoting, and none.
        #[test]
        fn a_typed_csv_row_is_the_row_the_csv_crate_writes(
            fields in proptest::collection::vec("[a-z,\"\r\n =+é\u{0}\t-]{0,8}|[a-z ]{30,70}[,\"\r\n]?[a-z]{0,40}|[a-z ]{100,160}[,\"\r\n]?[a-z]{0,40}", 2..6),
        ) {
            let ours = csv_text_line(&fields);
            let mut theirs = csv::Writer::from_writer(Vec::new());
            theirs.write_record(&fields).unwrap();
            let theirs = theirs.into_inner().unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }
    }
}
