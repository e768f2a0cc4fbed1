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

use std::io::Read;

/// Target size of one chunk of records.
pub const CHUNK_BYTES: usize = 1 << 20;
const READ_BYTES: usize = 1 << 20;

/// One record: `data[start..end]` of its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// 1-based index of the record in its file.
    pub index: u64,
}

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

/// Resumable scan of one JSON value from its first byte to its end.
#[derive(Debug, Clone, Copy)]
struct ValueScan {
    depth: u32,
    in_string: bool,
    escape: bool,
    /// A scalar (number, true, false, null) ends at a delimiter.
    scalar: bool,
    started: bool,
}

impl ValueScan {
    fn new() -> Self {
        ValueScan { depth: 0, in_string: false, escape: false, scalar: false, started: false }
    }

    /// Advances over `buf[*pos..]`; returns true when the value ended (with
    /// `*pos` just after it). Counts newlines into `line`.
    fn run(&mut self, buf: &[u8], pos: &mut usize, line: &mut u64) -> Result<bool, String> {
        let mut i = *pos;
        if !self.started {
            self.started = true;
            match buf[i] {
                b'{' | b'[' => {
                    self.depth = 1;
                    i += 1;
                }
                b'"' => {
                    self.in_string = true;
                    i += 1;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.scalar = true,
                c => return Err(format!("expected a JSON value, found {}", show(c))),
            }
        }
        if self.scalar {
            while i < buf.len() {
                match buf[i] {
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n' => {
                        *pos = i;
                        return Ok(true);
                    }
                    _ => i += 1,
                }
            }
            *pos = i;
            return Ok(false);
        }
        while i < buf.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                    None => {
                        i = buf.len();
                        break;
                    }
                    Some(k) => {
                        i += k;
                        if buf[i] == b'\\' {
                            self.escape = true;
                        } else {
                            self.in_string = false;
                            if self.depth == 0 {
                                *pos = i + 1;
                                return Ok(true);
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            match buf[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        *pos = i + 1;
                        return Ok(true);
                    }
                }
                b'\n' => *line += 1,
                _ => {}
            }
            i += 1;
        }
        *pos = i;
        Ok(false)
    }
}

fn show(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("`{}`", c as char)
    } else {
        format!("byte 0x{c:02x}")
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
    chunk_bytes: usize,
    /// Bytes of the records in `spans`.
    span_bytes: usize,
    /// Decided by the first top-level value: `Some(true)` when it is a
    /// record (not a page wrapper) written on one line, that is NDJSON.
    /// Every later non-blank line is then one record, found with memchr
    /// instead of a structural scan; a line that is not a whole record
    /// fails to parse and is reported with its line number.
    line_mode: Option<bool>,
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
            chunk_bytes,
            span_bytes: 0,
            line_mode: None,
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

    fn fresh_buffer(&mut self) -> Vec<u8> {
        match self.recycled.as_ref().and_then(|r| r.try_recv().ok()) {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(self.chunk_bytes + READ_BYTES),
        }
    }

    fn at_boundary(&self) -> bool {
        matches!(self.state, State::Top | State::List { .. } | State::ListNext { .. })
    }

    fn take_chunk(&mut self) -> Chunk {
        let mut rest = self.fresh_buffer();
        rest.extend_from_slice(&self.buf[self.pos..]);
        self.buf.truncate(self.pos);
        let data = std::mem::replace(&mut self.buf, rest);
        self.pos = 0;
        self.span_bytes = 0;
        Chunk { data, spans: std::mem::take(&mut self.spans) }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        if self.spans.is_empty() && self.at_boundary() && self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_BYTES, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn err<T>(&mut self, message: impl Into<String>) -> Result<T, FrameError> {
        self.failed = true;
        Err(FrameError { line: self.line, message: message.into() })
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

    /// The next chunk of records, `Ok(None)` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, FrameError> {
        if self.failed {
            return Ok(None);
        }
        loop {
            if self.at_boundary() && self.span_bytes >= self.chunk_bytes {
                return Ok(Some(self.take_chunk()));
            }
            match self.step()? {
                true => continue,
                false => {
                    if !self.eof {
                        if let Err(e) = self.fill() {
                            return self.err(format!("read failed: {e}"));
                        }
                        continue;
                    }
                    // End of input.
                    return match self.state {
                        State::Top => {
                            if self.spans.is_empty() {
                                Ok(None)
                            } else {
                                Ok(Some(self.take_chunk()))
                            }
                        }
                        State::Scan { then: Then::Record { line, .. }, .. } => self.err(format!(
                            "the input ends inside the record that starts at line {line} (truncated file?)"
                        )),
                        _ => self.err("the input ends inside a JSON value (truncated file?)"),
                    };
                }
            }
        }
    }

    /// One step of the structure; false when more input is needed.
    fn push_span(&mut self, start: usize, end: usize, line: u64) {
        self.index += 1;
        self.span_bytes += end - start;
        self.spans.push(Span { start, end, line, index: self.index });
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
            None => return false,
        };
        let line = &self.buf[self.pos..end];
        let lead = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let trail = line[lead..].iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
        if lead < line.len() {
            let (start, stop) = (self.pos + lead, end - trail);
            if self.buf[start] != b'{' || self.buf[stop - 1] != b'}' {
                // Not a one-line record (a pretty-printed one follows, say):
                // back to the structural scan, from this line on.
                self.line_mode = Some(false);
                return true;
            }
            self.push_span(start, stop, self.line);
        }
        self.line += 1;
        self.pos = next;
        true
    }

    fn step(&mut self) -> Result<bool, FrameError> {
        match self.state {
            State::Top if self.line_mode == Some(true) => return Ok(self.line_step()),
            State::Top => {
                let Some(c) = self.peek() else { return Ok(false) };
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
                    c => {
                        return self.err(format!(
                            "expected `{{` or `[` at the start of a JSON value, found {}",
                            show(c)
                        ))
                    }
                }
            }
            State::ObjKey { obj, first } => {
                let Some(c) = self.peek() else { return Ok(false) };
                match c {
                    b'"' => {
                        let start = self.pos;
                        self.state = State::Scan { scan: ValueScan::new(), then: Then::Key { obj, start } };
                    }
                    b'}' if first => return self.close_object(obj),
                    c => return self.err(format!("expected a key in a JSON object, found {}", show(c))),
                }
            }
            State::ObjColon { obj, key } => {
                let Some(c) = self.peek() else { return Ok(false) };
                if c != b':' {
                    return self.err(format!("expected `:` after a key, found {}", show(c)));
                }
                self.pos += 1;
                self.state = State::ObjValue { obj, key };
            }
            State::ObjValue { mut obj, key } => {
                let Some(c) = self.peek() else { return Ok(false) };
                if matches!(key, Key::Records) && c == b'[' {
                    obj.wrapper = true;
                    self.pos += 1;
                    self.state = State::List { obj: Some(obj), first: true };
                } else {
                    self.state = State::Scan { scan: ValueScan::new(), then: Then::Skip { obj } };
                }
            }
            State::ObjNext { obj } => {
                let Some(c) = self.peek() else { return Ok(false) };
                match c {
                    b',' => {
                        self.pos += 1;
                        self.state = State::ObjKey { obj, first: false };
                    }
                    b'}' => return self.close_object(obj),
                    c => {
                        return self.err(format!("expected `,` or `}}` in a JSON object, found {}", show(c)))
                    }
                }
            }
            State::List { obj, first } => {
                let Some(c) = self.peek() else { return Ok(false) };
                match c {
                    b']' if first => self.close_list(obj),
                    b'{' => {
                        let then = Then::Record { obj, start: self.pos, line: self.line };
                        self.state = State::Scan { scan: ValueScan::new(), then };
                    }
                    c => {
                        return self.err(format!("expected a record (`{{`) in the array, found {}", show(c)))
                    }
                }
            }
            State::ListNext { obj } => {
                let Some(c) = self.peek() else { return Ok(false) };
                match c {
                    b',' => {
                        self.pos += 1;
                        self.state = State::List { obj, first: false };
                    }
                    b']' => self.close_list(obj),
                    c => return self.err(format!("expected `,` or `]` in the array, found {}", show(c))),
                }
            }
            State::Scan { mut scan, then } => {
                if self.pos >= self.buf.len() {
                    return Ok(false);
                }
                let mut pos = self.pos;
                let mut line = self.line;
                let done = match scan.run(&self.buf, &mut pos, &mut line) {
                    Ok(d) => d,
                    Err(m) => return self.err(m),
                };
                self.pos = pos;
                self.line = line;
                if !done {
                    // A scalar at the very end of the input is complete.
                    if scan.scalar && self.eof {
                        self.after_scan(then);
                        return Ok(true);
                    }
                    self.state = State::Scan { scan, then };
                    return Ok(false);
                }
                self.after_scan(then);
            }
        }
        Ok(true)
    }

    fn after_scan(&mut self, then: Then) {
        match then {
            Then::Record { obj, start, line } => {
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

    fn close_object(&mut self, obj: TopObject) -> Result<bool, FrameError> {
        self.pos += 1;
        if !obj.wrapper {
            // The top-level object was a record itself (NDJSON and the like).
            self.push_span(obj.start, self.pos, obj.line);
        }
        self.line_mode.get_or_insert(!obj.wrapper && obj.line == self.line);
        self.state = State::Top;
        Ok(true)
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

    fn records(input: &str, chunk: usize) -> Result<Vec<(String, u64, u64)>, FrameError> {
        // A reader that hands out 3 bytes at a time exercises every resume point.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(3).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut f = JsonFramer::with_chunk_bytes(Trickle(input.as_bytes()), chunk);
        let mut out = vec![];
        while let Some(c) = f.next_chunk()? {
            for s in &c.spans {
                out.push((String::from_utf8(c.data[s.start..s.end].to_vec()).unwrap(), s.line, s.index));
            }
        }
        Ok(out)
    }

    fn texts(input: &str) -> Vec<String> {
        let a: Vec<String> = records(input, 1).unwrap().into_iter().map(|r| r.0).collect();
        let b: Vec<String> = records(input, 1 << 20).unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(a, b, "chunk size must not change the records");
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
        let r = records("{\"a\":1}\n\n{\"b\":\n2}\n{\"c\":3}", 1).unwrap();
        let li: Vec<(u64, u64)> = r.iter().map(|x| (x.1, x.2)).collect();
        assert_eq!(li, vec![(1, 1), (3, 2), (5, 3)]);
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
    fn truncated_and_garbage_inputs_are_errors() {
        let e = records("{\"value\":[{\"id\":1},{\"id\":", 4).unwrap_err();
        assert!(e.message.contains("truncated"), "{e:?}");
        let e = records("Date (UTC),Request ID\n", 4).unwrap_err();
        assert!(e.message.contains("expected `{` or `[`"), "{e:?}");
        assert!(records("[1,2]", 4).is_err());
        assert!(records("{\"a\" 1}", 4).is_err());
    }
}
