//! Opening inputs: files, directories (recursed, in sorted order) and `-`
//! for standard input. Compression and text encoding are sniffed from the
//! bytes, never from the file name: gzip and zstd by their magic numbers, UTF-16 (what
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

/// A zstd frame starts with these bytes (RFC 8878, 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A zstd stream of any number of frames (`zstd -c a b > c.zst`, and
/// skippable frames), decoded by ruzstd (pure Rust: no C toolchain).
struct Zstd<R> {
    source: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> Zstd<R> {
    fn new(source: R) -> Self {
        Zstd { source, decoder: ruzstd::decoding::FrameDecoder::new(), in_frame: false }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        let corrupt = |e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidData, format!("zstd data is corrupt: {e}"))
        };
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.decoder.init(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                        length,
                        ..
                    })) => {
                        io::copy(&mut (&mut self.source).take(u64::from(length)), &mut io::sink())?;
                    }
                    Err(e) => return Err(corrupt(&e)),
                }
                continue;
            }
            if self.decoder.can_collect() > 0 {
                return self.decoder.read(buf);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
                continue;
            }
            self.decoder
                .decode_blocks(&mut self.source, ruzstd::decoding::BlockDecodingStrategy::UptoBytes(1 << 20))
                .map_err(|e| match e {
                    FrameDecoderError::FailedToReadBlockHeader(_)
                    | FrameDecoderError::FailedToReadBlockBody(_)
                        if self.source.fill_buf().map_or(true, |b| b.is_empty()) =>
                    {
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd data is truncated (incomplete download?)",
                        )
                    }
                    e => corrupt(&e),
                })?;
        }
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
    let zstd = head.starts_with(&ZSTD_MAGIC);
    let text: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(1 << 20, GzipErrors(flate2::bufread::MultiGzDecoder::new(raw))))
    } else if zstd {
        Box::new(BufReader::with_capacity(1 << 20, Zstd::new(raw)))
    } else {
        Box::new(raw)
    };
    let reader = crate::files::as_utf8(text).with_context(|| format!("{}: cannot read", input.name()))?;
    Ok(Opened { reader })
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

    #[test]
    fn zstd_of_several_frames_reads_like_gzip() {
        // Two frames (`zstd -c a; zstd -c b`) and a skippable frame between.
        let mut data = ruzstd::encoding::compress_to_vec(
            &b"{\"a\":1}\n"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        data.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        data.extend(ruzstd::encoding::compress_to_vec(
            &b"{\"a\":2}\n"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        assert_eq!(read_all(&data).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        assert!(read_all(&data[..data.len() - 5]).is_err(), "a cut stream is an error");
    }

    #[test]
    fn utf16_without_a_bom_is_told_by_its_zero_bytes() {
        let le: Vec<u8> = "a,b\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = "a,b\n".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(read_all(&le).unwrap(), "a,b\n");
        assert_eq!(read_all(&be).unwrap(), "a,b\n");
    }
}
