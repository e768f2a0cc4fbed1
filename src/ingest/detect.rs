//! Deciding what a file holds from its first bytes, never its name.
//!
//! JSON exports start with `{` or `[` (after whitespace); everything else
//! is read as CSV, whose header then names the dialect (see [`super::csv_exports`]).

use std::io::BufRead;

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
        f => Err(format!("--input-format {f:?} expects JSON, but the file starts with `{}`", first as char)),
    }
}

/// Looks at the header line (without consuming it) to pick the delimiter.
pub fn csv_delimiter(mut reader: Box<dyn BufRead + Send>) -> (u8, Box<dyn BufRead + Send>) {
    let head = reader.fill_buf().map(|b| b.to_vec()).unwrap_or_default();
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let first_line = String::from_utf8_lossy(&head[..line_end]);
    let d = super::csv_exports::sniff_delimiter(&first_line);
    // fill_buf did not consume the peeked bytes: the reader starts at the header.
    (d, reader)
}
