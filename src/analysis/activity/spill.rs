//! Grouping beyond memory: when the groups (or the sign-ins remembered to
//! drop duplicates) outgrow their budget, [`Activity`] moves to a temporary
//! folder and finishes from there with memory that no longer grows.
//!
//! The rule: every group is partitioned by its user, into [`PARTS`] files.
//! All that grows with the input is keyed by user (a group at the user
//! grain, the user's newest name, the copies of one sign-in, which share
//! their user), so each partition is complete on its own: it is grouped,
//! deduplicated and named in memory a partition at a time, sorted, and
//! written as a sorted run; the runs are then merged into the output order
//! and handed to the sinks one row at a time. What is kept in memory
//! throughout is the tenants, their names, and the app and resource ids,
//! names and owners, each up to the budget of groups, and all of them up
//! to its bytes ([`Budget::held_text`]).
//!
//! Past that many ids, or their bytes (a forged export can name a million
//! apps, or kilobyte ids; Entra's name thousands of GUIDs) an id is
//! written to the partition files as its text ([`OVERFLOW`]) and numbered
//! by each partition for itself ([`LOCAL`]);
//! its newest names and owner are added up per id on disk ([`Overflow`]),
//! sorted into a file once the sign-ins are read ([`Dictionary`]), and
//! looked up by each partition for its own ids ([`Local`]), so that memory
//! no longer grows with the apps either. A partition's rows carry the ids'
//! texts, so rows of one group from several partitions still merge as one;
//! at the tenant grain an app is told apart in every partition alike by
//! its number or a hash of its id ([`Local::identity`]). Tenants past the
//! budget go the same way (Entra's logs name hundreds of partners; a forged
//! export, millions): written as their GUIDs, numbered by each partition,
//! their newest names added up on disk and looked up by the partitions.
//!
//! A partition past the budget itself (at some 25 million groups with the
//! default budget: a forged export's) is read in passes, each grouping the
//! sign-ins of a share of its users ([`Pass`]); each pass's rows are a
//! run, and the passes' runs are merged into the partition's, so that what
//! is held while a partition is finished stays within the budget too.
//! Below the user grain, so is a partition past a quarter of the budget in
//! tenants and apps of its own (a forged export's), each of which is a row
//! there ([`Budget::for_finishing`]). A partition (or a pass) whose
//! duplicate filter alone goes past it, one guest's millions of sign-ins,
//! is read in readings by sign-in key into the same groups ([`Keys`]).
//!
//! At the switch, what is in memory is written out as it stands (groups,
//! user names, the duplicate filter's keys); after it, each sign-in is
//! written as it comes, and grouped when its partition is read. Duplicates
//! are found in the partition: a sign-in's dedup key carries its
//! partition's number ([`dedup_key`]). Sign-ins without a user id are
//! partitioned by that key, so a user-less group can have rows in several
//! runs; the merge adds rows with the same key together, which gives the
//! row grouping in memory gives, because every other column of such rows
//! is a name kept in memory for the whole run.
//!
//! Every grain spills. Below the user grain the groups are split by user
//! all the same while they may spill ([`Activity::for_grain`]): what grows
//! with users must be partitioned by user. A partition is then rolled up to
//! the grain in memory, and since its users are its own, the partitions'
//! counts of distinct users add up. Rows grow with apps at the app grain
//! and with partners at the tenant grain (a forged export can name
//! millions of either): at the app grain each partition's rows are a
//! sorted run and the merge adds a row's parts together, as at the user
//! grain; at the tenant grain, where Entra's logs make a few hundred rows
//! of every partition, they are added up as each partition is finished,
//! in memory up to a budget and on disk past it ([`TenantRows`]). A tenant
//! row's distinct apps do not add up (an app is used in many partitions):
//! its apps are told once each across partitions in the same way
//! ([`IdOfRow`]) and counted beside the rows ([`count_told`]). With policy
//! epochs (`replay --audit`) each group keeps its epoch on disk, and a
//! partition's rows get their counters per epoch as in memory.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::{
    epoch_of, sort_rows, Activity, GroupBy, GroupKeyOut, Interner, Key, Latest, NameOf, OwnNames, Rollup,
    RowStream, Tenants, Totals, Users, ROW_ORDER,
};
use crate::analysis::runs::codec::{Dec, Enc};
use crate::analysis::runs::{
    folder_error, key, merge_into, temp_folder, write_run, ByKey, Merge, Order, Record, Stream, Tally,
};
use crate::model::activity::{ActivityRow, Counters, Name};
use crate::model::{AccessType, Direction, Guid, SignIn};

/// What the rows of a spilled grouping at the user grain become where
/// each partition is finished ([`Activity::finish_stream_then`]).
pub(super) struct Then<'f, R> {
    pub(super) map: &'f (dyn Fn(ActivityRow) -> R + Sync),
    /// Total: ties between runs would come out in the runs' order.
    pub(super) order: Order<R>,
    /// Mapped rows without a user kept in memory at most.
    pub(super) budget: Option<usize>,
}

/// What becomes of a partition's rows at the user grain (given its number).
type Writer<'w> = dyn Fn(usize, &mut dyn Iterator<Item = ActivityRow>) -> Result<()> + Sync + 'w;

/// Joins what [`Writer`] made of a partition read in several passes
/// (given the passes' numbers, in order) into what it makes of one
/// partition (given its number).
type Joiner<'w> = dyn Fn(usize, &[usize]) -> Result<()> + Sync + 'w;

/// Partitions: with the default budget, a partition stays within it up to
/// some 25 million groups (past them it is read in passes, [`Pass`]).
pub(super) const PARTS: usize = 256;

/// A sign-in's identity for dedup: a 128-bit hash of its request id,
/// second and user id whose top 8 bits are replaced by its partition's
/// number (its user's, or the hash's own without a user), so that a key
/// says where its sign-in went. 120 bits: a collision is still
/// astronomically unlikely over billions of sign-ins.
///
/// The user is in the hash because the grouping on disk filters
/// duplicates per pass of a partition's users: sign-ins sharing a request
/// id and second but not their user (a forged export; Entra gives each
/// sign-in its own id) were one sign-in to the filter in memory and
/// several on disk, so counts depended on the budget. Copies of one
/// sign-in name one user.
pub(super) fn dedup_key(s: &SignIn) -> u128 {
    let id = Guid::parse(s.id()).map_or_else(|| xxhash_rust::xxh3::xxh3_128(s.id().as_bytes()), |g| g.0);
    let user = s.user_id().map(user_hash);
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&id.to_le_bytes());
    bytes[16..24].copy_from_slice(&s.time.timestamp().to_le_bytes());
    bytes[24..].copy_from_slice(&user.unwrap_or(0).to_le_bytes());
    let hash = xxhash_rust::xxh3::xxh3_128(&bytes);
    let part = user.map_or((hash >> 120) as usize, part_of_user_hash);
    (hash & (u128::MAX >> 8)) | ((part as u128) << 120)
}

fn part_of_user(id: &str) -> usize {
    part_of_user_hash(user_hash(id))
}

fn user_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

fn part_of_user_hash(hash: u64) -> usize {
    (hash >> 56) as usize
}

fn part_of_key(key: u128) -> usize {
    (key >> 120) as usize
}

/// The most passes a partition is read in ([`Pass`]): with the default
/// budget, a partition is read whole up to some 25 million groups and in
/// passes within the budget up to some 400 million.
const MAX_PASSES: usize = 16;

/// The most passes by group ([`Pass`]): a partition of one guest's
/// forged apps holds them all (2,000,000 apps: 26 passes of 77,000 groups,
/// where 14 of 143,000 took 250 MB at the app grain).
const MAX_PASSES_BY_GROUP: usize = 64;

/// Which share of a partition's users one reading of it takes. A
/// partition past the budget (groups, duplicate keys or users' texts;
/// some 25 million groups with the default one, or half a billion
/// sign-ins) is read again in passes, each of which groups only the
/// sign-ins of its share of the users, so that memory stays within the
/// budget whatever the input: a partition's rows were all held (and, at
/// the user grain, sorted) at once, which took memory past any bound as
/// groups grew. The shares are told by bits of the user's hash that the
/// partition's number does not use; sign-ins without a user by bits of
/// their dedup key; the groups written without a user at the switch go
/// to the first pass, and the duplicate filter's keys to every pass (a key
/// only drops copies of its own sign-in, which are in one pass). Each
/// pass's users are its own, so passes add up as partitions do. A pass
/// whose duplicate filter alone goes past the budget (one of its users has
/// millions of sign-ins) is read in readings by key ([`Keys`]).
///
/// A partition whose groups are those of few users (one guest with
/// 300,000 apps of his own: a forged export's) cannot be shared out by
/// user: it is shared out by group instead (`by_group`), each group told
/// by a hash of its tenants, access type and apps but not its user, so
/// that all of a row's groups fall in one pass at the user and app grains
/// (a tenant's, at the tenant grain, in several: there the users of each
/// row are told apart across passes as its apps are across partitions,
/// [`TenantRows`]); every pass keeps every user's names, so that each row
/// is named as it would be read whole. Such passes are as many as the
/// groups may be (each record not read yet a group of its own), up to
/// [`MAX_PASSES_BY_GROUP`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pass {
    of: usize,
    this: usize,
    by_group: bool,
}

/// What tells a group at the user grain apart, besides its user and its
/// epoch: its tenants and ids (the run's numbers, or past those a hash,
/// [`WrittenId::identity`]) and its access type.
type GroupOf = (u32, u32, AccessType, u32, u32);

/// A partition's groups a user, on average, past which a partition read
/// past the budget is shared out by group ([`Pass`]). Entra's guests use
/// some tens of apps.
const GROUPS_A_USER_BY_GROUP: usize = 64;

impl Pass {
    const WHOLE: Pass = Pass { of: 1, this: 0, by_group: false };

    /// Whether the pass takes a group of `user` (a sign-in's, with its
    /// dedup `key`, or one written at the switch), told by `group` when
    /// shared out by group.
    fn takes_group(self, user: Option<&str>, key: Option<u128>, group: impl FnOnce() -> GroupOf) -> bool {
        if user.is_none() || !self.by_group || self.of == 1 {
            return self.takes(user, key);
        }
        // Not by its user: every group of a row below the user grain (a
        // tenant pair, an access type and an app) in one pass.
        let (home, resource, access, app, resource_app) = group();
        let mut h = 0x2545_F491_4F6C_DD1D_u64;
        for n in [home, resource, access as u32, app, resource_app] {
            h = (h ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        }
        ((h >> 48) as u8 as usize) % self.of == self.this
    }

    /// Whether the pass keeps the names of user `id`: shared out by group,
    /// every pass does.
    fn takes_names(self, id: &str) -> bool {
        self.by_group || self.takes_user(id)
    }

    fn takes_user(self, id: &str) -> bool {
        self.of == 1
            || ((xxhash_rust::xxh3::xxh3_64(id.as_bytes()) >> 48) as u8 as usize) % self.of == self.this
    }

    fn takes_key(self, key: u128) -> bool {
        self.of == 1 || ((key >> 112) as u8 as usize) % self.of == self.this
    }

    fn takes(self, user: Option<&str>, key: Option<u128>) -> bool {
        match (user, key) {
            (Some(id), _) => self.takes_user(id),
            (None, Some(key)) => self.takes_key(key),
            (None, None) => self.this == 0,
        }
    }

    /// How many passes a partition of `records` needs, read past the
    /// budget after `read` of them (with room for the users not spread
    /// evenly, and at least two).
    fn needed(records: u64, read: u64) -> usize {
        readings_needed(records, read).clamp(2, MAX_PASSES)
    }

    /// The number of pass `this` of partition `p`'s rows: past the
    /// partitions' own numbers, so that a partition's file is still there
    /// to be read by every pass.
    fn number(self, p: usize) -> usize {
        PARTS * (self.this + 1) + p
    }
}

/// How many readings of `records` records stay within the budget that one
/// went past after `read` of them (with room for what is not spread evenly).
fn readings_needed(records: u64, read: u64) -> usize {
    let readings = records.saturating_mul(5) / read.max(1).saturating_mul(4) + 1;
    usize::try_from(readings).unwrap_or(usize::MAX)
}

/// Which share of the sign-ins' dedup keys one reading of a partition (or
/// of a pass of one) takes. A partition whose duplicate filter alone would
/// outgrow the budget (one guest with millions of sign-ins: passes by user
/// or by group cannot share out one group's sign-ins, whose keys were all
/// held at once: 229 MB for five million) is read in readings by key into
/// the same groups: copies of a sign-in share its key, so each reading's
/// filter is a share of the keys and still drops every copy but the first,
/// while the groups, the users' names and the totals add up across the
/// readings as over one (a group's counters and a user's newest name do not
/// depend on the order its sign-ins come in). The groups and names written
/// at the switch go to the first reading, the duplicate filter's keys to
/// the reading that takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Keys {
    of: usize,
    this: usize,
}

/// The most readings by key ([`Keys`]) of one partition or pass: with the
/// default budget, the duplicate filter stays within it up to some 100
/// million sign-ins of one guest.
const MAX_KEY_READINGS: usize = 64;

impl Keys {
    const ALL: Keys = Keys { of: 1, this: 0 };

    /// Told by bits of the key that neither its partition's number nor a
    /// pass of sign-ins without a user ([`Pass::takes_key`]) uses.
    fn takes(self, key: u128) -> bool {
        self.of == 1 || ((key >> 96) as u8 as usize) % self.of == self.this
    }

    /// Whether this reading takes what was written at the switch besides
    /// the duplicate filter's keys: the groups and the users' names.
    fn takes_written_at_switch(self) -> bool {
        self.this == 0
    }

    /// How many readings by key a partition of `records` needs whose
    /// duplicate filter went past the budget after `read` of them (or one
    /// of `records` keys, against a budget of `read`).
    fn needed(records: u64, read: u64) -> usize {
        readings_needed(records, read).clamp(2, MAX_KEY_READINGS)
    }
}

/// How far [`Part::read`] went.
#[derive(Debug, PartialEq, Eq)]
enum Reading {
    Whole,
    /// Past the budget, after this many records: to be read in passes.
    PastBudget(u64),
}

/// When to move to disk.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub(super) groups: usize,
    /// Keys of the duplicate filter: 16 bytes each, against some kilobyte a
    /// group at its peak, so many more fit. Past them a partition is read
    /// in readings by key ([`Keys`]), so one guest's sign-ins are not held
    /// whole either.
    pub(super) seen: usize,
    /// Bytes of the users' ids and names ([`super::Users`]): 512 a group,
    /// where Entra's are some 80 a user (a GUID and a principal name), so
    /// that only texts far longer than Entra writes (each up to
    /// [`crate::model::MAX_TEXT_BYTES`]) move the grouping to disk
    /// before its groups do.
    pub(super) text_bytes: usize,
    /// Bytes of the app and resource ids and the app, resource and tenant
    /// names held for the run ([`Activity::held_text`]): 256 a group,
    /// where Entra's are some 80 an app (a GUID and a display name) and a
    /// tenant's name some 30, and its logs name thousands of apps and
    /// hundreds of partners; past them, the grouping moves to disk and
    /// further ids and tenants are written there as their text
    /// ([`OVERFLOW`]), as past the budget's count of them. A forged
    /// export of kilobyte app ids, each its own, held 567 MB counted by
    /// ids alone.
    pub(super) held_text: usize,
    /// Ids a partition numbers for itself, tenants and apps past those held
    /// for the run ([`LOCAL`]), as it is finished ([`Budget::for_finishing`]).
    local_ids: usize,
}

impl Budget {
    pub(super) fn of_groups(groups: usize) -> Budget {
        let groups = groups.max(1);
        let (seen, text_bytes) = (groups.saturating_mul(20), groups.saturating_mul(512));
        Budget { groups, seen, text_bytes, held_text: groups.saturating_mul(256), local_ids: usize::MAX }
    }

    /// Only the duplicate filter's part of this budget: what a pass of a
    /// partition, shared out to hold the rest within it, is read against to
    /// tell whether it needs readings by key ([`Keys`]).
    fn of_keys(self) -> Budget {
        Budget { groups: usize::MAX, text_bytes: usize::MAX, local_ids: usize::MAX, ..self }
    }

    /// This budget but for the duplicate filter's part: what a partition
    /// read in readings by key ([`Keys`]) holds besides.
    fn without_keys(self) -> Budget {
        Budget { seen: usize::MAX, ..self }
    }

    /// What a partition may hold as it is finished at grain `by` before
    /// it is read in passes ([`Pass`]). Below the user grain, besides,
    /// tenants and apps of its own (past those held for the run) up to a
    /// quarter of the groups, as the tenant grain's tallies hold
    /// ([`TenantRows`]): their rows are as many, each counting its distinct
    /// users and apps, held at once with the groups (ten million forged
    /// partners, `--by tenant`: 192 MB read whole, 149 in passes). Rows of
    /// the tenants and apps held for the run are as few as those (Entra's
    /// partners); many users' groups rolled up into them are read whole.
    fn for_finishing(self, by: GroupBy) -> Budget {
        match by {
            GroupBy::User => self,
            GroupBy::App | GroupBy::Tenant => Budget { local_ids: (self.groups / 4).max(1), ..self },
        }
    }
}

// Record tags in a partition file.
const SEEN: u8 = 0;
const GROUP: u8 = 1;
const USER: u8 = 2;
const SIGN_IN: u8 = 3;

/// The partition files being written.
pub(super) struct Spill {
    dir: crate::analysis::runs::TempFolder,
    parts: Vec<BufWriter<File>>,
    /// Records written to each partition: how many passes one past the
    /// budget needs ([`Pass::needed`]).
    records: Vec<u64>,
    record: Vec<u8>,
    /// The first write that failed: [`Activity::add`] cannot fail, so it is
    /// reported when the grouping finishes.
    error: Option<io::Error>,
    /// The names of the ids and tenants past those held for the run, once
    /// read.
    dictionary: Option<Dictionaries>,
}

fn part_path(dir: &Path, p: usize) -> PathBuf {
    dir.join(format!("part-{p:03}"))
}

/// Partition `p`'s sorted run: written over the partition's own file once
/// that is read, not into a new file (the partition file deleted). Creating
/// files where many were just deleted is slow on ext4, whose inode allocator
/// reads the inode table to pass over inodes freed in the last seconds. At a
/// million groups, back to back: the calls that made the runs and removed
/// the files took 180 ms (`strace -T`: creating 88, deleting the partitions
/// 63, the runs 29); overwriting takes 59 (`write_run` writes over the
/// file's pages and cuts off the rest).
fn run_path(dir: &Path, p: usize) -> PathBuf {
    part_path(dir, p)
}

/// What one thread may hold of a partition's rows while it finishes it
/// (partitions are finished in parallel, a thread each): its share of the
/// budget's groups, and of a quarter of a kilobyte of their texts a group
/// (a row held mapped holds them about twice, in its sort key and its
/// line). Entra's rows (some 230 bytes of ids and names) reach the rows
/// first: on two threads a partition of a million groups' (4,000 rows)
/// and of ten million groups' (40,000) is held whole, as it was.
#[derive(Clone, Copy)]
struct Share {
    rows: usize,
    text: usize,
}

/// A thread's [`Share`] of a budget of `groups`.
fn thread_share(groups: Option<usize>) -> Option<Share> {
    groups.map(|g| {
        let rows = (g / rayon::current_num_threads().max(1)).max(1);
        Share { rows, text: rows.saturating_mul(crate::analysis::runs::BYTES_A_RECORD / 4) }
    })
}

/// Writes partition `p`'s rows (each with the bytes of its texts,
/// [`ActivityRow::text_bytes`]) as its run in `dir`, sorted by `order`:
/// held and sorted whole up to a thread's `share` of rows or their texts,
/// past it sorted and written a part at a time beside it and the parts
/// merged into the run (`combine` as the merge of the runs does). A partition is a user's groups, and so are its rows:
/// one user with 300,000 groups of his own, or forged kilobyte ids, held
/// 350 MB in one partition when a partition was held whole.
fn write_sorted<R: Record>(
    dir: &Path,
    p: usize,
    rows: impl Iterator<Item = (R, usize)>,
    order: Order<R>,
    share: Option<Share>,
    combine: Option<fn(&mut R, R)>,
) -> Result<()> {
    let (lower, upper) = rows.size_hint();
    // The partition's groups bound its rows: one allocation, not a vector
    // doubled (and copied) its way up to a partition's size.
    let mut held: Vec<R> =
        Vec::with_capacity(upper.unwrap_or(lower).min(share.map_or(usize::MAX, |s| s.rows)));
    let (mut text, mut parts) = (0usize, Vec::new());
    let part_path = |n: usize| dir.join(format!("part-{p:03}-{n:03}"));
    for (r, bytes) in rows {
        text = text.saturating_add(bytes);
        held.push(r);
        if share.is_some_and(|s| held.len() >= s.rows || text > s.text) {
            order.sort(&mut held);
            let path = part_path(parts.len());
            write_run(&path, &held)?;
            parts.push(path);
            held.clear();
            text = 0;
        }
    }
    order.sort(&mut held);
    if parts.is_empty() {
        return write_run(&run_path(dir, p), &held);
    }
    if !held.is_empty() {
        let path = part_path(parts.len());
        write_run(&path, &held)?;
        parts.push(path);
    }
    drop(held);
    merge_into(&parts, &run_path(dir, p), order, combine)
}

/// The runs numbered `numbers` in `dir`: partitions', or a partition's
/// passes' ([`Pass::number`]).
fn runs_in(dir: &Path, numbers: impl IntoIterator<Item = usize>) -> Vec<PathBuf> {
    numbers.into_iter().map(|n| run_path(dir, n)).collect()
}

/// [`runs_in`] the folder of rows without a user, those there are: a
/// partition (or a pass of one) writes its run there only if it had such
/// rows.
fn aside_runs_in(dir: &Path, numbers: impl IntoIterator<Item = usize>) -> Vec<PathBuf> {
    runs_in(dir, numbers).into_iter().filter(|path| path.exists()).collect()
}

impl Spill {
    fn create() -> io::Result<Spill> {
        let dir = temp_folder("groups")?;
        let parts = (0..PARTS)
            .map(|p| Ok(BufWriter::with_capacity(32 << 10, File::create(part_path(dir.path(), p))?)))
            .collect::<io::Result<_>>()?;
        let records = vec![0; PARTS];
        Ok(Spill { dir, parts, records, record: Vec::with_capacity(256), error: None, dictionary: None })
    }

    fn write(&mut self, part: usize, tag: u8, build: impl FnOnce(&mut Enc)) {
        if self.error.is_some() {
            return;
        }
        self.record.clear();
        let mut enc = Enc(&mut self.record);
        enc.u8(tag);
        build(&mut enc);
        if let Err(e) = self.parts[part].write_all(&self.record) {
            self.error = Some(e);
        }
        self.records[part] += 1;
    }

    /// A sign-in read after the switch, with its ids as the grouping in
    /// memory numbered them (tenants, apps and resources up to the budget;
    /// past it, [`OVERFLOW`] and the id: a tenant's GUID, an app's text).
    pub(super) fn sign_in(
        &mut self,
        key: u128,
        s: &SignIn,
        tenants: (u32, u32),
        app: u32,
        resource_app: u32,
    ) {
        self.write(part_of_key(key), SIGN_IN, |e| {
            e.u128(key);
            e.time(s.time);
            e.event_type(s.event_type);
            for (number, tenant) in [(tenants.0, s.home_tenant), (tenants.1, s.resource_tenant)] {
                e.u32(number);
                if number == OVERFLOW {
                    e.u128(tenant.map_or(0, |t| t.0));
                }
            }
            e.access(s.access_type);
            e.u32(app);
            if app == OVERFLOW {
                e.str(s.app_id().unwrap_or_default());
            }
            e.u32(resource_app);
            if resource_app == OVERFLOW {
                e.str(s.resource_id().unwrap_or_default());
            }
            e.opt_str(s.user_id());
            e.opt_str(s.user_principal_name());
            e.user_type(Some(s.user_type));
            e.u32(s.error_code);
            e.evidence(&s.evidence);
        });
    }

    /// Sorts the names of the ids past those held for the run into the
    /// folder, to be looked up as the partitions are finished.
    pub(super) fn take_overflow(&mut self, overflow: Option<Overflow>) -> Result<()> {
        if let Some(o) = overflow {
            let dictionary = Dictionaries::build(o, self.dir.path()).with_context(|| self.folder_error())?;
            self.dictionary = Some(dictionary);
        }
        Ok(())
    }

    fn finish_writing(&mut self) -> Result<()> {
        for w in &mut self.parts {
            if let Err(e) = w.flush() {
                self.error.get_or_insert(e);
            }
        }
        self.parts.clear();
        match self.error.take() {
            None => Ok(()),
            Some(e) => Err(e).with_context(|| self.folder_error()),
        }
    }

    fn folder_error(&self) -> String {
        folder_error("grouping", Some(self.dir.path()))
    }
}

/// One partition read back: grouped as [`Activity::add`] groups in memory.
#[derive(Default)]
struct Part {
    seen: HashSet<u128>,
    users: Users,
    /// App and resource ids past those held for the run, numbered here
    /// from [`LOCAL`] up.
    local: Interner,
    /// Tenants past those held for the run, numbered here from [`LOCAL`]
    /// up as well.
    tenants: Tenants,
    groups: HashMap<Key, Counters>,
    totals: Totals,
}

/// The largest tables of the partitions read so far. Users are spread
/// over the partitions by a hash, so partitions come out alike: one read
/// next reserves as much up front instead of growing its tables (and
/// rehashing them) its way up, which was a twentieth of finishing them.
#[derive(Default)]
struct PartSizes {
    seen: AtomicUsize,
    users: AtomicUsize,
    groups: AtomicUsize,
}

impl PartSizes {
    fn part(&self) -> Part {
        let mut part = Part::default();
        part.seen.reserve(self.seen.load(Relaxed));
        part.users.reserve(self.users.load(Relaxed));
        part.groups.reserve(self.groups.load(Relaxed));
        part
    }

    fn note(&self, part: &Part) {
        self.seen.fetch_max(part.seen.len(), Relaxed);
        self.users.fetch_max(part.users.len(), Relaxed);
        self.groups.fetch_max(part.groups.len(), Relaxed);
    }
}

/// An app, resource or tenant id of a sign-in as a partition file holds it
/// ([`Spill::sign_in`]): the run's number, or past those held for the run
/// (an app's or resource's text read aside, a tenant's GUID). The ids past
/// those are numbered by a reading only for the sign-ins it takes: passes
/// and readings by key that numbered every id they read held all of one
/// guest's 2,000,000 forged apps in every pass (480 MB).
#[derive(Clone, Copy)]
enum WrittenId<Past> {
    Held(u32),
    Past(Past),
}

impl WrittenId<()> {
    /// An app or resource id, its text (past those held) read into `text`.
    fn app<R: io::BufRead>(dec: &mut Dec<R>, text: &mut String) -> io::Result<WrittenId<()>> {
        match dec.u32()? {
            OVERFLOW => {
                text.clear();
                text.push_str(dec.text()?);
                Ok(WrittenId::Past(()))
            }
            held => Ok(WrittenId::Held(held)),
        }
    }
}

impl WrittenId<Guid> {
    fn tenant<R: io::BufRead>(dec: &mut Dec<R>) -> io::Result<WrittenId<Guid>> {
        match dec.u32()? {
            OVERFLOW => Ok(WrittenId::Past(Guid(dec.u128()?))),
            held => Ok(WrittenId::Held(held)),
        }
    }
}

impl<Past> WrittenId<Past> {
    /// What tells the id apart alike in every pass, without a number of
    /// the partition's ([`Pass::takes_group`]): the run's number, or the
    /// `hash` of what was written past those.
    fn identity(self, hash: impl FnOnce(Past) -> u64) -> u32 {
        match self {
            WrittenId::Held(n) => n,
            WrittenId::Past(past) => LOCAL | (hash(past) as u32 >> 1),
        }
    }
}

impl Part {
    /// An app or resource id's number: the run's, or past those
    /// ([`WrittenId::Past`]), this partition's own.
    fn app_number(&mut self, id: WrittenId<()>, text: &str) -> u32 {
        match id {
            WrittenId::Held(n) => n,
            WrittenId::Past(()) => LOCAL.saturating_add(self.local.intern(Some(text))),
        }
    }

    /// A tenant's number: the run's, or past those, this partition's own.
    fn tenant_number(&mut self, id: WrittenId<Guid>) -> u32 {
        match id {
            WrittenId::Held(n) => n,
            WrittenId::Past(t) => LOCAL.saturating_add(self.tenants.number(t)).saturating_add(1),
        }
    }

    /// Whether what is held is past `budget`.
    fn past(&self, budget: &Budget) -> bool {
        self.groups.len() > budget.groups
            || self.seen.len() > budget.seen
            || self.users.text_bytes() > budget.text_bytes
            || self.local.len() + self.tenants.ids.len() > budget.local_ids
    }

    /// Reads a partition file, the records of `pass` of it whose dedup
    /// keys `keys` takes (added to what this part holds); sign-ins fall in
    /// the policy epochs that start at `epoch_starts`
    /// ([`Activity::split_by_epochs`]). With a `budget`, stops once past
    /// it: the partition is to be read in passes.
    fn read(
        &mut self,
        path: &Path,
        epoch_starts: &[DateTime<Utc>],
        (pass, keys): (Pass, Keys),
        budget: Option<&Budget>,
    ) -> io::Result<Reading> {
        let mut dec = Dec::new(BufReader::with_capacity(64 << 10, File::open(path)?));
        // A sign-in's principal name, and its app and resource ids past
        // those held for the run, read into the same buffers every time.
        let (mut upn, mut app_text, mut resource_app_text) = (String::new(), String::new(), String::new());
        let mut records = 0u64;
        while !dec.at_end()? {
            records += 1;
            if budget.is_some_and(|b| self.past(b)) {
                return Ok(Reading::PastBudget(records));
            }
            match dec.u8()? {
                SEEN => {
                    let key = dec.u128()?;
                    if keys.takes(key) {
                        self.seen.insert(key);
                    }
                }
                GROUP => {
                    let (home, resource, access) = (dec.u32()?, dec.u32()?, dec.access()?);
                    let (app, resource_app) = (dec.u32()?, dec.u32()?);
                    let user = dec.opt_text()?;
                    if !keys.takes_written_at_switch()
                        || !pass.takes_group(user, None, || (home, resource, access, app, resource_app))
                    {
                        let _ = (dec.u16()?, dec.counters()?);
                        continue;
                    }
                    let user = self.users.intern(user);
                    let epoch = dec.u16()?;
                    let key = Key { home, resource, access, app, resource_app, user, epoch };
                    self.groups.entry(key).or_default().merge(&dec.counters()?);
                }
                USER => {
                    let user = dec.text()?;
                    if !keys.takes_written_at_switch() || !pass.takes_names(user) {
                        let _ = (dec.time()?, dec.string()?, dec.user_type()?);
                        continue;
                    }
                    let user = self.users.intern(Some(user));
                    let at = dec.time()?;
                    let upn = dec.string()?;
                    let ty = dec.user_type()?.unwrap_or_default();
                    self.users.offer(user, at, &upn, ty);
                }
                SIGN_IN => {
                    let key = dec.u128()?;
                    let time = dec.time()?;
                    let event_type = dec.event_type()?;
                    let (home, resource) = (WrittenId::tenant(&mut dec)?, WrittenId::tenant(&mut dec)?);
                    let access = dec.access()?;
                    let app = WrittenId::app(&mut dec, &mut app_text)?;
                    let resource_app = WrittenId::app(&mut dec, &mut resource_app_text)?;
                    let user = dec.opt_text()?;
                    if !keys.takes(key) {
                        // Its copies all come in the reading that takes it.
                        dec.opt_text()?;
                        let _ = (dec.user_type()?, dec.u32()?, dec.evidence()?);
                        continue;
                    }
                    let group = || {
                        let tenant = |t: Guid| xxhash_rust::xxh3::xxh3_64(&t.0.to_le_bytes());
                        let text = |t: &str| xxhash_rust::xxh3::xxh3_64(t.as_bytes());
                        (
                            home.identity(tenant),
                            resource.identity(tenant),
                            access,
                            app.identity(|()| text(&app_text)),
                            resource_app.identity(|()| text(&resource_app_text)),
                        )
                    };
                    if !pass.takes_group(user, Some(key), group) {
                        // Shared out by group, copies of a sign-in can fall
                        // in different groups (a forged export's): each
                        // pass tells the first copy of every sign-in, as a
                        // reading of the whole partition does, and keeps its
                        // user's name, as the passes that take the user's
                        // groups need.
                        match user.filter(|_| pass.by_group && self.seen.insert(key)) {
                            Some(id) => {
                                let user = self.users.intern(Some(id));
                                upn.clear();
                                upn.push_str(dec.opt_text()?.unwrap_or_default());
                                let ty = dec.user_type()?.unwrap_or_default();
                                self.users.offer(user, time, &upn, ty);
                                let _ = (dec.u32()?, dec.evidence()?);
                            }
                            None => {
                                dec.opt_text()?;
                                let _ = (dec.user_type()?, dec.u32()?, dec.evidence()?);
                            }
                        }
                        continue;
                    }
                    // Numbered as read, not copied first: a duplicate's user
                    // is its first copy's, numbered all the same.
                    let user = self.users.intern(user);
                    let (home, resource) = (self.tenant_number(home), self.tenant_number(resource));
                    let app = self.app_number(app, &app_text);
                    let resource_app = self.app_number(resource_app, &resource_app_text);
                    upn.clear();
                    upn.push_str(dec.opt_text()?.unwrap_or_default());
                    let ty = dec.user_type()?.unwrap_or_default();
                    let error_code = dec.u32()?;
                    let evidence = dec.evidence()?;
                    if !self.seen.insert(key) {
                        self.totals.duplicates_dropped += 1;
                        continue;
                    }
                    self.totals.count_cross_tenant(event_type.as_str());
                    self.users.offer(user, time, &upn, ty);
                    let epoch = epoch_of(epoch_starts, time);
                    let key = Key { home, resource, access, app, resource_app, user, epoch };
                    self.groups.entry(key).or_default().add_parts(time, error_code, &evidence);
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a record tag that was not written here",
                    ))
                }
            }
        }
        Ok(Reading::Whole)
    }
}

impl Activity {
    /// Whether this grouping may move to disk, and has reached its budget.
    pub(super) fn over_budget(&self) -> bool {
        self.budget.is_some_and(|b| {
            self.groups.len() >= b.groups
                || self.seen.len() >= b.seen
                || self.users.text_bytes() >= b.text_bytes
                || self.held_text() >= b.held_text
        })
    }

    /// Moves what is in memory to the partition files; the sign-ins after
    /// this go there as they come.
    pub(super) fn start_spilling(&mut self) {
        let mut spill = match Spill::create() {
            Ok(s) => s,
            Err(e) => {
                self.budget = None;
                self.spill_error = Some(anyhow::Error::new(e).context(folder_error("grouping", None)));
                return;
            }
        };
        for key in std::mem::take(&mut self.seen) {
            spill.write(part_of_key(key), SEEN, |e| e.u128(key));
        }
        for (k, c) in std::mem::take(&mut self.groups) {
            let user = self.users.ids.text(k.user);
            let part = user.map_or(0, part_of_user);
            spill.write(part, GROUP, |e| {
                e.u32(k.home);
                e.u32(k.resource);
                e.access(k.access);
                e.u32(k.app);
                e.u32(k.resource_app);
                e.opt_str(user);
                e.u16(k.epoch);
                e.counters(&c);
            });
        }
        let users = std::mem::take(&mut self.users);
        for (i, latest) in users.names.into_iter().enumerate() {
            let (Some(at), Some((upn, ty)), Some(id)) = (latest.at, latest.value, users.ids.text(i as u32))
            else {
                continue;
            };
            spill.write(part_of_user(id), USER, |e| {
                e.str(id);
                e.time(at);
                e.str(&upn);
                e.user_type(Some(ty));
            });
        }
        self.spill = Some(spill);
    }

    /// Groups each partition and adds to `totals` what the partitions
    /// count. Each partition is written as a sorted run (below the user
    /// grain rolled up to the grain first: its users are its own, so the
    /// partitions' counts of distinct users add up) and the rows are the
    /// runs' merge, a row's parts added together. At the tenant grain, whose
    /// rows are as many as partners, the partitions' rows are added up in
    /// a tally instead (in memory for as many partners as Entra's logs
    /// name, on disk past its budget), and each row's distinct apps are
    /// counted from a tally of its apps ([`TenantRows`]).
    pub(super) fn finish_spilled(
        &self,
        mut spill: Spill,
        tenant: Option<Guid>,
        by: GroupBy,
        totals: &mut Totals,
    ) -> Result<RowStream> {
        spill.finish_writing()?;
        if by == GroupBy::Tenant {
            let tally = std::sync::Mutex::new(TenantRows::new(self.budget.map(|b| b.groups)));
            self.finish_parts(&spill, tenant, by, totals, Rows::Tallied(&tally))?;
            drop(spill);
            let tally = tally.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            return tally.finish();
        }
        let dir = spill.dir.path().to_path_buf();
        let share = thread_share(self.budget.map(|b| b.groups));
        let write = |p: usize, rows: &mut dyn Iterator<Item = ActivityRow>| {
            let rows = rows.map(|r| {
                let text = r.text_bytes();
                (r, text)
            });
            write_sorted(&dir, p, rows, ROW_ORDER, share, Some(ActivityRow::merge))
        };
        let join = |p: usize, passes: &[usize]| {
            let runs = runs_in(&dir, passes.iter().copied());
            merge_into(&runs, &run_path(&dir, p), ROW_ORDER, Some(ActivityRow::merge))
        };
        self.finish_parts(&spill, tenant, by, totals, Rows::Written(&write, &join))?;
        // At the user grain only rows without a user can be equal in order
        // across runs: their sign-ins are partitioned by sign-in, not by
        // user (see the module doc). At the app grain any row can: each
        // partition's part of it counts the partition's own users.
        let runs = runs_in(&dir, 0..PARTS);
        let merge = Merge::open(spill.dir, runs, ROW_ORDER, Some(ActivityRow::merge))
            .with_context(|| "reading back the grouping's temporary folder")?;
        Ok(Stream::merged(merge))
    }

    /// [`Activity::finish_spilled`] at the user grain, each row mapped by
    /// `then` where its partition is finished: a row with a user is whole
    /// in its partition (all of its user's sign-ins are there), so its
    /// partition's mapped rows are sorted and written as a run in the
    /// mapped order. The rows without a user, which can have parts in
    /// several partitions, are written aside in the grouping's order,
    /// merged (parts added together), then mapped and sorted into runs of
    /// their own. The runs are merged once, into the mapped order.
    pub(super) fn finish_spilled_then<R: Record + Send>(
        &self,
        mut spill: Spill,
        tenant: Option<Guid>,
        totals: &mut Totals,
        then: &Then<'_, R>,
    ) -> Result<Stream<R>> {
        spill.finish_writing()?;
        let dir = spill.dir.path().to_path_buf();
        let aside = temp_folder("groups").with_context(|| folder_error("groups", None))?;
        let aside_dir = aside.path().to_path_buf();
        // Each row is mapped as it is built: the partition's rows are never
        // all held twice (as built and as mapped). The mapped order is total,
        // so the order they come in does not matter.
        let share = thread_share(self.budget.map(|b| b.groups));
        let write = |p: usize, rows: &mut dyn Iterator<Item = ActivityRow>| {
            let mut userless = Vec::new();
            let mapped = rows.filter_map(|r| match r.user_id {
                Some(_) => {
                    let text = r.text_bytes();
                    Some(((then.map)(r), text))
                }
                None => {
                    userless.push(r);
                    None
                }
            });
            write_sorted(&dir, p, mapped, then.order, share, None)?;
            if !userless.is_empty() {
                sort_rows(&mut userless);
                write_run(&run_path(&aside_dir, p), &userless)?;
            }
            Ok(())
        };
        let join = |p: usize, passes: &[usize]| {
            merge_into(&runs_in(&dir, passes.iter().copied()), &run_path(&dir, p), then.order, None)?;
            let userless = aside_runs_in(&aside_dir, passes.iter().copied());
            if userless.is_empty() {
                return Ok(());
            }
            merge_into(&userless, &run_path(&aside_dir, p), ROW_ORDER, Some(ActivityRow::merge))
        };
        self.finish_parts(&spill, tenant, GroupBy::User, totals, Rows::Written(&write, &join))?;
        let mut runs = runs_in(&dir, 0..PARTS);
        let userless = aside_runs_in(&aside_dir, 0..PARTS);
        let merge = Merge::open(aside, userless, ROW_ORDER, Some(ActivityRow::merge))
            .with_context(|| "reading back the grouping's temporary folder")?;
        let mut userless = Stream::merged(merge);
        loop {
            // A chunk of as many rows as the budget allows mapped (or
            // their texts: one row past them).
            let (mut rows, mut text) = (Vec::new(), 0);
            for r in userless.by_ref() {
                text += r.text_bytes();
                rows.push(r);
                if super::mapped_past(rows.len() + 1, text, then.budget.map(|b| b.max(1))) {
                    break;
                }
            }
            if rows.is_empty() {
                break;
            }
            let mut mapped: Vec<R> = rows.into_par_iter().map(then.map).collect();
            then.order.sort(&mut mapped);
            let path = dir.join(format!("userless-{:06}", runs.len()));
            write_run(&path, &mapped).with_context(|| spill.folder_error())?;
            runs.push(path);
        }
        userless.finish()?;
        let merge = Merge::open(spill.dir, runs, then.order, None)
            .with_context(|| "reading back the grouping's temporary folder")?;
        Ok(Stream::merged(merge))
    }

    /// Finishes every partition in parallel, its rows handed to `rows`,
    /// and adds up what they count into `totals`.
    fn finish_parts(
        &self,
        spill: &Spill,
        tenant: Option<Guid>,
        by: GroupBy,
        totals: &mut Totals,
        rows: Rows<'_>,
    ) -> Result<()> {
        let dir = spill.dir.path().to_path_buf();
        let sizes = PartSizes::default();
        let parts: Vec<Totals> = (0..PARTS)
            .into_par_iter()
            .map(|p| {
                let part = (p, spill.records[p]);
                self.finish_part(&dir, part, &sizes, (tenant, by), spill.dictionary.as_ref(), rows)
                    .with_context(|| spill.folder_error())
            })
            .collect::<Result<_>>()?;
        for t in parts {
            add_totals(totals, t);
        }
        Ok(())
    }

    /// Reads partition `p` back (of `records` records), groups it and
    /// hands its rows to `rows`: whole, or, past the budget, in passes
    /// ([`Pass`]) whose rows are joined.
    fn finish_part(
        &self,
        dir: &Path,
        (p, records): (usize, u64),
        sizes: &PartSizes,
        grain: (Option<Guid>, GroupBy),
        dictionary: Option<&Dictionaries>,
        rows: Rows<'_>,
    ) -> Result<Totals> {
        let path = part_path(dir, p);
        let context = || format!("reading {}", path.display());
        // Reads `pass` of the partition into one part; in `readings` by key
        // when they are known to be needed, or when its duplicate filter
        // goes past the budget. With `rest`, none if the rest of what it
        // holds goes past that (the partition is then read in passes).
        let read_pass =
            |pass: Pass, readings: Option<usize>, rest: Option<&Budget>| -> Result<Option<Part>> {
                let of = match readings {
                    Some(of) => of,
                    None => {
                        let mut part = sizes.part();
                        let keys = self.budget.map(Budget::of_keys);
                        let reading = part
                            .read(&path, &self.epoch_starts, (pass, Keys::ALL), keys.as_ref())
                            .with_context(context)?;
                        match reading {
                            Reading::Whole => return Ok(Some(part)),
                            Reading::PastBudget(read) => Keys::needed(records, read),
                        }
                    }
                };
                let mut part = sizes.part();
                for this in 0..of {
                    part.seen.clear();
                    let reading = part
                        .read(&path, &self.epoch_starts, (pass, Keys { of, this }), rest)
                        .with_context(context)?;
                    if reading != Reading::Whole {
                        return Ok(None);
                    }
                }
                Ok(Some(part))
            };
        // Added up in memory at the tenant grain: no run is written over it.
        let done_reading = || match rows {
            Rows::Tallied(_) => std::fs::remove_file(&path),
            Rows::Written(..) => Ok(()),
        };
        // The partition read as one part, in one reading or by key.
        let finish_whole = |part: Part| {
            sizes.note(&part);
            done_reading()?;
            self.finish_read(part, p, grain, dictionary, (rows, false))
        };
        let budget = self.budget.map(|b| b.for_finishing(grain.1));
        let mut part = sizes.part();
        let reading = part
            .read(&path, &self.epoch_starts, (Pass::WHOLE, Keys::ALL), budget.as_ref())
            .with_context(context)?;
        let (Reading::PastBudget(read_records), Some(budget)) = (reading, budget) else {
            return finish_whole(part);
        };
        let by_group = part.users.len().saturating_mul(GROUPS_A_USER_BY_GROUP) < part.groups.len();
        // Past the budget by its duplicate filter alone (one guest with
        // millions of sign-ins), read whole in readings by key unless the
        // rest goes past it too.
        let rest = budget.without_keys();
        let by_keys_alone = !part.past(&rest);
        // Shared out by group, every pass tells every sign-in's first copy
        // (see `Part::read`): as many keys as the whole partition's.
        let keys =
            u64::try_from(part.seen.len()).unwrap_or(u64::MAX).saturating_mul(records) / read_records.max(1);
        let group_readings =
            (by_group && keys > budget.seen as u64).then(|| Keys::needed(keys, budget.seen as u64));
        let groups_held = part.groups.len() as u64;
        drop(part);
        if by_keys_alone {
            if let Some(part) =
                read_pass(Pass::WHOLE, Some(Keys::needed(records, read_records)), Some(&rest))?
            {
                return finish_whole(part);
            }
        }
        let of = match by_group {
            false => Pass::needed(records, read_records),
            // Each sign-in not read yet may be a group of its own: the
            // groups written at the switch come first, one a record, so
            // that the records read said too few passes (one guest's
            // 2,000,000 forged apps: 14, each holding 143,000 rows).
            true => {
                let groups = groups_held.saturating_add(records.saturating_sub(read_records));
                readings_needed(records, read_records)
                    .max(readings_needed(groups, budget.groups as u64))
                    .clamp(2, MAX_PASSES_BY_GROUP)
            }
        };
        let (mut totals, mut numbers) = (Totals::default(), Vec::with_capacity(of));
        // Shared out by group at the tenant grain, a user's groups of one
        // row fall in several passes: his are told apart across them.
        let users_told_across_passes = by_group && grain.1 == GroupBy::Tenant;
        for this in 0..of {
            let pass = Pass { of, this, by_group };
            let part =
                read_pass(pass, group_readings, None)?.context("a reading without a budget stopped short")?;
            sizes.note(&part);
            let number = pass.number(p);
            add_totals(
                &mut totals,
                self.finish_read(part, number, grain, dictionary, (rows, users_told_across_passes))?,
            );
            numbers.push(number);
        }
        done_reading()?;
        if let Rows::Written(_, join) = rows {
            join(p, &numbers)?;
        }
        Ok(totals)
    }

    /// Groups a partition (or a pass of one) read back and hands its rows
    /// to `rows` as those of partition `p`.
    fn finish_read(
        &self,
        mut part: Part,
        p: usize,
        (tenant, by): (Option<Guid>, GroupBy),
        dictionary: Option<&Dictionaries>,
        (rows, users_told_across_passes): (Rows<'_>, bool),
    ) -> Result<Totals> {
        let write = match rows {
            Rows::Written(write, _) => write,
            Rows::Tallied(_) => &|_: usize, _: &mut dyn Iterator<Item = ActivityRow>| Ok(()),
        };
        let mut totals = std::mem::take(&mut part.totals);
        part.seen = HashSet::default();
        let local = Local::resolve(
            std::mem::take(&mut part.local.strings),
            std::mem::take(&mut part.tenants.ids),
            dictionary,
        )
        .with_context(|| "reading the ids' names")?;
        let split = !self.epoch_starts.is_empty();
        let groups = std::mem::take(&mut part.groups);
        if by == GroupBy::User && !split {
            // Each group is a row: handed on as it is built, not gathered
            // first (the writer may turn it into something larger).
            let mut other_tenants = 0u64;
            let users = &part.users;
            let mut names = OwnNames::default();
            // In the order of the users' numbers, which is the order their
            // ids and names were read in, and so lie in memory: in the
            // table's order each row's user id and name were two reads from
            // memory far from the last (a cache miss each, two more for
            // their counts): at ten million groups, some 4 of the run's 58
            // CPU-seconds. The writer sorts the rows into output order.
            let mut groups: Vec<(Key, Counters)> = groups.into_iter().collect();
            groups.sort_unstable_by_key(|(k, _)| k.user);
            let mut rows =
                groups.into_iter().filter_map(|(k, c)| match self.output_key(&k, tenant, by, &local) {
                    Some(out) => Some(self.row_named(
                        &out,
                        users.id(k.user),
                        users.name(k.user),
                        c,
                        |of| names.name(self, of, &local),
                        &local,
                    )),
                    None => {
                        other_tenants = other_tenants.saturating_add(c.sign_ins);
                        None
                    }
                });
            write(p, &mut rows)?;
            drop(rows);
            totals.other_tenants = totals.other_tenants.saturating_add(other_tenants);
            return Ok(totals);
        }
        let mut rolled: HashMap<GroupKeyOut, Rollup> = HashMap::default();
        for (k, c) in groups {
            let Some(out) = self.output_key(&k, tenant, by, &local) else {
                totals.other_tenants = totals.other_tenants.saturating_add(c.sign_ins);
                continue;
            };
            rolled.entry(out).or_default().add(&k, &c, by, split);
        }
        // Users whose groups of a row other passes may hold too, told
        // apart alike in every pass, to be counted across them.
        let mut users = Vec::new();
        if users_told_across_passes {
            for (k, r) in &mut rolled {
                let identity = |u| user_identity(part.users.id(u).as_ref());
                users.extend(r.users.drain().map(|u| IdOfRow::of(k, identity(u))));
            }
        }
        if by != GroupBy::User {
            rolled.values_mut().for_each(Rollup::count_users);
        }
        if let Rows::Tallied(tally) = rows {
            // Apps told apart alike in every partition, to be counted
            // across them.
            let mut apps = Vec::new();
            for (k, r) in &mut rolled {
                apps.extend(r.apps.drain().map(|a| IdOfRow::of(k, local.identity(a as u32))));
            }
            let rows = self.rolled_rows(rolled, by, &part.users, &local);
            let mut tally = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rows.into_iter().try_for_each(|r| tally.rows.add(r))?;
            apps.into_iter().try_for_each(|a| tally.apps.add(a))?;
            users.into_iter().try_for_each(|u| tally.users.add(u))?;
            return Ok(totals);
        }
        let rows = self.rolled_rows(rolled, by, &part.users, &local);
        write(p, &mut rows.into_iter())?;
        Ok(totals)
    }
}

/// Adds what a partition (or a pass of one) counted to `totals`.
fn add_totals(totals: &mut Totals, part: Totals) {
    totals.cross_tenant += part.cross_tenant;
    totals.duplicates_dropped += part.duplicates_dropped;
    totals.other_tenants = totals.other_tenants.saturating_add(part.other_tenants);
    for (k, n) in part.cross_tenant_by_event_type {
        *totals.cross_tenant_by_event_type.entry(k).or_default() += n;
    }
}

/// What becomes of a partition's rows where it is finished.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// Written (as a run, or mapped first), given the partition's number;
    /// a partition read in passes has its passes' joined.
    Written(&'a Writer<'a>, &'a Joiner<'a>),
    /// Added up with the other partitions' (the tenant grain).
    Tallied(&'a std::sync::Mutex<TenantRows>),
}

/// The tenant grain's rows added up across partitions as each is finished
/// (their counts of distinct users add up: each partition's users are its
/// own), and the apps of each row, told once each across partitions, to
/// count its distinct apps ([`count_told`]): in memory for as many rows
/// and apps as Entra's logs name, on disk past a quarter of the budget
/// each however many a forged export names. A partition read in passes by
/// group can hold a user's groups of one row in several passes: its users
/// are told once each like the apps, and added to the rows' counts.
struct TenantRows {
    rows: Tally<(Direction, Guid, AccessType), ActivityRow>,
    apps: Tally<IdOfRow, IdOfRow>,
    users: Tally<IdOfRow, IdOfRow>,
}

impl TenantRows {
    fn new(groups: Option<usize>) -> TenantRows {
        let budget = groups.map(|g| (g / 4).max(1));
        TenantRows {
            rows: Tally::new("groups", TENANT_ROWS, budget),
            apps: Tally::new("groups", IDS_OF_ROWS, budget),
            users: Tally::new("groups", IDS_OF_ROWS, budget),
        }
    }

    /// The rows, merged from the partitions, each with its distinct apps
    /// and the users told apart here added.
    fn finish(self) -> Result<RowStream> {
        let rows = count_told(self.rows.finish()?, self.apps.finish()?, |row, apps| {
            row.distinct_apps = Some(apps);
        });
        Ok(count_told(rows, self.users.finish()?, |row, users| {
            if users > 0 {
                row.distinct_users = Some(row.distinct_users.unwrap_or(0).saturating_add(users));
            }
        }))
    }
}

/// Rows of the tenant grain, a row a key, parts added together.
const TENANT_ROWS: ByKey<(Direction, Guid, AccessType), ActivityRow> = ByKey {
    key: |r| (r.direction, r.partner_tenant_id, r.access_type),
    order: ROW_ORDER,
    combine: ActivityRow::merge,
};

/// An app or a user in a row at the tenant grain: the row's key and what
/// tells the app ([`Local::identity`]) or user ([`user_identity`]) apart
/// in every partition. Each row's apps are told once each across
/// partitions, which counts its distinct apps; they do not add up across
/// partitions as users do: an app is used by users of many. The users of
/// a partition read in passes by group are told once each the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct IdOfRow {
    direction: Direction,
    partner: Guid,
    access: AccessType,
    id: u128,
}

const DIRECTIONS: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

impl IdOfRow {
    /// `id` in the row of `key`.
    fn of(key: &GroupKeyOut, id: u128) -> IdOfRow {
        IdOfRow { direction: key.direction, partner: key.partner, access: key.access_type, id }
    }

    /// The key of its row, in the rows' order ([`ActivityRow::sort_key`]
    /// at the tenant grain).
    fn row(&self) -> (Direction, Guid, &'static str) {
        (self.direction, self.partner, self.access.as_str())
    }
}

/// What tells a user apart in every partition: a hash of its id (128
/// bits: no two of billions alike).
fn user_identity(id: Option<&Name>) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.map_or(&b""[..], |id| id.as_bytes()))
}

impl Record for IdOfRow {
    fn write(&self, enc: &mut Enc) {
        enc.one_of(&DIRECTIONS, self.direction);
        enc.u128(self.partner.0);
        enc.access(self.access);
        enc.u128(self.id);
    }

    fn read<R: io::BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(IdOfRow {
            direction: dec.one_of(&DIRECTIONS, "direction")?,
            partner: Guid(dec.u128()?),
            access: dec.access()?,
            id: dec.u128()?,
        })
    }
}

/// [`IdOfRow`]s told once each, in the order of their rows, then by id.
const IDS_OF_ROWS: ByKey<IdOfRow, IdOfRow> = ByKey {
    key: |a| *a,
    order: Order {
        cmp: |a, b| a.row().cmp(&b.row()).then(a.id.cmp(&b.id)),
        key: |a, out| {
            out.push(a.direction as u8);
            out.extend_from_slice(&a.partner.0.to_be_bytes());
            key::text(out, a.access.as_str());
            out.extend_from_slice(&a.id.to_be_bytes());
        },
        sort: None,
    },
    combine: |_, _| {},
};

/// `rows` (the tenant grain's, merged from the partitions), each given
/// `set` of how many of `ids` ([`IdOfRow`]s in the same order, each once)
/// are of it.
fn count_told(rows: RowStream, ids: Stream<IdOfRow>, set: fn(&mut ActivityRow, u64)) -> RowStream {
    let (mut rows, mut ids) = (Some(rows), Some(ids));
    let mut next_id: Option<IdOfRow> = None;
    Stream::made(move || {
        let Some(mut row) = rows.as_mut().and_then(Iterator::next) else {
            // The end, or a failed read: either says so.
            let read = rows.take().map_or(Ok(()), Stream::finish);
            read.and(ids.take().map_or(Ok(()), Stream::finish))?;
            return Ok(None);
        };
        let key = (row.direction, row.partner_tenant_id, row.access_type.as_str());
        let mut count = 0;
        while let Some(id) = next_id.take().or_else(|| ids.as_mut().and_then(Iterator::next)) {
            match id.row().cmp(&key) {
                Ordering::Less => {
                    anyhow::bail!(
                        "internal error: an app or user of no row in the grouping's temporary folder"
                    )
                }
                Ordering::Equal => count += 1,
                Ordering::Greater => {
                    next_id = Some(id);
                    break;
                }
            }
        }
        set(&mut row, count);
        Ok(Some(row))
    })
}

/// An app or resource id past those held for the run: written to the
/// partition files as its text ([`Spill::sign_in`]), numbered by each
/// partition for itself from [`LOCAL`] up.
pub(super) const OVERFLOW: u32 = u32::MAX;

/// The first number a partition gives the ids past those held for the
/// run: the ids held are numbered below it.
pub(super) const LOCAL: u32 = 1 << 31;

/// The names and owners of the ids past those held for the run, and the
/// names of the tenants past them, added up per id as the sign-ins come
/// ([`Tally`], on disk past the budget), so that what is held grows with
/// the ids and tenants only up to the budget of groups however many apps
/// or partners a forged export names. Each one's newest names and owner
/// are looked up where its partitions are finished ([`Dictionaries`]).
pub(super) struct Overflow {
    names: Tally<Name, IdNames>,
    tenant_names: Tally<Guid, TenantName>,
    /// The first write that failed, reported when the grouping finishes.
    error: Option<anyhow::Error>,
}

/// An id's newest app name, resource name and owner ([`Latest`]: the
/// newest, ties to the greater, whichever sign-in came first).
#[derive(Clone, Debug, Default)]
pub(super) struct IdNames {
    id: Name,
    app_name: Latest<Name>,
    resource_name: Latest<Name>,
    owner: Latest<Guid>,
}

fn write_latest_name(enc: &mut Enc, l: &Latest<Name>) {
    enc.opt_time(l.at);
    enc.opt_str(l.value.as_deref());
}

fn read_latest_name<R: io::BufRead>(dec: &mut Dec<R>) -> io::Result<Latest<Name>> {
    Ok(Latest { at: dec.opt_time()?, value: dec.opt_string()?.map(Name::from) })
}

/// What a [`Dictionary`] holds: a record found by the bytes of its id
/// (the records in the order of their ids' hashes, then of the ids, as its
/// tally orders them: [`entry_hash`]), then the rest of it.
pub(super) trait Entry: Record {
    fn id(&self) -> std::borrow::Cow<'_, [u8]>;
    fn write_rest(&self, enc: &mut Enc);
    fn read_rest<R: io::BufRead>(id: &[u8], dec: &mut Dec<R>) -> io::Result<Self>;
}

/// The hash of an entry's id by which a [`Dictionary`] orders and finds its
/// records: an index of hashes is 8 bytes a block however long the ids
/// are, where one of the ids themselves held a forged export's kilobyte ids
/// (and had blocks of a few records be kilobytes each).
fn entry_hash(id: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id)
}

fn damaged_dictionary() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the ids' names file is damaged")
}

impl Entry for IdNames {
    fn id(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.id.as_bytes())
    }

    fn write_rest(&self, enc: &mut Enc) {
        write_latest_name(enc, &self.app_name);
        write_latest_name(enc, &self.resource_name);
        enc.opt_time(self.owner.at);
        enc.opt_guid(self.owner.value);
    }

    fn read_rest<R: io::BufRead>(id: &[u8], dec: &mut Dec<R>) -> io::Result<IdNames> {
        Ok(IdNames {
            id: std::str::from_utf8(id).map_err(|_| damaged_dictionary())?.into(),
            app_name: read_latest_name(dec)?,
            resource_name: read_latest_name(dec)?,
            owner: Latest { at: dec.opt_time()?, value: dec.opt_guid()? },
        })
    }
}

impl Record for IdNames {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.id);
        self.write_rest(enc);
    }

    fn read<R: io::BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let id = dec.string()?;
        IdNames::read_rest(id.as_bytes(), dec)
    }

    fn text_bytes(&self) -> usize {
        let len = |l: &Latest<Name>| l.value.as_deref().map_or(0, str::len);
        self.id.len() + len(&self.app_name) + len(&self.resource_name)
    }
}

const BY_ID: ByKey<Name, IdNames> = ByKey {
    key: |n| n.id.clone(),
    order: Order {
        cmp: |a, b| (entry_hash(a.id.as_bytes()), &a.id).cmp(&(entry_hash(b.id.as_bytes()), &b.id)),
        key: |n, out| {
            out.extend_from_slice(&entry_hash(n.id.as_bytes()).to_be_bytes());
            key::text(out, &n.id);
        },
        // Ids are apart within a buffer (a tally's records are one a key),
        // and their combining does not depend on the order.
        sort: Some(|records| {
            use rayon::slice::ParallelSliceMut as _;
            records.par_sort_by_cached_key(|r| (entry_hash(r.id.as_bytes()), r.id.clone()));
        }),
    },
    combine: |into, other| {
        into.app_name.absorb(other.app_name);
        into.resource_name.absorb(other.resource_name);
        into.owner.absorb(other.owner);
    },
};

/// A tenant's newest name, for a tenant past those held for the run.
#[derive(Clone, Debug, Default)]
pub(super) struct TenantName {
    tenant: Guid,
    name: Latest<Name>,
}

impl Entry for TenantName {
    /// Big-endian: the bytes order as the GUIDs do.
    fn id(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(self.tenant.0.to_be_bytes().to_vec())
    }

    fn write_rest(&self, enc: &mut Enc) {
        write_latest_name(enc, &self.name);
    }

    fn read_rest<R: io::BufRead>(id: &[u8], dec: &mut Dec<R>) -> io::Result<TenantName> {
        let id = <[u8; 16]>::try_from(id).map_err(|_| damaged_dictionary())?;
        Ok(TenantName { tenant: Guid(u128::from_be_bytes(id)), name: read_latest_name(dec)? })
    }
}

impl Record for TenantName {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.tenant.0);
        self.write_rest(enc);
    }

    fn read<R: io::BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(TenantName { tenant: Guid(dec.u128()?), name: read_latest_name(dec)? })
    }

    fn text_bytes(&self) -> usize {
        self.name.value.as_deref().map_or(0, str::len)
    }
}

const BY_TENANT: ByKey<Guid, TenantName> = ByKey {
    key: |n| n.tenant,
    order: Order {
        cmp: |a, b| {
            let hashed = |t: &TenantName| (entry_hash(&t.tenant.0.to_be_bytes()), t.tenant);
            hashed(a).cmp(&hashed(b))
        },
        key: |n, out| {
            let id = n.tenant.0.to_be_bytes();
            out.extend_from_slice(&entry_hash(&id).to_be_bytes());
            out.extend_from_slice(&id);
        },
        sort: None,
    },
    combine: |into, other| into.name.absorb(other.name),
};

impl Overflow {
    fn new(budget: usize) -> Overflow {
        Overflow {
            names: Tally::new("ids", BY_ID, Some(budget)).text_a_record(512),
            tenant_names: Tally::new("ids", BY_TENANT, Some(budget)).text_a_record(512),
            error: None,
        }
    }

    fn offer<K: std::hash::Hash + Eq, T: Record>(
        tally: &mut Tally<K, T>,
        error: &mut Option<anyhow::Error>,
        offer: T,
    ) {
        if error.is_none() {
            if let Err(e) = tally.add(offer) {
                *error = Some(e);
            }
        }
    }
}

impl Activity {
    fn overflow(&mut self) -> &mut Overflow {
        let budget = self.budget.map_or(usize::MAX, |b| b.groups);
        self.overflow.get_or_insert_with(|| Overflow::new(budget))
    }

    /// Offers the names and owner of `s`'s app and resource ids that are
    /// past those held for the run (numbered [`OVERFLOW`]).
    pub(super) fn offer_overflow(&mut self, s: &SignIn, app: u32, res: u32) {
        let overflow = self.overflow();
        let seen = |v: Option<&str>| Latest { at: Some(s.time), value: v.map(Name::from) };
        let owner = |o: Option<Guid>| Latest { at: o.map(|_| s.time), value: o };
        let app = (app == OVERFLOW).then(|| s.app_id()).flatten().map(|id| IdNames {
            id: id.into(),
            app_name: seen(s.app_name()),
            resource_name: Latest::default(),
            owner: owner(s.app_owner_tenant),
        });
        let res = (res == OVERFLOW).then(|| s.resource_id()).flatten().map(|id| IdNames {
            id: id.into(),
            app_name: Latest::default(),
            resource_name: seen(s.resource_name()),
            owner: owner(s.resource_owner_tenant),
        });
        for offer in [app, res].into_iter().flatten() {
            Overflow::offer(&mut overflow.names, &mut overflow.error, offer);
        }
    }

    /// Offers the name of a tenant past those held for the run, seen `at`.
    pub(super) fn offer_tenant_overflow(&mut self, tenant: Guid, at: DateTime<Utc>, name: &str) {
        let overflow = self.overflow();
        let offer = TenantName { tenant, name: Latest { at: Some(at), value: Some(name.into()) } };
        Overflow::offer(&mut overflow.tenant_names, &mut overflow.error, offer);
    }
}

/// The names of the ids and of the tenants past those held for the run.
pub(super) struct Dictionaries {
    ids: Dictionary<IdNames>,
    tenants: Dictionary<TenantName>,
}

impl Dictionaries {
    fn build(overflow: Overflow, dir: &Path) -> Result<Dictionaries> {
        if let Some(e) = overflow.error {
            return Err(e);
        }
        Ok(Dictionaries {
            ids: Dictionary::build(overflow.names, &dir.join("ids"))?,
            tenants: Dictionary::build(overflow.tenant_names, &dir.join("tenants"))?,
        })
    }
}

/// Records past those held for the run ([`Entry`]) in a file of the
/// grouping's folder, in the order of their ids' hashes ([`entry_hash`]),
/// found through the first hash of each block of at most [`BLOCK`]
/// records and [`BLOCK_BYTES`] bytes (an index of 24 bytes a block). A
/// record in the file is its id's hash, then its id and the rest of it,
/// each after its length, so that a lookup passes over the others' without
/// reading them.
pub(super) struct Dictionary<E> {
    file: File,
    /// Each block's first hash, where it starts and its length.
    blocks: Vec<(u64, u64, usize)>,
    entries: std::marker::PhantomData<E>,
}

/// Records a block of the [`Dictionary`] holds at most: a lookup reads
/// one block.
const BLOCK: usize = 16;

/// The bytes past which a [`Dictionary`]'s block holds no more records: a
/// forged export's ids and names of 4 KB made blocks of 16 records 128 KB,
/// read whole for each id a partition looked up.
const BLOCK_BYTES: usize = 16 << 10;

impl<E: Entry> Dictionary<E> {
    fn build<K: std::hash::Hash + Eq>(tally: Tally<K, E>, path: &Path) -> Result<Dictionary<E>> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut records = tally.finish()?;
        let (mut blocks, mut block, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        let (mut first, mut count, mut offset) = (None, 0, 0u64);
        let mut flush =
            |block: &mut Vec<u8>, first: &mut Option<u64>, out: &mut BufWriter<File>| -> Result<()> {
                if let Some(first) = first.take() {
                    out.write_all(block)?;
                    blocks.push((first, offset, block.len()));
                    offset += block.len() as u64;
                    block.clear();
                }
                Ok(())
            };
        for r in records.by_ref() {
            let id = r.id();
            let hash = entry_hash(&id);
            first.get_or_insert(hash);
            rest.clear();
            r.write_rest(&mut Enc(&mut rest));
            block.extend_from_slice(&hash.to_le_bytes());
            let mut enc = Enc(&mut block);
            enc.bytes(&id);
            enc.bytes(&rest);
            count += 1;
            if count == BLOCK || block.len() >= BLOCK_BYTES {
                flush(&mut block, &mut first, &mut out)?;
                count = 0;
            }
        }
        flush(&mut block, &mut first, &mut out)?;
        records.finish()?;
        out.flush()?;
        drop(out);
        Ok(Dictionary { file: File::open(path)?, blocks, entries: std::marker::PhantomData })
    }

    /// The record of `id` (whose hash is `hash`), if it is there, reading
    /// blocks through `read` (which keeps the last one read): from the last
    /// block starting before `hash` (its end may hold it), on through any
    /// blocks that start with it (ids of one hash ordered by the ids).
    fn get(&self, hash: u64, id: &[u8], read: &mut BlockRead) -> io::Result<Option<E>> {
        let from = self.blocks.partition_point(|(first, ..)| *first < hash).saturating_sub(1);
        for block in from..self.blocks.len() {
            let (first, offset, len) = self.blocks[block];
            if first > hash {
                break;
            }
            let mut at = read.block(&self.file, block, offset, len)?;
            while !at.is_empty() {
                let (this_hash, tail) = at.split_first_chunk::<8>().ok_or_else(damaged_dictionary)?;
                at = tail;
                let (this, rest) = (next_part(&mut at)?, next_part(&mut at)?);
                match (u64::from_le_bytes(*this_hash), this).cmp(&(hash, id)) {
                    Ordering::Equal => return Ok(Some(E::read_rest(id, &mut Dec::new(rest))?)),
                    Ordering::Greater => return Ok(None),
                    Ordering::Less => {}
                }
            }
        }
        Ok(None)
    }

    /// The records of `ids`, looked up in the dictionary's order, so that
    /// each block is read once however many of them it holds.
    fn each<T>(
        &self,
        ids: &[T],
        id: impl Fn(&T) -> &[u8],
        mut found: impl FnMut(usize, E),
    ) -> io::Result<()> {
        let mut order: Vec<(u64, usize)> =
            ids.iter().enumerate().map(|(p, i)| (entry_hash(id(i)), p)).collect();
        order.sort_unstable_by(|a, b| (a.0, id(&ids[a.1])).cmp(&(b.0, id(&ids[b.1]))));
        let mut read = BlockRead::default();
        for (hash, p) in order {
            if let Some(record) = self.get(hash, id(&ids[p]), &mut read)? {
                found(p, record);
            }
        }
        Ok(())
    }
}

/// The block of a [`Dictionary`] read last, kept for the next lookup.
#[derive(Default)]
struct BlockRead {
    block: Option<usize>,
    bytes: Vec<u8>,
}

impl BlockRead {
    /// Block `block`'s bytes (`len` of them from `offset`), read unless
    /// they are the last read.
    fn block(&mut self, file: &File, block: usize, offset: u64, len: usize) -> io::Result<&[u8]> {
        if self.block != Some(block) {
            self.block = None;
            self.bytes.resize(len, 0);
            crate::files::read_exact_at(file, &mut self.bytes, offset)?;
            self.block = Some(block);
        }
        Ok(&self.bytes)
    }
}

/// The next of a block's parts (an id, or the rest of its record), after
/// its length.
fn next_part<'b>(at: &mut &'b [u8]) -> io::Result<&'b [u8]> {
    let (len, tail) = at.split_first_chunk::<4>().ok_or_else(damaged_dictionary)?;
    let (part, tail) =
        tail.split_at_checked(u32::from_le_bytes(*len) as usize).ok_or_else(damaged_dictionary)?;
    *at = tail;
    Ok(part)
}

/// The names, ids and owners of the ids a partition numbered itself (from
/// [`LOCAL`] up), and the tenants it numbered itself with their names,
/// looked up in the [`Dictionaries`] once each.
#[derive(Default)]
pub(super) struct Local {
    ids: Vec<Name>,
    app_names: Vec<Option<Name>>,
    resource_names: Vec<Option<Name>>,
    owners: Vec<Option<Guid>>,
    tenants: Vec<Guid>,
    /// Each of `tenants` with its name, if it has one.
    tenant_names: HashMap<Guid, Option<Name>>,
}

impl Local {
    /// `ids` and `tenants`: the partition's, in the order it numbered them.
    fn resolve(ids: Vec<Name>, tenants: Vec<Guid>, dictionaries: Option<&Dictionaries>) -> io::Result<Local> {
        let n = ids.len();
        let mut local = Local {
            ids,
            app_names: vec![None; n],
            resource_names: vec![None; n],
            owners: vec![None; n],
            tenant_names: tenants.iter().map(|&t| (t, None)).collect(),
            tenants,
        };
        let Some(dictionaries) = dictionaries else { return Ok(local) };
        dictionaries.ids.each(
            &local.ids,
            |id| id.as_bytes(),
            |p, found| {
                local.app_names[p] = found.app_name.value;
                local.resource_names[p] = found.resource_name.value;
                local.owners[p] = found.owner.value;
            },
        )?;
        let keys: Vec<[u8; 16]> = local.tenants.iter().map(|t| t.0.to_be_bytes()).collect();
        let names = &mut local.tenant_names;
        dictionaries.tenants.each(
            &keys,
            |k| k,
            |_, found| {
                names.insert(found.tenant, found.name.value);
            },
        )?;
        Ok(local)
    }

    /// The place of a number this partition gave, if it is one.
    fn place(i: u32) -> Option<usize> {
        (i > LOCAL && i != OVERFLOW).then(|| (i - LOCAL - 1) as usize)
    }

    /// The tenant numbered `i`, if this partition numbered it.
    pub(super) fn tenant(&self, i: u32) -> Option<Option<Guid>> {
        Self::place(i).map(|p| self.tenants.get(p).copied())
    }

    /// The name or id `of` asks for, if its id (or tenant) is one of this
    /// partition's.
    pub(super) fn name(&self, of: NameOf) -> Option<Option<Name>> {
        let (table, i) = match of {
            NameOf::App(i) => (&self.app_names, i),
            NameOf::Resource(i) => (&self.resource_names, i),
            NameOf::Id(i) => return Self::place(i).map(|p| self.ids.get(p).cloned()),
            NameOf::Partner(tenant) => return self.tenant_names.get(&tenant).cloned(),
        };
        Self::place(i).map(|p| table.get(p).cloned().flatten())
    }

    /// The owner of id `i`, if it is one of this partition's.
    pub(super) fn owner(&self, i: u32) -> Option<Option<Guid>> {
        Self::place(i).map(|p| self.owners.get(p).copied().flatten())
    }

    /// What tells app `i` apart in every partition: its number if it is
    /// held for the run, else a hash of its id (128 bits: no two of
    /// billions alike), marked by the top bit.
    pub(super) fn identity(&self, i: u32) -> u128 {
        match Self::place(i) {
            None => u128::from(i),
            Some(p) => {
                let text = self.ids.get(p).map_or("", |s| &**s);
                (1 << 127) | (xxhash_rust::xxh3::xxh3_128(text.as_bytes()) >> 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::grouped_signins;
    use super::*;
    use crate::analysis::runs::codec::tests::{keys_sort_as_compared, read_back};

    /// What a reading of a partition grouped: each user's id and groups,
    /// the groups without a user, its sign-ins, and its cross-tenant
    /// sign-ins and duplicates dropped.
    struct Grouped {
        users: Vec<(String, usize)>,
        userless: usize,
        sign_ins: u64,
        totals: (u64, u64),
    }

    /// What tells group `k` of `part` apart but for its user and epoch, the
    /// ids past those held for the run by their texts (each reading numbers
    /// them for itself).
    fn group_ids(part: &Part, k: &Key) -> (String, String, AccessType, String, String) {
        let tenant = |n: u32| match n.checked_sub(LOCAL + 1) {
            Some(i) => format!("past {:?}", part.tenants.ids[i as usize]),
            None => n.to_string(),
        };
        let app = |n: u32| match n.checked_sub(LOCAL) {
            Some(i) => format!("past {}", part.local.text(i).unwrap_or_default()),
            None => n.to_string(),
        };
        (tenant(k.home), tenant(k.resource), k.access, app(k.app), app(k.resource_app))
    }

    /// A group of a partition by its user's id, with the user's name and
    /// the group's ids ([`group_ids`]).
    type NamedGroup = (String, Option<String>, (String, String, AccessType, String, String), Counters);

    fn named_groups(part: &Part) -> Vec<NamedGroup> {
        let named = |(k, c): (&Key, &Counters)| {
            let user = part.users.ids.text(k.user).unwrap_or_default().to_string();
            let name = part.users.name(k.user).map(|(n, _)| n.to_string());
            (user, name, group_ids(part, k), c.clone())
        };
        part.groups.iter().map(named).collect()
    }

    /// `groups` in the order of their users, names and ids.
    fn in_order(mut groups: Vec<NamedGroup>) -> Vec<NamedGroup> {
        groups.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        groups
    }

    fn grouped(part: &Part) -> Grouped {
        let mut users: Vec<(String, usize)> = Vec::new();
        let (mut userless, mut sign_ins) = (0, 0);
        for (k, c) in &part.groups {
            sign_ins += c.sign_ins;
            match part.users.ids.text(k.user) {
                Some(id) => match users.iter_mut().find(|(u, _)| u == id) {
                    Some((_, n)) => *n += 1,
                    None => users.push((id.to_string(), 1)),
                },
                None => userless += 1,
            }
        }
        users.sort();
        let totals = (part.totals.cross_tenant, part.totals.duplicates_dropped);
        Grouped { users, userless, sign_ins, totals }
    }

    #[test]
    fn a_partition_past_the_budget_is_read_in_passes_that_take_each_user_and_sign_in_once() {
        let mut disk = Activity::new().for_grain(GroupBy::User).spill_beyond(7);
        for s in super::super::tests::varied_signins(5000) {
            disk.add(s);
        }
        let (mut spill, budget) = (disk.spill.take().unwrap(), disk.budget.unwrap());
        spill.finish_writing().unwrap();
        let (mut past_budget, mut userless_groups, mut duplicates, mut split_users) = (0, 0, 0, 0);
        for p in 0..PARTS {
            let path = part_path(spill.dir.path(), p);
            let mut whole = Part::default();
            assert_eq!(whole.read(&path, &[], (Pass::WHOLE, Keys::ALL), None).unwrap(), Reading::Whole);
            let Grouped { users, userless, sign_ins, totals } = grouped(&whole);
            userless_groups += userless;
            duplicates += totals.1;
            // Read with the budget, the reading stops past it.
            let mut cut = Part::default();
            let of = match cut.read(&path, &[], (Pass::WHOLE, Keys::ALL), Some(&budget)).unwrap() {
                Reading::Whole => {
                    assert!(whole.groups.len() <= budget.groups + 1, "partition {p}");
                    3
                }
                Reading::PastBudget(read) => {
                    past_budget += 1;
                    assert!(cut.past(&budget) && !whole.groups.is_empty(), "partition {p}");
                    assert!(read <= spill.records[p], "partition {p}");
                    Pass::needed(spill.records[p], read)
                }
            };
            // Each user is in one pass whole, and so is each sign-in.
            let (mut pass_users, mut pass_sign_ins, mut pass_totals) = (Vec::new(), 0, (0, 0));
            let mut passes_with_users = 0;
            for this in 0..of {
                let mut part = Part::default();
                assert_eq!(
                    part.read(&path, &[], (Pass { of, this, by_group: false }, Keys::ALL), None).unwrap(),
                    Reading::Whole
                );
                let pass = grouped(&part);
                passes_with_users += usize::from(!pass.users.is_empty());
                pass_users.extend(pass.users);
                pass_sign_ins += pass.sign_ins;
                pass_totals = (pass_totals.0 + pass.totals.0, pass_totals.1 + pass.totals.1);
            }
            pass_users.sort();
            assert_eq!(pass_users, users, "partition {p}");
            assert_eq!((pass_sign_ins, pass_totals), (sign_ins, totals), "partition {p}");
            split_users += usize::from(passes_with_users > 1);
        }
        assert!(past_budget > 10 && split_users > 10, "{past_budget} partitions past the budget");
        assert!(userless_groups > 0 && duplicates > 0, "{userless_groups} groups without a user");
    }

    #[test]
    fn a_partition_of_few_users_past_the_budget_is_read_in_passes_that_take_each_group_once_and_name_every_user(
    ) {
        use crate::model::Text;
        // Three guests with 400 apps each, renamed over time; every fifth
        // sign-in exported twice, the copy naming another app.
        let mut signins: Vec<SignIn> = (0..1200)
            .map(|n| {
                let mut s =
                    super::super::tests::signin(n, 7, &format!("u{}", n % 3), &format!("app-{}", n / 3));
                s.texts =
                    s.texts.with(Text::UserPrincipalName, Some(&format!("u{}-{}@x.example", n % 3, n / 300)));
                s
            })
            .collect();
        for n in (0..1200).step_by(5) {
            let mut copy = signins[n].clone();
            copy.texts = copy.texts.with(Text::AppId, Some(&format!("copy-{n}")));
            signins.push(copy);
        }
        let mut disk = Activity::new().for_grain(GroupBy::User).spill_beyond(20);
        for s in signins {
            disk.add(s);
        }
        let mut spill = disk.spill.take().unwrap();
        spill.finish_writing().unwrap();
        let mut shared_out = 0;
        for p in 0..PARTS {
            let path = part_path(spill.dir.path(), p);
            let mut whole = Part::default();
            assert_eq!(whole.read(&path, &[], (Pass::WHOLE, Keys::ALL), None).unwrap(), Reading::Whole);
            if whole.groups.len() < 100 {
                continue;
            }
            shared_out += 1;
            for of in [2, 5, 16] {
                let (mut groups, mut totals, mut passes_with_groups) = (Vec::new(), (0, 0), 0);
                for this in 0..of {
                    let mut pass = Part::default();
                    assert_eq!(
                        pass.read(&path, &[], (Pass { of, this, by_group: true }, Keys::ALL), None).unwrap(),
                        Reading::Whole
                    );
                    passes_with_groups += usize::from(!pass.groups.is_empty());
                    // Ids past those held for the run are numbered by the
                    // passes that take their sign-ins, not by every pass.
                    assert!(pass.local.len() < whole.local.len(), "partition {p}, {of} passes");
                    groups.extend(named_groups(&pass));
                    totals = (totals.0 + pass.totals.cross_tenant, totals.1 + pass.totals.duplicates_dropped);
                }
                assert_eq!(in_order(groups), in_order(named_groups(&whole)), "partition {p}, {of} passes");
                assert_eq!(
                    totals,
                    (whole.totals.cross_tenant, whole.totals.duplicates_dropped),
                    "partition {p}"
                );
                assert!(passes_with_groups == of, "one user's groups shared out over {of} passes");
            }
        }
        assert!(shared_out > 0);
    }

    /// Sign-ins of one busy guest, 4,000 over three apps and two partners,
    /// renamed over time, every fifth exported twice (every tenth copy naming
    /// another app and another name: a forged export's, the first copy
    /// counts), and of `others` guests of the same partition with three apps
    /// each.
    fn busy_guest_signins(others: usize) -> Vec<SignIn> {
        use super::super::tests::signin;
        use crate::model::Text;
        let p = part_of_user("busy");
        let others: Vec<String> =
            (0..).map(|n| format!("o{n}")).filter(|id| part_of_user(id) == p).take(others).collect();
        let mut signins: Vec<SignIn> = (0..4000)
            .map(|n| {
                let mut s = signin(n, 7 + u128::from(n % 2), "busy", ["a", "b", "c"][(n % 3) as usize]);
                s.texts =
                    s.texts.with(Text::UserPrincipalName, Some(&format!("busy-{}@x.example", n / 1000)));
                s
            })
            .collect();
        for n in (0..4000).step_by(5) {
            let mut copy = signins[n].clone();
            if n % 10 == 0 {
                copy.texts = copy.texts.with(Text::AppId, Some(&format!("copy-{n}")));
                copy.texts = copy.texts.with(Text::UserPrincipalName, Some("zz-copy@x.example"));
            }
            signins.push(copy);
        }
        for (i, id) in others.iter().enumerate() {
            for app in 0..3 {
                signins.push(signin(5000 + (i * 3 + app) as u32, 9, id, &format!("app-{app}")));
            }
        }
        signins
    }

    #[test]
    fn readings_by_key_of_a_partition_take_each_sign_in_once_and_add_up_to_its_reading_whole() {
        let mut disk = Activity::new().for_grain(GroupBy::User).spill_beyond(5);
        for s in busy_guest_signins(20) {
            disk.add(s);
        }
        let (mut spill, budget) = (disk.spill.take().unwrap(), disk.budget.unwrap());
        spill.finish_writing().unwrap();
        let path = part_path(spill.dir.path(), part_of_user("busy"));
        let mut whole = Part::default();
        assert_eq!(whole.read(&path, &[], (Pass::WHOLE, Keys::ALL), None).unwrap(), Reading::Whole);
        assert!(whole.seen.len() > 4000 && whole.totals.duplicates_dropped == 800);
        for pass in [Pass::WHOLE, Pass { of: 3, this: 1, by_group: true }] {
            let mut pass_whole = Part::default();
            pass_whole.read(&path, &[], (pass, Keys::ALL), None).unwrap();
            for of in [2, 7, MAX_KEY_READINGS] {
                let (mut part, mut most_keys) = (Part::default(), 0);
                for this in 0..of {
                    part.seen.clear();
                    assert_eq!(
                        part.read(&path, &[], (pass, Keys { of, this }), None).unwrap(),
                        Reading::Whole
                    );
                    most_keys = most_keys.max(part.seen.len());
                }
                let label = format!("{pass:?}, {of} readings");
                assert!(most_keys < pass_whole.seen.len() * 3 / of, "{label}: {most_keys} keys");
                assert_eq!(in_order(named_groups(&part)), in_order(named_groups(&pass_whole)), "{label}");
                let totals = |p: &Part| (p.totals.cross_tenant, p.totals.duplicates_dropped);
                assert_eq!(totals(&part), totals(&pass_whole), "{label}");
            }
        }
        // Past the budget by its groups; with room for them, by its
        // duplicate filter alone.
        for (budget, by_keys_alone) in [(budget, false), (Budget { groups: 1000, ..budget }, true)] {
            let mut cut = Part::default();
            let reading = cut.read(&path, &[], (Pass::WHOLE, Keys::ALL), Some(&budget)).unwrap();
            assert!(matches!(reading, Reading::PastBudget(_)), "{budget:?}");
            assert_eq!(cut.past(&budget.without_keys()), !by_keys_alone, "{budget:?}");
        }
    }

    #[test]
    fn a_guest_with_more_sign_ins_than_the_duplicate_filter_holds_gives_on_disk_the_rows_and_totals_of_grouping_in_memory(
    ) {
        // Alone in his partition (read whole, in readings by key), and with
        // twenty guests more (read in passes by user first).
        let changes = [1_790_050_000, 1_790_200_000].map(|t| DateTime::from_timestamp(t, 0).unwrap());
        for others in [0, 20] {
            let signins = busy_guest_signins(others);
            for (by, starts) in [GroupBy::User, GroupBy::App, GroupBy::Tenant]
                .into_iter()
                .flat_map(|by| [(by, vec![]), (by, changes.to_vec())])
            {
                let label = format!("{others} others, {by:?}, {} epoch starts", starts.len());
                let (_, _, memory) = grouped_signins(&signins, by, &starts, None);
                assert_eq!(memory.totals.duplicates_dropped, 800, "{label}");
                // 100 and 600 keys of the duplicate filter against 4,000.
                for budget in [5, 30] {
                    let (spilled, _, disk) = grouped_signins(&signins, by, &starts, Some(budget));
                    assert!(spilled, "{label}, budget {budget}");
                    assert_eq!(disk.totals, memory.totals, "{label}, budget {budget}");
                    assert_eq!(disk.rows, memory.rows, "{label}, budget {budget}");
                }
            }
        }
    }

    #[test]
    fn sign_ins_sharing_a_request_id_and_second_but_not_their_user_are_each_counted_whatever_the_budget() {
        // Forty guests of one partition, each with 100 sign-ins of his own
        // and one more under a request id and second all of them share,
        // written three times (two copies of his own to drop).
        use super::super::tests::signin;
        use crate::model::Text;
        let p = part_of_user("g0");
        let guests: Vec<String> =
            (0..).map(|n| format!("g{n}")).filter(|id| part_of_user(id) == p).take(40).collect();
        let mut signins = vec![];
        for (i, guest) in guests.iter().enumerate() {
            signins.extend((0..100).map(|n| signin(i as u32 * 100 + n, 7, guest, "a")));
            let mut shared = signin(0, 7, guest, "b");
            shared.texts = shared.texts.with(Text::Id, Some("one-id-for-all"));
            signins.extend([shared.clone(), shared.clone(), shared]);
        }
        for by in [GroupBy::User, GroupBy::Tenant] {
            let (_, _, memory) = grouped_signins(&signins, by, &[], None);
            assert_eq!(memory.totals.duplicates_dropped, 80, "{by:?}");
            for budget in [5, 30] {
                let (spilled, _, disk) = grouped_signins(&signins, by, &[], Some(budget));
                assert!(spilled, "{by:?}, budget {budget}");
                assert_eq!(disk.totals, memory.totals, "{by:?}, budget {budget}");
                assert_eq!(disk.rows, memory.rows, "{by:?}, budget {budget}");
            }
        }
    }

    #[test]
    fn a_dictionary_finds_every_id_it_was_given_and_no_other_whatever_the_ids_lengths() {
        // Ids of a few bytes to 5 KB (blocks cut by bytes as well as by
        // count), added twice in parts (the names combined), through a
        // tally small enough to go to disk.
        let id = |n: usize| format!("{n}-{}", "x".repeat([0, 3, 40, 5000][n % 4]));
        let named = |n: usize, at: i64| {
            let seen = |v: String| Latest { at: DateTime::from_timestamp(at, 0), value: Some(Name::from(v)) };
            IdNames {
                id: id(n).into(),
                app_name: seen(format!("app {n} at {at}")),
                resource_name: if at == 1 { seen(format!("resource {n}")) } else { Latest::default() },
                owner: Latest::default(),
            }
        };
        let dir = crate::analysis::runs::temp_folder("test").unwrap();
        let mut tally = Tally::new("ids", BY_ID, Some(50)).text_a_record(512);
        for n in 0..700 {
            tally.add(named(n, 1)).unwrap();
        }
        for n in (0..700).rev() {
            tally.add(named(n, 2)).unwrap();
        }
        let dictionary = Dictionary::build(tally, &dir.path().join("ids")).unwrap();
        assert!(dictionary.blocks.len() > 700 / BLOCK, "blocks cut by bytes too");
        let asked: Vec<String> = (0..800).map(id).chain(["".to_string(), "x".repeat(6000)]).collect();
        let mut found = vec![None; asked.len()];
        dictionary.each(&asked, |a| a.as_bytes(), |p, names| found[p] = Some(names)).unwrap();
        for (p, names) in found.iter().enumerate() {
            match names {
                Some(names) if p < 700 => {
                    assert_eq!(*names.id, asked[p]);
                    assert_eq!(names.app_name.value.as_deref(), Some(format!("app {p} at 2").as_str()));
                    assert_eq!(names.resource_name.value.as_deref(), Some(format!("resource {p}").as_str()));
                }
                None if p >= 700 => {}
                other => panic!("id {p}: {other:?}"),
            }
        }
    }

    #[test]
    fn below_the_user_grain_a_partition_holds_tenants_and_apps_of_its_own_up_to_a_quarter_of_the_budget() {
        let budget = Budget::of_groups(100_000);
        assert_eq!(budget.for_finishing(GroupBy::User).local_ids, usize::MAX);
        for by in [GroupBy::App, GroupBy::Tenant] {
            let finishing = budget.for_finishing(by);
            assert_eq!((finishing.local_ids, finishing.groups), (25_000, 100_000));
        }
        assert_eq!(Budget::of_groups(1).for_finishing(GroupBy::Tenant).local_ids, 1);
        let mut part = Part::default();
        part.tenants.number(Guid(7));
        assert!(!part.past(&Budget::of_groups(8).for_finishing(GroupBy::Tenant)));
        part.local.intern(Some("forged app"));
        part.tenants.number(Guid(8));
        assert!(part.past(&Budget::of_groups(8).for_finishing(GroupBy::Tenant)));
        assert!(!part.past(&Budget::of_groups(8).for_finishing(GroupBy::User)));
    }

    #[test]
    fn a_partition_is_read_in_two_passes_at_least_and_sixteen_at_most() {
        assert_eq!(Pass::needed(10, 9), 2);
        assert_eq!(Pass::needed(100, 10), 13);
        assert_eq!(Pass::needed(u64::MAX, 1), MAX_PASSES);
        for of in 1..=MAX_PASSES {
            let takes = (0..of).filter(|&this| Pass { of, this, by_group: false }.takes(None, None)).count();
            assert_eq!(takes, 1, "the groups without a user in {of} passes");
        }
    }

    #[test]
    fn apps_of_rows_sort_by_bytes_as_by_comparison_in_the_rows_order_and_read_back_the_same() {
        let mut apps = Vec::new();
        for direction in DIRECTIONS {
            for partner in [0, 1, 256, u128::MAX] {
                for access in
                    [AccessType::B2bCollaboration, AccessType::B2bDirectConnect, AccessType::Unknown]
                {
                    for app in [0, 7, 1 << 127, u128::MAX] {
                        apps.push(IdOfRow { direction, partner: Guid(partner), access, id: app });
                    }
                }
            }
        }
        let order = IDS_OF_ROWS.order;
        keys_sort_as_compared(&apps, order);
        for a in &apps {
            assert_eq!(read_back(a), *a);
            for b in &apps {
                assert_eq!(a == b, (order.cmp)(a, b).is_eq());
            }
        }
        // A row's apps come together, in the rows' order.
        let mut row = crate::analysis::runs::codec::tests::sample_row();
        for a in &apps {
            (row.direction, row.partner_tenant_id, row.access_type) = (a.direction, a.partner, a.access);
            let key = row.sort_key();
            assert_eq!(a.row(), (key.0, key.1, key.2));
        }
    }
}
