//! Deciding what a file holds from its first bytes, never its name.
//!
//! JSON exports start with `{` or `[` (after whitespace); everything else
//! is read as CSV, whose header then names the dialect (see [`super::csv_exports`]).

use std::io::{BufRead, Read};

use super::InputFormat;

pub enum Detected {
    Empty,
    Json(Box<dyn BufRead + Send>),
    Csv(Box<dyn BufRead + Send>),
}

pub fn detect(mut reader: Box<dyn BufRead + Send>, forced: InputFormat) -> Result<Detected, String> {
    // Skip leading whitespace so that the first byte decides.
    let first = loop {
        let buf = reader.fill_buf().map_err(|e| format!("read failed: {e:#}"))?;
        if buf.is_empty() {
            return Ok(Detected::Empty);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let c = buf[i];
                reader.consume(i);
                break c;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    let looks_json = first == b'{' || first == b'[';
    match forced {
        InputFormat::Auto if looks_json => Ok(Detected::Json(reader)),
        InputFormat::Auto => Ok(Detected::Csv(reader)),
        f if f.is_csv() => Ok(Detected::Csv(reader)),
        _ if looks_json => Ok(Detected::Json(reader)),
        f => Err(format!(
            "--input-format {f} expects JSON, but the file starts with {}",
            super::framing::show(first)
        )),
    }
}

/// Reads the header line (up to 1 MiB) to pick the delimiter, and hands
/// back a reader that starts at the header again. The whole line is read,
/// not just what the first buffer holds: a decoding reader (UTF-16) can
/// hand out a few bytes at a time.
pub fn csv_delimiter(mut reader: Box<dyn BufRead + Send>) -> (u8, Box<dyn BufRead + Send>) {
    let mut head = Vec::new();
    let _ = (&mut reader).take(1 << 20).read_until(b'\n', &mut head);
    let d = super::csv_exports::sniff_delimiter(&String::from_utf8_lossy(&head));
    (d, Box::new(std::io::Cursor::new(head).chain(reader)))
}
