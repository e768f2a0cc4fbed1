//! Splits a JSON byte stream into records without parsing them.
//!
//! Accepts every container the exports use, in one pass with bounded memory:
//! - a Graph response page `{"@odata.context": ..., "value": [ records ], "@odata.nextLink": ...}`,
//! - a diagnostic-settings blob `{"records": [ records ]}`,
//! - a bare array `[ records ]` (saved Graph data, portal JSON download),
//! - one record per line (NDJSON) or any run of concatenated top-level
//!   values (several pages in one file), pretty-printed or not.
//!
//! A top-level object is a *wrapper* when it has a `value` or `records` key
//! holding an array; otherwise it is a record itself. Records are handed on
//! as byte spans in chunks of about [`CHUNK_BYTES`], so that the expensive
//! parse can run in parallel. Only the few bytes of the container structure
//! are looked at one by one; the insides of records are skipped with memchr.
//!
//! Broken input costs the records it breaks, never the ones around them. A
//! record whose structure cannot be followed (a line break inside a string,
//! a bracket closed by the wrong kind, garbage between records, a file cut
//! short, a record past [`MAX_RECORD_BYTES`]) becomes a *broken span* that
//! carries the reason and its raw text, and framing picks up at the next
//! record boundary:
//! - NDJSON: the next line (every line is parsed on its own anyway);
//! - an array (or a page whose array an edit closed early): the next `{`
//!   after a `,` that opens an object with the same first two keys as the
//!   file's records (nested objects have other keys,
//!   so a resynchronised record is never cut out of the middle of another);
//! - anything else: the next line that starts with `{` or `[`.
//!
//! Only a failed read (a corrupt or truncated gzip stream, an I/O error)
//! ends a file early, and then after the records read before it.

use std::io::Read;

/// Target size of one chunk of records.
pub const CHUNK_BYTES: usize = 1 << 20;
const READ_BYTES: usize = 1 << 20;
/// What a read asks for past a chunk's size: the bytes read past the last
/// record a chunk takes are copied into the next chunk's buffer, so reads
/// stop about here rather than up to [`READ_BYTES`] past it (which copied
/// half a chunk, on average, for every chunk).
const READ_PAST_CHUNK: usize = 64 << 10;
/// No export writes a record near this size; past it a record is broken,
/// so that memory stays bounded whatever the input.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Of a longer broken region, the raw text kept for the rejects file.
const KEEP_BROKEN_BYTES: usize = 64 << 10;
/// Marks where the middle of a long broken region was dropped.
const LEFT_OUT: &[u8] = b" ... (broken bytes left out) ... ";
/// Of a broken region cut short, the last bytes the rejects file keeps.
const KEEP_BROKEN_TAIL: usize = 64;

/// JSON nested deeper than this is broken (serde_json refuses past 128).
const MAX_DEPTH: u32 = 128;
/// How far past a candidate `{` its first two keys are looked for.
const SIGNATURE_LOOKAHEAD: usize = 64 << 10;

/// The text of a broken span as the rejects file keeps it: whole, or, for
/// a region whose middle was dropped to bound memory, its first
/// [`KEEP_BROKEN_BYTES`], the mark and its last [`KEEP_BROKEN_TAIL`] bytes.
/// How much of the tail memory still held depended on the sizes the input
/// was read in (a pipe hands out what it has); this keeps the same bytes
/// however it was read.
pub fn kept_text(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let head = KEEP_BROKEN_BYTES + LEFT_OUT.len();
    if bytes.len() > head + KEEP_BROKEN_TAIL && bytes[KEEP_BROKEN_BYTES..].starts_with(LEFT_OUT) {
        let mut kept = bytes[..head].to_vec();
        kept.extend_from_slice(&bytes[bytes.len() - KEEP_BROKEN_TAIL..]);
        return std::borrow::Cow::Owned(kept);
    }
    std::borrow::Cow::Borrowed(bytes)
}

/// One record: `data[start..end]` of its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// 1-based index of the record in its file.
    pub index: u64,
    /// Set when the bytes are known not to be a whole record.
    pub fault: Option<Fault>,
}

/// Why a span is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    what: &'static str,
    found: Option<u8>,
}

impl Fault {
    const fn new(what: &'static str) -> Self {
        Fault { what, found: None }
    }

    const fn found(what: &'static str, found: u8) -> Self {
        Fault { what, found: Some(found) }
    }

    pub fn message(&self) -> String {
        match self.found {
            Some(c) => format!("{}, found {}", self.what, show(c)),
            None => self.what.to_string(),
        }
    }
}

const TRUNCATED: Fault = Fault::new("the input ends inside this record (truncated file?)");
const TRUNCATED_PAGE: Fault =
    Fault::new("the input ends inside the page or array around the records (truncated file?)");
const LINE_BREAK_IN_STRING: Fault =
    Fault::new("a line break inside a string: the record is broken or cut short");
const TOO_DEEP: Fault = Fault::new("nested more than 128 levels deep");
const TOO_LARGE: Fault = Fault::new("larger than 16 MiB: no export writes records this large");

#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub spans: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    /// `value` or `records`: an array of records if it is an array.
    Records,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct TopObject {
    start: usize,
    line: u64,
    /// Set once a `value`/`records` array has been seen.
    wrapper: bool,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between top-level values.
    Top,
    /// In a top-level object: before a key or `}` (`first` = right after `{`).
    ObjKey {
        obj: TopObject,
        first: bool,
    },
    ObjColon {
        obj: TopObject,
        key: Key,
    },
    ObjValue {
        obj: TopObject,
        key: Key,
    },
    /// After a value in a top-level object: `,` or `}`.
    ObjNext {
        obj: TopObject,
    },
    /// In an array of records (`obj` = the wrapper around it, if any).
    List {
        obj: Option<TopObject>,
        first: bool,
    },
    ListNext {
        obj: Option<TopObject>,
    },
    /// Scanning one value to its end.
    Scan {
        scan: ValueScan,
        then: Then,
    },
    /// Looking for where reading can go on after broken input that began
    /// at `start` (line `line`).
    Resync {
        start: usize,
        line: u64,
        fault: Fault,
        until: Until,
    },
}

impl State {
    /// The top-level object reading is in, when it is not in a list.
    fn top_object(&self) -> Option<TopObject> {
        match *self {
            State::ObjKey { obj, .. }
            | State::ObjColon { obj, .. }
            | State::ObjValue { obj, .. }
            | State::ObjNext { obj }
            | State::Scan { then: Then::Skip { obj } | Then::Key { obj, .. }, .. } => Some(obj),
            _ => None,
        }
    }

    /// The top-level object when it is a page (a wrapper whose record
    /// list has been seen) and reading is in it, after its list.
    fn page(&self) -> Option<TopObject> {
        self.top_object().filter(|obj| obj.wrapper)
    }

    /// The top-level object being read, when it is a record (not a page
    /// wrapper) and still open.
    fn open_record(&self) -> Option<TopObject> {
        self.top_object().filter(|obj| !obj.wrapper)
    }
}

#[derive(Debug, Clone, Copy)]
enum Then {
    /// The value is a record inside a list.
    Record { obj: Option<TopObject>, start: usize, line: u64 },
    /// A value inside a top-level object, skipped.
    Skip { obj: TopObject },
    /// A key string of a top-level object.
    Key { obj: TopObject, start: usize },
}

/// Where reading goes on after broken input.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// The next record of the array (`obj` = its wrapper).
    Record { obj: Option<TopObject> },
    /// The next line that starts with `{` or `[`: a new top-level value.
    TopValue,
    /// The next line (NDJSON).
    NextLine,
}

/// What the grammar allows next inside a value being scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (after `:` or `,` in an array, or the first byte).
    Value,
    /// A value or `]` (right after `[`).
    ValueOrEnd,
    /// A key or `}` (right after `{`).
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the closing bracket, after a value.
    NextOrEnd,
    /// Inside a number or `true`/`false`/`null`.
    Scalar,
}

/// Resumable scan of one JSON value from its first byte to its end that
/// also follows the grammar between the strings (keys, `:`, `,`, values):
/// a broken record (a quote lost or added, a bracket missing) shows at the
/// first byte that cannot follow, inside the record, rather than wherever
/// the brackets happen to balance. Strings are still skipped with memchr.
#[derive(Debug, Clone, Copy)]
struct ValueScan {
    depth: u32,
    /// One bit per open bracket, innermost lowest: set for `[`.
    arrays: u128,
    expect: Expect,
    in_string: bool,
    /// The string being scanned is a key.
    key: bool,
    escape: bool,
}

impl ValueScan {
    fn new() -> Self {
        ValueScan { depth: 0, arrays: 0, expect: Expect::Value, in_string: false, key: false, escape: false }
    }

    fn is_scalar(&self) -> bool {
        self.expect == Expect::Scalar
    }

    fn in_array(&self) -> bool {
        self.arrays & 1 == 1
    }

    fn open(&mut self, array: bool) -> Result<(), Fault> {
        if self.depth >= MAX_DEPTH {
            return Err(TOO_DEEP);
        }
        self.depth += 1;
        self.arrays = (self.arrays << 1) | array as u128;
        self.expect = if array { Expect::ValueOrEnd } else { Expect::KeyOrEnd };
        Ok(())
    }

    /// What was expected where `c` came, for the fault's message.
    fn unexpected(&self, c: u8) -> Fault {
        let what = match self.expect {
            Expect::Value | Expect::Scalar => "expected a JSON value",
            Expect::ValueOrEnd => "expected a value or `]`",
            Expect::KeyOrEnd => "expected a key or `}`",
            Expect::Key => "expected a key",
            Expect::Colon => "expected `:` after a key",
            Expect::NextOrEnd if self.in_array() => "expected `,` or `]` in an array",
            Expect::NextOrEnd => "expected `,` or `}` in an object",
        };
        Fault::found(what, c)
    }

    /// Advances over `buf[*pos..]`; returns true when the value ended (with
    /// `*pos` just after it). Counts newlines into `line`. On a fault,
    /// `*pos` is at the byte that could not follow.
    fn run(&mut self, buf: &[u8], pos: &mut usize, line: &mut u64) -> Result<bool, Fault> {
        let mut i = *pos;
        while i < buf.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                // JSON escapes control characters inside strings: a raw line
                // break means the string (and its record) was cut or broken.
                match memchr::memchr3(b'"', b'\\', b'\n', &buf[i..]) {
                    None => {
                        i = buf.len();
                        break;
                    }
                    Some(k) => {
                        i += k;
                        match buf[i] {
                            b'\\' => self.escape = true,
                            b'\n' => {
                                *pos = i;
                                return Err(LINE_BREAK_IN_STRING);
                            }
                            _ => {
                                self.in_string = false;
                                self.expect = if self.key { Expect::Colon } else { Expect::NextOrEnd };
                                if self.depth == 0 {
                                    *pos = i + 1;
                                    return Ok(true);
                                }
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let c = buf[i];
            if self.expect == Expect::Scalar {
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                    i += 1;
                    continue;
                }
                self.expect = Expect::NextOrEnd;
                if self.depth == 0 {
                    *pos = i;
                    return Ok(true);
                }
            }
            let step = match (self.expect, c) {
                (_, b' ' | b'\t' | b'\r') => Ok(()),
                (_, b'\n') => {
                    *line += 1;
                    Ok(())
                }
                (Expect::Value | Expect::ValueOrEnd, b'{' | b'[') => self.open(c == b'['),
                (Expect::Value | Expect::ValueOrEnd, b'"') => {
                    (self.in_string, self.key) = (true, false);
                    Ok(())
                }
                (Expect::Value | Expect::ValueOrEnd, b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                    self.expect = Expect::Scalar;
                    Ok(())
                }
                (Expect::KeyOrEnd | Expect::Key, b'"') => {
                    (self.in_string, self.key) = (true, true);
                    Ok(())
                }
                (Expect::Colon, b':') => {
                    self.expect = Expect::Value;
                    Ok(())
                }
                (Expect::NextOrEnd, b',') => {
                    self.expect = if self.in_array() { Expect::Value } else { Expect::Key };
                    Ok(())
                }
                (Expect::KeyOrEnd, b'}') | (Expect::ValueOrEnd, b']') => self.close(),
                (Expect::NextOrEnd, b'}' | b']') if (c == b']') == self.in_array() => self.close(),
                _ => Err(self.unexpected(c)),
            };
            if let Err(f) = step {
                *pos = i;
                return Err(f);
            }
            i += 1;
            if self.depth == 0 && self.expect == Expect::NextOrEnd {
                *pos = i;
                return Ok(true);
            }
        }
        *pos = i;
        Ok(false)
    }

    fn close(&mut self) -> Result<(), Fault> {
        self.depth -= 1;
        self.arrays >>= 1;
        self.expect = Expect::NextOrEnd;
        Ok(())
    }
}

/// A byte as a message quotes it.
pub(super) fn show(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("`{}`", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// What [`first_two_keys`] found at the start of an object.
#[derive(Debug, PartialEq, Eq)]
enum Keys<'a> {
    Found(&'a [u8], &'a [u8]),
    /// The window ends before the second key.
    NeedMore,
    No,
}

/// The first two keys of the object that starts at `w[0]` (`{`); the
/// second is empty for an object of one key. What identifies the file's
/// records among the nested objects inside them.
fn first_two_keys(w: &[u8]) -> Keys<'_> {
    fn skip_ws(w: &[u8], i: &mut usize) {
        while *i < w.len() && w[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn key<'a>(w: &'a [u8], i: &mut usize) -> Result<&'a [u8], bool> {
        skip_ws(w, i);
        match w.get(*i) {
            None => return Err(true),
            Some(b'"') => {}
            Some(_) => return Err(false),
        }
        let start = *i + 1;
        let end = match memchr::memchr2(b'"', b'\\', &w[start..]) {
            None => return Err(true),
            Some(k) if w[start + k] == b'"' => start + k,
            Some(_) => return Err(false),
        };
        *i = end + 1;
        skip_ws(w, i);
        match w.get(*i) {
            None => Err(true),
            Some(b':') => {
                *i += 1;
                Ok(&w[start..end])
            }
            Some(_) => Err(false),
        }
    }
    let verdict = |more: bool| if more { Keys::NeedMore } else { Keys::No };
    if w.first() != Some(&b'{') {
        return Keys::No;
    }
    let mut i = 1;
    let first = match key(w, &mut i) {
        Ok(k) => k,
        Err(more) => return verdict(more),
    };
    skip_ws(w, &mut i);
    if i >= w.len() {
        return Keys::NeedMore;
    }
    let (mut pos, mut line) = (i, 0);
    match ValueScan::new().run(w, &mut pos, &mut line) {
        Ok(true) => i = pos,
        Ok(false) => return Keys::NeedMore,
        Err(_) => return Keys::No,
    }
    skip_ws(w, &mut i);
    match w.get(i) {
        None => Keys::NeedMore,
        Some(b'}') => Keys::Found(first, b""),
        Some(b',') => {
            i += 1;
            match key(w, &mut i) {
                Ok(second) => Keys::Found(first, second),
                Err(more) => verdict(more),
            }
        }
        Some(_) => Keys::No,
    }
}

pub struct JsonFramer<R> {
    reader: R,
    /// Buffers of chunks already parsed, sent back for reuse: fresh pages
    /// cost the kernel a zeroing each, which showed at the top of profiles.
    recycled: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    line: u64,
    index: u64,
    state: State,
    spans: Vec<Span>,
    eof: bool,
    failed: bool,
    /// A failed read, reported after the records read before it.
    pending_error: Option<FrameError>,
    /// A read that failed after some bytes came: returned by the next fill.
    read_failed: Option<std::io::Error>,
    chunk_bytes: usize,
    /// Bytes of the records in `spans`.
    span_bytes: usize,
    /// How much of `buf`'s allocation was written before, so that reading
    /// into it again needs no zeroing first ([`JsonFramer::read_more`]).
    written: Written,
    /// Decided by the first top-level value: `Some(true)` when it is a
    /// record (not a page wrapper) written on one line, that is NDJSON.
    /// Every later non-blank line is then one record, found with memchr
    /// instead of a structural scan; a line that is not a whole record
    /// fails to parse on its own and is reported with its line number.
    line_mode: Option<bool>,
    /// The first two keys of the file's records in arrays, once known.
    signature: Option<(Vec<u8>, Vec<u8>)>,
}

/// How many bytes of a buffer's allocation were written, noted with the
/// allocation (its address and capacity) they were written in: a buffer
/// that has since moved or grown is taken at its length only.
#[derive(Clone, Copy, Debug, Default)]
struct Written {
    address: usize,
    capacity: usize,
    bytes: usize,
}

impl Written {
    fn of(buf: &Vec<u8>, bytes: usize) -> Written {
        Written { address: buf.as_ptr() as usize, capacity: buf.capacity(), bytes: bytes.max(buf.len()) }
    }

    /// The bytes of `buf` written: as noted if `buf` is still the allocation
    /// noted, else its length.
    fn bytes_in(&self, buf: &Vec<u8>) -> usize {
        if self.address == buf.as_ptr() as usize && self.capacity == buf.capacity() {
            self.bytes.max(buf.len())
        } else {
            buf.len()
        }
    }
}

impl<R: Read> JsonFramer<R> {
    pub fn new(reader: R) -> Self {
        Self::with_chunk_bytes(reader, CHUNK_BYTES)
    }

    pub fn with_chunk_bytes(reader: R, chunk_bytes: usize) -> Self {
        JsonFramer {
            reader,
            recycled: None,
            buf: Vec::with_capacity(READ_BYTES),
            pos: 0,
            line: 1,
            index: 0,
            state: State::Top,
            spans: Vec::new(),
            eof: false,
            failed: false,
            pending_error: None,
            read_failed: None,
            chunk_bytes,
            span_bytes: 0,
            written: Written::default(),
            line_mode: None,
            signature: None,
        }
    }

    /// Reuse the buffers that come back on `recycled`.
    pub fn with_recycler(mut self, recycled: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        self.recycled = Some(recycled);
        self
    }

    pub fn into_recycler(self) -> Option<std::sync::mpsc::Receiver<Vec<u8>>> {
        self.recycled
    }

    /// An empty buffer, and how many of its bytes were written before.
    fn fresh_buffer(&mut self) -> (Vec<u8>, usize) {
        match self.recycled.as_ref().and_then(|r| r.try_recv().ok()) {
            Some(mut b) => {
                let written = b.len();
                b.clear();
                (b, written)
            }
            None => (Vec::with_capacity(self.chunk_bytes + READ_BYTES), 0),
        }
    }

    fn at_boundary(&self) -> bool {
        matches!(self.state, State::Top | State::List { .. } | State::ListNext { .. })
    }

    fn take_chunk(&mut self) -> Chunk {
        let (mut rest, written) = self.fresh_buffer();
        let before = Written::of(&rest, written);
        rest.extend_from_slice(&self.buf[self.pos..]);
        let written = before.bytes_in(&rest);
        self.buf.truncate(self.pos);
        let data = std::mem::replace(&mut self.buf, rest);
        self.written = Written::of(&self.buf, written);
        self.pos = 0;
        self.span_bytes = 0;
        Chunk { data, spans: std::mem::take(&mut self.spans) }
    }

    fn spans_end(&self) -> usize {
        self.spans.last().map_or(0, |s| s.end)
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.spans.is_empty() && self.at_boundary() && self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if let State::Resync { start, .. } = self.state {
            // A long broken region keeps its head for the rejects file; the
            // rest is searched and dropped, so memory stays bounded.
            let keep_to = start + KEEP_BROKEN_BYTES;
            let tail = self.pos.saturating_sub(KEEP_BROKEN_TAIL);
            if tail > keep_to + READ_BYTES {
                self.buf.splice(keep_to..tail, LEFT_OUT.iter().copied());
                self.pos = self.pos - (tail - keep_to) + LEFT_OUT.len();
            }
        } else if !self.at_boundary() && self.buf.len() - self.spans_end() > MAX_RECORD_BYTES {
            self.break_off(TOO_LARGE);
            return Ok(());
        }
        if let Some(e) = self.read_failed.take() {
            return Err(e);
        }
        let old = self.buf.len();
        let want = if self.spans.is_empty() {
            READ_BYTES
        } else {
            (self.chunk_bytes + READ_PAST_CHUNK).saturating_sub(old).clamp(READ_PAST_CHUNK, READ_BYTES)
        };
        if self.read_more(want)? == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Appends to `buf` what the reader gives, up to `want` bytes: fewer
    /// only at the end of the input, or when a read fails after some bytes
    /// came (they are framed first; the failure is kept for the next fill).
    ///
    /// Read into bytes of the buffer that hold something already: reading
    /// into spare capacity (`read_to_end`) has each reader that cannot fill
    /// it unzeroed (ours, and those of the standard library that wrap them)
    /// zero it first, every read, which was a sixth of the reader thread's
    /// time. A buffer's bytes are zeroed once, when first read into; a
    /// recycled buffer's are written already.
    fn read_more(&mut self, want: usize) -> std::io::Result<usize> {
        let old = self.buf.len();
        self.buf.reserve(want);
        let end = old + want;
        let written = self.written.bytes_in(&self.buf);
        // SAFETY: every byte of this allocation below `written` was written
        // while it was this buffer's (`Written::bytes_in` gives no more than
        // the length if the allocation changed since), so the bytes up to
        // `written.min(end)` are initialized; those past it up to `end` are
        // zeroed here. All are overwritten or cut off below before anything
        // reads them.
        unsafe { self.buf.set_len(written.min(end)) };
        self.buf.resize(end, 0);
        self.written = Written::of(&self.buf, written.max(end));
        let mut filled = 0;
        let failed = loop {
            if filled == want {
                break None;
            }
            match self.reader.read(&mut self.buf[old + filled..end]) {
                Ok(0) => break None,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        self.buf.truncate(old + filled);
        match failed {
            Some(e) if filled == 0 => Err(e),
            Some(e) => {
                self.read_failed = Some(e);
                Ok(filled)
            }
            None => Ok(filled),
        }
    }

    /// Skips whitespace; returns the next byte without consuming it, or
    /// `None` when more input is needed.
    fn peek(&mut self) -> Option<u8> {
        while self.pos < self.buf.len() {
            match self.buf[self.pos] {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                c => return Some(c),
            }
            self.pos += 1;
        }
        None
    }

    /// The next chunk of records, `Ok(None)` at the end of the input. An
    /// error only for a read that failed, after the records before it.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, FrameError> {
        if let Some(e) = self.pending_error.take() {
            self.failed = true;
            return Err(e);
        }
        if self.failed {
            return Ok(None);
        }
        loop {
            if self.at_boundary() && self.span_bytes >= self.chunk_bytes {
                return Ok(Some(self.take_chunk()));
            }
            if self.step() {
                continue;
            }
            if !self.eof {
                if let Err(e) = self.fill() {
                    let error = FrameError {
                        line: self.line,
                        message: format!("read failed: {e}; the records before line {} were read", self.line),
                    };
                    if self.spans.is_empty() {
                        self.failed = true;
                        return Err(error);
                    }
                    self.pending_error = Some(error);
                    self.span_bytes = 0;
                    self.written = Written::default();
                    return Ok(Some(Chunk {
                        data: std::mem::take(&mut self.buf),
                        spans: std::mem::take(&mut self.spans),
                    }));
                }
                continue;
            }
            self.at_end();
            return Ok((!self.spans.is_empty()).then(|| self.take_chunk()));
        }
    }

    /// The input ended: whatever was open is cut short.
    fn at_end(&mut self) {
        let len = self.buf.len();
        match self.state {
            State::Top => {}
            State::Scan { then: Then::Record { start, line, .. }, .. } => {
                self.push_broken(start, len, line, TRUNCATED)
            }
            State::Resync { start, line, fault, .. } => self.push_broken(start, len, line, fault),
            state => match state.open_record() {
                Some(obj) => self.push_broken(obj.start, len, obj.line, TRUNCATED),
                None => self.push_broken(len, len, self.line, TRUNCATED_PAGE),
            },
        }
        self.state = State::Top;
        self.pos = len;
    }

    fn push_span(&mut self, start: usize, end: usize, line: u64) {
        self.push(Span { start, end, line, index: 0, fault: None });
    }

    /// Records `buf[start..end]` (trailing whitespace dropped) as broken.
    fn push_broken(&mut self, start: usize, end: usize, line: u64, fault: Fault) {
        let mut end = end.max(start);
        while end > start && self.buf[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        self.push(Span { start, end, line, index: 0, fault: Some(fault) });
    }

    fn push(&mut self, mut span: Span) {
        self.index += 1;
        span.index = self.index;
        self.span_bytes += span.end - span.start;
        self.spans.push(span);
    }

    /// Broken input at the current position: from where it began to where
    /// reading can go on is one broken span (see [`Until`]).
    fn break_off(&mut self, fault: Fault) {
        let (pos, line) = (self.pos, self.line);
        self.state = match self.state {
            State::Scan { then: Then::Record { obj, start, line }, .. } => {
                if self.signature.is_none() {
                    // The broken record's own first keys are most likely whole.
                    self.learn_signature(start, self.buf.len());
                }
                // Where the fault shows can be far past where it is (a
                // missing `}` shows at the end of the array): look again
                // from the record's first byte.
                (self.pos, self.line) = (start + 1, line);
                State::Resync { start, line, fault, until: Until::Record { obj } }
            }
            State::List { obj, .. } | State::ListNext { obj } => {
                State::Resync { start: pos, line, fault, until: Until::Record { obj } }
            }
            State::Top if self.line_mode == Some(true) => {
                State::Resync { start: pos, line, fault, until: Until::NextLine }
            }
            state => match state.open_record() {
                Some(obj) => {
                    if self.signature.is_none() {
                        self.learn_signature(obj.start, self.buf.len());
                    }
                    (self.pos, self.line) = (obj.start + 1, obj.line);
                    State::Resync { start: obj.start, line: obj.line, fault, until: Until::TopValue }
                }
                // A page whose record list an edit closed early (`"value":[]{...`):
                // its records may go on after the fault, so read on at the
                // next one, as in the list (once the records' keys are known).
                None => match state.page() {
                    Some(obj) if self.signature.is_some() => {
                        State::Resync { start: pos, line, fault, until: Until::Record { obj: Some(obj) } }
                    }
                    _ => State::Resync { start: pos, line, fault, until: Until::TopValue },
                },
            },
        };
    }

    fn learn_signature(&mut self, start: usize, end: usize) {
        let end = end.min(start + SIGNATURE_LOOKAHEAD);
        if let Keys::Found(a, b) = first_two_keys(&self.buf[start..end]) {
            self.signature = Some((a.to_vec(), b.to_vec()));
        }
    }

    /// Whether a record of the array starts at `p` (a `{`) after broken
    /// input that began at `start`; `None` when more input is needed.
    fn record_starts_at(&self, p: usize, start: usize) -> Option<bool> {
        let mut q = p;
        while q > start && self.buf[q - 1].is_ascii_whitespace() {
            q -= 1;
        }
        if q <= start || !matches!(self.buf[q - 1], b',' | b'[') {
            return Some(false);
        }
        let Some((a, b)) = &self.signature else { return Some(true) };
        let window = &self.buf[p..self.buf.len().min(p + SIGNATURE_LOOKAHEAD)];
        match first_two_keys(window) {
            Keys::Found(x, y) => Some(x == a.as_slice() && y == b.as_slice()),
            Keys::NeedMore if !self.eof && window.len() < SIGNATURE_LOOKAHEAD => None,
            _ => Some(false),
        }
    }

    /// Whether a top-level value starts at `p`, the first byte of a line:
    /// an array of records, a page, or a record of the file's shape; `None`
    /// when more input is needed.
    fn top_value_starts_at(&self, p: usize) -> Option<bool> {
        let window = &self.buf[p..self.buf.len().min(p + SIGNATURE_LOOKAHEAD)];
        let more = !self.eof && window.len() < SIGNATURE_LOOKAHEAD;
        match window.first() {
            None => (!more).then_some(false),
            Some(b'[') => match window[1..].iter().find(|b| !b.is_ascii_whitespace()) {
                Some(c) => Some(matches!(c, b'{' | b']')),
                None => (!more).then_some(false),
            },
            Some(b'{') => match first_two_keys(window) {
                Keys::Found(a, b) => Some(
                    a.starts_with(b"@odata")
                        || a == b"value"
                        || a == b"records"
                        || self.signature.as_ref().is_none_or(|(x, y)| x == a && y == b),
                ),
                Keys::NeedMore if more => None,
                _ => Some(false),
            },
            Some(_) => Some(false),
        }
    }

    /// One step of looking for where reading goes on; false when more
    /// input is needed.
    fn resync_step(&mut self, start: usize, line: u64, fault: Fault, until: Until) -> bool {
        let newlines = |b: &[u8]| memchr::memchr_iter(b'\n', b).count() as u64;
        match until {
            Until::NextLine => match memchr::memchr(b'\n', &self.buf[self.pos..]) {
                Some(k) => {
                    let end = self.pos + k;
                    self.push_broken(start, end, line, fault);
                    self.pos = end + 1;
                    self.line += 1;
                    self.state = State::Top;
                    true
                }
                None => {
                    self.pos = self.buf.len();
                    false
                }
            },
            Until::TopValue => loop {
                let Some(k) = memchr::memchr(b'\n', &self.buf[self.pos..]) else {
                    self.pos = self.buf.len();
                    return false;
                };
                let line_start = self.pos + k + 1;
                match self.top_value_starts_at(line_start) {
                    None => {
                        // Decide once enough of the next line is here.
                        self.pos = line_start - 1;
                        return false;
                    }
                    Some(true) => {
                        self.push_broken(start, line_start, line, fault);
                        self.line += 1;
                        self.pos = line_start;
                        self.state = State::Top;
                        return true;
                    }
                    Some(false) => {
                        self.line += 1;
                        self.pos = line_start;
                    }
                }
            },
            Until::Record { obj } => loop {
                let Some(k) = memchr::memchr(b'{', &self.buf[self.pos..]) else {
                    self.line += newlines(&self.buf[self.pos..]);
                    self.pos = self.buf.len();
                    return false;
                };
                let p = self.pos + k;
                self.line += newlines(&self.buf[self.pos..p]);
                self.pos = p;
                match self.record_starts_at(p, start) {
                    None => return false,
                    Some(false) => self.pos = p + 1,
                    Some(true) => {
                        let mut end = p;
                        while end > start && self.buf[end - 1].is_ascii_whitespace() {
                            end -= 1;
                        }
                        // Up to the `,` or `[` before the record.
                        self.push_broken(start, end - 1, line, fault);
                        self.state = State::List { obj, first: false };
                        return true;
                    }
                }
            },
        }
    }

    /// NDJSON: the next line is the next record.
    fn line_step(&mut self) -> bool {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return false;
        }
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(k) => (self.pos + k, self.pos + k + 1),
            None if self.eof => (self.buf.len(), self.buf.len()),
            None if rest.len() > MAX_RECORD_BYTES => {
                self.break_off(TOO_LARGE);
                return true;
            }
            None => return false,
        };
        let line = &self.buf[self.pos..end];
        let lead = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let trail = line[lead..].iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
        if lead < line.len() {
            // Whatever the line holds is its own record: a broken one fails
            // to parse alone, with this line's number and text.
            self.push_span(self.pos + lead, end - trail, self.line);
        }
        self.line += 1;
        self.pos = next;
        true
    }

    /// One step of the structure; false when more input is needed.
    fn step(&mut self) -> bool {
        match self.state {
            State::Top if self.line_mode == Some(true) => return self.line_step(),
            State::Top => {
                let Some(c) = self.peek() else { return false };
                match c {
                    b'{' => {
                        let obj = TopObject { start: self.pos, line: self.line, wrapper: false };
                        self.pos += 1;
                        self.state = State::ObjKey { obj, first: true };
                    }
                    b'[' => {
                        self.pos += 1;
                        self.line_mode.get_or_insert(false);
                        self.state = State::List { obj: None, first: true };
                    }
                    // Tolerate `{...},{...}` written without enclosing brackets.
                    b',' => self.pos += 1,
                    0xEF if self.buf[self.pos..].starts_with(&[0xEF, 0xBB, 0xBF]) => self.pos += 3,
                    c => self.break_off(Fault::found("expected `{` or `[` at the start of a JSON value", c)),
                }
            }
            State::ObjKey { obj, first } => {
                let Some(c) = self.peek() else { return false };
                match c {
                    b'"' => {
                        let start = self.pos;
                        self.state = State::Scan { scan: ValueScan::new(), then: Then::Key { obj, start } };
                    }
                    b'}' if first => self.close_object(obj),
                    c => self.break_off(Fault::found("expected a key in a JSON object", c)),
                }
            }
            State::ObjColon { obj, key } => {
                let Some(c) = self.peek() else { return false };
                if c == b':' {
                    self.pos += 1;
                    self.state = State::ObjValue { obj, key };
                } else {
                    self.break_off(Fault::found("expected `:` after a key", c));
                }
            }
            State::ObjValue { mut obj, key } => {
                let Some(c) = self.peek() else { return false };
                if matches!(key, Key::Records) && c == b'[' {
                    obj.wrapper = true;
                    self.pos += 1;
                    self.state = State::List { obj: Some(obj), first: true };
                } else {
                    self.state = State::Scan { scan: ValueScan::new(), then: Then::Skip { obj } };
                }
            }
            State::ObjNext { obj } => {
                let Some(c) = self.peek() else { return false };
                match c {
                    b',' => {
                        self.pos += 1;
                        self.state = State::ObjKey { obj, first: false };
                    }
                    b'}' => self.close_object(obj),
                    c => self.break_off(Fault::found("expected `,` or `}` in a JSON object", c)),
                }
            }
            State::List { obj, first } => {
                let Some(c) = self.peek() else { return false };
                match c {
                    b']' if first => self.close_list(obj),
                    b'{' => {
                        let then = Then::Record { obj, start: self.pos, line: self.line };
                        self.state = State::Scan { scan: ValueScan::new(), then };
                    }
                    c => self.break_off(Fault::found("expected a record (`{`) in the array", c)),
                }
            }
            State::ListNext { obj } => {
                let Some(c) = self.peek() else { return false };
                match c {
                    b',' => {
                        self.pos += 1;
                        self.state = State::List { obj, first: false };
                    }
                    b']' => self.close_list(obj),
                    // A missing comma loses nothing: the next record is whole.
                    b'{' => self.state = State::List { obj, first: false },
                    c => self.break_off(Fault::found("expected `,` or `]` in the array", c)),
                }
            }
            State::Scan { mut scan, then } => {
                if self.pos >= self.buf.len() {
                    return false;
                }
                let mut pos = self.pos;
                let mut line = self.line;
                let done = scan.run(&self.buf, &mut pos, &mut line);
                self.pos = pos;
                self.line = line;
                match done {
                    Err(fault) => self.break_off(fault),
                    Ok(true) => self.after_scan(then),
                    // A scalar at the very end of the input is complete.
                    Ok(false) if scan.is_scalar() && self.eof => self.after_scan(then),
                    Ok(false) => {
                        self.state = State::Scan { scan, then };
                        return false;
                    }
                }
            }
            State::Resync { start, line, fault, until } => {
                return self.resync_step(start, line, fault, until)
            }
        }
        true
    }

    fn after_scan(&mut self, then: Then) {
        match then {
            Then::Record { obj, start, line } => {
                if self.signature.is_none() {
                    self.learn_signature(start, self.pos);
                }
                self.push_span(start, self.pos, line);
                self.state = State::ListNext { obj };
            }
            Then::Skip { obj } => self.state = State::ObjNext { obj },
            Then::Key { obj, start } => {
                let key = &self.buf[start + 1..self.pos - 1];
                let key = if !obj.wrapper && (key == b"value" || key == b"records") {
                    Key::Records
                } else {
                    Key::Other
                };
                self.state = State::ObjColon { obj, key };
            }
        }
    }

    fn close_object(&mut self, obj: TopObject) {
        self.pos += 1;
        if !obj.wrapper {
            // The top-level object was a record itself (NDJSON and the like).
            if self.signature.is_none() {
                self.learn_signature(obj.start, self.pos);
            }
            self.push_span(obj.start, self.pos, obj.line);
        }
        self.line_mode.get_or_insert(!obj.wrapper && obj.line == self.line);
        self.state = State::Top;
    }

    fn close_list(&mut self, obj: Option<TopObject>) {
        self.pos += 1;
        self.state = match obj {
            Some(obj) => State::ObjNext { obj },
            None => State::Top,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (text, line, index, fault) of every span.
    type Spans = Vec<(String, u64, u64, Option<Fault>)>;

    fn spans_of(input: &[u8], chunk: usize, trickle: usize) -> Result<Spans, FrameError> {
        // A reader that hands out a few bytes at a time exercises every resume point.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (back, recycled) = std::sync::mpsc::channel();
        let mut f = JsonFramer::with_chunk_bytes(Trickle(input, trickle), chunk).with_recycler(recycled);
        let mut out = vec![];
        while let Some(mut c) = f.next_chunk()? {
            for s in &c.spans {
                out.push((
                    String::from_utf8_lossy(&c.data[s.start..s.end]).into_owned(),
                    s.line,
                    s.index,
                    s.fault,
                ));
            }
            // Buffers come back scribbled over to their capacity: a framer
            // that framed a byte it did not read would show these.
            c.data.clear();
            c.data.resize(c.data.capacity(), b'#');
            let _ = back.send(c.data);
        }
        Ok(out)
    }

    fn records(input: &str, chunk: usize) -> Result<Vec<(String, u64, u64)>, FrameError> {
        let all = spans_of(input.as_bytes(), chunk, 3)?;
        Ok(all.into_iter().map(|(t, l, i, _)| (t, l, i)).collect())
    }

    /// Every span's text, broken ones marked `!`; the same at any chunk size.
    fn texts(input: &str) -> Vec<String> {
        let show = |v: Spans| -> Vec<String> {
            v.into_iter().map(|(t, _, _, f)| if f.is_some() { format!("!{t}") } else { t }).collect()
        };
        let a = show(spans_of(input.as_bytes(), 1, 3).unwrap());
        let b = show(spans_of(input.as_bytes(), 1 << 20, 1 << 20).unwrap());
        assert_eq!(a, b, "chunk and read sizes must not change the records");
        a
    }

    #[test]
    fn graph_page_with_links() {
        let page = r#"{"@odata.context":"https://graph.microsoft.com/beta/$metadata#auditLogs/signIns","value":[{"id":"a","s":"x}]\"{"},{"id":"b","n":{"value":[1]}}],"@odata.nextLink":"https://x?$skiptoken=1"}"#;
        assert_eq!(texts(page), vec![r#"{"id":"a","s":"x}]\"{"}"#, r#"{"id":"b","n":{"value":[1]}}"#]);
    }

    #[test]
    fn concatenated_pages_and_empty_page() {
        let s = "{\"value\":[{\"id\":1}]}\n{\"value\":[]}\n{\"@odata.count\":1,\"value\":[ {\"id\":2} ]}";
        assert_eq!(texts(s), vec!["{\"id\":1}", "{\"id\":2}"]);
    }

    #[test]
    fn records_envelope_array_and_ndjson() {
        assert_eq!(texts(r#"{"records":[{"a":1},{"a":2}]}"#), vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        assert_eq!(texts("[\n  {\"a\": 1},\n  {\"a\": 2}\n]\n"), vec!["{\"a\": 1}", "{\"a\": 2}"]);
        assert_eq!(texts("{\"a\":1}\n{\"a\":2}\n"), vec!["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(texts("[]"), Vec::<String>::new());
        assert_eq!(texts(""), Vec::<String>::new());
    }

    #[test]
    fn top_level_record_with_non_array_value_key_is_a_record() {
        assert_eq!(texts(r#"{"value":"x","id":1}"#), vec![r#"{"value":"x","id":1}"#]);
    }

    #[test]
    fn lines_and_indexes() {
        let r = records("{\"a\":\n1}\n\n{\"b\":\n2}\n{\"c\":3}", 1).unwrap();
        let li: Vec<(u64, u64)> = r.iter().map(|x| (x.1, x.2)).collect();
        assert_eq!(li, vec![(1, 1), (4, 2), (6, 3)]);
    }

    #[test]
    fn ndjson_is_split_at_lines_after_a_one_line_first_record() {
        let s = "{\"a\":\"}{\"}\r\n\n  {\"b\":2}  \n{\"c\":3}";
        assert_eq!(texts(s), vec!["{\"a\":\"}{\"}", "{\"b\":2}", "{\"c\":3}"]);
        let r = records(s, 1).unwrap();
        assert_eq!(r.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(), vec![(1, 1), (3, 2), (4, 3)]);
        // Pages on one line each are not NDJSON records: the structural scan stays.
        let pages = "{\"value\":[{\"id\":1}]}\n{\"value\":[{\"id\":2}]}\n";
        assert_eq!(texts(pages), vec!["{\"id\":1}", "{\"id\":2}"]);
    }

    #[test]
    fn a_broken_ndjson_line_is_one_record_and_the_next_lines_are_read() {
        let s = "{\"a\":1}\n{\"a\": \"cut\n{\"a\":3}\n";
        assert_eq!(texts(s), vec!["{\"a\":1}", "{\"a\": \"cut", "{\"a\":3}"]);
    }

    #[test]
    fn a_truncated_array_keeps_the_records_before_the_cut() {
        assert_eq!(texts("{\"value\":[{\"id\":1},{\"id\":"), vec!["{\"id\":1}", "!{\"id\":"]);
        // Cut between records: nothing lost, but the cut is told.
        assert_eq!(texts("[{\"id\":1},"), vec!["{\"id\":1}", "!"]);
        let v = spans_of(b"[{\"id\":1},{\"id\":", 1 << 20, 7).unwrap();
        assert_eq!(v[1].3, Some(TRUNCATED));
    }

    #[test]
    fn a_broken_record_in_an_array_costs_that_record_only() {
        // A string cut by a line break, in a pretty-printed array.
        let s = "[\n  {\"id\": 1, \"k\": \"a\"},\n  {\"id\": 2, \"k\": \"b\n  },\n  {\"id\": 3, \"k\": \"c\"}\n]\n";
        assert_eq!(
            texts(s),
            vec!["{\"id\": 1, \"k\": \"a\"}", "!{\"id\": 2, \"k\": \"b\n  }", "{\"id\": 3, \"k\": \"c\"}"]
        );
        // A missing `}` shows only at the end of the page; the records after it are still read.
        let s = r#"{"value":[{"id":1,"k":{"x":[{"id":9,"k":0}]}},{"id":2,"k":{"x":1},{"id":3,"k":{}},{"id":4,"k":5}]}"#;
        assert_eq!(
            texts(s),
            vec![
                r#"{"id":1,"k":{"x":[{"id":9,"k":0}]}}"#,
                r#"!{"id":2,"k":{"x":1}"#,
                r#"{"id":3,"k":{}}"#,
                r#"{"id":4,"k":5}"#
            ]
        );
    }

    #[test]
    fn garbage_between_records_is_one_broken_span() {
        assert_eq!(
            texts(r#"[{"a":1,"b":2} x y, {"a":3,"b":4}]"#),
            vec![r#"{"a":1,"b":2}"#, "!x y", r#"{"a":3,"b":4}"#]
        );
        // A missing comma loses nothing.
        assert_eq!(texts(r#"[{"a":1} {"a":2}]"#), vec![r#"{"a":1}"#, r#"{"a":2}"#]);
    }

    #[test]
    fn non_json_and_bad_structure_are_broken_spans_not_errors() {
        let v = texts("Date (UTC),Request ID\n");
        assert_eq!(v, vec!["!Date (UTC),Request ID"]);
        assert_eq!(texts("[1,2]").len(), 1);
        assert!(texts("{\"a\" 1}")[0].starts_with('!'));
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        assert!(texts(&deep)[0].starts_with('!'));
    }

    #[test]
    fn first_two_keys_tell_records_from_nested_objects() {
        assert_eq!(first_two_keys(br#"{ "id" : "x,}", "t": 1}"#), Keys::Found(b"id", b"t"));
        assert_eq!(first_two_keys(br#"{"id":{"a":[1]}}"#), Keys::Found(b"id", b""));
        assert_eq!(first_two_keys(br#"{"id":"x"#), Keys::NeedMore);
        assert_eq!(first_two_keys(br#"{1:2}"#), Keys::No);
    }

    #[test]
    fn a_buffer_counts_as_written_what_was_noted_only_while_it_is_the_same_allocation() {
        let mut buf: Vec<u8> = Vec::with_capacity(16);
        buf.extend_from_slice(b"abcdefgh");
        let noted = Written::of(&buf, 12);
        buf.truncate(2);
        assert_eq!(noted.bytes_in(&buf), 12, "cut shorter, the bytes stay written");
        buf.extend_from_slice(b"0123456789abcd");
        assert_eq!(noted.bytes_in(&buf), 16, "longer than noted: its length");
        buf.reserve(1 << 10);
        assert_eq!(noted.bytes_in(&buf), 16, "grown (moved or not): its length only");
        buf.truncate(1);
        assert_eq!(noted.bytes_in(&buf), 1);
        assert_eq!(noted.bytes_in(&vec![7; 3]), 3, "another buffer: its length");
        assert_eq!(Written::default().bytes_in(&Vec::new()), 0);
    }

    #[test]
    fn a_failed_read_comes_after_the_records_before_it() {
        struct Failing(Vec<u8>);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("gzip data is corrupt"));
                }
                let n = self.0.len().min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut f = JsonFramer::new(Failing(b"{\"a\":1}\n{\"a\":2}\n{\"a\":".to_vec()));
        let c = f.next_chunk().unwrap().unwrap();
        assert_eq!(c.spans.len(), 2);
        let e = f.next_chunk().unwrap_err();
        assert!(e.message.contains("gzip data is corrupt"), "{e:?}");
        assert_eq!(f.next_chunk().unwrap().map(|c| c.spans.len()), None);
    }

    #[test]
    fn a_huge_broken_region_is_cut_to_bounded_memory() {
        let mut s = b"[{\"a\":1,\"b\":2},{\"a\":\"".to_vec();
        s.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + (3 << 20)));
        s.extend_from_slice(b"\"},{\"a\":3,\"b\":4}]");
        let v = spans_of(&s, CHUNK_BYTES, READ_BYTES).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].3, Some(TOO_LARGE));
        assert!(v[1].0.len() < MAX_RECORD_BYTES + 2 * READ_BYTES, "{}", v[1].0.len());
        assert_eq!(v[2].0, "{\"a\":3,\"b\":4}");
    }

    #[test]
    fn a_huge_broken_region_keeps_the_same_text_however_the_input_was_read() {
        let mut s = b"[{\"a\":1,\"b\":2},{\"a\":\"".to_vec();
        s.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + (3 << 20)));
        s.extend_from_slice(b"yz\"},{\"a\":3,\"b\":4}]");
        let kept = |trickle| {
            let v = spans_of(&s, CHUNK_BYTES, trickle).unwrap();
            assert_eq!(v[1].3, Some(TOO_LARGE));
            kept_text(v[1].0.as_bytes()).into_owned()
        };
        let whole = kept(READ_BYTES);
        for trickle in [65_536, 100_003] {
            assert_eq!(kept(trickle), whole, "read {trickle} bytes at a time");
        }
        assert_eq!(whole.len(), KEEP_BROKEN_BYTES + LEFT_OUT.len() + KEEP_BROKEN_TAIL);
        assert!(whole.starts_with(b"{\"a\":\"xxx"));
        assert!(whole.ends_with(b"xxyz\"}"), "{:?}", String::from_utf8_lossy(&whole[whole.len() - 80..]));
        // A broken span that was not cut is kept whole.
        assert_eq!(kept_text(b"{\"a\":"), &b"{\"a\":"[..]);
    }

    #[test]
    fn a_chunk_hands_the_next_at_most_a_short_read_past_its_last_record() {
        let line = format!("{{\"a\":\"{}\"}}\n", "x".repeat(4000));
        let input = line.repeat((8 * CHUNK_BYTES) / line.len());
        let mut f = JsonFramer::new(input.as_bytes());
        let (mut records, mut chunks) = (0, 0);
        while let Some(c) = f.next_chunk().unwrap() {
            records += c.spans.len();
            chunks += 1;
            // What was read past the chunk's last record, now the next one's.
            assert!(f.buf.len() <= READ_PAST_CHUNK + line.len(), "{} bytes carried over", f.buf.len());
        }
        assert_eq!(records, input.len() / line.len());
        assert!(chunks >= 7, "{chunks} chunks");
    }

    /// A record shaped like a sign-in: nested objects and arrays of
    /// objects, strings with escapes.
    fn record(i: usize) -> String {
        format!(
            r#"{{"id":"r{i}","createdDateTime":"2026-11-0{}T10:00:00Z","status":{{"errorCode":{i}}},"appliedConditionalAccessPolicies":[{{"id":"p","displayName":"a \"q\" {{[,"}},{{"id":"p2","result":"x"}}],"n":[1,[2,{{}}]]}}"#,
            i % 9 + 1
        )
    }

    #[derive(Debug, Clone, Copy)]
    enum Layout {
        Ndjson,
        Array,
        PrettyArray,
        Pages,
    }

    fn layout(records: &[String], l: Layout) -> String {
        match l {
            Layout::Ndjson => records.iter().map(|r| format!("{r}\n")).collect(),
            Layout::Array => format!("[{}]", records.join(",")),
            Layout::PrettyArray => format!("[\n  {}\n]\n", records.join(",\n  ")),
            Layout::Pages => records
                .chunks(3)
                .map(|c| {
                    format!(
                        "{{\"@odata.context\":\"x\",\"value\":[{}],\"@odata.nextLink\":\"y\"}}\n",
                        c.join(",")
                    )
                })
                .collect(),
        }
    }

    fn any_layout() -> impl Strategy<Value = Layout> {
        prop_oneof![Just(Layout::Ndjson), Just(Layout::Array), Just(Layout::PrettyArray), Just(Layout::Pages)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Skipping a corrupted record loses exactly that record: every
        /// other record comes out whole, and one span stands for the broken
        /// one. (Once the file's record shape is known: the first record's
        /// first two keys are what tells records from nested objects.)
        #[test]
        fn one_corrupted_record_costs_exactly_that_record(
            n in 2usize..9,
            layout_kind in any_layout(),
            which in 0usize..9,
            at in 0usize..1000,
            edit in 0usize..7,
        ) {
            let records: Vec<String> = (0..n).map(record).collect();
            let which = which % n;
            let text = &records[which];
            let lo = if which == 0 { 40 } else { 0 };
            let at = lo + at % (text.len() - lo);
            let mut broken = text.clone();
            match edit {
                0 => { broken.remove(at); }
                1 => broken.insert(at, '"'),
                2 => broken.insert(at, '{'),
                3 => broken.insert(at, '}'),
                4 => broken.insert(at, ']'),
                5 => broken.insert(at, '\n'),
                _ => broken.insert_str(at, "garbage"),
            }
            let mut all = records.clone();
            all[which] = broken;
            let input = layout(&all, layout_kind);
            let spans = spans_of(input.as_bytes(), 64, 5).unwrap();
            for (i, r) in records.iter().enumerate() {
                if i != which {
                    let found = spans.iter().filter(|s| s.3.is_none() && &s.0 == r).count();
                    prop_assert_eq!(found, 1, "record {} lost or doubled in {:?}: {:#?}", i, layout_kind, spans);
                }
            }
            // What stands for the broken record comes from its bytes only,
            // in at most two pieces (an edit can end a record early: the
            // rest is then broken input of its own).
            let broken = &all[which];
            let others: Vec<_> = spans.iter().filter(|s| !records.contains(&s.0) || s.3.is_some()).collect();
            prop_assert!(others.len() <= 2, "{} spans for one broken record in {:?}: {:#?}", others.len(), layout_kind, others);
            for o in &others {
                // A region that runs to the end of its page takes the page's own punctuation along.
                let own = o.0.replace("],\"@odata.nextLink\":\"y\"}", "").replace("{\"@odata.context\":\"x\",\"value\":", "");
                let own = own.trim_matches(|c: char| c.is_whitespace() || matches!(c, ']' | '}' | ',' | '['));
                prop_assert!(broken.contains(own), "{:?} is not from the broken record {:?}", o.0, broken);
            }
        }

        /// A file cut anywhere keeps every record that ends before the cut.
        #[test]
        fn a_cut_file_keeps_every_record_before_the_cut(
            n in 1usize..7,
            layout_kind in any_layout(),
            cut in 0usize..4000,
        ) {
            let records: Vec<String> = (0..n).map(record).collect();
            let input = layout(&records, layout_kind);
            let cut = cut % (input.len() + 1);
            let spans = spans_of(&input.as_bytes()[..cut], 64, 5).unwrap();
            for r in &records {
                if let Some(end) = input.find(r.as_str()).map(|p| p + r.len()) {
                    if end <= cut {
                        prop_assert!(spans.iter().any(|s| s.3.is_none() && &s.0 == r), "lost {} at cut {}", r, cut);
                    }
                }
            }
            prop_assert!(spans.iter().filter(|s| s.3.is_some()).count() <= 1);
        }
    }
}
