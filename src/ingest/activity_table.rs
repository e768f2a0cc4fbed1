//! Reading back an activity table: what `xtenant activity --format csv` or
//! `--format ndjson` wrote, or what a query engine computed with the query
//! `xtenant query` writes (the same columns), in whatever form the engine
//! exports it:
//!
//! - CSV with a header (ours; Azure Data Explorer; the Log Analytics portal
//!   export, whose datetime columns get a ` [UTC]` suffix and locale times);
//! - NDJSON (ours; Spark `df.write.json`, which leaves out null fields);
//! - a JSON array of row objects (`az monitor log-analytics query -o json`);
//! - a Log Analytics / Data Explorer query API response
//!   (`{"tables": [{"columns": [{"name"}], "rows": [[...]]}]}`);
//! - a folder of Spark part files (`part-*.csv` with a header, or
//!   `part-*.json`), `_SUCCESS` and other marker files ignored.
//!
//! The shape is told from the content. A missing column or a value of the
//! wrong type is an error that names the file, the row and the column.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::activity::{ActivityRow, Counters, GroupBy};
use crate::model::text::json_cell;
use crate::model::{AccessType, Clause, Direction, Guid, UserType};

use super::framing;
use super::lines::LineLimit;

/// The columns every activity table has, whatever wrote it.
const KEY_COLUMNS: [&str; 4] = ["direction", "access_type", "partner_tenant_id", "sign_ins"];

/// Whether a path (a file, or a folder of Spark part files) looks like an
/// activity table, from its first bytes.
pub fn looks_like_activity_table(path: &Path) -> bool {
    if path.is_dir() {
        return part_files(path)
            .is_ok_and(|files| files.first().is_some_and(|f| looks_like_activity_table(f)));
    }
    let Ok(head) = head(path) else { return false };
    let head = head.as_str();
    // Column names in a header, or as JSON keys, in the first few KiB.
    let mut cut = head.len().min(8 << 10);
    while !head.is_char_boundary(cut) {
        cut -= 1;
    }
    let names: &str = &head[..cut];
    let named = |c: &str| names.contains(&format!("\"{c}\"")) || header_line(head).iter().any(|h| h == c);
    KEY_COLUMNS.iter().all(|c| named(c))
}

/// The first 64 KiB of a file as text (bytes that are not UTF-8 replaced),
/// without a byte order mark and the blanks before the first character:
/// enough to tell a table's shape and columns.
fn head(path: &Path) -> std::io::Result<String> {
    let mut head = Vec::new();
    File::open(path)?.take(64 << 10).read_to_end(&mut head)?;
    Ok(String::from_utf8_lossy(&head).trim_start_matches('\u{feff}').trim_start().to_string())
}

/// The names of a CSV header line, ` [UTC]` suffixes dropped.
fn header_line(text: &str) -> Vec<String> {
    let line = text.lines().next().unwrap_or("");
    if line.starts_with('{') || line.starts_with('[') {
        return vec![];
    }
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(column_name).collect())
        .unwrap_or_default()
}

/// A column name as an engine wrote it, to ours: Log Analytics' portal
/// export adds ` [UTC]` to datetime columns.
fn column_name(h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}');
    h.strip_suffix("[UTC]").unwrap_or(h).trim().to_string()
}

/// The part files of a Spark output folder, in name order.
fn part_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let files: Vec<_> = crate::files::files_under(dir)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
        .collect();
    if files.is_empty() {
        bail!("{}: no part-* files: not a Spark output folder", dir.display());
    }
    Ok(files)
}

/// A row's cells by column name: a map (JSON rows), or a CSV record read
/// through its header's index (no map built per row).
trait Cells {
    fn get(&self, column: &str) -> Option<&str>;
}

impl Cells for BTreeMap<String, String> {
    fn get(&self, column: &str) -> Option<&str> {
        BTreeMap::get(self, column).map(String::as_str)
    }
}

struct CsvCells<'a> {
    /// Column name to position; a name given twice is its last position,
    /// as a map of the row built from the header would hold it.
    index: &'a std::collections::HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Cells for CsvCells<'_> {
    fn get(&self, column: &str) -> Option<&str> {
        self.index.get(column).and_then(|&i| self.record.get(i))
    }
}

fn field<'a>(m: &'a dyn Cells, k: &str, at: &str) -> Result<&'a str> {
    m.get(k).ok_or_else(|| {
        anyhow::anyhow!(
            "{at}: column `{k}` is missing (write the table with `xtenant activity --format csv`)"
        )
    })
}

/// The most a count of a table's row may be: a trillion sign-ins (2^40),
/// far past what a tenant's logs count for one group, and low enough that
/// adding up sixteen million rows of it cannot overflow (a forged table's
/// counts near 2^64 made the totals wrap, or a debug build panic).
const MAX_COUNT: u64 = 1 << 40;

fn num(m: &dyn Cells, k: &str, at: &str) -> Result<u64> {
    let v = field(m, k, at)?;
    match v.parse::<u64>() {
        Ok(n) if n <= MAX_COUNT => Ok(n),
        Ok(_) => bail!("{at}: field `{k}`: `{v}` is more than a group's count can be (at most {MAX_COUNT})"),
        Err(_) => bail!("{at}: field `{k}`: `{v}` is not a count"),
    }
}

fn opt<'a>(m: &'a dyn Cells, k: &str) -> Option<&'a str> {
    m.get(k).filter(|v| !v.is_empty())
}

fn time(m: &dyn Cells, k: &str, at: &str) -> Result<Option<DateTime<Utc>>> {
    match opt(m, k) {
        None => Ok(None),
        // RFC 3339 from us, Spark and ADX; locale text from the Log Analytics portal.
        Some(v) => super::dates::parse_time(v, super::DateOrder::Auto)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{at}: field `{k}`: `{v}` is not a time: {e}")),
    }
}

fn tenant(m: &dyn Cells, k: &str, at: &str) -> Result<Option<Guid>> {
    match opt(m, k) {
        None => Ok(None),
        Some(v) => Guid::parse(v)
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("{at}: field `{k}`: `{v}` is not a tenant id (GUID)")),
    }
}

fn row(m: &dyn Cells, at: &str) -> Result<ActivityRow> {
    let direction = match field(m, "direction", at)? {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => bail!("{at}: field `direction`: `{other}` is not inbound or outbound"),
    };
    let partner = field(m, "partner_tenant_id", at)?;
    let partner = Guid::parse(partner)
        .ok_or_else(|| anyhow::anyhow!("{at}: field `partner_tenant_id`: `{partner}` is not a GUID"))?;
    let counters = Counters {
        sign_ins: num(m, "sign_ins", at)?,
        successes: num(m, "successes", at)?,
        failures: num(m, "failures", at)?,
        policy_blocks: num(m, "policy_blocks", at)?,
        home_outbound_blocks: 0,
        resource_inbound_blocks: 0,
        mfa_required: num(m, "mfa_required", at)?,
        mfa_by_claim: num(m, "mfa_by_claim", at)?,
        compliant_device_required: num(m, "compliant_device_required", at)?,
        hybrid_join_required: num(m, "hybrid_join_required", at)?,
        ca_details_missing: num(m, "ca_details_missing", at)?,
        first_seen: time(m, "first_seen", at)?,
        last_seen: time(m, "last_seen", at)?,
        // Tables written before this column existed have no clauses to tell.
        grant_clauses: match opt(m, "grant_clauses") {
            Some(t) => {
                Clause::parse_list(t).map_err(|e| anyhow::anyhow!("{at}: field `grant_clauses`: {e}"))?
            }
            None => Vec::new(),
        },
    };
    let (us, partner_blocks) = (num(m, "blocked_by_us", at)?, num(m, "blocked_by_partner", at)?);
    let mut counters = counters;
    // Back from the direction-relative columns to the codes they count.
    match direction {
        Direction::Outbound => {
            counters.home_outbound_blocks = us;
            counters.resource_inbound_blocks = partner_blocks;
        }
        Direction::Inbound => {
            counters.resource_inbound_blocks = us;
            counters.home_outbound_blocks = partner_blocks;
        }
    }
    Ok(ActivityRow {
        direction,
        access_type: AccessType::parse(field(m, "access_type", at)?),
        partner_tenant_id: partner,
        partner_tenant_name: opt(m, "partner_tenant_name").map(Into::into),
        app_id: opt(m, "app_id").map(Into::into),
        app_name: opt(m, "app_name").map(Into::into),
        app_owner_tenant_id: tenant(m, "app_owner_tenant_id", at)?,
        resource_id: opt(m, "resource_id").map(Into::into),
        resource_name: opt(m, "resource_name").map(Into::into),
        resource_owner_tenant_id: tenant(m, "resource_owner_tenant_id", at)?,
        user_id: opt(m, "user_id").map(Into::into),
        user_principal_name: opt(m, "user_principal_name").map(Into::into),
        user_type: opt(m, "user_type").map(UserType::parse),
        counters,
        distinct_users: opt(m, "distinct_users").and_then(|v| v.parse().ok()),
        distinct_apps: opt(m, "distinct_apps").and_then(|v| v.parse().ok()),
        by_epoch: vec![],
    })
}

/// Rows as they are read: each converted at once and handed on, so that a
/// table of a million groups never holds a million maps of cell texts, nor
/// a million rows. The grain is what the first row's columns say: only the
/// coarser grains have `distinct_*` (Spark's JSON leaves out null fields,
/// so a missing `user_id` says nothing).
struct Rows<'e> {
    emit: &'e mut dyn FnMut(ActivityRow) -> Result<()>,
    grain: Option<GroupBy>,
}

impl Rows<'_> {
    fn push(&mut self, at: &str, m: &dyn Cells) -> Result<()> {
        if self.grain.is_none() {
            self.grain = Some(if m.get("distinct_apps").is_some() {
                GroupBy::Tenant
            } else if m.get("distinct_users").is_some() {
                GroupBy::App
            } else {
                GroupBy::User
            });
        }
        (self.emit)(row(m, at)?)
    }
}

fn object_row(v: Value, at: &str) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Object(o) => Ok(o.into_iter().map(|(k, v)| (column_name(&k), json_cell(&v))).collect()),
        _ => bail!("{at}: expected a row object"),
    }
}

/// Rows of one file in any of the shapes the module doc lists, each handed
/// on as it is read.
fn file_rows(path: &Path, out: &mut Rows<'_>) -> Result<()> {
    let name = path.display().to_string();
    let cannot_read = || format!("{name}: cannot read");
    let trimmed = head(path).with_context(cannot_read)?;
    let document = match trimmed.as_bytes().first() {
        Some(b'[') => true,
        // One object a line, unless the first line is not a whole object
        // (a document written over several lines) or is a query response.
        Some(b'{') => {
            let first = trimmed.lines().next().unwrap_or("");
            !matches!(serde_json::from_str::<Value>(first), Ok(Value::Object(o)) if !o.contains_key("tables"))
        }
        _ => false,
    };
    if document {
        return document_rows(path, &name, out);
    }
    if trimmed.starts_with('{') {
        let mut lines = BufReader::with_capacity(256 << 10, File::open(path).with_context(cannot_read)?);
        let mut line = Vec::new();
        // No row is near this long: a file with no line break is refused
        // at this point, not read whole first.
        let limit = framing::MAX_RECORD_BYTES as u64 + 1;
        for i in 1.. {
            let at = format!("{name}: line {i}");
            line.clear();
            if (&mut lines).take(limit).read_until(b'\n', &mut line).with_context(|| at.clone())? == 0 {
                break;
            }
            if line.len() as u64 == limit && line.last() != Some(&b'\n') {
                bail!(
                    "{at}: the line is longer than {} MiB: not an activity table",
                    framing::MAX_RECORD_BYTES >> 20
                );
            }
            let text = if i == 1 { line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line) } else { &line };
            if text.trim_ascii().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_slice(text).with_context(|| at.clone())?;
            out.push(&at, &object_row(v, &at)?)?;
        }
        return Ok(());
    }
    // Spark's CSV writer escapes a quote inside a value as `\"` unless told
    // `.option("escape", "\"")`; everyone else doubles it. Without a `\"`
    // in the file, a Spark table has no quote inside a value, so RFC 4180
    // reads it as Spark would: one reading. With one, try Spark first, then
    // RFC 4180; the rows go on only from the reading that succeeds whole,
    // so each is read once to check and once to hand on.
    if !contains(path, b"\\\"").with_context(cannot_read)? {
        return csv_rows(path, &name, false, out);
    }
    let mut first_error = None;
    for spark in [true, false] {
        let mut check = Rows { emit: &mut |_| Ok(()), grain: None };
        match csv_rows(path, &name, spark, &mut check) {
            Ok(()) => return csv_rows(path, &name, spark, out),
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
    }
    Err(first_error.expect("one attempt was made"))
}

/// Whether the file at `path` contains `needle` (of two bytes or more), read
/// a block at a time.
fn contains(path: &Path, needle: &[u8]) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut kept = 0;
    loop {
        let n = f.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let end = kept + n;
        if memchr::memmem::find(&buf[..end], needle).is_some() {
            return Ok(true);
        }
        // The needle may straddle this block and the next.
        kept = (needle.len() - 1).min(end);
        buf.copy_within(end - kept..end, 0);
    }
}

/// A CSV table, quotes inside values doubled (RFC 4180) or, with `spark`,
/// escaped by a backslash (Spark's default).
fn csv_rows(path: &Path, name: &str, spark: bool, out: &mut Rows<'_>) -> Result<()> {
    let mut builder = csv::ReaderBuilder::new();
    if spark {
        builder.escape(Some(b'\\')).double_quote(false);
    }
    let file = File::open(path).with_context(|| format!("{name}: cannot read"))?;
    // Lines as the file has them (a quoted value can span several), told
    // by where each starts: the crate's own count is a line short after a
    // `\r\n` row or a blank line.
    let lines = LineLimit::new(BufReader::with_capacity(256 << 10, file), framing::MAX_RECORD_BYTES);
    let mut r = builder.from_reader(lines);
    let headers: Vec<String> =
        r.headers().with_context(|| format!("{name}: line 1"))?.iter().map(column_name).collect();
    if !KEY_COLUMNS.iter().all(|c| headers.iter().any(|h| h == c)) {
        bail!(
            "{name}: line 1: the header lacks {} (Spark writes no header unless asked: `.option(\"header\", true)`)",
            KEY_COLUMNS.iter().filter(|c| !headers.iter().any(|h| h == *c)).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        );
    }
    let index: std::collections::HashMap<String, usize> =
        headers.into_iter().enumerate().map(|(i, h)| (h, i)).collect();
    let mut rec = csv::StringRecord::new();
    loop {
        let before = r.position().byte();
        let read = r.read_record(&mut rec);
        let byte = match &read {
            Ok(_) => rec.position().map_or(before, |p| p.byte()),
            Err(e) => e.position().map_or(before, |p| p.byte()),
        };
        let line = r.get_mut().line_at(byte);
        let at = format!("{name}: line {line}");
        if !read.with_context(|| at.clone())? {
            return Ok(());
        }
        out.push(&at, &CsvCells { index: &index, record: &rec })?;
    }
}

/// A visitor of ours as the seed that hands it its part of the document.
macro_rules! seed {
    ($visitor:ty, $how:ident) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $visitor {
            type Value = ();

            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.$how(self)
            }
        }
    };
}

/// The shapes a JSON document of rows takes, for the error that names them.
const DOCUMENT_SHAPES: &str = "expected an array of rows or a query response with `tables`";

/// The rows of a JSON document (an array of row objects, or a query API
/// response), each handed on as the document is parsed: one row is in
/// memory at a time, however large the document (a parsed document takes
/// several times its size).
fn document_rows(path: &Path, name: &str, out: &mut Rows<'_>) -> Result<()> {
    let mut reader =
        BufReader::with_capacity(64 << 10, File::open(path).with_context(|| format!("{name}: cannot read"))?);
    if reader.fill_buf().with_context(|| format!("{name}: cannot read"))?.starts_with("\u{feff}".as_bytes()) {
        reader.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut doc = Document { name, out, failed: None };
    let parsed = serde::de::DeserializeSeed::deserialize(&mut doc, &mut de).and_then(|()| de.end());
    if let Some(e) = doc.failed {
        return Err(e);
    }
    parsed.with_context(|| format!("{name}: not valid JSON"))
}

/// A JSON document being read: the rows go to `out`; an error of ours (a
/// bad row) waits in `failed` while the parser unwinds with a bare error.
struct Document<'a, 'e> {
    name: &'a str,
    out: &'a mut Rows<'e>,
    failed: Option<anyhow::Error>,
}

impl Document<'_, '_> {
    /// Keeps `e` and gives the parser an error to stop with.
    fn fail<E: serde::de::Error>(&mut self, e: anyhow::Error) -> E {
        self.failed.get_or_insert(e);
        E::custom("stopped")
    }

    fn push<E: serde::de::Error>(&mut self, at: &str, cells: &dyn Cells) -> Result<(), E> {
        self.out.push(at, cells).map_err(|e| self.fail(e))
    }
}

seed!(&mut Document<'_, '_>, deserialize_any);

impl<'de> serde::de::Visitor<'de> for &mut Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(DOCUMENT_SHAPES)
    }

    /// An array of row objects (`az monitor log-analytics query -o json`).
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(v) = seq.next_element::<Value>()? {
            i += 1;
            let at = format!("{}: row {i}", self.name);
            let cells = object_row(v, &at).map_err(|e| self.fail(e))?;
            self.push(&at, &cells)?;
        }
        Ok(())
    }

    /// A query API response: the rows of its first table (Data Explorer
    /// adds tables of query properties after it).
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut tables = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "tables" && !tables {
                tables = true;
                map.next_value_seed(Tables(&mut *self))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        if !tables {
            let e = anyhow::anyhow!("{}: {DOCUMENT_SHAPES}", self.name);
            return Err(self.fail(e));
        }
        Ok(())
    }
}

/// A query response's `tables`: the first one read, the others skipped.
struct Tables<'d, 'a, 'e>(&'d mut Document<'a, 'e>);

seed!(Tables<'_, '_, '_>, deserialize_any);

impl<'de> serde::de::Visitor<'de> for Tables<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of tables")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let doc = self.0;
        if seq.next_element_seed(Table(&mut *doc))?.is_none() {
            let e = anyhow::anyhow!("{}: the response has no table", doc.name);
            return Err(doc.fail(e));
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// The first table of a query response: its `columns`, then its `rows`,
/// each row an array of cells in the columns' order. Rows that come before
/// the columns (no engine writes them so) wait for them.
struct Table<'d, 'a, 'e>(&'d mut Document<'a, 'e>);

seed!(Table<'_, '_, '_>, deserialize_map);

impl<'de> serde::de::Visitor<'de> for Table<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let doc = self.0;
        let mut columns: Option<Vec<String>> = None;
        let mut early_rows: Option<Value> = None;
        let mut n = 0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "columns" => {
                    let v: Value = map.next_value()?;
                    let names = v.as_array().map(|c| {
                        c.iter()
                            .map(|c| column_name(c.get("name").and_then(Value::as_str).unwrap_or("")))
                            .collect()
                    });
                    columns = Some(names.unwrap_or_default());
                }
                "rows" => match &columns {
                    Some(columns) => map.next_value_seed(TableRows { doc: &mut *doc, columns, n: &mut n })?,
                    None => early_rows = Some(map.next_value()?),
                },
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let columns = columns.unwrap_or_default();
        for r in early_rows
            .and_then(|v| match v {
                Value::Array(rows) => Some(rows),
                _ => None,
            })
            .into_iter()
            .flatten()
        {
            table_row(doc, &columns, r, &mut n)?;
        }
        Ok(())
    }
}

/// One row of a query response's first table, handed on.
fn table_row<E: serde::de::Error>(
    doc: &mut Document<'_, '_>,
    columns: &[String],
    r: Value,
    n: &mut usize,
) -> Result<(), E> {
    let at = format!("{}: tables[0].rows[{n}]", doc.name);
    *n += 1;
    let Value::Array(cells) = r else {
        let e = anyhow::anyhow!("{at}: expected an array of cells");
        return Err(doc.fail(e));
    };
    let cells: BTreeMap<String, String> = columns.iter().cloned().zip(cells.iter().map(json_cell)).collect();
    doc.push(&at, &cells)
}

/// The `rows` of a query response's first table, read one at a time.
struct TableRows<'d, 'c, 'a, 'e> {
    doc: &'d mut Document<'a, 'e>,
    columns: &'c [String],
    n: &'d mut usize,
}

seed!(TableRows<'_, '_, '_, '_>, deserialize_seq);

impl<'de> serde::de::Visitor<'de> for TableRows<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(r) = seq.next_element::<Value>()? {
            table_row(self.doc, self.columns, r, self.n)?;
        }
        Ok(())
    }
}

/// Reads one activity table (a file, or a folder of Spark part files),
/// handing each row to `emit` as it is read; returns the grain, which is
/// what its columns say.
pub fn read_each(path: &Path, emit: &mut dyn FnMut(ActivityRow) -> Result<()>) -> Result<GroupBy> {
    let files = if path.is_dir() { part_files(path)? } else { vec![path.to_path_buf()] };
    let mut rows = Rows { emit, grain: None };
    for f in &files {
        file_rows(f, &mut rows)?;
    }
    Ok(rows.grain.unwrap_or(GroupBy::User))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Result<(GroupBy, Vec<ActivityRow>)> {
        let mut rows = Vec::new();
        let by = read_each(path, &mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok((by, rows))
    }

    const CSV: &str = "direction,access_type,partner_tenant_id,partner_tenant_name,app_id,app_name,resource_id,resource_name,user_id,user_principal_name,user_type,sign_ins,successes,failures,policy_blocks,first_seen,last_seen,blocked_by_us,blocked_by_partner,mfa_required,mfa_by_claim,compliant_device_required,hybrid_join_required,ca_details_missing,app_owner_tenant_id,resource_owner_tenant_id,grant_clauses
inbound,b2bCollaboration,9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d,Fabrikam,00000003-0000-0ff1-ce00-000000000000,SharePoint,,,u1,ann@fabrikam.example,guest,3,2,1,1,2026-11-02T09:15:30Z,2026-11-03T16:45:59Z,1,0,2,1,0,0,0,f8cdef31-a31e-4b4a-93e4-5f571e91255a,,
outbound,b2bDirectConnect,1b3c602b-1ae1-459a-99af-0df4c32355e7,,app2,,,,u2,,member,1,1,0,0,2026-11-04T10:00:00Z,2026-11-04T10:00:00Z,0,0,0,0,1,0,0,,,-:compliantDevice+mfa
";

    fn objects() -> Vec<serde_json::Map<String, Value>> {
        let mut r = csv::Reader::from_reader(CSV.as_bytes());
        let h = r.headers().unwrap().clone();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                h.iter()
                    .zip(rec.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| {
                        let n: Option<u64> = v.parse().ok();
                        (k.to_string(), n.map_or_else(|| Value::String(v.into()), Value::from))
                    })
                    .collect()
            })
            .collect()
    }

    fn read_text(dir: &Path, name: &str, text: &str) -> (GroupBy, Vec<ActivityRow>) {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        assert!(looks_like_activity_table(&p), "{name}");
        read(&p).unwrap()
    }

    #[test]
    fn every_engines_export_of_the_table_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let want = read_text(dir.path(), "ours.csv", CSV);
        assert_eq!(want.1.len(), 2);
        let objs = objects();
        let ndjson: String = objs.iter().map(|o| format!("{}\n", Value::Object(o.clone()))).collect();
        let array = Value::Array(objs.iter().cloned().map(Value::Object).collect()).to_string();
        let columns: Vec<&str> = CSV.lines().next().unwrap().split(',').collect();
        let rows: Vec<Value> = objs
            .iter()
            .map(|o| {
                Value::Array(columns.iter().map(|c| o.get(*c).cloned().unwrap_or(Value::Null)).collect())
            })
            .collect();
        let response = serde_json::json!({"tables": [{"name": "PrimaryResult",
            "columns": columns.iter().map(|c| serde_json::json!({"name": c, "type": "string"})).collect::<Vec<_>>(),
            "rows": rows}]})
        .to_string();
        let portal = CSV
            .replacen("first_seen,last_seen", "first_seen [UTC],last_seen [UTC]", 1)
            .replace("2026-11-02T09:15:30Z", "\"11/2/2026, 9:15:30.000 AM\"");
        for (name, text) in [
            ("x.ndjson", ndjson.as_str()),
            ("az.json", &array),
            ("api.json", &response),
            ("portal.csv", &portal),
        ] {
            assert_eq!(read_text(dir.path(), name, text), want, "{name}");
        }
        // Spark: a folder of part files and a marker.
        for (ext, body) in [("csv", CSV), ("json", ndjson.as_str())] {
            let out = dir.path().join(format!("spark-{ext}"));
            std::fs::create_dir(&out).unwrap();
            std::fs::write(out.join("_SUCCESS"), "").unwrap();
            let lines: Vec<&str> = body.lines().collect();
            let (first, second) = if ext == "csv" {
                (format!("{}\n{}\n", lines[0], lines[1]), format!("{}\n{}\n", lines[0], lines[2]))
            } else {
                (format!("{}\n", lines[0]), format!("{}\n", lines[1]))
            };
            std::fs::write(out.join(format!("part-00000-x.{ext}")), first).unwrap();
            std::fs::write(out.join(format!("part-00001-x.{ext}")), second).unwrap();
            assert!(looks_like_activity_table(&out));
            assert_eq!(read(&out).unwrap(), want, "spark {ext}");
        }
    }

    #[test]
    fn a_json_document_reads_the_same_in_any_layout_and_a_bad_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let want = read_text(dir.path(), "ours.csv", CSV);
        let objs = objects();
        let columns: Vec<&str> = CSV.lines().next().unwrap().split(',').collect();
        let rows: Vec<Value> = objs
            .iter()
            .map(|o| {
                Value::Array(columns.iter().map(|c| o.get(*c).cloned().unwrap_or(Value::Null)).collect())
            })
            .collect();
        let cols: Vec<Value> =
            columns.iter().map(|c| serde_json::json!({"name": c, "type": "string"})).collect();
        let properties = serde_json::json!({"name": "@ExtendedProperties", "columns": [{"name": "Value"}], "rows": [["{}"]]});
        let layouts = [
            // Data Explorer: query properties after the primary result.
            serde_json::json!({"tables": [{"name": "PrimaryResult", "columns": cols, "rows": rows}, properties]})
                .to_string(),
            // Rows before columns, and `tables` after another key.
            format!(
                "{{\"statistics\": {{\"rows\": [1]}}, \"tables\": [{{\"rows\": {}, \"columns\": {}}}]}}",
                Value::Array(rows.clone()),
                Value::Array(cols.clone())
            ),
            // A byte order mark and a pretty-printed array.
            format!(
                "\u{feff}{}",
                serde_json::to_string_pretty(&Value::Array(objs.iter().cloned().map(Value::Object).collect()))
                    .unwrap()
            ),
        ];
        for (i, text) in layouts.iter().enumerate() {
            assert_eq!(read_text(dir.path(), &format!("layout{i}.json"), text), want, "layout {i}: {text}");
        }
        let bad = [
            (
                serde_json::json!({"tables": [{"columns": cols, "rows": [rows[0], 7]}]}),
                "tables[0].rows[1]: expected an array of cells",
            ),
            (serde_json::json!([objs[0], "x"]), "row 2: expected a row object"),
            (serde_json::json!({"tables": []}), "the response has no table"),
            (serde_json::json!({"value": []}), "expected an array of rows or a query response"),
        ];
        for (v, says) in bad {
            let path = dir.path().join("bad.json");
            std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
            let e = format!("{:#}", read(&path).unwrap_err());
            assert!(e.contains(says) && e.contains("bad.json"), "{e}");
        }
        let path = dir.path().join("cut.json");
        std::fs::write(&path, &layouts[0][..layouts[0].len() / 2]).unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.contains("cut.json: not valid JSON"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// Telling and reading a table never panics, whatever the bytes:
        /// multi-byte characters where the first 8 KiB end, quotes, braces.
        #[test]
        fn no_file_makes_telling_or_reading_a_table_panic(
            text in "[a-zé中,\"\n{}\\[\\]\\\\:]{8150,8250}",
            header in proptest::bool::ANY,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("t.csv");
            let head = if header { CSV.lines().next().unwrap() } else { "" };
            std::fs::write(&p, format!("{head}\n{text}")).unwrap();
            let _ = looks_like_activity_table(&p);
            let _ = read(&p);
        }
    }

    #[test]
    fn a_character_across_the_first_8_kib_does_not_stop_the_look_at_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, format!("{}é{}", "a".repeat((8 << 10) - 1), "b".repeat(100))).unwrap();
        assert!(!looks_like_activity_table(&p));
    }

    #[test]
    fn a_two_byte_sequence_is_found_across_the_blocks_a_file_is_read_in() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        for at in [0, 1, (256 << 10) - 1, 256 << 10, (512 << 10) + 7] {
            let mut text = vec![b'x'; 600 << 10];
            text[at] = b'\\';
            text[at + 1] = b'"';
            std::fs::write(&p, &text).unwrap();
            assert!(contains(&p, b"\\\"").unwrap(), "at {at}");
            text[at + 1] = b'y';
            std::fs::write(&p, &text).unwrap();
            assert!(!contains(&p, b"\\\"").unwrap(), "at {at}");
        }
    }

    #[test]
    fn a_headerless_spark_csv_or_a_bad_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-00000.csv");
        std::fs::write(&p, CSV.lines().nth(1).unwrap()).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("header") && e.contains("`direction`"), "{e}");
        let bad = CSV.replacen(",3,2,1,1,", ",three,2,1,1,", 1);
        std::fs::write(&p, bad).unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("line 2") && e.contains("`sign_ins`"), "{e}");
        // A value over two lines in the row before: the file's line, not the row's number.
        let (header, row) = CSV.split_once('\n').unwrap();
        let row = row.lines().next().unwrap();
        let two_lines = row.replacen(",SharePoint,", ",\"Share\nPoint\",", 1);
        assert_ne!(two_lines, row);
        let bad_row = row.replacen(",3,2,1,1,", ",three,2,1,1,", 1);
        std::fs::write(&p, format!("{header}\n{two_lines}\n{bad_row}\n")).unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("line 4") && e.contains("`sign_ins`"), "{e}");
        // A count no tenant's logs reach is named too (its sums would overflow).
        let huge = CSV.replacen(",3,2,1,1,", ",18446744073709551615,2,1,1,", 1);
        std::fs::write(&p, huge).unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("line 2") && e.contains("`sign_ins`") && e.contains("at most"), "{e}");
        let largest = CSV.replacen(",3,2,1,1,", &format!(",{MAX_COUNT},2,1,1,"), 1);
        std::fs::write(&p, largest).unwrap();
        assert!(read(&p).is_ok());
    }

    /// Windows tools end rows with `\r\n`, and a query engine's export
    /// may leave blank lines: the `csv` crate's own line count was one
    /// short after either (it named "line 1" for the first row).
    #[test]
    fn a_bad_row_is_named_by_its_line_whatever_ends_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let (header, row) = CSV.split_once('\n').unwrap();
        let row = row.lines().next().unwrap();
        let bad_row = row.replacen(",3,2,1,1,", ",three,2,1,1,", 1);
        for (text, line) in [
            (format!("{header}\r\n{bad_row}\r\n"), 2),
            (format!("{header}\r\n{row}\r\n{bad_row}"), 3),
            (format!("{header}\n\n{row}\n\n\n{bad_row}\n"), 6),
            (format!("{header}\r\n\r\n{bad_row}\r\n"), 3),
            (format!("{header}\r{row}\r{bad_row}\r"), 3),
        ] {
            std::fs::write(&p, &text).unwrap();
            let e = format!("{:#}", read(&p).unwrap_err());
            assert!(e.contains(&format!("line {line}:")) && e.contains("`sign_ins`"), "{text:?}: {e}");
        }
    }

    /// A file with no line break is not an activity table; it is refused
    /// once a line passes what a row could hold, not read whole first.
    #[test]
    fn a_line_past_sixteen_mib_is_refused_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (header, row) = CSV.split_once('\n').unwrap();
        // The CSV reader reads a block at a time: a line is refused once a
        // block ends past the limit.
        let long = "x".repeat(framing::MAX_RECORD_BYTES + (1 << 20));
        let p = dir.path().join("t.csv");
        std::fs::write(&p, format!("{header}\n{}{long}\n", row.lines().next().unwrap())).unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("line 2") && e.contains("longer than 16 MiB"), "{e}");
        let p = dir.path().join("t.ndjson");
        let first = Value::Object(objects()[0].clone());
        std::fs::write(&p, format!("{first}\n{{\"direction\": \"{long}\"}}\n")).unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("line 2") && e.contains("longer than 16 MiB"), "{e}");
    }

    #[test]
    fn a_name_with_quotes_commas_and_a_line_break_reads_as_spark_and_as_rfc_4180_write_it() {
        let header = CSV.lines().next().unwrap();
        let row = |name: &str| {
            format!("{header}\ninbound,b2bCollaboration,9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d,,a1,{name},,,u1,,guest,1,1,0,0,2026-11-02T09:15:30Z,2026-11-02T09:15:30Z,0,0,0,0,0,0,0,,,\n")
        };
        let dir = tempfile::tempdir().unwrap();
        let want = "Renamed, \"by\" them\n=SUM(1)";
        for (kind, cell) in [
            ("spark", "\"Renamed, \\\"by\\\" them\n=SUM(1)\""),
            ("rfc", "\"Renamed, \"\"by\"\" them\n=SUM(1)\""),
        ] {
            let (_, rows) = read_text(dir.path(), &format!("{kind}.csv"), &row(cell));
            assert_eq!(rows[0].app_name.as_deref(), Some(want), "{kind}");
        }
    }
}
