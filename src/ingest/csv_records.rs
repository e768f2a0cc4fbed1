//! CSV records read exactly as the `csv` crate reads them (the same fields,
//! the same errors, at the same positions), at a fraction of its cost on
//! the rows exports hold.
//!
//! Rule: a record on one line whose fields are either unquoted without a
//! quote in them, or quoted, closed on that line and followed by the
//! delimiter or the line's end (`""` standing for a quote), ended by `\n`
//! or `\r\n` with no other `\r`, and UTF-8, is split here: the line is
//! found with `memchr`, its delimiters and quotes sixteen bytes at a time,
//! and its fields are kept as spans of the line, not copied one by one.
//! Every other record (a value spanning lines, a stray quote, a lone `\r`,
//! invalid UTF-8, a last line without a line break, anything after a failed
//! read) goes through `csv_core`, the state machine the `csv` crate itself
//! drives.
//!
//! Why: `csv_core` steps through every byte in a state table; on the
//! admin center's export it was a quarter of all the CPU of a run, and the
//! reader thread it runs on bounds the whole pipeline on a small machine.
//! What it makes of a simple record is fully determined, and every admin
//! center and Log Analytics row is simple; what it makes of the rest is not
//! worth re-deriving, so it still decides those. A property test runs both
//! readers over random CSV, malformed included, through random read sizes
//! and a line limit, and compares every record, error and position.

use std::fmt;
use std::io::{self, Read};

/// One record read alone (a header): its text, and where each field is in
/// it. A simple record's text is its line as it stands, with any value that
/// held `""` written out again after it; any other record's text is its
/// fields back to back.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) text: String,
    pub(crate) spans: Vec<(usize, usize)>,
}

impl Record {
    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    pub(crate) fn strs(&self) -> impl Iterator<Item = &str> {
        self.spans.iter().map(|&(s, e)| self.text.get(s..e).unwrap_or_default())
    }
}

/// Where a record starts, counted as the `csv` crate counts: the byte where
/// the previous record's reading stopped (just past its `\n`, or past the
/// `\r` of a `\r\n`), one more than the line feeds before that byte, and the
/// records (rows in error included) read before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) byte: u64,
    pub(crate) line: u64,
    pub(crate) record: u64,
}

#[derive(Debug)]
pub(crate) enum Error {
    /// The source failed; nothing more is read from this file.
    Io(io::Error),
    /// A row with another number of fields than the first record (the header).
    UnequalLengths { pos: Position, expected: u64, len: u64 },
    /// A field is not UTF-8.
    Utf8 { pos: Position, field: usize, valid_up_to: usize },
    /// The record ran past the limit and was left out (the `csv` crate has
    /// no limit: this one is ours).
    TooLong { pos: Position, limit: usize },
}

impl Error {
    pub(crate) fn position(&self) -> Option<Position> {
        match self {
            Error::Io(_) => None,
            Error::UnequalLengths { pos, .. } | Error::Utf8 { pos, .. } | Error::TooLong { pos, .. } => {
                Some(*pos)
            }
        }
    }

    /// The error in the `csv` crate's words, but for the line it names:
    /// `line`, the caller's count, which also ends a line at a lone CR (the
    /// crate counts LFs only).
    pub(crate) fn at_line(&self, line: u64) -> String {
        match self {
            &Error::Utf8 { pos, field, valid_up_to } => {
                Error::Utf8 { pos: Position { line, ..pos }, field, valid_up_to }.to_string()
            }
            e => e.to_string(),
        }
    }
}

/// The `csv` crate's words for the same errors, so that rejected rows read
/// as they always have.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(e) => e.fmt(f),
            Error::UnequalLengths { pos, expected, len } => write!(
                f,
                "CSV error: record {} (line: {}, byte: {}): found record with {len} fields, but the previous record has {expected} fields",
                pos.record, pos.line, pos.byte
            ),
            Error::TooLong { limit, .. } => write!(
                f,
                "the record runs past {} MiB (a quoted value that never closes?) and is left out",
                limit >> 20
            ),
            Error::Utf8 { pos, field, valid_up_to } => write!(
                f,
                "CSV parse error: record {} (line {}, field: {field}, byte: {}): invalid utf-8: invalid UTF-8 in field {field} near byte index {valid_up_to}",
                pos.record, pos.line, pos.byte
            ),
        }
    }
}

/// What the `csv` crate asks of its source each time: the size of its
/// buffer. Reading in the same sizes keeps a read failure (the line limit)
/// at the same place in the file.
const READ_SIZE: usize = 8 * 1024;
/// A record longer than this spans so many lines that the source is told
/// to forget where the lines inside it start.
const LONG_RECORD: u64 = 1 << 20;
/// How much is read ahead at a time, in `READ_SIZE` reads.
const FILL_SIZE: usize = 16 * READ_SIZE;

/// What the reader reads from: bytes, and a place that may keep notes on
/// where lines start (the line numbers of errors), told when the bytes
/// inside a record's long value no longer need them.
pub(crate) trait Source: Read {
    /// Notes on lines starting after the first one at or past `from` and
    /// before `to` will not be asked for.
    fn forget_lines(&mut self, _from: u64, _to: u64) {}
}

impl Source for &[u8] {}

pub(crate) struct Reader<R> {
    src: R,
    delimiter: u8,
    buf: Vec<u8>,
    /// `buf[at..end]` is read and not yet consumed.
    at: usize,
    end: usize,
    eof: bool,
    /// A read failed: what is buffered is still read, then this is returned.
    failed: Option<io::Error>,
    /// Nothing more will be returned (end of input, or the failure returned).
    done: bool,
    first_read: bool,
    pos: Position,
    /// The field count of the first record; every later one must match.
    expected: Option<u64>,
    slow: Option<csv_core::Reader>,
    /// csv_core's output for a record that is not simple (see
    /// [`Reader::read_slow_into`] for why they are never cleared).
    slow_bytes: Vec<u8>,
    slow_ends: Vec<usize>,
    max_record: usize,
}

/// What csv_core made of a record.
enum SlowRecord {
    /// Its fields: how much of `slow_bytes` and `slow_ends` they fill.
    Fields { bytes: usize, ends: usize },
    /// It ran past `max_record` and was read on but not kept.
    TooLong,
}

/// How far the search for a record's line has come, counted from where
/// the record starts in the buffer: blank bytes skipped (line feeds among
/// them), and bytes searched for its line feed.
#[derive(Default)]
struct Scanned {
    blank: usize,
    newlines: u64,
    searched: usize,
}

enum Simple {
    /// A record was split: how many bytes it took, line feeds among them.
    Record { consumed: usize, newlines: u64 },
    /// Not one line in the buffer yet.
    NeedMore,
    /// Not a simple record: `csv_core` decides.
    Slow,
}

impl<R: Source> Reader<R> {
    pub(crate) fn new(src: R, delimiter: u8) -> Self {
        Reader {
            src,
            delimiter,
            buf: Vec::new(),
            at: 0,
            end: 0,
            eof: false,
            failed: None,
            done: false,
            first_read: true,
            pos: Position { byte: 0, line: 1, record: 0 },
            expected: None,
            slow: None,
            slow_bytes: Vec::new(),
            slow_ends: Vec::new(),
            max_record: usize::MAX,
        }
    }

    /// Records longer than this are read to their end but not kept, and
    /// are errors of their own (lines longer than some limit are the
    /// source's to refuse).
    pub(crate) fn limit_records(&mut self, bytes: usize) {
        self.max_record = bytes;
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.src
    }

    /// Where the next record starts.
    pub(crate) fn position(&self) -> Position {
        self.pos
    }

    /// Reads the next record into `rec`: `Ok(false)` at the end of input.
    pub(crate) fn read_record(&mut self, rec: &mut Record) -> Result<bool, Error> {
        rec.clear();
        self.read_into(&mut rec.text, &mut rec.spans)
    }

    /// Reads the next record onto the end of `text`, its fields' spans onto
    /// `spans` (so that a batch of rows is filled in place, one copy of each
    /// line): `Ok(false)` at the end of input; on an error nothing is added.
    /// After an error the reader goes on with the next record, as the `csv`
    /// crate does, except after a failed read, which ends it.
    pub(crate) fn read_into(
        &mut self,
        text: &mut String,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<bool, Error> {
        if self.done {
            return Ok(false);
        }
        let (text_len, spans_len) = (text.len(), spans.len());
        let rollback = |text: &mut String, spans: &mut Vec<(usize, usize)>| {
            text.truncate(text_len);
            spans.truncate(spans_len);
        };
        let start = self.pos;
        let mut scanned = Scanned::default();
        let simple = loop {
            match self.split_simple(text, spans, &mut scanned) {
                Simple::Record { consumed, newlines } => {
                    self.consume(consumed, newlines);
                    break true;
                }
                Simple::NeedMore if !self.eof && self.failed.is_none() => {
                    // Blank lines are dropped from the buffer as they are
                    // found (the record's position was taken above), so
                    // that a run of them cannot fill memory.
                    self.consume(scanned.blank, scanned.newlines);
                    scanned.searched -= scanned.blank;
                    (scanned.blank, scanned.newlines) = (0, 0);
                    self.fill();
                }
                Simple::NeedMore | Simple::Slow => {
                    rollback(text, spans);
                    break false;
                }
            }
        };
        let slow = match simple {
            true => None,
            false => match self.read_slow(start.byte)? {
                Some(SlowRecord::Fields { bytes, ends }) => Some((bytes, ends)),
                Some(SlowRecord::TooLong) => {
                    self.pos.record += 1;
                    return Err(Error::TooLong { pos: start, limit: self.max_record });
                }
                None => return Ok(false),
            },
        };
        self.pos.record += 1;
        let len = slow.map_or(spans.len() - spans_len, |(_, ends)| ends) as u64;
        let checked = match self.expected {
            None => {
                self.expected = Some(len);
                Ok(())
            }
            Some(expected) if expected != len => Err(Error::UnequalLengths { pos: start, expected, len }),
            Some(_) => Ok(()),
        };
        let checked = checked.and_then(|()| match slow {
            None => Ok(()),
            Some(used) => self
                .slow_to_record(used, text, spans)
                .map_err(|(field, valid_up_to)| Error::Utf8 { pos: start, field, valid_up_to }),
        });
        if checked.is_err() {
            rollback(text, spans);
        }
        checked.map(|()| true)
    }

    fn consume(&mut self, n: usize, newlines: u64) {
        self.at += n;
        self.pos.byte += n as u64;
        self.pos.line += newlines;
    }

    /// Reads up to `FILL_SIZE` more, keeping what is not consumed. A failed
    /// read is kept for when the buffered records run out.
    fn fill(&mut self) {
        if self.at > 0 {
            self.buf.copy_within(self.at..self.end, 0);
            self.end -= self.at;
            self.at = 0;
        }
        let target = self.end + FILL_SIZE;
        while self.end < target {
            if self.buf.len() < self.end + READ_SIZE {
                self.buf.resize(self.end + READ_SIZE.max(self.buf.len()), 0);
            }
            match self.src.read(&mut self.buf[self.end..self.end + READ_SIZE]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    if self.first_read && self.buf[self.end..self.end + n].starts_with(b"\xef\xbb\xbf") {
                        // csv_core drops a UTF-8 BOM if the first read holds it,
                        // and takes a first read of nothing else for the end.
                        self.at += 3;
                        self.pos.byte += 3;
                        self.eof = n == 3;
                    }
                    self.first_read = false;
                    self.end += n;
                    if self.eof {
                        break;
                    }
                }
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            }
        }
    }

    /// The simple record at the start of the buffer, if it is one (see the
    /// file's doc), onto `text` and `spans`. `scanned` carries what earlier
    /// calls for this record found, so that a long line or a long run of
    /// blank lines arriving a read at a time is searched once, not again
    /// from its start after every read.
    fn split_simple(
        &self,
        text: &mut String,
        spans: &mut Vec<(usize, usize)>,
        scanned: &mut Scanned,
    ) -> Simple {
        let data = &self.buf[self.at..self.end];
        // Empty lines before a record are skipped, as csv_core does.
        let (mut i, mut newlines) = (scanned.blank, scanned.newlines);
        while i < data.len() && (data[i] == b'\n' || data[i] == b'\r') {
            newlines += u64::from(data[i] == b'\n');
            i += 1;
        }
        (scanned.blank, scanned.newlines) = (i, newlines);
        let from = scanned.searched.max(i);
        // The line's end: LF, or CR LF. A lone CR (a row ended by it, as
        // Excel for Mac writes them, or one inside a quoted value) is
        // csv_core's; searching on for an LF instead read a CR-only file
        // whole and searched it again for every row.
        let Some(line_end) = memchr::memchr2(b'\n', b'\r', &data[from..]).map(|n| from + n) else {
            scanned.searched = data.len();
            return Simple::NeedMore;
        };
        // A `\r\n` record ends at its `\r`; the `\n` is skipped before the next.
        let (content_end, consumed) = if data[line_end] == b'\r' {
            match data.get(line_end + 1) {
                Some(b'\n') => (line_end, line_end + 1),
                Some(_) => return Simple::Slow,
                None => {
                    scanned.searched = line_end;
                    return Simple::NeedMore;
                }
            }
        } else {
            newlines += 1;
            (line_end, line_end + 1)
        };
        let Ok(line) = crate::model::text::utf8(&data[i..content_end]) else {
            return Simple::Slow; // csv_core finds the field, as the error names it
        };
        let base = text.len();
        text.push_str(line);
        match split_line(line, self.delimiter, base, text, spans) {
            Some(()) => Simple::Record { consumed, newlines },
            None => Simple::Slow,
        }
    }

    /// One record through csv_core into `slow_bytes` and `slow_ends`, reading
    /// more as it asks; at the end of what a failed read left, the failure,
    /// as the `csv` crate returns it.
    fn read_slow(&mut self, record_start: u64) -> Result<Option<SlowRecord>, Error> {
        let (mut bytes, mut ends) =
            (std::mem::take(&mut self.slow_bytes), std::mem::take(&mut self.slow_ends));
        let read = self.read_slow_into(record_start, &mut bytes, &mut ends);
        (self.slow_bytes, self.slow_ends) = (bytes, ends);
        read
    }

    /// csv_core's record into `bytes` and `ends`, which keep their length
    /// from record to record (grown when csv_core asks, never cleared: one
    /// long value must not make every later record pay for zeroing its
    /// room); how much of each it filled. `None` past the end.
    fn read_slow_into(
        &mut self,
        record_start: u64,
        bytes: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<Option<SlowRecord>, Error> {
        use csv_core::ReadRecordResult as R;
        let (mut out, mut nends) = (0, 0);
        let mut too_long = false;
        if bytes.is_empty() {
            bytes.resize(1024, 0);
            ends.resize(64, 0);
        }
        loop {
            if self.at == self.end {
                if let Some(e) = self.failed.take() {
                    self.done = true;
                    return Err(Error::Io(e));
                }
                if !self.eof {
                    self.fill();
                    continue;
                }
                // Past the end, an empty input tells csv_core the file ended.
            }
            let core = self.slow.get_or_insert_with(|| new_core(self.delimiter));
            let input = &self.buf[self.at..self.end];
            let (result, nin, nout, nend) = core.read_record(input, &mut bytes[out..], &mut ends[nends..]);
            let newlines = memchr::memchr_iter(b'\n', &input[..nin]).count() as u64;
            self.consume(nin, newlines);
            out += nout;
            nends += nend;
            // A value over many lines: their notes are not needed (the
            // record is told by its first line), and would grow with them.
            if self.pos.byte - record_start > LONG_RECORD {
                self.src.forget_lines(record_start, self.pos.byte);
            }
            // Past the limit (a quote that never closes takes every line
            // after it into one value) the record is read on but dropped,
            // so that memory stays bounded and the rows after it are read.
            if self.pos.byte - record_start > self.max_record as u64 {
                too_long = true;
                (out, nends) = (0, 0);
            }
            match result {
                R::InputEmpty => {}
                R::OutputFull if !too_long => bytes.resize(bytes.len() * 2, 0),
                R::OutputEndsFull if !too_long => ends.resize(ends.len() * 2, 0),
                R::OutputFull | R::OutputEndsFull => {}
                R::Record if too_long => return Ok(Some(SlowRecord::TooLong)),
                R::Record => return Ok(Some(SlowRecord::Fields { bytes: out, ends: nends })),
                R::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// csv_core's fields into `rec`, checked as the `csv` crate checks a
    /// record: all ASCII, or each field UTF-8 (else the first field that is
    /// not, and how far it is valid).
    fn slow_to_record(
        &self,
        (bytes, ends): (usize, usize),
        text: &mut String,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<(), (usize, usize)> {
        let (bytes, ends) = (&self.slow_bytes[..bytes], &self.slow_ends[..ends]);
        if !bytes.is_ascii() {
            fields_utf8(bytes, ends)?;
        }
        // Valid fields make valid text once put back to back.
        let fields = crate::model::text::utf8(bytes).map_err(|e| (0, e.valid_up_to()))?;
        let base = text.len();
        text.push_str(fields);
        let mut start = base;
        spans.extend(ends.iter().map(|&end| (std::mem::replace(&mut start, base + end), base + end)));
        Ok(())
    }
}

fn fields_utf8(bytes: &[u8], ends: &[usize]) -> Result<(), (usize, usize)> {
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        if let Err(e) = std::str::from_utf8(&bytes[start..end]) {
            return Err((i, e.valid_up_to()));
        }
        start = end;
    }
    Ok(())
}

/// Splits a simple record's line, already at `base` in `text`, into spans;
/// `None` when it is not simple. A value that held `""` is written out
/// after the line, and its span points there.
fn split_line(
    line: &str,
    delimiter: u8,
    base: usize,
    text: &mut String,
    spans: &mut Vec<(usize, usize)>,
) -> Option<()> {
    let bytes = line.as_bytes();
    let mut marks = Marks { line: bytes, delimiter, next_chunk: 0, base: 0, bits: 0 };
    let mut start = 0;
    loop {
        if bytes.get(start) != Some(&b'"') {
            match marks.next() {
                None => {
                    spans.push((base + start, base + bytes.len()));
                    return Some(());
                }
                Some(d) if bytes[d] == delimiter => {
                    spans.push((base + start, base + d));
                    start = d + 1;
                }
                Some(_) => return None, // a quote inside a value
            }
            continue;
        }
        marks.next(); // the opening quote
        let mut piece = start + 1;
        let mut written_from = None;
        let close = loop {
            let q = marks.next()?; // no closing quote on the line
            match bytes[q] {
                b'"' if bytes.get(q + 1) == Some(&b'"') => {
                    // `""`, a quote in the value: the value is written out.
                    written_from.get_or_insert(text.len());
                    text.push_str(&line[piece..=q]);
                    marks.next();
                    piece = q + 2;
                }
                b'"' => break q,
                _ => {} // a delimiter inside the quotes
            }
        };
        spans.push(match written_from {
            None => (base + start + 1, base + close),
            Some(from) => {
                text.push_str(&line[piece..close]);
                (from, text.len())
            }
        });
        match marks.next() {
            None if close + 1 == bytes.len() => return Some(()),
            Some(d) if d == close + 1 && bytes[d] == delimiter => start = d + 1,
            _ => return None, // text after the closing quote
        }
    }
}

/// Where a line's delimiters and quotes are, in order,
/// found sixteen bytes at a time: one bit per byte, so that the many short
/// fields of an export row cost a bit each rather than a search each.
struct Marks<'a> {
    line: &'a [u8],
    delimiter: u8,
    next_chunk: usize,
    /// The chunk `bits` is for, and its marks not yet handed out.
    base: usize,
    bits: u32,
}

impl Iterator for Marks<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            let rest = self.line.get(self.next_chunk..).filter(|r| !r.is_empty())?;
            let chunk: [u8; 16] = match rest.get(..16) {
                Some(c) => c.try_into().unwrap_or_default(),
                None => {
                    // A NUL is none of the marked bytes (the delimiter is printable).
                    let mut c = [0; 16];
                    c[..rest.len()].copy_from_slice(rest);
                    c
                }
            };
            self.base = self.next_chunk;
            self.bits = marks16(&chunk, self.delimiter);
            self.next_chunk += 16;
        }
        let at = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.base + at)
    }
}

/// One bit per byte of `chunk` that is the delimiter or a quote. (A line
/// handed to [`split_line`] holds no `\r`: [`Reader::split_simple`] ends it
/// at the first.)
#[cfg(target_arch = "x86_64")]
fn marks16(chunk: &[u8; 16], delimiter: u8) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: every x86_64 processor has SSE2, and the load reads exactly
    // the sixteen bytes of `chunk` (unaligned loads are allowed).
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let delimiters = _mm_cmpeq_epi8(v, _mm_set1_epi8(delimiter as i8));
        let quotes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        _mm_movemask_epi8(_mm_or_si128(delimiters, quotes)) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn marks16(chunk: &[u8; 16], delimiter: u8) -> u32 {
    marks16_portable(chunk, delimiter)
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn marks16_portable(chunk: &[u8; 16], delimiter: u8) -> u32 {
    chunk.iter().enumerate().fold(0, |m, (i, &b)| m | (u32::from(b == delimiter || b == b'"') << i))
}

/// A csv_core reader set as the `csv` crate sets its own, past the start
/// of the input: it is only asked for records after the first, so it must
/// not take a record's leading bytes for a byte order mark.
fn new_core(delimiter: u8) -> csv_core::Reader {
    let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let _ = core.read_record(b"\n", &mut [0; 1], &mut [0; 1]);
    core
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A source that hands out at most so many bytes a read (cycling through
    /// `sizes`) and fails every read once `fail_after` bytes are out, as the
    /// line limit does.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        reads: usize,
        fail_after: Option<usize>,
        out: usize,
    }

    impl Source for Chunked<'_> {}

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_after.is_some_and(|limit| self.out > limit) {
                return Err(io::Error::other("a line is too long"));
            }
            let size = self.sizes[self.reads % self.sizes.len()];
            self.reads += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.out += n;
            Ok(n)
        }
    }

    type Step = (Position, Result<Option<Vec<Vec<u8>>>, String>);

    /// The steps of a reader until the end or a failed read: `read` gives
    /// the position before a record, and the record, the end, or an error
    /// (and whether it is a failed read).
    fn steps(
        mut read: impl FnMut() -> (Position, Result<Option<Vec<Vec<u8>>>, (String, bool)>),
    ) -> Vec<Step> {
        let mut steps = vec![];
        loop {
            let (pos, result) = read();
            let last = matches!(result, Ok(None) | Err((_, true)));
            steps.push((pos, result.map_err(|(message, _)| message)));
            if last {
                return steps;
            }
        }
    }

    fn with_csv_crate(src: Chunked, delimiter: u8) -> Vec<Step> {
        let mut rdr = ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).from_reader(src);
        let mut rec = ::csv::StringRecord::new();
        steps(|| {
            let p = rdr.position();
            let pos = Position { byte: p.byte(), line: p.line(), record: p.record() };
            let result = match rdr.read_record(&mut rec) {
                Ok(more) => Ok(more.then(|| rec.iter().map(|f| f.as_bytes().to_vec()).collect())),
                Err(e) => Err((e.to_string(), matches!(e.kind(), ::csv::ErrorKind::Io(_)))),
            };
            (pos, result)
        })
    }

    fn with_ours(src: Chunked, delimiter: u8) -> Vec<Step> {
        let mut rdr = Reader::new(src, delimiter);
        let mut rec = Record::default();
        steps(|| {
            let pos = rdr.position();
            let result = match rdr.read_record(&mut rec) {
                Ok(more) => Ok(more.then(|| rec.strs().map(|f| f.as_bytes().to_vec()).collect())),
                Err(e) => Err((e.to_string(), matches!(e, Error::Io(_)))),
            };
            (pos, result)
        })
    }

    fn both(
        data: &[u8],
        sizes: Vec<usize>,
        fail_after: Option<usize>,
        delimiter: u8,
    ) -> (Vec<Step>, Vec<Step>) {
        let src = || Chunked { data, sizes: sizes.clone(), reads: 0, fail_after, out: 0 };
        (with_csv_crate(src(), delimiter), with_ours(src(), delimiter))
    }

    /// Bytes CSV is made of, and the ones that go wrong: quotes, lone
    /// carriage returns, a byte order mark, broken UTF-8.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => Just(&b"a"[..]),
            2 => Just(&b"bc"[..]),
            3 => Just(&b","[..]),
            1 => Just(&b";"[..]),
            2 => Just(&b"\""[..]),
            2 => Just(&b"\n"[..]),
            1 => Just(&b"\r\n"[..]),
            1 => Just(&b"\r"[..]),
            1 => Just(&b" "[..]),
            1 => Just("\u{e9}".as_bytes()),
            1 => Just(&b"\xc3"[..]),
            1 => Just(&b"\xff"[..]),
            1 => Just(&b"\xef\xbb\xbf"[..]),
        ];
        prop::collection::vec(piece, 0..120).prop_map(|p| p.concat())
    }

    /// Rows as exports write them: quoted where needed, `""` inside.
    fn well_formed() -> impl Strategy<Value = Vec<u8>> {
        let field = prop_oneof![
            "[a-z0-9 .@-]{0,12}".prop_map(String::into_bytes),
            "[a-z ,\"\u{e9}]{0,12}".prop_map(|v| format!("\"{}\"", v.replace('"', "\"\"")).into_bytes()),
        ];
        let row = prop::collection::vec(field, 3..=3).prop_map(|f| f.join(&b","[..]));
        (prop::collection::vec(row, 0..20), any::<bool>()).prop_map(|(rows, crlf)| {
            let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            rows.iter().flat_map(|r| r.iter().chain(end)).copied().collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn reads_any_bytes_as_the_csv_crate_does(
            data in csv_bytes(),
            sizes in prop::collection::vec(1usize..40, 1..5),
            fail_after in prop::option::of(0usize..200),
            semicolon in any::<bool>(),
        ) {
            let (theirs, ours) = both(&data, sizes, fail_after, if semicolon { b';' } else { b',' });
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn reads_export_shaped_rows_as_the_csv_crate_does(
            data in well_formed(),
            sizes in prop::collection::vec(1usize..9000, 1..4),
        ) {
            let (theirs, ours) = both(&data, sizes, None, b',');
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn export_rows_take_the_fast_path() {
        let data = b"a,b,c\r\n\"x, \"\"y\"\"\",2,\"\"\r\nplain,\"q\",\r\n";
        let mut rdr = Reader::new(&data[..], b',');
        let mut rec = Record::default();
        assert!(rdr.read_record(&mut rec).unwrap());
        for want in [["x, \"y\"", "2", ""], ["plain", "q", ""]] {
            assert!(rdr.read_record(&mut rec).unwrap());
            assert_eq!(rec.strs().collect::<Vec<_>>(), want);
        }
        assert!(rdr.slow.is_none(), "csv_core was not needed");
        assert!(!rdr.read_record(&mut rec).unwrap());
    }

    #[test]
    fn a_long_run_of_blank_lines_is_not_kept_in_memory() {
        let mut data = b"a,b\n".to_vec();
        data.extend(std::iter::repeat_n(b'\n', 8 << 20));
        data.extend(b"1,2\n");
        let mut rdr = Reader::new(&data[..], b',');
        let mut rec = Record::default();
        assert!(rdr.read_record(&mut rec).unwrap());
        assert!(rdr.read_record(&mut rec).unwrap());
        assert_eq!(rec.strs().collect::<Vec<_>>(), ["1", "2"]);
        assert!(rdr.buf.len() < 1 << 20, "the buffer grew to {} bytes", rdr.buf.len());
        // The record's position is still where the csv crate puts it.
        let mut theirs = ::csv::ReaderBuilder::new().has_headers(false).from_reader(&data[..]);
        let mut r = ::csv::StringRecord::new();
        theirs.read_record(&mut r).unwrap();
        theirs.read_record(&mut r).unwrap();
        assert_eq!(rdr.position().byte, theirs.position().byte());
        assert_eq!(rdr.position().line, theirs.position().line());
    }

    proptest! {
        #[test]
        fn marks_are_found_as_a_byte_by_byte_look_finds_them(
            chunk in prop::array::uniform16(prop_oneof![Just(b','), Just(b'"'), Just(b'\r'), Just(b';'), any::<u8>()]),
            semicolon in any::<bool>(),
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            prop_assert_eq!(marks16(&chunk, delimiter), marks16_portable(&chunk, delimiter));
        }
    }
}
