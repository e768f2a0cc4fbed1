//! The output layer: everything people and machines read. A format-neutral
//! [`Table`] and its sinks ([`table`]), one module per result to draw
//! ([`activity`], [`replay`], [`timeline`], [`siem`], [`overview`],
//! [`policy`]), the atomic output file ([`output`]), the progress bar
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

/// A JSON document, pretty-printed, with a final newline.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    out: &mut dyn std::io::Write,
    v: &T,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    out.write_all(b"\n")?;
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
    struct Document<'a, H, I>(H, Rows<'a, I>);
    impl<H: Head, I: Iterator<Item = Vec<serde_json::Value>>> serde::Serialize for Document<'_, H, I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            self.0.entries(&mut map)?;
            map.serialize_entry("rows", &self.1)?;
            map.end()
        }
    }
    let mut w = std::io::BufWriter::with_capacity(64 << 10, &mut *out);
    serde_json::to_writer_pretty(&mut w, &Document(head, Rows(RefCell::new(Some(rows)), columns)))?;
    w.write_all(b"\n")?;
    std::io::Write::flush(&mut w)?;
    Ok(())
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
}
