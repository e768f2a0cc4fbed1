//! Opening inputs: files, directories (recursed, in sorted order) and `-`
//! for standard input. Compression and text encoding are sniffed from the
//! bytes, never from the file name: gzip by its magic number, UTF-16 (what
//! Excel's "Unicode text" and Windows PowerShell write) by its BOM or its
//! zero bytes, a UTF-8 BOM is dropped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }

    pub fn file_name(&self) -> Option<String> {
        match self {
            Input::Stdin => None,
            Input::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
        }
    }

    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }
}

/// Expands the command line's paths: directories are walked recursively
/// (regular files only, hidden entries skipped), a path given by name is
/// taken as it is, `-` is stdin. Also returns what directories held that
/// was passed over, to be told.
pub fn expand(paths: &[PathBuf]) -> Result<(Vec<Input>, Vec<String>)> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            let listing = crate::files::list(p)?;
            if listing.files.is_empty() {
                bail!("{}: the directory holds no files", p.display());
            }
            out.extend(listing.files.into_iter().map(Input::File));
            skipped.extend(listing.skipped);
        } else {
            out.push(Input::File(p.clone()));
        }
    }
    Ok((out, skipped))
}

/// Counts the raw (compressed) bytes read, for progress reporting.
pub struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Turns a truncated gzip stream's bare "unexpected EOF" into a message
/// that names the cause.
struct GzipErrors<R>(R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(io::ErrorKind::UnexpectedEof, "gzip data is truncated (incomplete download?)")
            }
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                io::Error::new(io::ErrorKind::InvalidData, format!("gzip data is corrupt: {e}"))
            }
            _ => e,
        })
    }
}

/// An opened input, decompressed and decoded to UTF-8.
pub struct Opened {
    pub reader: Box<dyn BufRead + Send>,
}

pub fn open(input: &Input, counter: Arc<AtomicU64>) -> Result<Opened> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(p) => Box::new(File::open(p).with_context(|| format!("{}: cannot open", p.display()))?),
    };
    let mut raw = BufReader::with_capacity(1 << 16, Counting { inner: raw, counter });
    let head = raw.fill_buf().with_context(|| format!("{}: cannot read", input.name()))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let mut text: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(1 << 20, GzipErrors(flate2::bufread::MultiGzDecoder::new(raw))))
    } else {
        Box::new(raw)
    };
    let head = text.fill_buf().with_context(|| format!("{}: cannot read", input.name()))?;
    let encoding = sniff_encoding(head);
    let reader: Box<dyn BufRead + Send> = match encoding {
        Some(enc) => Box::new(BufReader::with_capacity(
            1 << 20,
            encoding_rs_io::DecodeReaderBytesBuilder::new().encoding(Some(enc)).build(text),
        )),
        None => {
            if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                text.consume(3);
            }
            text
        }
    };
    Ok(Opened { reader })
}

/// UTF-16 by BOM, or by the zero byte every ASCII character has in UTF-16.
fn sniff_encoding(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    match head {
        [0xFF, 0xFE, ..] => Some(encoding_rs::UTF_16LE),
        [0xFE, 0xFF, ..] => Some(encoding_rs::UTF_16BE),
        [a, 0, b, 0, ..] if a.is_ascii() && b.is_ascii() && *a != 0 => Some(encoding_rs::UTF_16LE),
        [0, a, 0, b, ..] if a.is_ascii() && b.is_ascii() && *a != 0 => Some(encoding_rs::UTF_16BE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(bytes: &[u8]) -> Result<String> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("x");
        std::fs::write(&p, bytes)?;
        let mut o = open(&Input::File(p), Arc::default())?;
        let mut s = String::new();
        o.reader.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn plain_bom_utf16_and_gzip() {
        assert_eq!(read_all(b"a,b\n").unwrap(), "a,b\n");
        assert_eq!(read_all(b"\xEF\xBB\xBFa,b\n").unwrap(), "a,b\n");
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("a,b\n".encode_utf16().flat_map(|u| u.to_le_bytes())).collect();
        assert_eq!(read_all(&utf16).unwrap(), "a,b\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}\n").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(read_all(&gz).unwrap(), "{\"a\":1}\n");
        let err = read_all(&gz[..gz.len() - 6]).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }
}
