//! Reading sign-in and audit exports into canonical records.
//!
//! One pipeline serves both kinds of record ([`RecordKind`]: [`SignIns`],
//! [`AuditEvents`]); only the last step, turning one record into canonical
//! form, differs. Data flows: [`source`] opens and decodes each input, [`detect`] decides
//! JSON or CSV from its first bytes, [`framing`] (JSON) or the CSV reader
//! cuts it into batches of records on a reader thread, the batches are
//! parsed in parallel ([`json`], [`csv`] then [`normalize`]), and the
//! results are handed to the caller strictly in input order. Memory is
//! bounded by the number of batches in flight, whatever the input size.

pub mod activity_table;
pub mod audit;
pub mod csv;
pub mod detect;
pub mod framing;
pub mod json;
pub mod lenient;
pub mod normalize;
pub mod raw;
pub mod source;
pub mod time;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::model::{ReadStats, SignIn};
pub use normalize::{Context, FieldError};
pub use source::Input;
pub use time::DateOrder;

/// `--input-format`: what to read the inputs as. `auto` decides per file
/// from its content.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    #[default]
    Auto,
    /// Microsoft Graph signIn JSON (v1.0 or beta): a page, pages, an array or NDJSON.
    Graph,
    /// Diagnostic-settings stream: `{"records": [...]}` or one record per line.
    Diagnostic,
    /// Log Analytics / Sentinel rows as JSON (array, NDJSON or a query API response).
    LogAnalyticsJson,
    /// Log Analytics portal CSV export.
    LogAnalyticsCsv,
    /// Entra admin center "Download CSV".
    PortalCsv,
    /// Entra admin center "Download JSON".
    PortalJson,
}

impl InputFormat {
    fn is_csv(self) -> bool {
        matches!(self, InputFormat::LogAnalyticsCsv | InputFormat::PortalCsv)
    }
    fn is_json(self) -> bool {
        !self.is_csv() && self != InputFormat::Auto
    }
}

/// What one record turned out to be.
#[derive(Debug)]
pub enum Parsed<T> {
    One(Box<T>),
    /// A Log Analytics query response holds many rows in one document;
    /// rows not of this kind are counted by reason.
    Many(Vec<T>, Vec<String>),
    /// Well-formed but not of the kind being read (audit events among
    /// sign-ins, other diagnostic categories): counted by reason, never
    /// silently dropped.
    Ignored(String),
}

/// A kind of record the pipeline can read: how one framed JSON record or
/// one CSV row becomes canonical.
pub trait RecordKind: Clone + Send + Sync + 'static {
    type Item: Send;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<Self::Item>, FieldError>;
    /// Recognises a CSV header, or says why this file is not of this kind.
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        file_name: Option<&str>,
    ) -> Result<csv::Header, String>;
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: &::csv::StringRecord,
        ctx: &Context,
    ) -> Result<Parsed<Self::Item>, FieldError>;
    /// The label a record is counted under in [`ReadStats::by_event_type`].
    fn label(&self, item: &Self::Item) -> &'static str;
}

/// Sign-in records: Graph signIn, diagnostic sign-in categories, Log
/// Analytics SigninLogs (and siblings), portal downloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignIns;

impl RecordKind for SignIns {
    type Item = SignIn;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<SignIn>, FieldError> {
        json::parse_record(bytes, ctx, format)
    }
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        file_name: Option<&str>,
    ) -> Result<csv::Header, String> {
        csv::Header::new(names, delimiter, file_name)
    }
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: &::csv::StringRecord,
        ctx: &Context,
    ) -> Result<Parsed<SignIn>, FieldError> {
        if header.dialect == csv::Dialect::PortalAuthDetails {
            return Ok(Parsed::Ignored("rows of the portal's AuthDetails companion file".into()));
        }
        json::classify_csv(header.to_raw(row)?, ctx)
    }
    fn label(&self, item: &SignIn) -> &'static str {
        item.event_type.as_str()
    }
}

/// Audit events (directoryAudit) of every export format.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditEvents;

impl RecordKind for AuditEvents {
    type Item = crate::model::AuditEvent;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<Self::Item>, FieldError> {
        audit::parse_record(bytes, ctx, format)
    }
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        _file_name: Option<&str>,
    ) -> Result<csv::Header, String> {
        csv::Header::new_audit(names, delimiter)
    }
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: &::csv::StringRecord,
        ctx: &Context,
    ) -> Result<Parsed<Self::Item>, FieldError> {
        audit::parse_value(header.to_json(row), ctx)
    }
    fn label(&self, _item: &Self::Item) -> &'static str {
        "audit"
    }
}

/// A record that could not be read, with everything needed to find it.
#[derive(Debug, Clone)]
pub struct RecordError {
    pub file: Arc<str>,
    pub line: Option<u64>,
    pub index: Option<u64>,
    pub field: Option<String>,
    pub message: String,
    pub raw: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ": line {l}")?;
        }
        if let Some(i) = self.index {
            write!(f, " (record {i})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RecordError {}

/// Told how far reading has come; the caller decides how to show it (the
/// readers never draw anything themselves).
pub trait Progress: Send + Sync {
    /// Reading starts; `total_bytes` when every input's size is known.
    fn start(&self, total_bytes: Option<u64>);
    /// Bytes read so far, over all inputs.
    fn advance_to(&self, bytes: u64);
    fn finish(&self);
}

#[derive(Clone, Default)]
pub struct Options {
    pub format: InputFormat,
    pub date_order: DateOrder,
    /// Go on past malformed records (counted, and written to the rejects
    /// file when one is given) instead of stopping at the first.
    pub skip_invalid: bool,
    /// Told how far reading has come, when given.
    pub progress: Option<Arc<dyn Progress>>,
}

/// One batch of records from one file, in input order.
enum Batch {
    Json {
        file: Arc<str>,
        ctx: Context,
        format: InputFormat,
        chunk: framing::Chunk,
    },
    Csv {
        file: Arc<str>,
        ctx: Context,
        header: Arc<csv::Header>,
        rows: Vec<CsvRow>,
    },
    /// The rest of the file cannot be read.
    FileError(RecordError),
    Notice(String),
}

struct CsvRow {
    line: u64,
    index: u64,
    record: Result<::csv::StringRecord, String>,
}

const CSV_BATCH_ROWS: usize = 2048;

/// Reads every input and hands each sign-in to `sink`, in input order.
pub fn read_signins(
    inputs: &[Input],
    opts: &Options,
    rejects: Option<&mut (dyn Write + Send)>,
    sink: impl FnMut(SignIn) + Send,
) -> Result<ReadStats> {
    read_records(SignIns, inputs, opts, rejects, sink)
}

/// Reads every input and hands each audit event to `sink`, in input order.
pub fn read_audit(
    inputs: &[Input],
    opts: &Options,
    rejects: Option<&mut (dyn Write + Send)>,
    sink: impl FnMut(crate::model::AuditEvent) + Send,
) -> Result<ReadStats> {
    read_records(AuditEvents, inputs, opts, rejects, sink)
}

/// Reads every input as records of `kind` and hands each to `sink`, in
/// input order.
pub fn read_records<K: RecordKind>(
    kind: K,
    inputs: &[Input],
    opts: &Options,
    mut rejects: Option<&mut (dyn Write + Send)>,
    mut sink: impl FnMut(K::Item) + Send,
) -> Result<ReadStats> {
    let counter = Arc::new(AtomicU64::new(0));
    let progress = opts.progress.clone();
    if let Some(p) = &progress {
        p.start(inputs.iter().map(Input::size).sum());
    }
    let mut stats = ReadStats { files: inputs.len() as u64, ..ReadStats::default() };
    let (tx, rx) = sync_channel::<Batch>(rayon::current_num_threads() * 2 + 2);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = {
        let inputs = inputs.to_vec();
        let opts = opts.clone();
        let counter = counter.clone();
        let kind = kind.clone();
        std::thread::Builder::new()
            .name("xtenant-reader".into())
            .spawn(move || read_inputs(&kind, &inputs, &opts, &counter, &tx, recycle_rx))?
    };
    let window = rayon::current_num_threads().max(1) * 2;
    let result = consume(&kind, &rx, window, opts, &mut stats, &mut rejects, &mut sink, &recycle_tx, &|| {
        if let Some(p) = &progress {
            p.advance_to(counter.load(Ordering::Relaxed))
        }
    });
    drop(rx);
    let joined = reader.join();
    if let Some(p) = &progress {
        p.finish();
    }
    if joined.is_err() {
        bail!("internal error: the input reader stopped unexpectedly; please report this with the input that caused it");
    }
    stats.bytes_read = counter.load(Ordering::Relaxed);
    result.map(|()| stats)
}

type Results<T> = Vec<Vec<Result<Parsed<T>, RecordError>>>;

/// Parses windows of batches in parallel and hands their results on in
/// input order. Merging window N (sequential: the sink is one accumulator)
/// runs alongside the parse of window N+1, so the pool is never idle while
/// the main thread aggregates.
#[allow(clippy::too_many_arguments)]
fn consume<K: RecordKind>(
    kind: &K,
    rx: &Receiver<Batch>,
    window: usize,
    opts: &Options,
    stats: &mut ReadStats,
    rejects: &mut Option<&mut (dyn Write + Send)>,
    sink: &mut (impl FnMut(K::Item) + Send),
    recycle: &std::sync::mpsc::Sender<Vec<u8>>,
    tick: &(dyn Fn() + Sync),
) -> Result<()> {
    let mut pending: Option<(Vec<Batch>, Results<K::Item>)> = None;
    loop {
        let mut batches = Vec::with_capacity(window);
        if let Ok(b) = rx.recv() {
            batches.push(b);
            while batches.len() < window {
                match rx.try_recv() {
                    Ok(b) => batches.push(b),
                    Err(_) => break,
                }
            }
        }
        let done = batches.is_empty();
        let previous = pending.take();
        let (parsed, merged) = rayon::join(
            || batches.par_iter().map(|b| parse_batch(kind, b)).collect::<Results<K::Item>>(),
            || match previous {
                Some((b, r)) => merge(kind, b, r, opts, stats, rejects, sink, recycle),
                None => Ok(()),
            },
        );
        merged?;
        tick();
        if done {
            return Ok(());
        }
        pending = Some((batches, parsed));
    }
}

#[allow(clippy::too_many_arguments)]
fn merge<K: RecordKind>(
    kind: &K,
    batches: Vec<Batch>,
    parsed: Results<K::Item>,
    opts: &Options,
    stats: &mut ReadStats,
    rejects: &mut Option<&mut (dyn Write + Send)>,
    sink: &mut impl FnMut(K::Item),
    recycle: &std::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    for (batch, results) in batches.iter().zip(parsed) {
        if let Batch::Notice(n) = batch {
            stats.notices.push(n.clone());
        }
        for r in results {
            match r {
                Ok(Parsed::One(s)) => accept(kind, *s, stats, sink),
                Ok(Parsed::Many(v, ignored)) => {
                    v.into_iter().for_each(|s| accept(kind, s, stats, sink));
                    for reason in ignored {
                        *stats.ignored.entry(reason).or_default() += 1;
                    }
                }
                Ok(Parsed::Ignored(reason)) => *stats.ignored.entry(reason).or_default() += 1,
                Err(e) => {
                    if !opts.skip_invalid {
                        bail!(e);
                    }
                    stats.invalid_records += 1;
                    if let Some(w) = rejects.as_mut() {
                        write_reject(*w, &e)?;
                    }
                }
            }
        }
    }
    for b in batches {
        if let Batch::Json { chunk, .. } = b {
            let _ = recycle.send(chunk.data);
        }
    }
    Ok(())
}

fn accept<K: RecordKind>(kind: &K, s: K::Item, stats: &mut ReadStats, sink: &mut impl FnMut(K::Item)) {
    stats.records_read += 1;
    *stats.by_event_type.entry(kind.label(&s)).or_default() += 1;
    sink(s)
}

fn write_reject(w: &mut (dyn Write + Send), e: &RecordError) -> Result<()> {
    let v = serde_json::json!({
        "file": &*e.file, "line": e.line, "record": e.index,
        "field": e.field, "error": e.message, "raw": e.raw,
    });
    serde_json::to_writer(&mut *w, &v)?;
    w.write_all(b"\n")?;
    Ok(())
}

fn parse_batch<K: RecordKind>(kind: &K, batch: &Batch) -> Vec<Result<Parsed<K::Item>, RecordError>> {
    match batch {
        Batch::Notice(_) => vec![],
        Batch::FileError(e) => vec![Err(e.clone())],
        Batch::Json { file, ctx, format, chunk } => chunk
            .spans
            .iter()
            .map(|s| {
                let bytes = &chunk.data[s.start..s.end];
                kind.parse_json(bytes, ctx, *format).map_err(|e| RecordError {
                    file: file.clone(),
                    line: Some(s.line),
                    index: Some(s.index),
                    field: Some(e.field).filter(|f| !f.starts_with('(')),
                    message: e.message,
                    raw: String::from_utf8_lossy(bytes).into_owned(),
                })
            })
            .collect(),
        Batch::Csv { file, ctx, header, rows } => rows
            .iter()
            .map(|row| {
                let fail = |e: FieldError, raw: String| RecordError {
                    file: file.clone(),
                    line: Some(row.line),
                    index: Some(row.index),
                    field: Some(e.field).filter(|f| !f.is_empty()),
                    message: e.message,
                    raw,
                };
                let record = match &row.record {
                    Ok(r) => r,
                    Err(m) => return Err(fail(FieldError::new("", m.clone()), String::new())),
                };
                kind.parse_csv(header, record, ctx).map_err(|e| {
                    let raw = record.iter().collect::<Vec<_>>().join(&(header.delimiter as char).to_string());
                    fail(e, raw)
                })
            })
            .collect(),
    }
}

/// The reader thread: opens each input in turn and sends its batches.
fn read_inputs<K: RecordKind>(
    kind: &K,
    inputs: &[Input],
    opts: &Options,
    counter: &Arc<AtomicU64>,
    tx: &SyncSender<Batch>,
    recycled: Receiver<Vec<u8>>,
) {
    let mut recycled = Some(recycled);
    for input in inputs {
        let file: Arc<str> = input.name().into();
        let file_error = |line: Option<u64>, message: String| {
            Batch::FileError(RecordError {
                file: file.clone(),
                line,
                index: None,
                field: None,
                message,
                raw: String::new(),
            })
        };
        let opened = match source::open(input, counter.clone()) {
            Ok(o) => o,
            Err(e) => {
                let _ = tx.send(file_error(None, format!("{e:#}")));
                continue;
            }
        };
        let sent = match detect::detect(opened.reader, opts.format) {
            Err(e) => tx.send(file_error(None, e)).is_ok(),
            Ok(detect::Detected::Empty) => {
                tx.send(Batch::Notice(format!("{file}: empty file, nothing to read"))).is_ok()
            }
            Ok(detect::Detected::Json(reader)) => {
                let ctx = Context { date_order: opts.date_order, event_type: None };
                let format = if opts.format.is_json() { opts.format } else { InputFormat::Auto };
                let (framer, back) = send_json(reader, &file, ctx, format, tx, &file_error, recycled.take());
                recycled = back;
                framer
            }
            Ok(detect::Detected::Csv(reader)) => send_csv(kind, reader, input, &file, opts, tx, &file_error),
        };
        if !sent {
            return;
        }
    }
}

/// Frames one JSON file into batches; hands the recycling channel back for
/// the next file.
fn send_json(
    reader: Box<dyn std::io::BufRead + Send>,
    file: &Arc<str>,
    ctx: Context,
    format: InputFormat,
    tx: &SyncSender<Batch>,
    file_error: &dyn Fn(Option<u64>, String) -> Batch,
    recycled: Option<Receiver<Vec<u8>>>,
) -> (bool, Option<Receiver<Vec<u8>>>) {
    let mut framer = framing::JsonFramer::new(reader);
    if let Some(r) = recycled {
        framer = framer.with_recycler(r);
    }
    let sent = loop {
        match framer.next_chunk() {
            Ok(Some(chunk)) => {
                if tx.send(Batch::Json { file: file.clone(), ctx, format, chunk }).is_err() {
                    break false;
                }
            }
            Ok(None) => break true,
            Err(e) => break tx.send(file_error(Some(e.line), e.message)).is_ok(),
        }
    };
    (sent, framer.into_recycler())
}

fn send_csv<K: RecordKind>(
    kind: &K,
    reader: Box<dyn std::io::BufRead + Send>,
    input: &Input,
    file: &Arc<str>,
    opts: &Options,
    tx: &SyncSender<Batch>,
    file_error: &dyn Fn(Option<u64>, String) -> Batch,
) -> bool {
    let (delimiter, reader) = detect::csv_delimiter(reader);
    let mut rdr = ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).from_reader(reader);
    let mut names = ::csv::StringRecord::new();
    match rdr.read_record(&mut names) {
        Ok(true) => {}
        Ok(false) => return tx.send(Batch::Notice(format!("{file}: empty file, nothing to read"))).is_ok(),
        Err(e) => return tx.send(file_error(Some(1), format!("cannot read the CSV header: {e}"))).is_ok(),
    }
    let names: Vec<String> = names.iter().map(str::to_string).collect();
    let header = match kind.csv_header(names, delimiter, input.file_name().as_deref()) {
        Ok(h) => Arc::new(h),
        Err(m) => return tx.send(file_error(Some(1), m)).is_ok(),
    };
    if header.dialect == csv::Dialect::PortalAuthDetails
        && tx
            .send(Batch::Notice(format!(
                "{file}: the portal's AuthDetails companion file; its rows carry no tenants and are not read"
            )))
            .is_err()
    {
        return false;
    }
    let expected_format = match header.dialect {
        csv::Dialect::LogAnalytics | csv::Dialect::LogAnalyticsAudit => InputFormat::LogAnalyticsCsv,
        csv::Dialect::Portal | csv::Dialect::PortalAuthDetails => InputFormat::PortalCsv,
    };
    if opts.format.is_csv() && opts.format != expected_format {
        return tx
            .send(file_error(
                Some(1),
                format!("--input-format says {:?} but the header is of {:?}", opts.format, expected_format),
            ))
            .is_ok();
    }
    let ctx = Context { date_order: opts.date_order, event_type: header.event_type };
    let mut index = 0u64;
    let mut rows = Vec::with_capacity(CSV_BATCH_ROWS);
    loop {
        let mut rec = ::csv::StringRecord::new();
        let line = rdr.position().line();
        let done = match rdr.read_record(&mut rec) {
            Ok(false) => true,
            Ok(true) => {
                index += 1;
                if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim().is_empty()) {
                    index -= 1; // a blank line
                } else {
                    rows.push(CsvRow {
                        line: rec.position().map_or(line, |p| p.line()),
                        index,
                        record: Ok(rec),
                    });
                }
                false
            }
            Err(e) => {
                index += 1;
                let line = e.position().map_or(line, |p| p.line());
                let message = match e.kind() {
                    ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("the row has {len} fields where the header has {expected_len}")
                    }
                    ::csv::ErrorKind::Io(io) => {
                        return tx.send(file_error(Some(line), format!("read failed: {io}"))).is_ok()
                    }
                    _ => e.to_string(),
                };
                rows.push(CsvRow { line, index, record: Err(message) });
                false
            }
        };
        if (done && !rows.is_empty()) || rows.len() >= CSV_BATCH_ROWS {
            let batch = Batch::Csv {
                file: file.clone(),
                ctx,
                header: header.clone(),
                rows: std::mem::take(&mut rows),
            };
            if tx.send(batch).is_err() {
                return false;
            }
        }
        if done {
            return true;
        }
    }
}
