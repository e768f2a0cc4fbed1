//! The output layer: everything people and machines read. Format-neutral
//! rows (named columns, JSON-typed cells) and their sinks ([`table`]), one
//! module per result to draw ([`activity`], [`replay`], [`timeline`],
//! [`siem`], [`overview`], [`policy`]), the atomic output file
//! ([`output`]), the progress bar
//! ([`progress`]) and colour ([`style`]). Renderers take results and plain
//! settings (width, colour), never command-line flags.

pub(crate) mod activity;
pub(crate) mod escape;
pub(crate) mod output;
pub(crate) mod overview;
pub(crate) mod policy;
pub(crate) mod progress;
pub(crate) mod propose;
pub(crate) mod replay;
pub(crate) mod siem;
pub(crate) mod store;
pub(crate) mod style;
pub(crate) mod table;
pub(crate) mod timeline;

use std::io::Write as _;

pub(crate) use output::Output;

/// Schema version of every machine-readable output; bumped on any change
/// that could break a consumer (see docs/output.md).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Writes out what a text document has gathered in `out` once it holds
/// 64 KB, so that a document of many rows is never held whole.
pub(crate) fn write_when_full(out: &mut String, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    if out.len() > 64 << 10 {
        w.write_all(out.as_bytes())?;
        out.clear();
    }
    Ok(())
}

/// A JSON document, pretty-printed, with a final newline. Gathered 64 KB
/// at a time before `out` sees it: the serializer writes a token at a
/// time (a quote, a comma, an indent), and each through `dyn Write` into
/// the output's own buffer was an eighth of writing `propose`'s policy.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    out: &mut dyn std::io::Write,
    v: &T,
) -> anyhow::Result<()> {
    let mut gathered = std::io::BufWriter::with_capacity(64 << 10, &mut *out);
    serde_json::to_writer_pretty(&mut gathered, v)?;
    gathered.write_all(b"\n")?;
    // Flushed here, not on drop, so that a failed write is an error.
    gathered.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    Ok(())
}

/// The keys a streamed document opens with, before its `"rows"`.
pub(crate) trait Head {
    fn entries<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

impl Head for serde_json::Map<String, serde_json::Value> {
    fn entries<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.iter().try_for_each(|(k, v)| map.serialize_entry(k, v))
    }
}

/// A JSON array of the items of an iterator, taken once when serialized:
/// written as they come, one in memory at a time.
pub(crate) struct Each<I>(std::cell::RefCell<Option<I>>);

impl<I> Each<I> {
    pub(crate) fn new(items: I) -> Self {
        Each(std::cell::RefCell::new(Some(items)))
    }
}

impl<I: Iterator<Item: serde::Serialize>> serde::Serialize for Each<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        for item in self.0.borrow_mut().take().into_iter().flatten() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// [`write_json`] of the object `head` with one more key, `"rows"`, last:
/// an array of objects (keys: `columns`) written from `rows` as they come.
/// The bytes are those of the whole document built first (a test checks
/// it), with one row in memory at a time instead of all of them.
pub(crate) fn write_json_with_rows(
    out: &mut dyn std::io::Write,
    head: impl Head,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<serde_json::Value>>,
) -> anyhow::Result<()> {
    write_json_with_array(out, head, "rows", columns, rows)
}

/// [`write_json_with_rows`] with the rows under `key`.
pub(crate) fn write_json_with_array(
    out: &mut dyn std::io::Write,
    head: impl Head,
    key: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<serde_json::Value>>,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeMap, SerializeSeq};
    use std::cell::RefCell;

    /// The rows, taken once when serialized.
    struct Rows<'a, I>(RefCell<Option<I>>, &'a [&'a str]);
    impl<I: Iterator<Item = Vec<serde_json::Value>>> serde::Serialize for Rows<'_, I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(None)?;
            for row in self.0.borrow_mut().take().into_iter().flatten() {
                seq.serialize_element(&table::RowObject(self.1, &row))?;
            }
            seq.end()
        }
    }
    struct Document<'a, H, I>(H, &'a str, Rows<'a, I>);
    impl<H: Head, I: Iterator<Item = Vec<serde_json::Value>>> serde::Serialize for Document<'_, H, I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            self.0.entries(&mut map)?;
            map.serialize_entry(self.1, &self.2)?;
            map.end()
        }
    }
    let mut w = std::io::BufWriter::with_capacity(64 << 10, &mut *out);
    serde_json::to_writer_pretty(&mut w, &Document(head, key, Rows(RefCell::new(Some(rows)), columns)))?;
    w.write_all(b"\n")?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

/// [`write_json_with_rows`] for rows already written as text
/// ([`table::JsonLayout::DocumentRow`]: each with the comma that goes
/// before every element but the first, which is dropped here). `rows`
/// writes them in order into the writer it is given; the bytes are those
/// of [`write_json_with_rows`] (a test checks it). Rows written out where
/// they are sorted (`runs::Line`) are merged as text into the document.
pub(crate) fn write_json_with_row_texts(
    out: &mut dyn std::io::Write,
    head: impl Head,
    rows: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The document with no rows ends `"rows": []` and the object's close:
    // it is written as it is serialized (its head may be long: a replay's
    // mismatches) but for those last bytes, and the rows go between the
    // brackets.
    const EMPTY_END: &[u8] = b"]\n}\n";
    let mut head_out = HoldBack { w: &mut *out, tail: Vec::new(), keep: EMPTY_END.len() };
    write_json_with_rows(&mut head_out, head, &[], std::iter::empty())?;
    if head_out.tail != EMPTY_END {
        anyhow::bail!("internal error: a JSON document did not end with its rows; please report this");
    }
    let mut rows_out = DropFirstByte { w: &mut *out, dropped: false };
    rows(&mut rows_out)?;
    let close: &[u8] = if rows_out.dropped { b"\n  ]\n}\n" } else { b"]\n}\n" };
    out.write_all(close)?;
    out.flush()?;
    Ok(())
}

/// Passes on what is written to it but its last `keep` bytes, which it
/// keeps in `tail`.
struct HoldBack<'a> {
    w: &'a mut dyn std::io::Write,
    tail: Vec<u8>,
    keep: usize,
}

impl std::io::Write for HoldBack<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tail.extend_from_slice(buf);
        let pass = self.tail.len().saturating_sub(self.keep);
        self.w.write_all(&self.tail[..pass])?;
        self.tail.drain(..pass);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// Passes on what is written to it but its first byte: the comma before
/// the first of a document's rows.
struct DropFirstByte<'a> {
    w: &'a mut dyn std::io::Write,
    dropped: bool,
}

impl std::io::Write for DropFirstByte<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match buf.split_first() {
            Some((_, rest)) if !self.dropped => {
                self.w.write_all(rest)?;
                self.dropped = true;
                Ok(buf.len())
            }
            _ => self.w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_document_with_streamed_rows_is_the_document_built_whole() {
        let columns = ["name", "n", "nested"];
        let row = |i: u64| vec![json!(format!("a \"{i}\"\n\u{1b}")), json!(i), Value::Null];
        for n in [0, 1, 3] {
            let rows: Vec<Vec<Value>> = (0..n).map(row).collect();
            let mut head = serde_json::Map::new();
            head.insert("schema_version".into(), json!(1));
            head.insert("summary".into(), json!({"a": [1, {"b": []}], "c": {}}));
            let mut whole = Value::Object(head.clone());
            let objects: Vec<Value> = rows
                .iter()
                .map(|r| {
                    Value::Object(columns.iter().map(|c| c.to_string()).zip(r.iter().cloned()).collect())
                })
                .collect();
            whole.as_object_mut().unwrap().insert("rows".into(), Value::Array(objects));
            let mut expected = Vec::new();
            write_json(&mut expected, &whole).unwrap();
            let mut streamed = Vec::new();
            write_json_with_rows(&mut streamed, head, &columns, rows.into_iter()).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{n} rows"
            );
        }
    }

    /// A cell as the property tests below make it.
    #[derive(Clone, Debug)]
    enum Cell {
        Null,
        Text(String),
        Number(u64),
        Guid(u128),
        Time(i64),
        Hash(u64),
    }

    fn typed(row: &[Cell; 4], column: usize) -> table::TypedCell<'_> {
        match &row[column] {
            Cell::Null => table::TypedCell::Null,
            Cell::Text(t) => table::TypedCell::Text(std::borrow::Cow::Borrowed(t)),
            Cell::Number(n) => table::TypedCell::Number(*n),
            Cell::Guid(g) => table::TypedCell::Guid(crate::model::Guid(*g)),
            Cell::Time(t) => {
                table::TypedCell::Time(chrono::DateTime::from_timestamp_millis(*t).unwrap_or_default())
            }
            Cell::Hash(h) => table::TypedCell::Hash(*h),
        }
    }

    fn cell() -> impl proptest::strategy::Strategy<Value = Cell> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Cell::Null),
            "[a-z \"\\/\u{0}-\u{1f}\u{7f}é中\u{2028}\u{202e}\u{1b}]{0,12}".prop_map(Cell::Text),
            any::<u64>().prop_map(Cell::Number),
            any::<u128>().prop_map(Cell::Guid),
            // Any time; a few so often that a row holds one twice (its
            // text is kept for the next time cell); years before 0 and
            // after 9999, which chrono writes.
            prop_oneof![
                -62_135_596_800_000i64..253_402_300_799_999,
                prop::sample::select(vec![0, 1_700_000_000_123, -100_000_000_000_000, 300_000_000_000_000]),
            ]
            .prop_map(Cell::Time),
            any::<u64>().prop_map(Cell::Hash),
        ]
    }

    const COLUMNS: [&str; 4] = ["name", "n\"x", "\u{1b}id", "last_seen"];

    proptest::proptest! {
        /// A row's CSV line written from its typed cells is the record the
        /// csv crate writes of the cells' texts (their JSON values as CSV
        /// cells: times as chrono writes them).
        #[test]
        fn rows_written_as_csv_are_the_records_the_csv_crate_writes_of_their_texts(
            rows in proptest::collection::vec(proptest::array::uniform4(cell()), 1..4),
        ) {
            let resolve = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
            let line = table::typed_csv_line(&COLUMNS, resolve, typed, table::CsvStyle::Exact);
            let mut ours = Vec::new();
            rows.iter().for_each(|r| line(r, &mut ours));
            let mut theirs = csv::Writer::from_writer(Vec::new());
            for r in &rows {
                theirs.write_record((0..4).map(|c| table::cell_text(&typed(r, c).into_json()))).unwrap();
            }
            let theirs = theirs.into_inner().unwrap();
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }

        /// A row's object written from its typed cells is the one serde_json
        /// writes from their JSON values: as an NDJSON line, and as the rows
        /// of a document (none, one, several; every kind of cell, text that
        /// needs escaping, keys that do).
        #[test]
        fn rows_written_as_text_are_the_json_serde_writes_from_their_values(
            rows in proptest::collection::vec(proptest::array::uniform4(cell()), 0..4),
            width in 0usize..=4,
        ) {
            let columns = &COLUMNS[..width];
            let resolve = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
            let values: Vec<Vec<Value>> = rows
                .iter()
                .map(|r| (0..width).map(|c| typed(r, c).into_json()).collect())
                .collect();

            let mut by_value = Vec::new();
            table::stream_ndjson(columns, values.iter(), &mut by_value).unwrap();
            let line = table::typed_json_object(columns, resolve, typed, table::JsonLayout::Line);
            let mut by_text = Vec::new();
            rows.iter().for_each(|r| line(r, &mut by_text));
            proptest::prop_assert_eq!(String::from_utf8(by_text).unwrap(), String::from_utf8(by_value).unwrap());

            let mut head = serde_json::Map::new();
            head.insert("schema_version".into(), json!(1));
            head.insert("summary".into(), json!({"a": [1, {"b": []}], "c": {}}));
            let mut by_value = Vec::new();
            write_json_with_rows(&mut by_value, head.clone(), columns, values.into_iter()).unwrap();
            let element = table::typed_json_object(columns, resolve, typed, table::JsonLayout::DocumentRow);
            let mut by_text = Vec::new();
            write_json_with_row_texts(&mut by_text, head, |w| {
                let mut text = Vec::new();
                for r in &rows {
                    text.clear();
                    element(r, &mut text);
                    w.write_all(&text)?;
                }
                Ok(())
            })
            .unwrap();
            proptest::prop_assert_eq!(String::from_utf8(by_text).unwrap(), String::from_utf8(by_value).unwrap());
        }
    }
}
