//! The ordered parallel pipeline: a reader thread ([`super::split`]) cuts
//! inputs into batches, batches are parsed in parallel, and results are
//! handed to the caller strictly in input order (deterministic output; the
//! first error is the first in the input). Memory is bounded by the number
//! of batches in flight, whatever the input size.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use anyhow::{bail, Result};

use super::csv_exports as csv;
use super::kinds::{AuditEvents, InputFormat, Parsed, RecordKind, SignIns};
use super::normalize::{Context, FieldError};
use super::split::read_inputs;
use super::{framing, DateOrder, Input};
use crate::model::text::{clip, QUOTED_BYTES};
use crate::model::{ReadStats, SignIn};

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
            write!(f, ": field `{}`", clip(field, QUOTED_BYTES))?;
        }
        // Messages can quote the value they refuse, which can be huge.
        write!(f, ": {}", clip(&self.message, 2 * QUOTED_BYTES))
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
pub(super) enum Batch {
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
        rows: csv::Rows,
    },
    /// The rest of the file cannot be read.
    FileError(RecordError),
    Notice(String),
}

pub(super) const CSV_BATCH_ROWS: usize = 2048;

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
    let (spare_rows_tx, spare_rows_rx) = std::sync::mpsc::channel::<csv::Rows>();
    let reader = {
        let inputs = inputs.to_vec();
        let opts = opts.clone();
        let counter = counter.clone();
        let kind = kind.clone();
        std::thread::Builder::new()
            .name("xtenant-reader".into())
            .spawn(move || read_inputs(&kind, &inputs, &opts, &counter, &tx, recycle_rx, spare_rows_rx))?
    };
    // Four batches a thread parsed or waiting to be merged, besides those
    // queued by the reader: the bound the windows this replaced had (a
    // window of two a thread parsed, the one before waiting to be merged).
    let in_flight = rayon::current_num_threads().max(1) * 4;
    let spares = Spares { bytes: recycle_tx, rows: spare_rows_tx };
    let result = consume(&kind, &rx, in_flight, opts, &mut stats, &mut rejects, &mut sink, &spares, &|| {
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

type Results<T> = Vec<Result<Parsed<T>, RecordError>>;

/// Where a merged batch's buffers go back to the reader, which reads the
/// next batches into them. Why: a buffer made on the reader thread and
/// freed on another is memory the allocator gives back to the system and
/// faults in again for the next (a CSV batch grew from empty, too): with
/// mimalloc returning freed memory after 50 ms (`src/main.rs`), a portal
/// CSV took a fifth longer until its batches came back.
struct Spares {
    /// A JSON chunk's bytes ([`framing::JsonFramer::with_recycler`]).
    bytes: std::sync::mpsc::Sender<Vec<u8>>,
    /// A CSV batch's rows.
    rows: std::sync::mpsc::Sender<csv::Rows>,
}

/// Parses batches in parallel as they come and hands their results on in
/// input order. Each batch is its own task on the pool, and the calling
/// thread merges finished batches in order (sequential: the sink is one
/// accumulator) while later ones are parsed. No step waits for a whole
/// group of batches, so a slow batch holds back only the merge, never the
/// parse of the next ones (the windows of batches this replaced, parsed
/// together and merged together, idled a core at each window's end: 10-15%
/// of the wall time on NDJSON and CSV). At most `in_flight` batches are
/// parsed or waiting to be merged at once, which bounds memory.
#[allow(clippy::too_many_arguments)]
fn consume<K: RecordKind>(
    kind: &K,
    rx: &Receiver<Batch>,
    in_flight: usize,
    opts: &Options,
    stats: &mut ReadStats,
    rejects: &mut Option<&mut (dyn Write + Send)>,
    sink: &mut (impl FnMut(K::Item) + Send),
    spares: &Spares,
    tick: &(dyn Fn() + Sync),
) -> Result<()> {
    let (done_tx, done_rx) =
        std::sync::mpsc::channel::<(u64, Batch, std::thread::Result<Results<K::Item>>)>();
    rayon::in_place_scope(|scope| {
        let (mut sent, mut merged) = (0u64, 0u64);
        let mut input_done = false;
        let mut finished = std::collections::BTreeMap::new();
        loop {
            while !input_done && sent - merged < in_flight as u64 {
                // Wait for input only when nothing is being parsed.
                let batch = if sent == merged {
                    rx.recv().ok()
                } else {
                    match rx.try_recv() {
                        Ok(b) => Some(b),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
                    }
                };
                let Some(batch) = batch else {
                    input_done = true;
                    break;
                };
                let (done_tx, seq) = (done_tx.clone(), sent);
                scope.spawn(move |_| {
                    // A panic is handed over too: the merging thread waits for
                    // this batch and would otherwise wait for ever.
                    let parse = std::panic::AssertUnwindSafe(|| parse_batch(kind, &batch));
                    let results = std::panic::catch_unwind(parse);
                    let _ = done_tx.send((seq, batch, results));
                });
                sent += 1;
            }
            if sent == merged {
                return Ok(());
            }
            let Ok((seq, batch, results)) = done_rx.recv() else {
                bail!("internal error: a batch was lost while parsing; please report this");
            };
            let results = results.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            finished.insert(seq, (batch, results));
            while let Some((batch, results)) = finished.remove(&merged) {
                merge(kind, batch, results, opts, stats, rejects, sink, spares)?;
                merged += 1;
                tick();
            }
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn merge<K: RecordKind>(
    kind: &K,
    batch: Batch,
    results: Results<K::Item>,
    opts: &Options,
    stats: &mut ReadStats,
    rejects: &mut Option<&mut (dyn Write + Send)>,
    sink: &mut impl FnMut(K::Item),
    spares: &Spares,
) -> Result<()> {
    match &batch {
        Batch::Notice(n) => stats.notices.push(n.clone()),
        // A file that could not be read to its end is told even when skipped.
        Batch::FileError(e) if opts.skip_invalid => stats.notices.push(e.to_string()),
        _ => {}
    }
    for r in results {
        match r {
            Ok(Parsed::One(s)) => accept(kind, s, stats, sink),
            Ok(Parsed::Many(v, ignored, bad)) => {
                // Bad rows were turned into errors of their own by parse_batch.
                debug_assert!(bad.is_empty());
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
    // The reader may have finished: a buffer it will not take is dropped.
    match batch {
        Batch::Json { chunk, .. } => {
            let _ = spares.bytes.send(chunk.data);
        }
        Batch::Csv { rows, .. } => {
            let _ = spares.rows.send(rows);
        }
        Batch::FileError(_) | Batch::Notice(_) => {}
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
        "field": e.field, "error": clip(&e.message, 2 * QUOTED_BYTES), "raw": e.raw,
    });
    serde_json::to_writer(&mut *w, &v)?;
    w.write_all(b"\n")?;
    Ok(())
}

fn parse_batch<K: RecordKind>(kind: &K, batch: &Batch) -> Vec<Result<Parsed<K::Item>, RecordError>> {
    match batch {
        Batch::Notice(_) => vec![],
        Batch::FileError(e) => vec![Err(e.clone())],
        Batch::Json { file, ctx, format, chunk } => {
            // A record a span, mostly: the vector is sized for them up front
            // (grown from empty it moved every parsed sign-in, 320 bytes,
            // once more on average).
            let mut records = Vec::with_capacity(chunk.spans.len());
            records.extend(chunk.spans.iter().flat_map(|s| {
                let parsed = parse_span(kind, file, ctx, *format, chunk, s);
                // A many-row document: its bad rows are rejects of their own,
                // after the rows that were read.
                let (first, bad) = match parsed {
                    Ok(Parsed::Many(v, ignored, bad)) => (Ok(Parsed::Many(v, ignored, vec![])), bad),
                    other => (other, vec![]),
                };
                std::iter::once(first).chain(bad.into_iter().map(|b| {
                    Err(RecordError {
                        file: file.clone(),
                        line: Some(s.line),
                        index: Some(s.index),
                        field: Some(b.error.field).filter(|f| !f.is_empty()),
                        message: b.error.message,
                        raw: b.raw,
                    })
                }))
            }));
            records
        }
        Batch::Csv { file, ctx, header, rows } => rows
            .iter()
            .map(|(at, record)| {
                let fail = |e: FieldError, raw: String| RecordError {
                    file: file.clone(),
                    line: Some(at.line),
                    index: Some(at.index),
                    field: Some(e.field).filter(|f| !f.is_empty()),
                    message: e.message,
                    raw,
                };
                let record = match record {
                    Ok(r) => r,
                    Err(m) => return Err(fail(FieldError::new("", m), String::new())),
                };
                kind.parse_csv(header, record, ctx).map_err(|e| {
                    let raw = record.iter().collect::<Vec<_>>().join(&(header.delimiter as char).to_string());
                    fail(e, raw)
                })
            })
            .collect(),
    }
}

/// One framed span: a broken one is a reject as it stands, the rest are parsed.
fn parse_span<K: RecordKind>(
    kind: &K,
    file: &Arc<str>,
    ctx: &Context,
    format: InputFormat,
    chunk: &framing::Chunk,
    s: &framing::Span,
) -> Result<Parsed<K::Item>, RecordError> {
    let bytes = &chunk.data[s.start..s.end];
    if let Some(fault) = s.fault {
        return Err(RecordError {
            file: file.clone(),
            line: Some(s.line),
            index: Some(s.index),
            field: None,
            message: fault.message(),
            raw: String::from_utf8_lossy(&framing::kept_text(bytes)).into_owned(),
        });
    }
    kind.parse_json(bytes, ctx, format).map_err(|e| RecordError {
        file: file.clone(),
        line: Some(s.line),
        index: Some(s.index),
        field: Some(e.field).filter(|f| !f.starts_with('(')),
        message: e.message,
        raw: String::from_utf8_lossy(bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind whose parser panics on one record: a bug, not an input.
    #[derive(Clone)]
    struct PanicsOnBoom;

    impl RecordKind for PanicsOnBoom {
        type Item = ();
        fn parse_json(&self, bytes: &[u8], _: &Context, _: InputFormat) -> Result<Parsed<()>, FieldError> {
            assert!(!bytes.windows(4).any(|w| w == b"boom"), "a parser bug");
            Ok(Parsed::One(()))
        }
        fn csv_header(&self, _: Vec<String>, _: u8, _: Option<&str>) -> Result<csv::Header, String> {
            Err("not read here".into())
        }
        fn parse_csv(&self, _: &csv::Header, _: csv::Row<'_>, _: &Context) -> Result<Parsed<()>, FieldError> {
            Err(FieldError::new("", "not read here"))
        }
        fn label(&self, _: &()) -> &'static str {
            "record"
        }
    }

    #[test]
    fn a_panic_while_parsing_is_raised_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.ndjson");
        let mut lines: Vec<String> = (0..50_000).map(|i| format!("{{\"n\":{i}}}")).collect();
        lines[30_000] = "{\"n\":\"boom\"}".into();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let read = std::panic::catch_unwind(|| {
            read_records(PanicsOnBoom, &[Input::File(path.clone())], &Options::default(), None, |()| {})
        });
        assert!(read.is_err(), "the panic reaches the caller");
    }
}
