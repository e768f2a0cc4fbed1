//! The reader thread: opens each input in turn, detects JSON or CSV, and
//! sends its records in batches, in input order (JSON cut by the framer,
//! CSV rows in fixed-size batches).

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::csv_exports as csv;
use super::csv_records;
use super::kinds::{InputFormat, RecordKind};
use super::lines::{LineLimit, MAX_HEADER_BYTES};
use super::normalize::Context;
use super::parallel::{Batch, Options, RecordError, CSV_BATCH_ROWS};
use super::{detect, framing, source, Input};

/// The reader thread: opens each input in turn and sends its batches.
pub(super) fn read_inputs<K: RecordKind>(
    kind: &K,
    inputs: &[Input],
    opts: &Options,
    counter: &Arc<AtomicU64>,
    tx: &SyncSender<Batch>,
    recycled: Receiver<Vec<u8>>,
    spare_rows: Receiver<csv::Rows>,
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
            Ok(detect::Detected::Csv(reader)) => {
                send_csv(kind, reader, input, &file, opts, tx, &spare_rows, &file_error)
            }
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

#[allow(clippy::too_many_arguments)]
fn send_csv<K: RecordKind>(
    kind: &K,
    reader: Box<dyn std::io::BufRead + Send>,
    input: &Input,
    file: &Arc<str>,
    opts: &Options,
    tx: &SyncSender<Batch>,
    spare_rows: &Receiver<csv::Rows>,
    file_error: &dyn Fn(Option<u64>, String) -> Batch,
) -> bool {
    let (delimiter, reader) = detect::csv_delimiter(reader);
    let reader = LineLimit::new(reader, MAX_HEADER_BYTES);
    let mut rdr = csv_records::Reader::new(reader, delimiter);
    rdr.limit_records(MAX_HEADER_BYTES);
    let mut rec = csv_records::Record::default();
    match rdr.read_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return tx.send(Batch::Notice(format!("{file}: empty file, nothing to read"))).is_ok(),
        Err(e) => return tx.send(file_error(Some(1), format!("cannot read the CSV header: {e}"))).is_ok(),
    }
    rdr.get_mut().limit = framing::MAX_RECORD_BYTES;
    rdr.limit_records(framing::MAX_RECORD_BYTES);
    let names: Vec<String> = rec.strs().map(str::to_string).collect();
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
                format!("--input-format says {} but the header is of {expected_format}", opts.format),
            ))
            .is_ok();
    }
    let ctx = Context { date_order: opts.date_order, event_type: header.event_type };
    let mut index = 0u64;
    let mut rows = csv::Rows::default();
    let mut failure = None;
    // Each row is read straight onto the end of the batch.
    loop {
        let before = rdr.position().byte;
        let mark = rows.mark();
        let (text, spans) = rows.buffers();
        let done = match rdr.read_into(text, spans) {
            Ok(false) => true,
            Ok(true) => {
                if rows.blank_since(mark) {
                    rows.truncate(mark);
                } else {
                    index += 1;
                    rows.keep(mark, rdr.get_mut().line_at(before), index);
                }
                false
            }
            Err(csv_records::Error::Io(io)) => {
                // The rows read before the failure are still sent, then it.
                let line = rdr.get_mut().line_at(before);
                failure = Some(file_error(Some(line), format!("read failed: {io}")));
                true
            }
            Err(e) => {
                index += 1;
                let line = rdr.get_mut().line_at(e.position().map_or(before, |p| p.byte));
                let message = match e {
                    csv_records::Error::UnequalLengths { expected, len, .. } => {
                        format!("the row has {len} fields where the header has {expected}")
                    }
                    e => e.at_line(line),
                };
                rows.push_error(line, index, message);
                false
            }
        };
        // A batch ends at so many rows or so many bytes, whichever comes
        // first: Log Analytics rows are kilobytes each.
        if (done && !rows.is_empty())
            || rows.len() >= CSV_BATCH_ROWS
            || rows.text_bytes() >= framing::CHUNK_BYTES
        {
            let batch = Batch::Csv {
                file: file.clone(),
                ctx,
                header: header.clone(),
                rows: {
                    // A merged batch's rows, emptied, else room like this one's.
                    let next = match spare_rows.try_recv() {
                        Ok(mut spare) => {
                            spare.clear();
                            spare
                        }
                        Err(_) => csv::Rows::like(&rows, CSV_BATCH_ROWS),
                    };
                    std::mem::replace(&mut rows, next)
                },
            };
            if tx.send(batch).is_err() {
                return false;
            }
        }
        if done {
            return failure.is_none_or(|f| tx.send(f).is_ok());
        }
    }
}
