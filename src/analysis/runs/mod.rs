//! Sorted runs in a temporary folder, and their merge: how an analysis whose
//! rows outgrow memory still hands them on in order, a row at a time.
//!
//! The rule: a run is a file of records ([`Record`], written with
//! [`codec`], each after the one before it, whose shared part a record
//! may leave out: [`Record::write_after`]) already in order; the merge
//! reads every run's next record and hands on the least, ties to the
//! earlier run, so that runs cut in input order merge into what a stable
//! sort of the whole input gives. Grouping ([`super::activity`]), replay
//! ([`super::replay`]) and the report's users and apps
//! ([`super::overview`]) sort this way; the merge runs on a thread of its
//! own ([`Prefetched`]), a batch ahead of the sink, and the folder goes
//! with it.
//!
//! The module: [`codec`] (the records' bytes), [`Record`], [`Order`] (an
//! order said as a comparison and as bytes, built with [`key`]), [`sort_by`]
//! (a stable sort in memory), [`on_the_pool_in_chunks`] (a stream's rows
//! worked on the pool a chunk at a time, in order), [`Sorter`] (records
//! pushed in input order, in memory up to a budget, then as runs),
//! [`Tally`] (records added up by key in a hash map, then in a [`Sorter`]),
//! [`Spool`] and [`Kept`] (records kept in arrival order, read once or as
//! often as needed), [`write_run`], [`Merge`], [`Prefetched`], [`Line`] (a
//! row written out where it is sorted, merged by its key; [`LineWriter`]
//! writes it), and [`Stream`] (rows from memory or from a merge, as one
//! iterator whose read errors are kept for the end; lines merged as text
//! by [`Stream::write_text`]). Grouping writes its runs itself, a
//! partition each; replay and the report push their records to a
//! [`Sorter`] or a [`Tally`].

pub(crate) mod codec;

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result};
use rustc_hash::FxHashMap as HashMap;

use self::codec::{Dec, Enc};
use crate::model::activity::Name;
use crate::model::Guid;

/// What a run holds: written and read back by this process only.
pub(crate) trait Record: Sized + Send + Sync + 'static {
    fn write(&self, enc: &mut Enc);
    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self>;

    /// Writes the record into a run after `before`, the record before it
    /// there (none for the first): a record may leave out what it shares
    /// with that one, as a [`Line`] does its key's and text's prefixes
    /// and an [`crate::model::activity::ActivityRow`] the names it
    /// repeats. Read back by [`Record::read_after`] given the same record
    /// before, which a merge has at hand ([`Merge`]); records written
    /// without one ([`Spool`]) read back so too.
    fn write_after(&self, before: Option<&Self>, enc: &mut Enc) {
        let _ = before;
        self.write(enc)
    }

    /// Reads a record [`Record::write_after`] wrote after `before`.
    fn read_after<R: BufRead>(dec: &mut Dec<R>, before: Option<&Self>) -> io::Result<Self> {
        let _ = before;
        Self::read(dec)
    }

    /// The bytes of text the record holds (shared texts counted as its
    /// own): what a budget of records ([`Sorter`], [`Spool`]) also
    /// weighs, at [`BYTES_A_RECORD`] each on average. 0: a record of
    /// fixed size, or one whose texts are bounded small.
    fn text_bytes(&self) -> usize {
        0
    }
}

/// The text a budget of records allows a record on average: a budget
/// counts records, sized for Entra's texts (a group's ids and names are
/// some 200 bytes, its replayed row's line some 700), and texts far longer
/// than Entra writes (a forged export's, each up to
/// [`crate::model::MAX_TEXT_BYTES`]) must not multiply it. Records past
/// `budget * BYTES_A_RECORD` bytes of text go where records past the
/// budget go.
pub(crate) const BYTES_A_RECORD: usize = 1024;

/// Records and their bytes of text held against a budget of records, each
/// allowed `text_a_record` bytes on average ([`BYTES_A_RECORD`] unless
/// told: a record that is one id is allowed less).
#[derive(Clone, Copy)]
struct Held {
    records: usize,
    bytes: usize,
    text_a_record: usize,
}

impl Held {
    fn new() -> Held {
        Held { records: 0, bytes: 0, text_a_record: BYTES_A_RECORD }
    }

    /// Adds a record of `text_bytes` bytes of text ([`Record::text_bytes`]).
    fn add(&mut self, text_bytes: usize) {
        self.records += 1;
        self.bytes = self.bytes.saturating_add(text_bytes);
    }

    fn reaches(&self, budget: Option<usize>) -> bool {
        budget.is_some_and(|b| self.records >= b || self.bytes >= b.saturating_mul(self.text_a_record))
    }

    fn clear(&mut self) {
        (self.records, self.bytes) = (0, 0);
    }
}

// The temporary folders runs go to, shared with the store.
#[cfg(test)]
use crate::files::temp_folder_in;
pub(crate) use crate::files::{temp_folder, TempFolder};

/// What to tell when `doing` (grouping, replay) outgrew its budget and its
/// temporary folder could not be made (`folder` none) or written.
pub(crate) fn folder_error(doing: &str, folder: Option<&Path>) -> String {
    match folder {
        None => format!(
            "{doing} outgrew --groups-in-memory and could not create a temporary folder \
             (set TMPDIR to a writable folder with room, or raise --groups-in-memory)"
        ),
        Some(dir) => format!(
            "{doing} outgrew --groups-in-memory and could not write its temporary folder {} \
             (set TMPDIR to a folder with more room, or raise --groups-in-memory)",
            dir.display()
        ),
    }
}

/// The order records are sorted and merged in, said twice: as a
/// comparison (sorting in memory) and as bytes whose order is the same
/// (`key`: the merge compares each record with others a dozen times, and
/// one `memcmp` of bytes prepared once per record cost a fraction of
/// comparing field by field; the tests of each order check the two agree).
pub(crate) struct Order<T> {
    pub(crate) cmp: fn(&T, &T) -> Ordering,
    pub(crate) key: fn(&T, &mut Vec<u8>),
    /// A stable sort in this order faster than [`sort_by`] with `cmp`, if
    /// there is one ([`Line::ORDER`]'s).
    pub(crate) sort: Option<fn(&mut [T])>,
}

impl<T: Sync> Order<T> {
    /// Sorts `rows` stably in this order.
    pub(crate) fn sort(&self, rows: &mut [T]) {
        match self.sort {
            Some(sort) => sort(rows),
            None => sort_by(rows, self.cmp),
        }
    }
}

impl<T> Clone for Order<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Order<T> {}

impl<T> Order<T> {
    /// No order: every record equal, so a merge keeps the order of arrival
    /// (and, with one run, has no key to build).
    pub(crate) const ARRIVAL: Order<T> = Order { cmp: |_, _| Ordering::Equal, key: |_, _| {}, sort: None };
}

/// Order-preserving bytes of the parts of a sort key ([`Order::key`]).
pub(crate) mod key {
    /// Text, so that the bytes of two texts compare as the texts do, and
    /// what follows it cannot change that: each NUL is written as NUL 0xFF,
    /// and the end as NUL 0x01 (below any byte that can follow in a longer
    /// text).
    pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
        // Texts seldom hold a NUL: memchr says so a vector at a time, where
        // splitting tested each byte.
        if memchr::memchr(0, s.as_bytes()).is_none() {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(&[0, 1]);
            return;
        }
        for (i, part) in s.as_bytes().split(|b| *b == 0).enumerate() {
            if i > 0 {
                out.extend_from_slice(&[0, 0xFF]);
            }
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&[0, 1]);
    }

    /// Absent text before any text, as `Option`'s order has it.
    pub(crate) fn opt_text(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                text(out, s);
            }
        }
    }
}

/// A row already written out as its sink writes it (a CSV or NDJSON
/// line), after the bytes of its sort key: merged by the key alone and
/// handed to the output as it is. Past the memory budget, a grouping's
/// rows are written so where each partition is finished, on the pool; the
/// merge then decodes, builds and formats nothing, where decoding rows was
/// most of the one busy thread at the end of a run with a million groups.
pub(crate) struct Line {
    /// The key, then the text.
    bytes: Box<[u8]>,
    key_len: u32,
}

/// Sorts lines stably by key, as [`sort_by`] with [`Line::ORDER`]'s `cmp`
/// does, eight bytes of key at a time: the lines are ordered by the next
/// eight bytes of their keys (as a number: no key is read twice at one
/// depth), then each group of lines that agree on them, and whose keys go
/// on, by the eight after. Keys of rows in output order share long
/// prefixes (partner, access type, app: some 110 bytes before the user),
/// which a comparison sort read again at every comparison: at ten million
/// groups that was a fifth of finishing the partitions. A group of a few
/// lines is sorted by comparison from its depth on.
fn sort_lines(lines: &mut [Line]) {
    /// Groups this small are sorted by comparing their keys' rests.
    const SMALL: usize = 16;
    let key = |i: usize| lines[i].key();
    let mut positions: Vec<usize> = (0..lines.len()).collect();
    // The next eight bytes of a key from `depth` (zeros past its end) and
    // how many it has (fewer than eight: the key ends there).
    let word = |k: &[u8], depth: usize| -> (u64, u8) {
        let rest = k.get(depth..).unwrap_or_default();
        // Eight bytes read as one: a copy of a length known only at run
        // time is a call to `memcpy`, which was 6% of finishing the
        // partitions of ten million groups.
        if let Some(eight) = rest.first_chunk::<8>() {
            return (u64::from_be_bytes(*eight), 8);
        }
        let take = rest.len();
        let mut bytes = [0u8; 8];
        bytes[..take].copy_from_slice(&rest[..take]);
        (u64::from_be_bytes(bytes), take as u8)
    };
    // Ranges of `positions` left to sort, and the depth their keys agree
    // to (a stack, not recursion: a hostile key may be megabytes long).
    let mut todo = vec![(0, positions.len(), 0)];
    let mut words: Vec<(u64, u8, usize)> = Vec::new();
    while let Some((start, end, depth)) = todo.pop() {
        let group = &mut positions[start..end];
        if group.len() <= SMALL {
            group.sort_by(|&a, &b| {
                let (ka, kb) =
                    (key(a).get(depth..).unwrap_or_default(), key(b).get(depth..).unwrap_or_default());
                ka.cmp(kb).then(a.cmp(&b))
            });
            continue;
        }
        // What every key of the group shares from here is skipped in one
        // pass: eight bytes a pass, a shared prefix of some hundred bytes
        // took a dozen passes over the group, and a hostile one of a
        // megabyte (a long app id in every row) 131,072.
        let depth = depth + shared_prefix(group.iter().map(|&i| key(i).get(depth..).unwrap_or_default()));
        words.clear();
        words.extend(group.iter().map(|&i| {
            let (w, len) = word(key(i), depth);
            (w, len, i)
        }));
        // Past what they all share, the words agree only where every key
        // is the same to its end: such lines are left in the order they came.
        let first = (words[0].0, words[0].1);
        if words.iter().all(|w| (w.0, w.1) == first) {
            continue;
        }
        // Equal words (and lengths) keep their order: ties go by position.
        words.sort_unstable();
        for (slot, w) in group.iter_mut().zip(&words) {
            *slot = w.2;
        }
        let mut from = 0;
        while from < words.len() {
            let (w, len) = (words[from].0, words[from].1);
            let to = from + words[from..].iter().take_while(|x| x.0 == w && x.1 == len).count();
            if len == 8 && to - from > 1 {
                todo.push((start + from, start + to, depth + 8));
            }
            from = to;
        }
    }
    permute(lines, &mut positions);
}

/// What writes a row as a line ([`Line`]): appends its bytes.
pub(crate) type LineWriter<T> = dyn Fn(&T, &mut Vec<u8>) + Sync;

/// The most a thread's line buffer keeps between lines ([`Line::new`]).
const SCRATCH_KEPT: usize = 64 * 1024;

impl Line {
    /// `row` as its key in `order` and its text (`write`).
    ///
    /// Written into a buffer of this thread's, then copied once into a
    /// box of its size: a line grown in a box of its own was reallocated
    /// and copied as it grew (a replayed row's line, key and text, is some
    /// 700 bytes; reallocating was a tenth of formatting them).
    pub(crate) fn new<T>(row: &T, order: Order<T>, write: impl FnOnce(&T, &mut Vec<u8>)) -> Line {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let fill = |bytes: &mut Vec<u8>| {
            bytes.clear();
            (order.key)(row, bytes);
            let key_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            write(row, bytes);
            Line { bytes: Box::from(&bytes[..]), key_len }
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut bytes) => {
                let line = fill(&mut bytes);
                // A hostile row's megabytes are not kept for the next.
                if bytes.capacity() > SCRATCH_KEPT {
                    *bytes = Vec::new();
                }
                line
            }
            // `write` made a line itself: it gets a buffer of its own.
            Err(_) => fill(&mut Vec::new()),
        })
    }

    pub(crate) fn text(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    /// The order of the rows the lines were written from.
    pub(crate) const ORDER: Order<Line> = Order {
        cmp: |a, b| a.key().cmp(b.key()),
        key: |l, out| out.extend_from_slice(l.key()),
        sort: Some(sort_lines),
    };

    /// Reads the next line's bytes into `bytes` (key, then text), the
    /// line before it in the run being `before` (its bytes and its key's
    /// length; empty for the first): [`Record::read_after`] into a buffer
    /// reused. The result: the length of its key, and of the prefix it
    /// shares with `before`'s key.
    fn read_into<R: BufRead>(
        dec: &mut Dec<R>,
        bytes: &mut Vec<u8>,
        (before, before_key): (&[u8], usize),
    ) -> io::Result<(usize, usize)> {
        let damaged = || io::Error::new(io::ErrorKind::InvalidData, "a line that was not written here");
        let (before_key, before_text) = before.split_at_checked(before_key).ok_or_else(damaged)?;
        let shared = dec.u32()? as usize;
        bytes.clear();
        bytes.extend_from_slice(before_key.get(..shared).ok_or_else(damaged)?);
        dec.bytes_onto(bytes)?;
        let key_len = bytes.len();
        let shared_text = dec.u32()? as usize;
        bytes.extend_from_slice(before_text.get(..shared_text).ok_or_else(damaged)?);
        // The middle: stretches of its own, each flagged when one copied
        // from the text before follows it.
        while dec.flagged_bytes_onto(bytes)? {
            // Its length and where it starts, in one number: one read.
            let packed = dec.u64()?;
            let (copied, from) = ((packed & u64::from(u32::MAX)) as usize, (packed >> 32) as usize);
            let copy = from.checked_add(copied).and_then(|to| before_text.get(from..to));
            bytes.extend_from_slice(copy.ok_or_else(damaged)?);
        }
        let shared_end = dec.u32()? as usize;
        let end = before_text.len().checked_sub(shared_end).ok_or_else(damaged)?;
        bytes.extend_from_slice(&before_text[end..]);
        Ok((key_len, shared))
    }
}

/// A line in a run is written as its key and its text, each as the
/// length of the prefix it shares with the same part of the line before
/// it, then the rest (with its length: the key's is the shared part's and
/// the rest's), the text's rest less the end it shares with the text
/// before, and that end's length. That rest of the text is written as
/// stretches of its own, each followed by a stretch copied from the text
/// before ([`copies_along_the_end`]: a replayed row's verdicts and reason
/// between its user's name and its times), the last by none. A SIEM line ends with what a group's
/// partner, app and resource make it (an ECS document's `xtenant` object,
/// a CEF line's custom fields and reason: some 450 bytes the rows of one
/// app share), after what its user and times make it. Lines of rows in output
/// order share some hundred bytes of key with the next (direction,
/// partner, access type, app, resource: all but the user) and as many of
/// text (the same columns, written first): two fifths of a run's bytes
/// that need not be written, read back and, past some gigabytes, freed on
/// disk; and the merge's tournament gets the keys' shared length without
/// comparing them ([`LoserTree::replay`]).
impl Record for Line {
    fn write(&self, enc: &mut Enc) {
        self.write_after(None, enc)
    }
    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Line::read_after(dec, None)
    }
    fn write_after(&self, before: Option<&Line>, enc: &mut Enc) {
        let (key, text) = (self.key(), self.text());
        let shared = before.map_or(0, |b| common_prefix(b.key(), key));
        enc.u32(shared as u32);
        enc.bytes(&key[shared..]);
        let shared = before.map_or(0, |b| common_prefix(b.text(), text));
        // The end it shares with the text before, of what is left after the
        // shared start (the two may overlap in the text before: each is
        // copied from it apart).
        let shared_end = before.map_or(0, |b| common_suffix(b.text(), &text[shared..]));
        enc.u32(shared as u32);
        let middle = shared..text.len() - shared_end;
        let mut own_from = middle.start;
        // A line of 2 GiB (none is) is written without copies.
        if let Some(before) = before.filter(|_| text.len() < 1 << 31) {
            copies_along_the_end(text, before.text(), middle.clone(), |at, len, from| {
                enc.flagged_bytes(&text[own_from..at], true);
                enc.u64((from as u64) << 32 | len as u64);
                own_from = at + len;
            });
        }
        enc.flagged_bytes(&text[own_from..middle.end], false);
        enc.u32(shared_end as u32);
    }
    fn read_after<R: BufRead>(dec: &mut Dec<R>, before: Option<&Line>) -> io::Result<Self> {
        let mut bytes = Vec::new();
        let before = before.map_or((&[][..], 0), |b| (&b.bytes[..], b.key_len as usize));
        let (key_len, _) = Line::read_into(dec, &mut bytes, before)?;
        Ok(Line { bytes: bytes.into_boxed_slice(), key_len: key_len as u32 })
    }
    fn text_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `records`, already in order, as the run at `path`.
pub(crate) fn write_run<T: Record>(path: &Path, records: &[T]) -> Result<()> {
    write_records(path, records.iter().map(Ok))
}

/// Writes the records `records` gives, already in order, as the run at
/// `path` ([`write_run`]; a [`Sorter`] merging runs hands them on from the
/// merge). The first error `records` gives ends it.
fn write_records<T: Record, R: std::ops::Deref<Target = T>>(
    path: &Path,
    records: impl Iterator<Item = Result<R>>,
) -> Result<()> {
    /// Bytes encoded before they are written: records are encoded into the
    /// block itself, not each into a buffer of its own and then copied
    /// into a writer's (at a million replayed rows, 540 MB of lines copied
    /// once more).
    const BLOCK: usize = 64 << 10;
    // A file that is there already (a partition's, read) is written over,
    // not truncated first: its cached pages are reused as they are instead
    // of freed and allocated again; what is left past the run is cut off.
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    let mut block = Vec::with_capacity(BLOCK + 1024);
    let mut written = 0;
    let writing = |e: io::Error| anyhow::Error::new(e).context(format!("writing {}", path.display()));
    // The record before, which the next is written after (kept one
    // record longer).
    let mut before: Option<R> = None;
    for r in records {
        let r = r?;
        r.write_after(before.as_deref(), &mut Enc(&mut block));
        before = Some(r);
        if block.len() >= BLOCK {
            file.write_all(&block).map_err(writing)?;
            written += block.len() as u64;
            block.clear();
        }
    }
    file.write_all(&block).map_err(writing)?;
    written += block.len() as u64;
    file.set_len(written).map_err(writing)
}

/// Sorts `rows` stably by `order`. Rows are a few hundred bytes each:
/// sorting them directly moved each one some twenty times at a million
/// rows, so the order is found on indices and then applied with one swap
/// per row.
/// Past [`PARALLEL_SORT`] rows the indices are sorted on the thread pool
/// (rayon's stable merge sort): a sort comes where the pool has nothing
/// else to do, at the end of a grouping or a replay.
pub(crate) fn sort_by<T: Sync>(rows: &mut [T], order: fn(&T, &T) -> Ordering) {
    use rayon::slice::ParallelSliceMut as _;
    let mut positions: Vec<usize> = (0..rows.len()).collect();
    if rows.len() >= PARALLEL_SORT {
        positions.par_sort_by(|&a, &b| order(&rows[a], &rows[b]));
    } else {
        positions.sort_by(|&a, &b| order(&rows[a], &rows[b]));
    }
    permute(rows, &mut positions);
}

/// Puts the row that was at `positions[i]` at `i`, with one swap per row.
fn permute<T>(rows: &mut [T], positions: &mut [usize]) {
    // Each cycle of the permutation is walked once, marking positions done
    // as it goes.
    for start in 0..rows.len() {
        let mut current = start;
        loop {
            let source = positions[current];
            positions[current] = current;
            if source == start || positions[source] == source {
                break;
            }
            rows.swap(current, source);
            current = source;
        }
    }
}

/// Rows from which [`sort_by`] sorts on the pool: below, handing the work
/// out costs more than it saves.
const PARALLEL_SORT: usize = 8192;

/// Takes `rows` a chunk of `chunk_len()` at a time (asked anew for each
/// chunk) and hands each chunk to `work` on the thread pool, while this
/// thread takes the next chunk and passes the chunk worked before to
/// `hand_on`, chunk after chunk, in order. At the end of a run (replaying,
/// formatting) nothing else is left to do: doing the work here, or handing
/// on after it, left a core idle. The rows stay on this thread until their
/// chunk goes to the pool (a sorted stream from disk is read here). An
/// error from `hand_on` ends it, once the chunk in the pool is done.
pub(crate) fn on_the_pool_in_chunks<T: Send, U: Send>(
    rows: &mut dyn Iterator<Item = T>,
    chunk_len: impl Fn() -> usize,
    work: impl Fn(Vec<T>) -> U + Sync,
    mut hand_on: impl FnMut(U) -> Result<()>,
) -> Result<()> {
    let mut chunk: Vec<T> = rows.take(chunk_len().max(1)).collect();
    let mut worked_before: Option<U> = None;
    while !chunk.is_empty() {
        let (mut worked, mut next, mut handed) = (None, Vec::new(), Ok(()));
        rayon::in_place_scope(|s| {
            let (chunk, worked, work) = (std::mem::take(&mut chunk), &mut worked, &work);
            s.spawn(move |_| *worked = Some(work(chunk)));
            next = rows.take(chunk_len().max(1)).collect();
            handed = worked_before.take().map_or(Ok(()), &mut hand_on);
        });
        handed?;
        worked_before = worked;
        chunk = next;
    }
    worked_before.map_or(Ok(()), hand_on)
}

/// Sorts records that may not all fit in memory: past `budget` records
/// (or their text past [`BYTES_A_RECORD`] each on average), each batch is
/// sorted and written as a run in a temporary folder, runs are merged
/// [`FAN_IN`] at a time as they gather, and the rest are merged when read.
/// Records pushed in input order come out as a stable sort of the whole
/// input would give them.
pub(crate) struct Sorter<T> {
    order: Order<T>,
    /// Records kept in memory at most; `None`: all of them.
    budget: Option<usize>,
    buffer: Vec<T>,
    /// What `buffer` holds.
    held: Held,
    /// The folder and its runs, once the first run is written.
    dir: Option<TempFolder>,
    runs: Vec<PathBuf>,
    /// Each run's level: 0 written from memory, n + 1 merged from
    /// [`Sorter::fan_in`] runs of level n. Never rising along `runs`.
    levels: Vec<u32>,
    /// Run files made so far (they are named by it).
    made: usize,
    /// The most runs of one level: that many are merged into one run of
    /// the next ([`FAN_IN`]).
    fan_in: usize,
    /// Names the folder (`xtenant-<what>-*`) and the errors.
    what: &'static str,
    /// Adds a record into the one before it when the two are equal in order.
    combine: Option<fn(&mut T, T)>,
}

impl<T: Record> Sorter<T> {
    pub(crate) fn new(what: &'static str, order: Order<T>, budget: Option<usize>) -> Sorter<T> {
        Sorter {
            order,
            budget: budget.map(|b| b.max(1)),
            buffer: Vec::new(),
            held: Held::new(),
            dir: None,
            runs: Vec::new(),
            levels: Vec::new(),
            made: 0,
            fan_in: FAN_IN,
            what,
            combine: None,
        }
    }

    /// Each record allowed `bytes` of text on average within the budget,
    /// instead of [`BYTES_A_RECORD`].
    pub(crate) fn text_a_record(mut self, bytes: usize) -> Sorter<T> {
        self.held.text_a_record = bytes;
        self
    }

    /// Records equal in order come out as one: each added into the one
    /// before it (in the order they were pushed) by `combine`.
    pub(crate) fn combining(mut self, combine: fn(&mut T, T)) -> Sorter<T> {
        self.combine = Some(combine);
        self
    }

    /// Sorts the buffer, and combines what is equal in it.
    fn sort_buffer(&mut self) {
        self.order.sort(&mut self.buffer);
        let Some(combine) = self.combine else { return };
        let mut combined: Vec<T> = Vec::with_capacity(self.buffer.len());
        for r in self.buffer.drain(..) {
            match combined.last_mut() {
                Some(last) if (self.order.cmp)(last, &r) == Ordering::Equal => combine(last, r),
                _ => combined.push(r),
            }
        }
        self.buffer = combined;
    }

    pub(crate) fn push(&mut self, record: T) -> Result<()> {
        self.held.add(record.text_bytes());
        push_within(&mut self.buffer, record, self.budget);
        if self.held.reaches(self.budget) {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<()> {
        self.sort_buffer();
        let what = self.what;
        let dir = match &mut self.dir {
            Some(dir) => dir,
            none => none.insert(temp_folder(what).with_context(|| folder_error(what, None))?),
        };
        let path = dir.path().join(format!("run-{:06}", self.made));
        write_run(&path, &self.buffer).with_context(|| folder_error(what, Some(dir.path())))?;
        self.made += 1;
        self.runs.push(path);
        self.levels.push(0);
        self.buffer.clear();
        self.held.clear();
        self.merge_full_levels()
    }

    /// While the last `fan_in` runs are of one level, merges them into one
    /// run of the next: the runs are never more than `fan_in` a level, so
    /// the merge that reads them at the end opens a bounded number of
    /// files and holds as many records and buffers, however many records
    /// come (a run per budget of them; 2,000 runs met a common limit of
    /// 1,024 open files). The runs merged are consecutive, so the merged
    /// run stands where they stood: ties still go to the earlier record,
    /// and equal records are combined in the order they came.
    fn merge_full_levels(&mut self) -> Result<()> {
        let what = self.what;
        while let Some(&level) = self.levels.last() {
            if self.levels.iter().rev().take_while(|&&l| l == level).count() < self.fan_in {
                return Ok(());
            }
            let Some(dir) = &self.dir else { return Ok(()) };
            let from = self.runs.len() - self.fan_in;
            let merged = self.runs.split_off(from);
            self.levels.truncate(from);
            let path = dir.path().join(format!("run-{:06}", self.made));
            merge_into(&merged, &path, self.order, self.combine)
                .with_context(|| folder_error(what, Some(dir.path())))?;
            self.made += 1;
            self.runs.push(path);
            self.levels.push(level + 1);
        }
        Ok(())
    }

    /// The records in order.
    pub(crate) fn finish(mut self) -> Result<Stream<T>> {
        if self.dir.is_some() && !self.buffer.is_empty() {
            self.write_buffer()?;
        }
        let Some(dir) = self.dir.take() else {
            self.sort_buffer();
            return Ok(Stream::memory(self.buffer));
        };
        let what = self.what;
        let merge = Merge::open(dir, std::mem::take(&mut self.runs), self.order, self.combine)
            .with_context(|| format!("reading back the {what} temporary folder"))?;
        Ok(Stream::merged(merge))
    }
}

/// Merges the runs at `runs` (in the order they were cut) into one run at
/// `to`, and removes them: ties go to the earlier run, equal records are
/// combined with `combine` in that order, as the merge that reads them
/// would. `to` may be a file of the same folder that is not a run (it is
/// written over).
pub(crate) fn merge_into<T: Record>(
    runs: &[PathBuf],
    to: &Path,
    order: Order<T>,
    combine: Option<fn(&mut T, T)>,
) -> Result<()> {
    let mut merge = Merge::open_in(None, runs.to_vec(), order, combine)?;
    write_records(to, std::iter::from_fn(|| merge.next_record().transpose()))?;
    drop(merge);
    for run in runs {
        let _ = std::fs::remove_file(run);
    }
    Ok(())
}

/// Records added up by key: each combined into the one of its key held in
/// a hash map, up to `budget` keys (or a kilobyte of text a key on
/// average); past it, what is held goes to a [`Sorter`] combining in the
/// same way, which takes it to disk. What grows with apps (a report's
/// per-app figures) is added up at a hash lookup a record while there are
/// as few as Entra's logs name, and within the budget however many a
/// forged export names. The records come out one per key, in `order`.
pub(crate) struct Tally<K, T> {
    by: ByKey<K, T>,
    held: HashMap<K, T>,
    /// What `held` holds.
    weight: Held,
    budget: Option<usize>,
    sorter: Sorter<T>,
}

/// How a [`Tally`] adds records up: by `key`, each into the one before it
/// of its key by `combine`, coming out in `order`, which must agree with
/// `key` (records of one key equal in order, of two keys not). `combine`
/// must not depend on the order records come in (a sum, a newest name by
/// its time): past the budget, the held records go to the sorter in the
/// map's order.
pub(crate) struct ByKey<K, T> {
    pub(crate) key: fn(&T) -> K,
    pub(crate) order: Order<T>,
    pub(crate) combine: fn(&mut T, T),
}

impl<K: std::hash::Hash + Eq, T: Record> Tally<K, T> {
    pub(crate) fn new(what: &'static str, by: ByKey<K, T>, budget: Option<usize>) -> Tally<K, T> {
        let sorter = Sorter::new(what, by.order, budget).combining(by.combine);
        Tally { by, held: HashMap::default(), weight: Held::new(), budget, sorter }
    }

    /// Each key allowed `bytes` of text on average ([`Sorter::text_a_record`]).
    pub(crate) fn text_a_record(mut self, bytes: usize) -> Tally<K, T> {
        self.weight.text_a_record = bytes;
        self.sorter = self.sorter.text_a_record(bytes);
        self
    }

    pub(crate) fn add(&mut self, record: T) -> Result<()> {
        match self.held.entry((self.by.key)(&record)) {
            Entry::Occupied(mut held) => {
                // A combined record may hold other texts than before (a
                // newer name): weighed again.
                let before = held.get().text_bytes();
                (self.by.combine)(held.get_mut(), record);
                self.weight.bytes =
                    self.weight.bytes.saturating_add(held.get().text_bytes()).saturating_sub(before);
            }
            Entry::Vacant(slot) => self.weight.add(slot.insert(record).text_bytes()),
        }
        if self.weight.reaches(self.budget) {
            self.weight.clear();
            for (_, record) in self.held.drain() {
                self.sorter.push(record)?;
            }
        }
        Ok(())
    }

    /// One record a key, in order.
    pub(crate) fn finish(mut self) -> Result<Stream<T>> {
        for (_, record) in self.held.drain() {
            self.sorter.push(record)?;
        }
        self.sorter.finish()
    }
}

/// A text seen with a tenant (an app's name with a partner), told once each
/// by a [`Tally`] in [`TENANT_TEXTS`], to count each tenant's distinct
/// texts ([`count_per_tenant`]) with memory that does not grow with them:
/// the report's app names a partner, the apps a replay's partner loses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TenantText {
    pub(crate) tenant: Guid,
    pub(crate) text: Name,
}

impl Record for TenantText {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.tenant.0);
        enc.str(&self.text);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(TenantText { tenant: Guid(dec.u128()?), text: dec.name(0)? })
    }

    fn text_bytes(&self) -> usize {
        self.text.len()
    }
}

/// [`TenantText`]s told once each, by tenant then text.
pub(crate) const TENANT_TEXTS: ByKey<(Guid, Name), TenantText> = ByKey {
    key: |t| (t.tenant, t.text.clone()),
    order: Order {
        cmp: |a, b| a.tenant.cmp(&b.tenant).then_with(|| a.text.cmp(&b.text)),
        key: |t, out| {
            out.extend_from_slice(&t.tenant.0.to_be_bytes());
            key::text(out, &t.text);
        },
        sort: None,
    },
    combine: |_, _| {},
};

/// A count with a tenant (a partner's distinct users or app names), added
/// up by a [`Tally`] in [`TENANT_COUNTS`] or made by [`count_per_tenant`]:
/// one record a tenant, in tenant order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TenantCount {
    pub(crate) tenant: Guid,
    pub(crate) count: u64,
}

impl Record for TenantCount {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.tenant.0);
        enc.u64(self.count);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(TenantCount { tenant: Guid(dec.u128()?), count: dec.u64()? })
    }

    fn text_bytes(&self) -> usize {
        0
    }
}

/// [`TenantCount`]s added up by tenant, in tenant order.
pub(crate) const TENANT_COUNTS: ByKey<Guid, TenantCount> = ByKey {
    key: |t| t.tenant,
    order: Order {
        cmp: |a, b| a.tenant.cmp(&b.tenant),
        key: |t, out| out.extend_from_slice(&t.tenant.0.to_be_bytes()),
        sort: None,
    },
    combine: |into, other| into.count = into.count.saturating_add(other.count),
};

/// How many distinct texts each tenant of `tally` has, in tenant order, one
/// record a tenant as they are read (a million partners are not held).
pub(crate) fn count_per_tenant(tally: Tally<(Guid, Name), TenantText>) -> Result<Stream<TenantCount>> {
    let mut texts = Some(tally.finish()?);
    let mut next: Option<TenantText> = None;
    Ok(Stream::made(move || {
        let Some(stream) = texts.as_mut() else { return Ok(None) };
        let Some(first) = next.take().or_else(|| stream.next()) else {
            // Whether every text was read: an error ends the stream.
            texts.take().map_or(Ok(()), Stream::finish)?;
            return Ok(None);
        };
        let mut count = 1u64;
        for t in stream.by_ref() {
            if t.tenant != first.tenant {
                next = Some(t);
                break;
            }
            count += 1;
        }
        Ok(Some(TenantCount { tenant: first.tenant, count }))
    }))
}

/// The most runs of one level a [`Sorter`] keeps before merging them into
/// one: its final merge reads at most this many a level (a level is a
/// factor of 128 more records), with a 32 KB buffer and a record each.
const FAN_IN: usize = 128;

/// Pushes `record`, the buffer growing to no more room than `budget`
/// records: grown by doubling alone, a buffer of 100,000 rows had room for
/// 131,072 (`propose`'s rows of a partner: 52 MB where 40 were used).
fn push_within<T>(buffer: &mut Vec<T>, record: T, budget: Option<usize>) {
    if let Some(budget) = budget {
        if buffer.len() == buffer.capacity() {
            let left = budget.saturating_sub(buffer.len()).max(1);
            buffer.reserve_exact(buffer.capacity().max(4).min(left));
        }
    }
    buffer.push(record);
}

/// Records kept for a second reading, in the order they came: in memory up
/// to `budget` records, past it all of them in one file of a temporary
/// folder, read back from the start ([`Spool::finish`]). For a document
/// that opens with a summary of the rows it then lists.
pub(crate) struct Spool<T> {
    budget: Option<usize>,
    buffer: Vec<T>,
    /// What `buffer` holds.
    held: Held,
    /// The folder, its file and the writer, once the budget is passed.
    file: Option<(TempFolder, PathBuf, BufWriter<File>)>,
    record: Vec<u8>,
    what: &'static str,
}

impl<T: Record> Spool<T> {
    pub(crate) fn new(what: &'static str, budget: Option<usize>) -> Spool<T> {
        Spool {
            budget: budget.map(|b| b.max(1)),
            buffer: Vec::new(),
            held: Held::new(),
            file: None,
            record: Vec::new(),
            what,
        }
    }

    pub(crate) fn push(&mut self, record: T) -> Result<()> {
        let what = self.what;
        match &mut self.file {
            Some((dir, _, w)) => {
                self.record.clear();
                record.write(&mut Enc(&mut self.record));
                w.write_all(&self.record).with_context(|| folder_error(what, Some(dir.path())))?;
            }
            None => {
                self.held.add(record.text_bytes());
                push_within(&mut self.buffer, record, self.budget);
                if self.held.reaches(self.budget) {
                    self.move_to_file()?;
                }
            }
        }
        Ok(())
    }

    /// Each record allowed `bytes` of text on average within the budget,
    /// instead of [`BYTES_A_RECORD`].
    pub(crate) fn text_a_record(mut self, bytes: usize) -> Spool<T> {
        self.held.text_a_record = bytes;
        self
    }

    /// Says that `more` records are still to come: if they would bring the
    /// spool to its budget, it moves to its file now, so that they do
    /// not gather in memory first only to be written out at the budget (a
    /// budget's worth of rows is some 50 MB).
    pub(crate) fn expect(&mut self, more: usize) -> Result<()> {
        // At the budget the spool moves to its file anyway ([`Spool::push`]).
        if self.file.is_none() && self.budget.is_some_and(|b| self.buffer.len().saturating_add(more) >= b) {
            self.move_to_file()?;
        }
        Ok(())
    }

    /// Moves the records so far to the spool's file, where the next go.
    fn move_to_file(&mut self) -> Result<()> {
        let what = self.what;
        let dir = temp_folder(what).with_context(|| folder_error(what, None))?;
        let path = dir.path().join("spool");
        let file = File::create(&path).with_context(|| folder_error(what, Some(dir.path())))?;
        self.file = Some((dir, path, BufWriter::with_capacity(64 << 10, file)));
        for r in std::mem::take(&mut self.buffer) {
            self.push(r)?;
        }
        Ok(())
    }

    /// The records, to be read as often as needed ([`Kept`]); nothing more
    /// is pushed.
    pub(crate) fn keep(self) -> Result<Kept<T>> {
        let what = self.what;
        let file = match self.file {
            None => None,
            Some((dir, path, mut w)) => {
                w.flush().with_context(|| folder_error(what, Some(dir.path())))?;
                Some((dir, path))
            }
        };
        Ok(Kept { buffer: self.buffer, file, what })
    }

    /// The records again, in the order they were pushed.
    pub(crate) fn finish(self) -> Result<Stream<T>> {
        self.keep()?.into_stream()
    }
}

/// A [`Spool`]'s records, read from the first as often as needed: a
/// partner's rows, which `propose` reads once per trial of its plan. In
/// memory as they are, or from their file a chunk at a time.
pub(crate) struct Kept<T> {
    buffer: Vec<T>,
    file: Option<(TempFolder, PathBuf)>,
    what: &'static str,
}

impl<T: Record> Kept<T> {
    /// Hands the records to `f` in order, up to `chunk` at a time (those
    /// in memory all at once). From the file, the next chunk is read on a
    /// thread of its own while `f` works on this one.
    pub(crate) fn each_chunk(&self, chunk: usize, mut f: impl FnMut(&[T])) -> Result<()> {
        let Some((_, path)) = &self.file else {
            f(&self.buffer);
            return Ok(());
        };
        let reading = || format!("reading back the {} temporary folder", self.what);
        let file = File::open(path).with_context(reading)?;
        let chunk = chunk.max(1);
        std::thread::scope(|scope| {
            let (send, chunks) = mpsc::sync_channel::<io::Result<Vec<T>>>(1);
            scope.spawn(move || {
                let mut dec = Dec::new(BufReader::with_capacity(64 << 10, file));
                send_in_batches((chunk, T::text_bytes), || dec.unless_at_end(T::read), &send);
            });
            // Dropping `chunks` on an error stops the reader at its next send.
            chunks.iter().try_for_each(|batch| batch.map(|b| f(&b))).with_context(reading)
        })
    }

    /// The records once more, each handed to `f` as it is read; the file
    /// goes after.
    pub(crate) fn into_each(self, mut f: impl FnMut(T) -> Result<()>) -> Result<()> {
        let mut records = self.into_stream()?;
        records.by_ref().try_for_each(&mut f)?;
        records.finish()
    }

    /// The records once more, as a stream; the file goes with it.
    fn into_stream(self) -> Result<Stream<T>> {
        let Some((dir, path)) = self.file else { return Ok(Stream::memory(self.buffer)) };
        // One run: the merge hands its records on as they were written.
        let merge = Merge::open(dir, vec![path], Order::ARRIVAL, None)
            .with_context(|| format!("reading back the {} temporary folder", self.what))?;
        Ok(Stream::merged(merge))
    }
}

/// The runs of a folder merged into one order: the least of the runs'
/// next keys chosen by a tree of losers ([`LoserTree`]), each key carrying
/// the length of the prefix it shares with the key handed on before it.
/// Keys of rows in output order share some hundred bytes (direction,
/// partner, access type, app: all but the user); a binary heap compared
/// them whole, twice per level of the heap, and its comparisons and moves
/// were a quarter of the merge thread's time at a million rows.
pub(crate) struct Merge<T> {
    /// Removed with the merge (none: a [`Sorter`] merging some of its runs
    /// into one keeps its folder).
    _dir: Option<TempFolder>,
    runs: Vec<(PathBuf, Dec<BufReader<File>>)>,
    /// Each run's next record, `None` once the run is read. Boxed: it goes
    /// to the reader's thread as it is, not copied out and into a batch (a
    /// row is a few hundred bytes).
    next: Vec<Option<Box<T>>>,
    /// Each run's next key ([`Order::key`]) and its length, `None` once the
    /// run is read: what the tournament plays.
    keys: Vec<(Vec<u8>, Option<usize>)>,
    /// The tournament, played at the first record asked for ([`merge_text`]
    /// plays its own, over the lines).
    tree: Option<LoserTree>,
    /// The key of the record handed on last.
    written: Vec<u8>,
    order: Order<T>,
    /// Adds a record into the one before it when the two are equal in
    /// order; `None`: equal records are handed on one by one.
    combine: Option<fn(&mut T, T)>,
}

impl<T: Record> Merge<T> {
    /// Opens the runs at `paths` (in the order they were cut) in `dir`.
    pub(crate) fn open(
        dir: TempFolder,
        paths: Vec<PathBuf>,
        order: Order<T>,
        combine: Option<fn(&mut T, T)>,
    ) -> Result<Merge<T>> {
        Merge::open_in(Some(dir), paths, order, combine)
    }

    /// [`Merge::open`], the folder removed with the merge if given.
    fn open_in(
        dir: Option<TempFolder>,
        paths: Vec<PathBuf>,
        order: Order<T>,
        combine: Option<fn(&mut T, T)>,
    ) -> Result<Merge<T>> {
        let mut runs = Vec::with_capacity(paths.len());
        for path in paths {
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            runs.push((path, Dec::new(BufReader::with_capacity(32 << 10, file))));
        }
        let next = (0..runs.len()).map(|_| None).collect();
        let keys = vec![(Vec::new(), None); runs.len()];
        let mut merge =
            Merge { _dir: dir, runs, next, keys, tree: None, written: Vec::new(), order, combine };
        for run in 0..merge.runs.len() {
            merge.refill(run, None)?;
        }
        Ok(merge)
    }

    /// Reads run `run`'s next record and its key, after `before`, the
    /// run's record before it.
    fn refill(&mut self, run: usize, before: Option<&T>) -> Result<()> {
        let (path, dec) = &mut self.runs[run];
        let next = dec.unless_at_end(|dec| T::read_after(dec, before));
        let next = next.with_context(|| format!("reading {}", path.display()))?;
        let (key, len) = &mut self.keys[run];
        key.clear();
        *len = next.as_ref().map(|record| {
            (self.order.key)(record, key);
            key.len()
        });
        self.next[run] = next.map(Box::new);
        Ok(())
    }

    /// Takes the next record of the tournament's winner, reads the run's
    /// one after it and plays it (its offset: the prefix its key shares
    /// with the key just handed on, `written`).
    fn take_winner(&mut self, tree: &mut LoserTree) -> Result<Option<Box<T>>> {
        let run = tree.winner;
        let Some(record) = self.next.get_mut(run).and_then(Option::take) else { return Ok(None) };
        self.refill(run, Some(&record))?;
        let shared = self.keys[run].1.map(|len| common_prefix(&self.keys[run].0[..len], &self.written));
        tree.replay(&self.keys, shared);
        Ok(Some(record))
    }

    /// The runs as two merges, of the lower half of them and of the
    /// higher ([`merge_record_halves`]); none from fewer than
    /// [`SPLIT_FROM_RUNS`] runs, on one core, or once the merge has begun.
    fn halves(&mut self) -> Option<(Merge<T>, Merge<T>)> {
        let runs = self.runs.len();
        if runs < SPLIT_FROM_RUNS
            || self.tree.is_some()
            || !std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
        {
            return None;
        }
        let mut split_off = |from: usize| Merge {
            _dir: None,
            runs: self.runs.split_off(from),
            next: self.next.split_off(from),
            keys: self.keys.split_off(from),
            tree: None,
            written: Vec::new(),
            order: self.order,
            combine: self.combine,
        };
        let high = split_off(runs / 2);
        let low = split_off(0);
        Some((low, high))
    }

    /// The next record in order, or `None` after the last: the lesser key,
    /// the earlier run on a tie. Still boxed: it goes to the reader's
    /// thread as it is.
    pub(crate) fn next_record(&mut self) -> Result<Option<Box<T>>> {
        let mut tree = self.tree.take().unwrap_or_else(|| LoserTree::new(&self.keys));
        let winner = tree.winner;
        let Some((key, Some(_))) = self.keys.get_mut(winner) else { return Ok(None) };
        // The key handed on is the one the next keys are told against.
        std::mem::swap(&mut self.written, key);
        let next = self.take_winner(&mut tree);
        let mut record = match next {
            Ok(Some(record)) => record,
            other => return other,
        };
        if let Some(combine) = self.combine {
            while line_key(&self.keys, tree.winner) == Some(&self.written[..]) {
                let Some(same) = self.take_winner(&mut tree)? else { break };
                combine(&mut record, *same);
            }
        }
        self.tree = Some(tree);
        Ok(Some(record))
    }
}

/// [`Merge`] run on a thread of its own, a batch of records ahead of the
/// reader: reading the runs back and writing the output then share the
/// cores instead of taking turns. A few batches are in flight at most.
pub(crate) struct Prefetched<T> {
    batches: Option<mpsc::Receiver<Result<Vec<Box<T>>>>>,
    current: std::vec::IntoIter<Box<T>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Record> Prefetched<T> {
    pub(crate) fn start(mut merge: Merge<T>) -> Prefetched<T> {
        let (send, batches) = mpsc::sync_channel(4);
        let thread = std::thread::spawn(move || {
            match merge.halves() {
                Some(halves) => merge_record_halves(halves, (merge.order, merge.combine), &send),
                None => send_in_batches(record_batch(), || merge.next_record(), &send),
            }
            // The temporary folder goes before the reader sees the end.
            drop(merge);
        });
        Prefetched { batches: Some(batches), current: Vec::new().into_iter(), thread: Some(thread) }
    }

    /// The next record in order, or `None` after the last.
    pub(crate) fn next_record(&mut self) -> Result<Option<T>> {
        loop {
            if let Some(record) = self.current.next() {
                return Ok(Some(*record));
            }
            match self.batches.as_ref().and_then(|b| b.recv().ok()) {
                Some(Ok(batch)) => self.current = batch.into_iter(),
                Some(Err(e)) => return Err(e),
                None => {
                    // The end, unless the merge stopped without saying why:
                    // then the records after it would be silently missing.
                    self.batches = None;
                    if let Some(t) = self.thread.take() {
                        if t.join().is_err() {
                            anyhow::bail!(
                                "internal error: merging temporary files failed; please report this"
                            );
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }
}

/// A merged record's text, by which [`send_in_batches`] weighs a batch.
#[allow(clippy::borrowed_box)]
fn record_text_bytes<T: Record>(r: &Box<T>) -> usize {
    r.as_ref().text_bytes()
}

/// A batch of merged records ([`send_in_batches`]): 1,024 records, fewer
/// of long texts.
#[allow(clippy::type_complexity)]
const fn record_batch<T: Record>() -> (usize, fn(&Box<T>) -> usize) {
    (1024, record_text_bytes::<T>)
}

/// Adds a record into one equal to it in order ([`Sorter::combining`]).
type Combine<T> = fn(&mut T, T);

/// Merges each half of the runs on a thread of its own, and the two
/// halves' records here: by key, on a tie the lower half's first (as the
/// lower run's is in one merge), and with `combine` the two added together
/// (each half has added up its own; every `combine` is a sum, the earliest
/// or the latest, so adding up by halves gives what adding up run after
/// run gives). Reading and decoding the runs is most of a merge of rows:
/// at a million groups it kept one core busy for two seconds while
/// `propose`, reading the rows, waited for it on the other.
fn merge_record_halves<T: Record>(
    (low, high): (Merge<T>, Merge<T>),
    (order, combine): (Order<T>, Option<Combine<T>>),
    send: &mpsc::SyncSender<Result<Vec<Box<T>>>>,
) {
    std::thread::scope(|scope| {
        let (mut low, mut high) = (RecordHalf::start(scope, low), RecordHalf::start(scope, high));
        // Each half's next record, once the first is asked for.
        let mut heads: Option<[Option<Box<T>>; 2]> = None;
        let (mut low_key, mut high_key) = (Vec::new(), Vec::new());
        send_in_batches(
            record_batch(),
            || -> Result<Option<Box<T>>> {
                let [a, b] = match &mut heads {
                    Some(heads) => heads,
                    none => none.insert([low.next(&mut low_key, order)?, high.next(&mut high_key, order)?]),
                };
                let from = match (&*a, &*b) {
                    (Some(_), Some(_)) => low_key.cmp(&high_key),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => return Ok(None),
                };
                match (from, combine) {
                    (Ordering::Equal, Some(combine)) => {
                        let (Some(mut first), Some(second)) = (a.take(), b.take()) else { return Ok(None) };
                        combine(&mut first, *second);
                        (*a, *b) = (low.next(&mut low_key, order)?, high.next(&mut high_key, order)?);
                        Ok(Some(first))
                    }
                    (Ordering::Less | Ordering::Equal, _) => {
                        let first = a.take();
                        *a = low.next(&mut low_key, order)?;
                        Ok(first)
                    }
                    (Ordering::Greater, _) => {
                        let first = b.take();
                        *b = high.next(&mut high_key, order)?;
                        Ok(first)
                    }
                }
            },
            send,
        );
        // Dropping the halves' receivers stops their threads at their next
        // send, should the reader be gone.
        drop((low, high));
    });
}

/// One half's merged records from [`merge_record_halves`], a batch at a
/// time.
struct RecordHalf<T> {
    batches: mpsc::Receiver<Result<Vec<Box<T>>>>,
    current: std::vec::IntoIter<Box<T>>,
}

impl<T: Record> RecordHalf<T> {
    /// Merges `merge` on a thread of `scope`.
    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>, mut merge: Merge<T>) -> RecordHalf<T> {
        let (send, batches) = mpsc::sync_channel(2);
        scope.spawn(move || send_in_batches(record_batch(), || merge.next_record(), &send));
        RecordHalf { batches, current: Vec::new().into_iter() }
    }

    /// The half's next record, its key (`order`) in `key`; `None` at the
    /// end of the half.
    fn next(&mut self, key: &mut Vec<u8>, order: Order<T>) -> Result<Option<Box<T>>> {
        loop {
            if let Some(record) = self.current.next() {
                key.clear();
                (order.key)(&record, key);
                return Ok(Some(record));
            }
            match self.batches.recv() {
                Ok(batch) => self.current = batch?.into_iter(),
                Err(_) => return Ok(None),
            }
        }
    }
}

/// Sends what `next` gives, `len` records a batch (or fewer whose texts
/// reach 4 KB a record: a forged export's rows of 16 KB each, 4,096 of them
/// a batch and three batches in flight, were 200 MB), until it ends, fails
/// (the failure sent last) or nobody receives any more.
fn send_in_batches<T, E>(
    (len, text_bytes): (usize, fn(&T) -> usize),
    mut next: impl FnMut() -> Result<Option<T>, E>,
    send: &mpsc::SyncSender<Result<Vec<T>, E>>,
) {
    loop {
        let mut batch = Vec::with_capacity(len);
        let mut held = Held { text_a_record: 4 << 10, ..Held::new() };
        let end = loop {
            if held.reaches(Some(len)) {
                break Ok(false);
            }
            match next() {
                Ok(Some(record)) => {
                    held.add(text_bytes(&record));
                    batch.push(record);
                }
                Ok(None) => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        let done = !matches!(end, Ok(false));
        let sent = match end {
            Err(e) => send.send(Err(e)),
            Ok(_) if batch.is_empty() => Ok(()),
            Ok(_) => send.send(Ok(batch)),
        };
        if done || sent.is_err() {
            break;
        }
    }
}

impl<T> Drop for Prefetched<T> {
    /// Stops the merge early if it is still running, and waits for it to
    /// remove the temporary folder.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Rows in order, from memory or from a merge on disk. Reading from disk
/// can fail: after the last row, [`Stream::finish`] says whether every row
/// was read.
pub(crate) struct Stream<T> {
    rows: Rows<T>,
    error: Option<anyhow::Error>,
}

enum Rows<T> {
    Memory(std::vec::IntoIter<T>),
    /// Opened, not yet read: the merge starts at the first row asked for,
    /// so that lines can be merged as text instead ([`Stream::write_text`]).
    Pending(Box<Merge<T>>),
    Merged(Prefetched<T>),
    /// Made one at a time by a function (from other streams: rows joined
    /// with counts), which reports an error as the end.
    Made(Box<Made<T>>),
}

/// What makes a stream's records one at a time ([`Stream::made`]).
type Made<T> = dyn FnMut() -> Result<Option<T>> + Send;

impl<T: Record> Stream<T> {
    /// Rows already in order.
    pub(crate) fn memory(rows: Vec<T>) -> Stream<T> {
        Stream { rows: Rows::Memory(rows.into_iter()), error: None }
    }

    pub(crate) fn merged(merge: Merge<T>) -> Stream<T> {
        Stream { rows: Rows::Pending(Box::new(merge)), error: None }
    }

    /// Records made by `next` until it says there are no more or fails.
    pub(crate) fn made(next: impl FnMut() -> Result<Option<T>> + Send + 'static) -> Stream<T> {
        Stream { rows: Rows::Made(Box::new(next)), error: None }
    }

    /// The memory budget for keeping these rows for a second reading
    /// ([`Spool`]): `budget` if they are in memory (so there are fewer of
    /// them than it), none if they came through the disk: they go back to
    /// it at once, not into memory first.
    pub(crate) fn budget_again(&self, budget: Option<usize>) -> Option<usize> {
        match self.rows {
            Rows::Memory(_) => budget,
            Rows::Pending(_) | Rows::Merged(_) | Rows::Made(_) => Some(0),
        }
    }

    /// The rows not yet read, when they are in memory and none failed to
    /// be read; else the stream as it was.
    pub(crate) fn into_memory(self) -> std::result::Result<Vec<T>, Stream<T>> {
        match self.rows {
            Rows::Memory(rows) if self.error.is_none() => Ok(rows.collect()),
            rows => Err(Stream { rows, error: self.error }),
        }
    }

    /// Whether the rows were all read: an error if one could not be.
    pub(crate) fn finish(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }

    /// The rows one at a time, then, if one could not be read, the error
    /// instead of the end: for a reader that cannot call [`Stream::finish`]
    /// after it (a document's section).
    pub(crate) fn into_results(self) -> impl Iterator<Item = Result<T>> + Send {
        let mut stream = Some(self);
        std::iter::from_fn(move || {
            let s = stream.as_mut()?;
            match s.next() {
                Some(row) => Some(Ok(row)),
                None => stream.take().and_then(|s| s.finish().err()).map(Err),
            }
        })
    }

    /// All the rows at once.
    pub(crate) fn collect_rows(mut self) -> Result<Vec<T>> {
        let rows = self.by_ref().collect();
        self.finish()?;
        Ok(rows)
    }
}

impl<T: Record> Iterator for Stream<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if let Rows::Pending(_) = self.rows {
            if let Rows::Pending(merge) =
                std::mem::replace(&mut self.rows, Rows::Memory(Vec::new().into_iter()))
            {
                self.rows = Rows::Merged(Prefetched::start(*merge));
            }
        }
        let read = match &mut self.rows {
            Rows::Memory(rows) => return rows.next(),
            Rows::Pending(_) => return None,
            Rows::Merged(merge) => merge.next_record(),
            Rows::Made(next) => next(),
        };
        read.unwrap_or_else(|e| {
            self.error = Some(e);
            self.rows = Rows::Memory(Vec::new().into_iter());
            None
        })
    }
}

impl Stream<Line> {
    /// Writes the lines' text in order. From a merge not yet started, the
    /// runs are merged as text on a thread of its own ([`merge_text`]) and
    /// handed to `w` a chunk of many lines at a time: no line is built,
    /// boxed and freed one by one, which was most of the merge's work once
    /// the rows were written out where they were sorted. Errors reading
    /// the runs or writing are the result.
    pub(crate) fn write_text(mut self, w: &mut dyn Write) -> Result<()> {
        let merge = match std::mem::replace(&mut self.rows, Rows::Memory(Vec::new().into_iter())) {
            Rows::Pending(merge) => merge,
            started => {
                self.rows = started;
                for line in self.by_ref() {
                    w.write_all(line.text())?;
                }
                return self.finish();
            }
        };
        let (send, chunks) = mpsc::sync_channel::<Result<Vec<u8>>>(4);
        let thread = std::thread::spawn(move || merge_text(*merge, &send));
        // Dropping `chunks` on an error stops the merge at its next send.
        let written = chunks.iter().try_for_each(|chunk| w.write_all(&chunk?).map_err(anyhow::Error::from));
        drop(chunks);
        if thread.join().is_err() {
            anyhow::bail!("internal error: merging temporary files failed; please report this");
        }
        written
    }
}

/// Merges the runs of `merge` as text: each run's next line in a buffer
/// of its own, reused line after line, the least chosen by a tournament,
/// its text appended to a chunk sent when full. The order is
/// [`Merge::next_record`]'s without `combine` (lines are not combined):
/// the lesser key, the earlier run on a tie.
///
/// The tournament is a tree of losers with offset-value coding: each run's
/// next key carries the length of the prefix it shares with the key that
/// beat it (or, for the run whose line was just written, with that line's
/// key), and two keys compared against the same winner are ordered by
/// those lengths alone when they differ (the longer shared prefix is the
/// lesser key), and otherwise compared from there on. Keys of rows in
/// output order share long prefixes (direction, partner, access type,
/// app: some 110 bytes before the user); comparing them whole at every
/// level of the tree was two fifths of the merge thread's time at a
/// million rows (the rest: reading the runs, copying the text), and the
/// comparisons cost a quarter less so.
///
/// From [`SPLIT_FROM_RUNS`] runs, each half of them is merged so on a
/// thread of its own and the two halves' lines here ([`merge_halves`]).
fn merge_text(mut merge: Merge<Line>, send: &mpsc::SyncSender<Result<Vec<u8>>>) {
    let runs = merge.runs.len();
    let heads: Vec<Option<Line>> =
        std::mem::take(&mut merge.next).into_iter().map(|h| h.map(|l| *l)).collect();
    // Each run's next line (key then text) and its key's length; `None`
    // once the run is read.
    let mut lines: Vec<(Vec<u8>, Option<usize>)> = heads
        .into_iter()
        .map(|h| h.map_or((Vec::new(), None), |l| (l.bytes.into_vec(), Some(l.key_len as usize))))
        .collect();
    if runs >= SPLIT_FROM_RUNS && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        let (low_lines, high_lines) = (lines.drain(..runs / 2).collect(), lines);
        let (low_runs, high_runs) = merge.runs.split_at_mut(runs / 2);
        merge_halves((low_runs, low_lines), (high_runs, high_lines), send);
    } else {
        let mut out = TextChunks::new(send);
        let merged = merge_runs(&mut merge.runs, lines, |bytes, k| out.push(&bytes[k..]));
        out.end(merged);
    }
    // The temporary folder goes (with `merge`) before the writer sees the end.
}

/// From how many runs [`merge_text`] merges two halves of them on two
/// threads and the halves' lines on a third: with 256 runs (the grouping's
/// partitions), one thread reading every run, playing a tree of eight
/// levels and copying every line was the last half second of a million
/// rows, the other core mostly idle.
const SPLIT_FROM_RUNS: usize = 8;

/// Text for the writer, sent a chunk of many lines at a time.
struct TextChunks<'s> {
    chunk: Vec<u8>,
    send: &'s mpsc::SyncSender<Result<Vec<u8>>>,
}

impl<'s> TextChunks<'s> {
    const CHUNK: usize = 256 << 10;

    fn new(send: &'s mpsc::SyncSender<Result<Vec<u8>>>) -> Self {
        TextChunks { chunk: Vec::with_capacity(Self::CHUNK + (64 << 10)), send }
    }

    /// Appends `text`; false once the writer is gone.
    fn push(&mut self, text: &[u8]) -> bool {
        self.push_parts(&[text])
    }

    /// Appends the parts, in one chunk; false once the writer is gone.
    fn push_parts(&mut self, parts: &[&[u8]]) -> bool {
        for part in parts {
            self.chunk.extend_from_slice(part);
        }
        if self.chunk.len() < Self::CHUNK {
            return true;
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(Self::CHUNK + (64 << 10)));
        self.send.send(Ok(full)).is_ok()
    }

    /// Sends what is left, or, if the merge failed, its error (the lines
    /// after the last full chunk are not sent).
    fn end(self, merged: Result<()>) {
        let last = match merged {
            Ok(()) if self.chunk.is_empty() => return,
            Ok(()) => Ok(self.chunk),
            Err(e) => Err(e),
        };
        let _ = self.send.send(last);
    }
}

/// Runs being read, each with its next line as [`merge_text`] holds it.
type RunsAndLines<'r> = (&'r mut [(PathBuf, Dec<BufReader<File>>)], Vec<(Vec<u8>, Option<usize>)>);

/// Merges each half of the runs on a thread of its own into chunks of
/// keyed lines (the key's and the line's length, then the line), and the
/// two halves' lines here, by key; on a tie the lower half's first, as the
/// lower run's is in one merge. Every line is copied once more, and the
/// reading of the runs and the trees' matches are shared by two threads.
fn merge_halves(low: RunsAndLines<'_>, high: RunsAndLines<'_>, send: &mpsc::SyncSender<Result<Vec<u8>>>) {
    std::thread::scope(|scope| {
        let (mut low, mut high) = (merge_half(scope, low), merge_half(scope, high));
        let mut out = TextChunks::new(send);
        let merged = (|| -> Result<()> {
            let (mut a, mut b) = (low.next()?, high.next()?);
            loop {
                let from_low = match (&a, &b) {
                    (Some((ka, _)), Some((kb, _))) => low.at(ka) <= high.at(kb),
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => return Ok(()),
                };
                let (lines, line) = if from_low { (&mut low, &mut a) } else { (&mut high, &mut b) };
                let Some((_, text)) = line else { return Ok(()) };
                if !out.push(lines.at(text)) {
                    return Ok(());
                }
                *line = lines.next()?;
            }
        })();
        out.end(merged);
        // Dropping the halves' receivers stops their threads at their next
        // send, should the writer be gone.
        drop((low, high));
    });
}

/// Merges one half of the runs on a thread of `scope` into chunks of keyed
/// lines ([`merge_halves`]).
fn merge_half<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    (runs, lines): RunsAndLines<'env>,
) -> KeyedLines {
    let (to_merge, chunks) = mpsc::sync_channel::<Result<Vec<u8>>>(4);
    scope.spawn(move || {
        let mut out = TextChunks::new(&to_merge);
        let mut head = [0u8; 8];
        let merged = merge_runs(runs, lines, |bytes, k| {
            head[..4].copy_from_slice(&(k as u32).to_le_bytes());
            head[4..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            // Whole in one chunk: the halves' reader takes a line from one.
            out.push_parts(&[&head, bytes])
        });
        out.end(merged);
    });
    KeyedLines { chunks, chunk: Vec::new(), at: 0 }
}

/// One half's keyed lines from [`merge_halves`], a chunk at a time.
struct KeyedLines {
    chunks: mpsc::Receiver<Result<Vec<u8>>>,
    chunk: Vec<u8>,
    /// Where the next keyed line begins in `chunk`.
    at: usize,
}

impl KeyedLines {
    /// The next line's key and text as ranges into the chunk, `None` at
    /// the end of the half.
    #[allow(clippy::type_complexity)]
    fn next(&mut self) -> Result<Option<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
        if self.at == self.chunk.len() {
            match self.chunks.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk?, 0),
                Err(_) => return Ok(None),
            }
        }
        let word = |at: usize| {
            self.chunk.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        };
        let start = self.at + 8;
        let lengths = word(self.at).zip(word(self.at + 4));
        let Some((key, len)) = lengths.filter(|&(key, len)| key <= len && start + len <= self.chunk.len())
        else {
            anyhow::bail!("internal error: a merged half's line was cut short; please report this");
        };
        self.at = start + len;
        Ok(Some((start..start + key, start + key..start + len)))
    }

    /// A key or text [`KeyedLines::next`] gave.
    fn at(&self, r: &std::ops::Range<usize>) -> &[u8] {
        &self.chunk[r.clone()]
    }
}

/// Merges `runs` (each with its next line in `lines`) by the tree of
/// losers, handing each line in order to `emit` with its key's length;
/// `emit` says false to stop. An error names the run that failed.
fn merge_runs(
    runs: &mut [(PathBuf, Dec<BufReader<File>>)],
    mut lines: Vec<(Vec<u8>, Option<usize>)>,
    mut emit: impl FnMut(&[u8], usize) -> bool,
) -> Result<()> {
    let mut tree = LoserTree::new(&lines);
    // The line last written: its buffer is swapped with the run's, which
    // takes the run's next line, so that its key stays at hand for the
    // tree without a copy.
    let mut written = Vec::new();
    loop {
        let least = tree.winner;
        let Some((bytes, Some(k))) = lines.get_mut(least) else { return Ok(()) };
        let k = *k;
        if !emit(bytes, k) {
            return Ok(());
        }
        std::mem::swap(bytes, &mut written);
        let (path, dec) = &mut runs[least];
        let next = dec.unless_at_end(|dec| Line::read_into(dec, bytes, (&written, k)));
        let next = next.with_context(|| format!("reading {}", path.display()))?;
        lines[least].1 = next.map(|(key_len, _)| key_len);
        // The prefix the run's next key shares with the one written, as
        // the run says it.
        tree.replay(&lines, next.map(|(_, shared)| shared));
    }
}

/// The tournament of [`merge_text`]: a tree of losers over the runs'
/// next keys, with each key's offset (the length of the prefix it shares
/// with the key that beat it, or with the last key written for the
/// winner's run). A run past its end, or a slot past the last run, loses
/// to every key.
struct LoserTree {
    /// `losers[n]`: the run that lost at node `n` (1 is the root; node
    /// `n`'s children are `2n` and `2n + 1`; run `r` is leaf `width + r`).
    losers: Vec<usize>,
    /// Each run's offset, as above.
    offsets: Vec<usize>,
    width: usize,
    /// The run whose key is least.
    winner: usize,
}

impl LoserTree {
    /// Plays every run's first key. Every key is compared against the
    /// empty key to begin with: every offset is 0.
    fn new(lines: &[(Vec<u8>, Option<usize>)]) -> LoserTree {
        let width = lines.len().next_power_of_two().max(1);
        let mut tree =
            LoserTree { losers: vec![usize::MAX; width], offsets: vec![0; lines.len()], width, winner: 0 };
        let mut winners = vec![usize::MAX; 2 * width];
        for (r, slot) in winners[width..width + lines.len()].iter_mut().enumerate() {
            *slot = r;
        }
        for n in (1..width).rev() {
            let (winner, loser) = tree.play(lines, winners[2 * n], winners[2 * n + 1]);
            winners[n] = winner;
            tree.losers[n] = loser;
        }
        tree.winner = winners[1];
        tree
    }

    /// The winner's run has its next key (or none), `shared` its offset
    /// against the key just written (the run's record says it: the line
    /// before it in the run is the one just written), then a match at each
    /// node up to the root. Every
    /// loser on that path was beaten by the key just written, so all
    /// offsets compared there are against that same key.
    fn replay(&mut self, lines: &[(Vec<u8>, Option<usize>)], shared: Option<usize>) {
        let run = self.winner;
        if let Some(shared) = shared {
            self.offsets[run] = shared;
        }
        let mut candidate = run;
        let mut n = (self.width + run) / 2;
        while n >= 1 {
            let (winner, loser) = self.play(lines, candidate, self.losers[n]);
            self.losers[n] = loser;
            candidate = winner;
            n /= 2;
        }
        self.winner = candidate;
    }

    /// One match: `(winner, loser)`. Both offsets are against the same
    /// key, which both keys are at least: the key sharing more of it is
    /// the lesser. On equal offsets the keys are compared from there, and
    /// the loser's offset becomes the length it shares with the winner.
    fn play(&mut self, lines: &[(Vec<u8>, Option<usize>)], a: usize, b: usize) -> (usize, usize) {
        let (ka, kb) = match (line_key(lines, a), line_key(lines, b)) {
            (Some(ka), Some(kb)) => (ka, kb),
            (Some(_), None) => return (a, b),
            (None, Some(_)) => return (b, a),
            (None, None) => return (a.min(b), a.max(b)),
        };
        let (oa, ob) = (self.offsets[a], self.offsets[b]);
        if oa != ob {
            return if oa > ob { (a, b) } else { (b, a) };
        }
        let shared = oa + common_prefix(&ka[oa..], &kb[oa..]);
        let a_first = match (ka.get(shared), kb.get(shared)) {
            (Some(x), Some(y)) => x < y,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => a < b,
        };
        let (winner, loser) = if a_first { (a, b) } else { (b, a) };
        self.offsets[loser] = shared;
        (winner, loser)
    }
}

/// The length of the end `a` and `b` share.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    // Sixteen bytes at a time from the end, as two numbers compared at once.
    let (a_words, b_words) = (a.as_rchunks::<16>().1, b.as_rchunks::<16>().1);
    let mut i = 0;
    for (x, y) in a_words.iter().rev().zip(b_words.iter().rev()) {
        if x != y {
            let differ = u128::from_be_bytes(*x) ^ u128::from_be_bytes(*y);
            return i + (differ.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    while i < n && a[n - i - 1] == b[n - i - 1] {
        i += 1;
    }
    i
}

/// Calls `copy(at, len, from)` for each stretch of `middle` in `text` of
/// at least [`COPIED_AT_LEAST`] bytes that is `before[from..from + len]`,
/// in order, none overlapping, where `from` is as far from `before`'s end
/// as `at` is from `text`'s. Past the fields whose lengths differ from
/// row to row (a user's name, counts), the fields of two lines lie as far
/// from their ends, and those the rows of a partner share (a replayed
/// row's reason and verdicts: some 190 bytes of its 540) come between
/// others they do not (its times, its finding id), where neither the
/// shared start nor the shared end reaches them.
fn copies_along_the_end(
    text: &[u8],
    before: &[u8],
    middle: std::ops::Range<usize>,
    mut copy: impl FnMut(usize, usize, usize),
) {
    // `before[i - shift]` is as far from its end as `text[i]` is: the
    // middle from `floor` on, and as much of `before`, are compared.
    let shift = text.len() as isize - before.len() as isize;
    let floor = middle.start.max(shift.max(0) as usize);
    if middle.end < floor + COPIED_AT_LEAST {
        return;
    }
    let from = (floor as isize - shift) as usize;
    let (text, before) = (&text[floor..middle.end], &before[from..from + middle.end - floor]);
    let (words, before_words) = (text.as_chunks::<8>().0, before.as_chunks::<8>().0);
    let alike = |w: usize| words[w] == before_words[w];
    // A stretch long enough holds this many whole words alike in a row, one
    // of them at a multiple of it: only those words are looked at until one
    // is alike (a seventh of the comparisons of looking at every word).
    const WORDS: usize = (COPIED_AT_LEAST - 7) / 8;
    // Where the last copy ended; the word looked at.
    let (mut start, mut probe) = (0, 0);
    while probe < words.len() {
        if !alike(probe) {
            probe += WORDS;
            continue;
        }
        // The words alike around it, back to where the last copy ended;
        // then the bytes alike on either side of them.
        let mut first = 8 * probe;
        while first >= start + 8 && alike(first / 8 - 1) {
            first -= 8;
        }
        while first > start && text[first - 1] == before[first - 1] {
            first -= 1;
        }
        let last = 8 * probe + 8 + common_prefix(&text[8 * probe + 8..], &before[8 * probe + 8..]);
        if last - first >= COPIED_AT_LEAST {
            copy(floor + first, last - first, from + first);
            start = last;
        }
        probe = (last / 8 + 1).next_multiple_of(WORDS);
    }
}

/// The shortest stretch of a line copied from the line before. A copy is
/// written in twelve bytes (its length and start, the flag of the stretch
/// before it) and read back in some hundred instructions: a shorter one
/// saves less than it costs (an activity row's user domain, counts and
/// month, 40 bytes, made `activity` 5% more instructions at 16; a replayed
/// row's verdicts and reason are 190).
const COPIED_AT_LEAST: usize = 64;

/// The length of the prefix `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    // Sixteen bytes at a time, as two numbers compared at once: keys share
    // some hundred bytes, copied stretches of lines some two hundred.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (a_words, b_words) = (a.as_chunks::<16>().0, b.as_chunks::<16>().0);
    let mut i = 0;
    for (x, y) in a_words.iter().zip(b_words) {
        if x != y {
            let differ = u128::from_le_bytes(*x) ^ u128::from_le_bytes(*y);
            return i + (differ.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// The length of the prefix all of `keys` share (0 for none): read until
/// a key differs from the first there.
fn shared_prefix<'k>(mut keys: impl Iterator<Item = &'k [u8]>) -> usize {
    let Some(first) = keys.next() else { return 0 };
    let mut shared = first.len();
    for key in keys {
        if shared == 0 {
            break;
        }
        shared = common_prefix(&first[..shared], key);
    }
    shared
}

/// Run `r`'s next line's key in [`merge_text`], if it has one.
fn line_key(lines: &[(Vec<u8>, Option<usize>)], r: usize) -> Option<&[u8]> {
    lines.get(r).and_then(|(b, k)| k.map(|k| &b[..k]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record for the tests: a key to sort by and where it came from.
    #[derive(Clone, Debug, PartialEq)]
    struct Item(u32, u32);

    impl Record for Item {
        fn write(&self, enc: &mut Enc) {
            enc.u32(self.0);
            enc.u32(self.1);
        }
        fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
            Ok(Item(dec.u32()?, dec.u32()?))
        }
    }

    fn by_key(a: &Item, b: &Item) -> Ordering {
        a.0.cmp(&b.0)
    }

    const ITEM_ORDER: Order<Item> =
        Order { cmp: by_key, key: |item, out| out.extend(item.0.to_be_bytes()), sort: None };

    /// Text keys in byte order: what a test's lines are keyed by.
    const TEXT_KEYS: Order<String> =
        Order { cmp: |a, b| a.cmp(b), key: |k, out| out.extend_from_slice(k.as_bytes()), sort: None };

    /// Items with many equal keys, in input order (`.1` counts up).
    fn items(n: u32) -> Vec<Item> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ n as u64;
        (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                Item((seed % 37) as u32, i)
            })
            .collect()
    }

    #[test]
    fn a_temporary_folder_that_a_killed_run_left_is_removed_by_the_next() {
        let base = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let d = base.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("run-000000"), b"x").unwrap();
            d
        };
        // No process has an id this high (Linux allows 2^22 at most).
        let left = make("xtenant-test-999999999-aB3x");
        let running = make(&format!("xtenant-test-{}-Qz9k", std::process::id()));
        let other = make("xtenant-other-999999999-aB3x");
        let fresh = temp_folder_in(base.path(), "test").unwrap();
        let name = fresh.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("xtenant-test-{}-", std::process::id())), "{name}");
        if Path::new("/proc/self").exists() {
            assert!(!left.exists(), "left by a run that is gone");
        }
        assert!(running.exists() && other.exists(), "a running run's, and another kind");
    }

    #[test]
    fn chunks_worked_on_the_pool_are_handed_on_in_order_until_an_error() {
        for n in [0, 1, 7, 8, 9, 3 * 8 + 5] {
            let mut seen = Vec::new();
            on_the_pool_in_chunks(
                &mut (0..n),
                || 8,
                |c| c.iter().map(|x| x * 2).collect::<Vec<_>>(),
                |c| {
                    seen.extend(c);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..n).map(|x| x * 2).collect::<Vec<_>>(), "{n} rows");
        }
        let mut handed = 0;
        let e = on_the_pool_in_chunks(
            &mut (0..100),
            || 8,
            |c| c,
            |_| {
                handed += 1;
                if handed == 2 {
                    anyhow::bail!("full disk")
                }
                Ok(())
            },
        );
        assert_eq!(e.unwrap_err().to_string(), "full disk");
        assert_eq!(handed, 2);
    }

    #[test]
    fn a_buffer_kept_to_a_budget_never_has_room_for_more_than_the_budget() {
        for budget in [1, 5, 100, 1000, 100_000] {
            let mut buffer = Vec::new();
            for n in 0..budget {
                push_within(&mut buffer, n, Some(budget));
                assert!(buffer.capacity() <= budget, "{} for {budget}", buffer.capacity());
            }
            assert_eq!(buffer, (0..budget).collect::<Vec<_>>());
        }
        let mut unbounded = Vec::new();
        (0..1000).for_each(|n| push_within(&mut unbounded, n, None));
        assert_eq!(unbounded.len(), 1000);
    }

    #[test]
    fn sort_by_gives_the_order_of_a_stable_sort() {
        // Permutations with long cycles, fixed points and ties; from
        // PARALLEL_SORT rows, sorted on the pool.
        for n in [0, 1, 2, 7, 100, 1000, PARALLEL_SORT as u32, 3 * PARALLEL_SORT as u32 + 1] {
            let mut rows = items(n);
            let mut expected = rows.clone();
            expected.sort_by(by_key);
            sort_by(&mut rows, by_key);
            assert_eq!(rows, expected, "n = {n}");
        }
    }

    #[test]
    fn runs_merged_level_by_level_sort_and_combine_as_one_merge_and_stay_few() {
        fn add(a: &mut Item, b: Item) {
            a.1 += b.1;
        }
        let input = items(1000);
        let mut stable = input.clone();
        stable.sort_by(by_key);
        let mut combined: Vec<Item> = Vec::new();
        for item in stable.clone() {
            match combined.last_mut() {
                Some(last) if last.0 == item.0 => add(last, item),
                _ => combined.push(item),
            }
        }
        for (fan_in, budget) in [(2, 1), (3, 1), (3, 7), (5, 2)] {
            for combine in [false, true] {
                let mut sorter = Sorter::new("test", ITEM_ORDER, Some(budget));
                if combine {
                    sorter = sorter.combining(add);
                }
                sorter.fan_in = fan_in;
                for item in input.clone() {
                    sorter.push(item).unwrap();
                    let levels = sorter.levels.iter().max().map_or(0, |l| *l as usize + 1);
                    assert!(
                        sorter.runs.len() < fan_in * levels.max(1),
                        "fan-in {fan_in}: {:?}",
                        sorter.levels
                    );
                    assert!(sorter.levels.windows(2).all(|w| w[0] >= w[1]));
                }
                assert!(
                    sorter.levels.iter().any(|l| *l >= 2),
                    "fan-in {fan_in}, budget {budget}: two levels"
                );
                let left = std::fs::read_dir(sorter.dir.as_ref().unwrap().path()).unwrap().count();
                assert_eq!(left, sorter.runs.len(), "merged runs are removed");
                let expected = if combine { &combined } else { &stable };
                let label = format!("fan-in {fan_in}, budget {budget}, combining {combine}");
                assert_eq!(&sorter.finish().unwrap().collect_rows().unwrap(), expected, "{label}");
            }
        }
    }

    #[test]
    fn a_combining_sort_gives_one_record_per_key_added_up_in_input_order_at_any_budget() {
        // `.1` becomes the sum of the input positions of the key's records.
        fn add(a: &mut Item, b: Item) {
            a.1 += b.1;
        }
        let input = items(1000);
        let mut expected: Vec<Item> = Vec::new();
        let mut sorted = input.clone();
        sorted.sort_by(by_key);
        for item in sorted {
            match expected.last_mut() {
                Some(last) if last.0 == item.0 => add(last, item),
                _ => expected.push(item),
            }
        }
        assert_eq!(expected.len(), 37);
        for budget in [None, Some(1), Some(7), Some(100)] {
            let mut sorter = Sorter::new("test", ITEM_ORDER, budget).combining(add);
            for item in input.clone() {
                sorter.push(item).unwrap();
            }
            assert_eq!(sorter.finish().unwrap().collect_rows().unwrap(), expected, "{budget:?}");
        }
    }

    #[test]
    fn a_tally_gives_one_record_per_key_added_up_in_memory_or_through_the_disk_at_any_budget() {
        // `.1` becomes the sum of the input positions of the key's records.
        fn add(a: &mut Item, b: Item) {
            a.1 += b.1;
        }
        let input = items(1000);
        let mut sums: std::collections::BTreeMap<u32, u32> = Default::default();
        for item in &input {
            *sums.entry(item.0).or_default() += item.1;
        }
        let expected: Vec<Item> = sums.into_iter().map(|(k, v)| Item(k, v)).collect();
        for budget in [None, Some(1), Some(7), Some(36), Some(37), Some(100)] {
            let mut tally =
                Tally::new("test", ByKey { key: |i: &Item| i.0, order: ITEM_ORDER, combine: add }, budget);
            for item in input.clone() {
                tally.add(item).unwrap();
            }
            let went_to_disk = tally.sorter.dir.is_some() || !tally.sorter.buffer.is_empty();
            assert_eq!(went_to_disk, budget.is_some_and(|b| b <= 37), "{budget:?}");
            assert_eq!(tally.finish().unwrap().collect_rows().unwrap(), expected, "{budget:?}");
        }
    }

    #[test]
    fn records_whose_texts_outweigh_the_budget_go_to_disk_before_their_count_does_and_come_out_the_same() {
        // Lines of some 4 KB: 100 of them hold 400 KB, four times what a
        // budget of 100 records allows (100 KB).
        let items: Vec<Item> = (0..100u32).map(|i| Item(i * 37 % 10, i)).collect();
        let line = |i: &Item| {
            Line::new(i, ITEM_ORDER, |i, out| {
                out.extend(format!("{} {} ", i.0, i.1).bytes());
                out.extend(std::iter::repeat_n(b'x', 4000));
            })
        };
        let text = |i: &Item| line(i).text().to_vec();
        let mut sorted = items.clone();
        sorted.sort_by_key(|i| i.0);
        let expected: Vec<Vec<u8>> = sorted.iter().map(text).collect();
        let mut sorter = Sorter::new("test", Line::ORDER, Some(100));
        let mut spool = Spool::new("test", Some(100));
        for i in &items {
            sorter.push(line(i)).unwrap();
            spool.push(line(i)).unwrap();
        }
        assert!(!sorter.runs.is_empty() && spool.file.is_some(), "on disk before the hundredth record");
        let texts = |s: Stream<Line>| -> Vec<Vec<u8>> {
            s.collect_rows().unwrap().iter().map(|l| l.text().to_vec()).collect()
        };
        assert_eq!(texts(sorter.finish().unwrap()), expected);
        assert_eq!(texts(spool.finish().unwrap()), items.iter().map(text).collect::<Vec<_>>());
        // Short lines: the count decides.
        let mut sorter = Sorter::new("test", Line::ORDER, Some(100));
        for l in lines_of(&items[..99]) {
            sorter.push(l).unwrap();
        }
        assert!(sorter.dir.is_none());
    }

    /// Items as lines: the key's bytes, then a text saying the item.
    fn lines_of(items: &[Item]) -> Vec<Line> {
        items
            .iter()
            .map(|i| Line::new(i, ITEM_ORDER, |i, out| out.extend(format!("{} {}\n", i.0, i.1).bytes())))
            .collect()
    }

    #[test]
    fn a_line_is_its_own_key_and_text_whatever_the_lines_before_it_or_a_line_made_while_it_is() {
        let item = Item(7, 1);
        let key = 7u32.to_be_bytes();
        // Long (past what the thread's buffer keeps), then short: nothing of
        // the first is left in the second.
        let long =
            Line::new(&item, ITEM_ORDER, |_, out| out.extend(std::iter::repeat_n(b'x', SCRATCH_KEPT + 1)));
        assert_eq!(long.key(), key);
        assert_eq!(long.text().len(), SCRATCH_KEPT + 1);
        let short = Line::new(&item, ITEM_ORDER, |_, out| out.extend(b"short\n"));
        assert_eq!((short.key(), short.text()), (&key[..], &b"short\n"[..]));
        // A line made while another is (the thread's buffer is taken).
        let outer = Line::new(&item, ITEM_ORDER, |i, out| {
            let inner = Line::new(&Item(8, 2), ITEM_ORDER, |_, o| o.extend(b"inner\n"));
            assert_eq!((inner.key(), inner.text()), (&8u32.to_be_bytes()[..], &b"inner\n"[..]));
            out.extend(format!("outer {}\n", i.0).bytes());
        });
        assert_eq!((outer.key(), outer.text()), (&key[..], &b"outer 7\n"[..]));
    }

    #[test]
    fn lines_merged_as_text_come_in_the_order_of_a_stable_sort_of_their_rows_at_any_budget() {
        for n in [0, 1, 2, 100, 1000] {
            let mut sorted = items(n);
            sorted.sort_by(by_key);
            let expected: Vec<u8> = lines_of(&sorted).iter().flat_map(|l| l.text().to_vec()).collect();
            // 1000 rows at a budget of 7: 143 runs, not a power of two.
            for budget in [None, Some(1), Some(7), Some(5000)] {
                let sorted_lines = || {
                    let mut sorter = Sorter::new("test", Line::ORDER, budget);
                    for line in lines_of(&items(n)) {
                        sorter.push(line).unwrap();
                    }
                    sorter.finish().unwrap()
                };
                let mut text = Vec::new();
                sorted_lines().write_text(&mut text).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&text),
                    String::from_utf8_lossy(&expected),
                    "{n} {budget:?}"
                );
                let one_by_one: Vec<u8> = sorted_lines().flat_map(|l| l.text().to_vec()).collect();
                assert_eq!(one_by_one, expected, "{n} {budget:?}, a line at a time");
            }
        }
    }

    #[test]
    fn a_run_cut_short_is_an_error_that_names_it_not_a_panic() {
        for cut in [1, 5, 9, 2000] {
            // Runs longer than a reader's buffer: the cut is read after
            // the merge has begun.
            let mut sorter = Sorter::new("test", Line::ORDER, Some(100));
            for i in 0..200u32 {
                sorter
                    .push(keyed_line(&Keyed(format!("{:05}", i * 7 % 200).repeat(200).into_bytes(), i)))
                    .unwrap();
            }
            let lines = sorter.finish().unwrap();
            let Rows::Pending(merge) = &lines.rows else { panic!("the lines are in memory") };
            let path = merge.runs[0].0.clone();
            let len = std::fs::metadata(&path).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - cut).unwrap();
            let e = lines.write_text(&mut Vec::new()).unwrap_err();
            assert!(format!("{e:#}").contains(&*path.to_string_lossy()), "{e:#}");
        }
    }

    /// A key for [`keys_sharing_long_prefixes_merge_as_a_stable_sort`]: its
    /// bytes, and which push it was (the line's text).
    #[derive(Clone, Debug, PartialEq)]
    struct Keyed(Vec<u8>, u32);

    impl Record for Keyed {
        fn write(&self, enc: &mut Enc) {
            enc.bytes(&self.0);
            enc.u32(self.1);
        }
        fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
            let mut key = Vec::new();
            dec.bytes_onto(&mut key)?;
            Ok(Keyed(key, dec.u32()?))
        }
    }

    const KEYED_ORDER: Order<Keyed> =
        Order { cmp: |a, b| a.0.cmp(&b.0), key: |k, out| out.extend(&k.0), sort: None };

    /// Keys as rows' keys are: many sharing long prefixes (runs of 7),
    /// ending at and around multiples of eight, equal, prefixing others,
    /// with NULs and 0xFF; each said by its position.
    fn keyed(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<Keyed>> {
        use proptest::prelude::*;
        let byte = prop_oneof![Just(0u8), Just(7u8), Just(255u8), any::<u8>()];
        proptest::collection::vec((0usize..40, proptest::collection::vec(byte, 0..16)), 0..max).prop_map(
            |keys| {
                keys.into_iter()
                    .enumerate()
                    .map(|(i, (shared, tail))| {
                        let mut key = vec![7u8; shared];
                        key.extend(tail);
                        Keyed(key, i as u32)
                    })
                    .collect()
            },
        )
    }

    /// A keyed item's line: its key, then its position as text.
    fn keyed_line(k: &Keyed) -> Line {
        Line::new(k, KEYED_ORDER, |k, out| out.extend(format!("{}\n", k.1).bytes()))
    }

    proptest::proptest! {
        /// The tree of losers, with its offsets, writes lines in the order
        /// of a stable sort of their keys, for any number of runs.
        #[test]
        fn keys_sharing_long_prefixes_merge_as_a_stable_sort(items in keyed(300), budget in 1usize..40) {
            let mut sorted = items.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let expected: Vec<u8> = sorted.iter().flat_map(|k| keyed_line(k).text().to_vec()).collect();
            let mut sorter = Sorter::new("test", Line::ORDER, Some(budget));
            for k in &items {
                sorter.push(keyed_line(k)).unwrap();
            }
            let mut text = Vec::new();
            sorter.finish().unwrap().write_text(&mut text).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(text).unwrap(), String::from_utf8(expected).unwrap());
        }

        /// A run of lines reads back every line whole, as records and as
        /// text, whatever start and end each shares with the line before
        /// (texts of few letters share both, overlapping in the shorter
        /// one, at every length the eight-byte comparisons meet).
        #[test]
        fn lines_sharing_starts_and_ends_with_the_line_before_read_back_whole(
            texts in proptest::collection::vec(("[ab]{0,3}", "[abc]{0,20}", "[ab]{0,12}"), 1..60),
        ) {
            let lines: Vec<Line> = texts
                .iter()
                .enumerate()
                .map(|(i, (start, middle, end))| {
                    let key = format!("{i:04}");
                    Line::new(&key, TEXT_KEYS, |_, out| out.extend(format!("{start}{middle}{end}").bytes()))
                })
                .collect();
            let dir = temp_folder("test").unwrap();
            let path = dir.path().join("run-0");
            write_run(&path, &lines).unwrap();
            let whole = |lines: &[Line]| lines.iter().map(|l| l.bytes.to_vec()).collect::<Vec<_>>();
            let one = Stream::merged(Merge::open_in(None, vec![path.clone()], Line::ORDER, None).unwrap());
            proptest::prop_assert_eq!(whole(&one.collect_rows().unwrap()), whole(&lines));
            let mut text = Vec::new();
            Stream::merged(Merge::open(dir, vec![path], Line::ORDER, None).unwrap()).write_text(&mut text).unwrap();
            proptest::prop_assert_eq!(text, lines.iter().flat_map(|l| l.text().to_vec()).collect::<Vec<u8>>());
        }

        /// A line whose middle holds what the line before holds as far from
        /// its end (a replayed row's reason after a user's name of another
        /// length), copied from it, reads back whole; so does one whose
        /// copies would overlap the shared start or end.
        #[test]
        fn lines_sharing_a_middle_as_far_from_their_ends_read_back_whole(
            texts in proptest::collection::vec(
                ("[ab]{0,3}", "[xy]{0,12}", "[abc]{0,90}", "[xy]{0,9}", "[ab]{0,6}"), 1..40),
            shared in "[a-z,]{40,120}",
        ) {
            let lines: Vec<Line> = texts
                .iter()
                .enumerate()
                .map(|(i, (start, own, middle, own_end, end))| {
                    let key = format!("{i:04}");
                    // Every other line carries `shared` between texts of its own.
                    let shared = if i % 2 == 0 { shared.as_str() } else { middle.as_str() };
                    Line::new(&key, TEXT_KEYS, |_, out| out.extend(format!("{start}{own}{shared}{own_end}{end}").bytes()))
                })
                .collect();
            let dir = temp_folder("test").unwrap();
            let path = dir.path().join("run-0");
            write_run(&path, &lines).unwrap();
            let whole = |lines: &[Line]| lines.iter().map(|l| l.bytes.to_vec()).collect::<Vec<_>>();
            let read = Stream::merged(Merge::open(dir, vec![path], Line::ORDER, None).unwrap());
            proptest::prop_assert_eq!(whole(&read.collect_rows().unwrap()), whole(&lines));
        }

        /// The copies found along the end are exactly the stretches of the
        /// middle at least [`COPIED_AT_LEAST`] long where the text and the
        /// text before agree byte for byte at the same distance from their
        /// ends, each as long as it goes: none missed for looking at every
        /// seventh word only, none cut short.
        #[test]
        fn copies_along_the_end_are_every_long_stretch_alike_at_the_same_distance_from_the_ends(
            (own, other_own) in ("[ab,]{0,24}", "[ab,]{0,24}"),
            shared in "[ab,]{0,160}",
            (tail, flips) in ("[ab,]{0,12}", proptest::collection::vec(0usize..200, 0..4)),
            cut in (0usize..40, 0usize..40),
        ) {
            // Alike at the same distance from the ends: `shared`, followed by
            // tails of one length; a few bytes of the text flipped.
            let before = format!("{other_own}{shared}{}", tail.chars().rev().collect::<String>());
            let mut text = format!("{own}{shared}{tail}").into_bytes();
            for f in flips {
                if let Some(b) = text.get_mut(f) {
                    *b = b'x';
                }
            }
            let (text, before) = (&text[..], before.as_bytes());
            let start = cut.0.min(text.len());
            let middle = start..text.len() - cut.1.min(text.len() - start);
            let mut copies = Vec::new();
            copies_along_the_end(text, before, middle.clone(), |at, len, from| copies.push((at, len, from)));
            // The same, byte by byte.
            let shift = text.len() as isize - before.len() as isize;
            let mut expected = Vec::new();
            let mut run: Option<usize> = None;
            for at in middle.start..=middle.end {
                let alike = at < middle.end
                    && at as isize >= shift
                    && text[at] == before[(at as isize - shift) as usize];
                match (alike, run) {
                    (true, None) => run = Some(at),
                    (false, Some(first)) => {
                        if at - first >= COPIED_AT_LEAST {
                            expected.push((first, at - first, (first as isize - shift) as usize));
                        }
                        run = None;
                    }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(copies, expected);
        }

        /// Lines sorted eight bytes of key at a time come in the order of
        /// a stable comparison sort, in groups small and large.
        #[test]
        fn lines_sorted_by_words_are_in_the_order_of_a_stable_sort(items in keyed(400)) {
            let text = |lines: &[Line]| lines.iter().flat_map(|l| l.bytes.to_vec()).collect::<Vec<u8>>();
            let mut by_comparison: Vec<Line> = items.iter().map(keyed_line).collect();
            sort_by(&mut by_comparison, Line::ORDER.cmp);
            let mut by_words: Vec<Line> = items.iter().map(keyed_line).collect();
            sort_lines(&mut by_words);
            proptest::prop_assert_eq!(text(&by_words), text(&by_comparison));
        }
    }

    #[test]
    fn a_replayed_row_s_reason_between_its_own_name_and_times_is_written_once_in_a_run() {
        let reason = "allowed,blocked,lost,partner 00000000-0000-0000-0000-000000001000 b2bCollaborationInbound: applications blocked [AllApplications] (default): AllApplications,1 of 1 sign-ins succeeded,,8,high";
        let row = |user: &str, time: &str, id: &str| {
            let text =
                format!("inbound,{user}@partner0.example,guest,1,1,0,0,{time},{reason},{id},{time},1\n");
            Line::new(&user.to_string(), TEXT_KEYS, |_, out| out.extend(text.bytes()))
        };
        let first = row("guest0", "2026-11-01T00:00:00Z", "52a995828f4c5b32");
        let second = row("guest300", "2026-11-21T12:00:00Z", "0edf2291d278da0d");
        let mut written = Vec::new();
        second.write_after(Some(&first), &mut Enc(&mut written));
        // The user, the times and the finding id written (some 110 bytes with
        // the lengths); the reason's 190 copied.
        assert!(written.len() < 150, "{} bytes: {:?}", written.len(), String::from_utf8_lossy(&written));
        let read = Line::read_after(&mut Dec::new(&written[..]), Some(&first)).unwrap();
        assert_eq!(read.bytes, second.bytes);
        // Cut short, or read after no line (its copy then reaches past the
        // text before's end): an error, not a panic.
        assert!(Line::read_after(&mut Dec::new(&written[..written.len() - 6]), Some(&first)).is_err());
        assert!(Line::read_after(&mut Dec::new(&written[..]), None).is_err());
    }

    #[test]
    fn the_prefix_a_group_of_keys_shares_is_the_shortest_any_key_shares_with_the_first() {
        let keys = |ks: &[&'static [u8]]| shared_prefix(ks.iter().copied());
        assert_eq!(keys(&[]), 0);
        assert_eq!(keys(&[b"abc"]), 3);
        assert_eq!(keys(&[b"abcdefghijk", b"abcdefghijx", b"abcdefghij"]), 10);
        assert_eq!(keys(&[b"abcdefghijk", b"abcdefghijk"]), 11);
        assert_eq!(keys(&[b"abcdefghijk", b"abcdefghijk", b"xbcdefghijk", b"abcdefghijk"]), 0);
        assert_eq!(keys(&[b"", b"abc"]), 0);
    }

    #[test]
    fn the_length_of_a_shared_prefix_is_found_in_any_word_and_byte() {
        let a: Vec<u8> = (0..40).collect();
        for len in 0..=40 {
            for differ in 0..len {
                let mut b = a[..len].to_vec();
                b[differ] ^= 0x80;
                assert_eq!(common_prefix(&a, &b), differ);
                assert_eq!(common_prefix(&b, &a), differ);
            }
            assert_eq!(common_prefix(&a, &a[..len]), len);
        }
    }

    #[test]
    fn a_run_of_lines_writes_each_key_and_text_as_what_they_do_not_share_with_the_line_before() {
        // Keys of 300 bytes, the first 290 the same, and texts of 300, the
        // first 190 and the last 100 the same: a run holds each line but
        // the first as its key's last ten bytes and its text's middle ten,
        // and reads back every line whole, as records and as text (in
        // either half of a split merge).
        let line = |i: u32, run: u32| {
            let key = format!("{}{i:010}{run:02}", "k".repeat(290));
            Line::new(&key, TEXT_KEYS, |_, out| {
                out.extend(format!("{}{i:010}{}", "t".repeat(190), "e".repeat(100)).bytes())
            })
        };
        let runs = SPLIT_FROM_RUNS as u32 + 1;
        let dir = temp_folder("test").unwrap();
        let mut paths = Vec::new();
        let mut all = Vec::new();
        for r in 0..runs {
            let lines: Vec<Line> = (0..100).map(|i| line(i, r)).collect();
            let path = dir.path().join(format!("run-{r}"));
            write_run(&path, &lines).unwrap();
            let whole: usize = lines.iter().map(|l| l.bytes.len()).sum();
            let written = std::fs::metadata(&path).unwrap().len() as usize;
            assert!(
                written < whole - 99 * (290 + 190 + 100) + 100 * 40,
                "{written} bytes for {whole} of lines"
            );
            paths.push(path);
            all.extend(lines);
        }
        all.sort_by(|a, b| a.key().cmp(b.key()));
        let texts = |lines: &[Line]| lines.iter().flat_map(|l| l.bytes.to_vec()).collect::<Vec<u8>>();
        let (alone, first) = (temp_folder("test").unwrap(), (0..100).map(|i| line(i, 0)).collect::<Vec<_>>());
        let run = alone.path().join("run-0");
        write_run(&run, &first).unwrap();
        let one = Stream::merged(Merge::open(alone, vec![run], Line::ORDER, None).unwrap());
        assert_eq!(texts(&one.collect_rows().unwrap()), texts(&first));
        let mut text = Vec::new();
        Stream::merged(Merge::open(dir, paths, Line::ORDER, None).unwrap()).write_text(&mut text).unwrap();
        assert_eq!(text, all.iter().flat_map(|l| l.text().to_vec()).collect::<Vec<u8>>());
    }

    #[test]
    fn a_run_of_lines_cut_short_is_an_error_naming_it() {
        let dir = temp_folder("test").unwrap();
        let (good, cut) = (dir.path().join("run-0"), dir.path().join("run-1"));
        let mut sorted = items(50);
        sorted.sort_by(by_key);
        write_run(&good, &lines_of(&sorted)).unwrap();
        write_run(&cut, &lines_of(&sorted)).unwrap();
        let len = std::fs::metadata(&cut).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&cut).unwrap().set_len(len - 3).unwrap();
        let merge = Merge::open(dir, vec![good, cut.clone()], Line::ORDER, None).unwrap();
        let e = Stream::merged(merge).write_text(&mut Vec::new()).unwrap_err();
        assert!(format!("{e:#}").contains(&cut.display().to_string()), "{e:#}");
    }

    #[test]
    fn a_run_cut_short_in_either_half_of_a_split_merge_is_an_error_naming_it() {
        let runs = SPLIT_FROM_RUNS * 2 + 1;
        for cut_run in [0, runs / 2 - 1, runs / 2, runs - 1] {
            let dir = temp_folder("test").unwrap();
            let mut paths = Vec::new();
            for r in 0..runs {
                let mut sorted = items(40 + r as u32);
                sorted.sort_by(by_key);
                let path = dir.path().join(format!("run-{r}"));
                write_run(&path, &lines_of(&sorted)).unwrap();
                paths.push(path);
            }
            let cut = paths[cut_run].clone();
            let len = std::fs::metadata(&cut).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&cut).unwrap().set_len(len - 3).unwrap();
            let merge = Merge::open(dir, paths, Line::ORDER, None).unwrap();
            let e = Stream::merged(merge).write_text(&mut Vec::new()).unwrap_err();
            assert!(format!("{e:#}").contains(&cut.display().to_string()), "run {cut_run}: {e:#}");
        }
    }

    #[test]
    fn a_merge_split_in_halves_writes_what_one_merge_writes() {
        // Equal keys in every run: a tie goes to the lower run, across the
        // halves too.
        let runs = SPLIT_FROM_RUNS * 3 + 1;
        let dir = temp_folder("test").unwrap();
        let mut paths = Vec::new();
        let mut all = Vec::new();
        for r in 0..runs {
            let mut run: Vec<Keyed> = (0..50u32)
                .map(|i| Keyed(format!("{:03}", (i * 7 + r as u32) % 60).into_bytes(), r as u32))
                .collect();
            run.sort_by(|a, b| a.0.cmp(&b.0));
            let path = dir.path().join(format!("run-{r}"));
            write_run(&path, &run.iter().map(keyed_line).collect::<Vec<_>>()).unwrap();
            paths.push(path);
            all.extend(run);
        }
        // A stable sort of the runs one after another: the lower run first on a tie.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<u8> = all.iter().flat_map(|k| keyed_line(k).text().to_vec()).collect();
        let mut text = Vec::new();
        Stream::merged(Merge::open(dir, paths, Line::ORDER, None).unwrap()).write_text(&mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), String::from_utf8(expected).unwrap());
    }

    /// Runs of [`items`] (equal keys in every run), written sorted.
    fn item_runs(dir: &TempFolder, runs: usize) -> Vec<PathBuf> {
        (0..runs)
            .map(|r| {
                let mut run: Vec<Item> =
                    items(30 + r as u32).into_iter().map(|i| Item(i.0, r as u32)).collect();
                run.sort_by(by_key);
                let path = dir.path().join(format!("run-{r}"));
                write_run(&path, &run).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn records_merged_in_halves_come_as_one_merge_gives_them_ties_and_sums_alike() {
        fn sum(a: &mut Item, b: Item) {
            a.1 += b.1 + 1000;
        }
        fn first(_: &mut Item, _: Item) {}
        for runs in [SPLIT_FROM_RUNS, SPLIT_FROM_RUNS * 3 + 1] {
            for combine in [None, Some(sum as fn(&mut Item, Item)), Some(first as fn(&mut Item, Item))] {
                let dir = temp_folder("test").unwrap();
                let paths = item_runs(&dir, runs);
                let mut one = Merge::open_in(None, paths.clone(), ITEM_ORDER, combine).unwrap();
                let expected: Vec<Item> =
                    std::iter::from_fn(|| one.next_record().unwrap().map(|r| *r)).collect();
                drop(one);
                let mut halves = Stream::merged(Merge::open(dir, paths, ITEM_ORDER, combine).unwrap());
                let got: Vec<Item> = halves.by_ref().collect();
                halves.finish().unwrap();
                assert_eq!(got, expected, "{runs} runs, combining: {}", combine.is_some());
            }
        }
    }

    #[test]
    fn a_run_of_records_cut_short_in_either_half_is_an_error_naming_it() {
        let runs = SPLIT_FROM_RUNS * 2 + 1;
        for cut_run in [0, runs / 2 - 1, runs / 2, runs - 1] {
            let dir = temp_folder("test").unwrap();
            let paths = item_runs(&dir, runs);
            let cut = paths[cut_run].clone();
            let len = std::fs::metadata(&cut).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&cut).unwrap().set_len(len - 3).unwrap();
            let mut stream = Stream::merged(Merge::open(dir, paths, ITEM_ORDER, None).unwrap());
            stream.by_ref().for_each(drop);
            let e = stream.finish().unwrap_err();
            assert!(format!("{e:#}").contains(&cut.display().to_string()), "run {cut_run}: {e:#}");
        }
    }

    #[test]
    fn kept_records_are_read_in_the_order_they_came_as_often_as_asked_at_any_budget() {
        for budget in [None, Some(1), Some(7), Some(5000)] {
            let kept = spooled(budget).keep().unwrap();
            for chunk in [1, 3, 1000, 4096] {
                let mut read = Vec::new();
                kept.each_chunk(chunk, |c| {
                    assert!(c.len() <= chunk || budget.is_none_or(|b| b > 1000), "{chunk} {budget:?}");
                    read.extend_from_slice(c);
                })
                .unwrap();
                assert_eq!(read, items(1000), "{budget:?}, {chunk} at a time");
            }
            let mut last = Vec::new();
            kept.into_each(|item| {
                last.push(item);
                Ok(())
            })
            .unwrap();
            assert_eq!(last, items(1000), "{budget:?}, the last reading");
        }
    }

    /// A spool of `items(1000)` at `budget`.
    fn spooled(budget: Option<usize>) -> Spool<Item> {
        let mut spool = Spool::new("test", budget);
        for item in items(1000) {
            spool.push(item).unwrap();
        }
        spool
    }

    #[test]
    fn a_spool_gives_its_records_back_in_the_order_they_came_at_any_budget() {
        for budget in [None, Some(1), Some(7), Some(5000)] {
            let spool = spooled(budget);
            assert_eq!(spool.finish().unwrap().collect_rows().unwrap(), items(1000), "{budget:?}");
        }
    }

    #[test]
    fn a_spool_told_more_is_coming_than_its_budget_holds_keeps_nothing_in_memory() {
        for (budget, kept_first, more) in [
            (Some(100), 0usize, 1000usize),
            (Some(100), 60, 41),
            (Some(1000), 10, 990),
            (Some(1000), 10, 989),
            (None, 10, 990),
        ] {
            let mut spool = Spool::new("test", budget);
            let all = items((kept_first + more) as u32);
            for item in &all[..kept_first] {
                spool.push(item.clone()).unwrap();
            }
            spool.expect(more).unwrap();
            let past_budget = budget.is_some_and(|b| kept_first + more >= b);
            assert_eq!(spool.file.is_some(), past_budget, "{budget:?} {kept_first}+{more}");
            for item in &all[kept_first..] {
                spool.push(item.clone()).unwrap();
                assert!(!past_budget || spool.buffer.is_empty(), "{budget:?} {kept_first}+{more}");
            }
            assert_eq!(
                spool.finish().unwrap().collect_rows().unwrap(),
                all,
                "{budget:?} {kept_first}+{more}"
            );
        }
    }

    #[test]
    fn sorting_through_runs_on_disk_gives_the_order_of_a_stable_sort_in_memory() {
        for n in [0, 1, 5, 1000] {
            let mut expected = items(n);
            expected.sort_by(by_key);
            for budget in [None, Some(1), Some(7), Some(100), Some(5000)] {
                let mut sorter = Sorter::new("test", ITEM_ORDER, budget);
                for item in items(n) {
                    sorter.push(item).unwrap();
                }
                let folder = sorter.dir.as_ref().map(|d| d.path().to_path_buf());
                assert_eq!(
                    folder.is_some(),
                    budget.is_some_and(|b| (b as u32) <= n),
                    "n {n}, budget {budget:?}"
                );
                assert_eq!(
                    sorter.finish().unwrap().collect_rows().unwrap(),
                    expected,
                    "n {n}, budget {budget:?}"
                );
                assert!(folder.is_none_or(|f| !f.exists()), "the temporary folder is removed");
            }
        }
    }
}
