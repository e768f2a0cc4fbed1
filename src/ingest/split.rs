//! The reader thread: opens each input in turn, detects JSON or CSV, and
//! sends its records in batches, in input order (JSON cut by the framer,
//! CSV rows in fixed-size batches).

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::csv_exports as csv;
use super::csv_records;
use super::kinds::{InputFormat, RecordKind};
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

/// No header of an export is near this long; past it the file is not CSV.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// What the CSV reader reads through: it fails a read once a line runs
/// past `limit` bytes, so that a file with no line breaks (or one quote
/// that never closes) cannot grow one CSV record without bound; and it
/// keeps where lines start, because record positions (the csv crate's,
/// which [`csv_records`] keeps) point at the previous record's line break,
/// which is the wrong line once a record follows a blank line.
struct LineLimit<R> {
    inner: R,
    limit: usize,
    /// Bytes read so far, the line number at that point, and where that
    /// line starts.
    offset: u64,
    line: u64,
    line_start: u64,
    at_line_start: bool,
    /// The last byte read was a CR: an LF first in the next read is its.
    after_cr: bool,
    /// (byte offset, line number) of each non-blank line read ahead of the
    /// parser; dropped as records pass them.
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R> LineLimit<R> {
    fn new(inner: R, limit: usize) -> Self {
        LineLimit {
            inner,
            limit,
            offset: 0,
            line: 1,
            line_start: 0,
            at_line_start: true,
            after_cr: false,
            starts: Default::default(),
        }
    }

    /// The line a record starts on, from the byte position the csv crate
    /// gives for it (at or before the record's first byte). Asked in
    /// increasing order.
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.starts.front().is_some_and(|(at, _)| *at < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |(_, line)| *line)
    }

    /// Counts the lines of the next bytes read. A line ends at LF, CR LF or
    /// a lone CR, as CSV rows do (Excel for Mac writes CR alone): counted at
    /// LF only, a CR-only file was one line, refused as a header past 1 MiB.
    fn note_lines(&mut self, data: &[u8]) {
        let mut i = 0;
        if std::mem::take(&mut self.after_cr) && data.first() == Some(&b'\n') {
            // The LF of a CR LF split between two reads.
            i = 1;
            self.line_start = self.offset + 1;
        }
        while i < data.len() {
            if self.at_line_start {
                if matches!(data[i], b'\r' | b'\n') {
                    self.end_line(data, &mut i);
                    continue;
                }
                self.starts.push_back((self.offset + i as u64, self.line));
                self.at_line_start = false;
            }
            match memchr::memchr2(b'\n', b'\r', &data[i..]) {
                Some(k) => {
                    i += k;
                    self.end_line(data, &mut i);
                }
                None => break,
            }
        }
        self.offset += data.len() as u64;
    }

    /// Passes the line break at `data[*i]` (CR, LF, or CR LF).
    fn end_line(&mut self, data: &[u8], i: &mut usize) {
        let cr = data[*i] == b'\r';
        *i += 1;
        if cr {
            match data.get(*i) {
                Some(b'\n') => *i += 1,
                Some(_) => {}
                None => self.after_cr = true,
            }
        }
        self.line += 1;
        self.line_start = self.offset + *i as u64;
        self.at_line_start = true;
    }
}

impl<R: std::io::Read> csv_records::Source for LineLimit<R> {
    fn forget_lines(&mut self, from: u64, to: u64) {
        let first = self.starts.partition_point(|(at, _)| *at < from);
        let past = self.starts.partition_point(|(at, _)| *at < to);
        if first + 1 < past {
            self.starts.drain(first + 1..past);
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.note_lines(&buf[..n]);
        if self.offset - self.line_start > self.limit as u64 {
            let what = if self.limit == MAX_HEADER_BYTES { "the header line is" } else { "a line is" };
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{what} longer than {} MiB: not a CSV export (or a quote that never closes)",
                    self.limit >> 20
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's first field and the line it starts on, and the most
    /// line notes kept at once.
    fn first_fields_and_lines(src: impl std::io::Read) -> (Vec<(String, u64)>, usize) {
        let mut rdr = csv_records::Reader::new(LineLimit::new(src, 1 << 20), b',');
        let mut rec = csv_records::Record::default();
        let (mut lines, mut most_notes) = (vec![], 0);
        loop {
            let byte = rdr.position().byte;
            if !rdr.read_record(&mut rec).unwrap() {
                return (lines, most_notes);
            }
            let first = rec.strs().next().unwrap_or_default().chars().take(3).collect();
            lines.push((first, rdr.get_mut().line_at(byte)));
            most_notes = most_notes.max(rdr.get_mut().starts.len());
        }
    }

    #[test]
    fn csv_records_are_told_by_the_line_they_start_on() {
        let data = "a,b\r\n1,\"x\r\ny\"\r\n\r\n3,4\r\n5,6";
        let src = std::io::Read::chain(&data.as_bytes()[..7], &data.as_bytes()[7..]);
        let want = [("a", 1), ("1", 2), ("3", 5), ("5", 6)];
        assert_eq!(first_fields_and_lines(src).0, want.map(|(f, l)| (f.to_string(), l)));
    }

    /// Excel for Mac's "CSV (Macintosh)" ends lines with CR alone: its
    /// lines are counted (a file of them was one line, refused past 1 MiB),
    /// and so are a CR LF split between two reads and a CR CR LF.
    #[test]
    fn lines_ended_by_cr_alone_are_lines() {
        let data = "a,b\r1,2\r\r3,\"x\ry\"\r5,6\r\n7,8\r\r\n9,0";
        for cut in 0..data.len() {
            let src = std::io::Read::chain(&data.as_bytes()[..cut], &data.as_bytes()[cut..]);
            let want = [("a", 1), ("1", 2), ("3", 4), ("5", 6), ("7", 7), ("9", 9)];
            assert_eq!(first_fields_and_lines(src).0, want.map(|(f, l)| (f.to_string(), l)), "cut at {cut}");
        }
        let big: Vec<u8> = std::iter::repeat_n(&b"1,2\r"[..], 1 << 20).flatten().copied().collect();
        let (lines, _) = first_fields_and_lines(&big[..]);
        assert_eq!(lines.last(), Some(&("1".to_string(), 1 << 20)));
    }

    #[test]
    fn the_lines_inside_a_long_value_are_not_kept_and_lines_stay_right() {
        let lines_in_value = 2 << 20;
        let mut data = b"a,b\n\"".to_vec();
        data.extend(std::iter::repeat_n(&b"x\n"[..], lines_in_value).flatten());
        data.extend(b"\",2\n3,4\n");
        let (lines, most_notes) = first_fields_and_lines(&data[..]);
        let want = [("a", 1), ("x\nx", 2), ("3", 3 + lines_in_value as u64)];
        assert_eq!(lines, want.map(|(f, l)| (f.to_string(), l)));
        assert!(most_notes < 1 << 16, "{most_notes} line notes kept");
    }
}
