//! The ids a `store add` run has met, day by day, so that each sign-in (and
//! audit event) is stored once: the ids the store holds already for a day
//! the run touches, and those the run adds to it.
//!
//! The rule: memory does not grow with the ids past a budget. Up to a
//! budget of ids ([`IDS_IN_MEMORY`]) are held in hash sets; past it, the
//! day holding the most is written out as a sorted run in a temporary
//! folder (16 bytes an id; a day's runs are merged as they gather), of
//! which memory keeps a blocked Bloom filter (10 bits an id: an id the run
//! does not hold is told without reading it but for some one in a
//! hundred) and every 256th id (so that an id the filter lets through
//! costs one read of 4 KB). Why: the ids were hash sets of every day the
//! run touched, some 35 bytes a sign-in: ten million sign-ins added in
//! one run (a month's export of a large tenant, or a first import of a
//! year) held 350 MB of ids.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::files::{read_exact_at, temp_folder, TempFolder};

/// Ids held in hash sets across all days, at most (some 18 MB).
pub(super) const IDS_IN_MEMORY: usize = 1 << 19;

/// A day of a table: sign-ins (`true`) or audit events.
pub(super) type DayOf = (bool, NaiveDate);

/// Ids of a run file read at once for an id its filter lets through.
const BLOCK: usize = 256;

/// The ids met, by day ([`Seen::insert`]).
pub(super) struct Seen {
    days: HashMap<DayOf, Day>,
    /// Ids in the days' hash sets.
    held: usize,
    budget: usize,
    folder: Option<TempFolder>,
    runs_written: usize,
}

#[derive(Default)]
struct Day {
    recent: HashSet<u128>,
    runs: Vec<Run>,
}

/// A day's ids written out, sorted.
struct Run {
    file: File,
    path: PathBuf,
    len: usize,
    /// The first id of every [`BLOCK`] of the file.
    firsts: Vec<u128>,
    filter: Bloom,
}

impl Seen {
    pub(super) fn new(budget: usize) -> Seen {
        Seen { days: HashMap::new(), held: 0, budget: budget.max(1), folder: None, runs_written: 0 }
    }

    /// Whether `day`'s stored ids were added ([`Seen::begin`]).
    pub(super) fn knows(&self, day: DayOf) -> bool {
        self.days.contains_key(&day)
    }

    /// Starts `day`: its stored ids follow ([`Seen::add_stored`]).
    pub(super) fn begin(&mut self, day: DayOf) {
        self.days.entry(day).or_default();
    }

    /// Adds an id the store holds for `day` (each once).
    pub(super) fn add_stored(&mut self, day: DayOf, id: u128) -> Result<()> {
        if self.days.entry(day).or_default().recent.insert(id) {
            self.held += 1;
            self.write_out_past_budget()?;
        }
        Ok(())
    }

    /// Adds `id` to `day` if the day has not met it: whether it is new.
    pub(super) fn insert(&mut self, day: DayOf, id: u128) -> Result<bool> {
        let d = self.days.entry(day).or_default();
        if d.recent.contains(&id) {
            return Ok(false);
        }
        for run in &d.runs {
            if run.holds(id)? {
                return Ok(false);
            }
        }
        d.recent.insert(id);
        self.held += 1;
        self.write_out_past_budget()?;
        Ok(true)
    }

    /// Past the budget, writes out the day holding the most ids.
    fn write_out_past_budget(&mut self) -> Result<()> {
        if self.held <= self.budget {
            return Ok(());
        }
        let Some(day) = self.days.iter().max_by_key(|(_, d)| d.recent.len()).map(|(day, _)| *day) else {
            return Ok(());
        };
        let folder = match &self.folder {
            Some(f) => f,
            None => self.folder.insert(
                temp_folder("store").context("the ids of the days added outgrew memory, and no temporary folder could be made (set TMPDIR to a writable folder)")?,
            ),
        };
        let d = self.days.get_mut(&day).expect("found above");
        let mut ids: Vec<u128> = std::mem::take(&mut d.recent).into_iter().collect();
        ids.sort_unstable();
        self.held -= ids.len();
        // A day's runs are merged into one when they reach `MERGED_AT`, so
        // that an id is looked for in a few filters, not in one for every
        // time the day was written out (ten million sign-ins over 28 days
        // wrote some 500 runs of 20,000).
        let merged = match d.runs.len() + 1 >= MERGED_AT {
            true => std::mem::take(&mut d.runs),
            false => Vec::new(),
        };
        let len = ids.len() + merged.iter().map(|r| r.len).sum::<usize>();
        let mut sources: Vec<Ids> = vec![Box::new(ids.into_iter().map(Ok))];
        for run in &merged {
            sources.push(Box::new(run.ids()?));
        }
        let path = folder.path().join(format!("ids-{}", self.runs_written));
        self.runs_written += 1;
        d.runs.push(Run::write(path, len, sources)?);
        for run in merged {
            std::fs::remove_file(&run.path)
                .with_context(|| format!("{}: cannot remove the ids of a day merged", run.path.display()))?;
        }
        Ok(())
    }
}

/// Sorted ids, from memory or a run's file.
type Ids = Box<dyn Iterator<Item = Result<u128>>>;

/// A day's runs are merged into one when they are this many.
const MERGED_AT: usize = 4;

impl Run {
    /// Writes the ids of `sources` (each sorted, none in two) as one sorted
    /// run at `path`.
    fn write(path: PathBuf, len: usize, mut sources: Vec<Ids>) -> Result<Run> {
        let written = || format!("{}: cannot write the ids of a day added", path.display());
        let mut w = BufWriter::new(File::create(&path).with_context(written)?);
        let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(u128, usize)>> = Default::default();
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(id) = s.next() {
                heads.push(std::cmp::Reverse((id?, i)));
            }
        }
        let (mut n, mut firsts, mut filter) = (0usize, Vec::new(), Bloom::new(len));
        while let Some(std::cmp::Reverse((id, i))) = heads.pop() {
            if n % BLOCK == 0 {
                firsts.push(id);
            }
            w.write_all(&id.to_le_bytes()).with_context(written)?;
            filter.add(id);
            n += 1;
            if let Some(next) = sources[i].next() {
                heads.push(std::cmp::Reverse((next?, i)));
            }
        }
        w.flush().with_context(written)?;
        let file = File::open(&path).with_context(written)?;
        Ok(Run { file, path, len: n, firsts, filter })
    }

    /// The run's ids, in order, read from its file.
    fn ids(&self) -> Result<impl Iterator<Item = Result<u128>>> {
        let mut file = std::io::BufReader::with_capacity(64 << 10, self.file.try_clone()?);
        std::io::Seek::rewind(&mut file)?;
        Ok((0..self.len).map(move |_| {
            let mut b = [0u8; 16];
            std::io::Read::read_exact(&mut file, &mut b).context("reading back the ids of a day added")?;
            Ok(u128::from_le_bytes(b))
        }))
    }
    fn holds(&self, id: u128) -> Result<bool> {
        if !self.filter.may_hold(id) {
            return Ok(false);
        }
        let block = match self.firsts.partition_point(|first| *first <= id) {
            0 => return Ok(false),
            n => n - 1,
        };
        let start = block * BLOCK;
        let n = BLOCK.min(self.len - start);
        let mut bytes = [0u8; BLOCK * 16];
        let bytes = &mut bytes[..n * 16];
        read_exact_at(&self.file, bytes, start as u64 * 16).context("reading back the ids of a day added")?;
        let nth = |i: usize| u128::from_le_bytes(bytes[i * 16..i * 16 + 16].try_into().expect("16 bytes"));
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match nth(mid).cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(true),
            }
        }
        Ok(false)
    }
}

/// A Bloom filter of ids, which are hashes already (xxh3), blocked: an
/// id's seven bits are in one 512-bit block (one cache line) that its low
/// half picks, at places its high half gives nine bits at a time. A
/// filter of seven bits anywhere in it cost a cache miss a bit, and an id
/// is looked for in each of its day's runs.
struct Bloom {
    blocks: Vec<[u64; 8]>,
}

/// Bits an id sets: with 10 bits an id, some 1% false positives.
const PROBES: u32 = 7;

impl Bloom {
    fn new(ids: usize) -> Bloom {
        Bloom { blocks: vec![[0; 8]; (ids * 10).div_ceil(512).max(1)] }
    }

    /// The id's block, and its bits there.
    fn place(&self, id: u128) -> (usize, impl Iterator<Item = usize>) {
        let block = ((id as u64) % self.blocks.len() as u64) as usize;
        let high = (id >> 64) as u64;
        (block, (0..PROBES).map(move |i| ((high >> (i * 9)) & 511) as usize))
    }

    fn add(&mut self, id: u128) {
        let (block, bits) = self.place(id);
        let block = &mut self.blocks[block];
        bits.for_each(|bit| block[bit / 64] |= 1 << (bit % 64));
    }

    fn may_hold(&self, id: u128) -> bool {
        let (block, mut bits) = self.place(id);
        let block = &self.blocks[block];
        bits.all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> DayOf {
        (true, NaiveDate::from_ymd_opt(2026, 11, n).unwrap())
    }

    /// Ids spread as hashes are.
    fn id(n: u64) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes())
    }

    #[test]
    fn an_id_is_new_once_per_day_whether_held_or_written_out() {
        for budget in [1, 7, 100, 1 << 20] {
            let mut seen = Seen::new(budget);
            seen.begin(day(1));
            for n in 0..300 {
                seen.add_stored(day(1), id(n)).unwrap();
            }
            // Days interleaved, each id offered twice, some stored already.
            for n in 200..2000u64 {
                let d = day(1 + (n % 3) as u32);
                assert_eq!(seen.insert(d, id(n)).unwrap(), n >= 300 || d != day(1), "{budget} {n}");
                assert!(!seen.insert(d, id(n)).unwrap(), "{budget} {n}");
            }
            for n in 0..2000u64 {
                let d = day(1 + (n % 3) as u32);
                assert_eq!(seen.insert(d, id(n)).unwrap(), n < 200 && d != day(1), "{budget} {n}");
            }
            assert!(seen.held <= budget.max(1), "{budget}: {} held", seen.held);
            let written = seen.days.values().map(|d| d.runs.len()).sum::<usize>();
            assert_eq!(written > 0, budget < 2000, "{budget}");
            // Merged as they gather: a few filters to look in, a file each.
            assert!(seen.days.values().all(|d| d.runs.len() < MERGED_AT), "{budget}");
            if let Some(f) = &seen.folder {
                assert_eq!(std::fs::read_dir(f.path()).unwrap().count(), written, "{budget}");
            }
        }
    }

    #[test]
    fn the_filter_holds_every_id_added_and_lets_few_others_through() {
        let mut filter = Bloom::new(10_000);
        (0..10_000).for_each(|n| filter.add(id(n)));
        assert!((0..10_000).all(|n| filter.may_hold(id(n))));
        let through = (10_000..110_000).filter(|n| filter.may_hold(id(*n))).count();
        assert!(through < 2_000, "{through} of 100,000 let through");
    }
}
