//! Grouping cross-tenant sign-ins by partner, app and user.
//!
//! Groups are keyed by the (home, resource) tenant pair rather than by
//! direction, so that our tenant can be inferred from the same single pass
//! and direction resolved at the end. Duplicates (the same sign-in in two
//! overlapping exports) are dropped by request id, second and user.
//!
//! Grouping happens in memory until it outgrows a budget, then in a
//! temporary folder ([`spill`]); either way the rows come out as a
//! [`RowStream`] in output order.

mod spill;

use std::cmp::Ordering;
use std::collections::BTreeSet;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use self::spill::{dedup_key, Budget, Local, Spill};
use super::runs::{key, sort_by, Order, Stream, BYTES_A_RECORD};
use crate::model::activity::EpochsAdded;
pub use crate::model::activity::{ActivityRow, Counters, GroupBy, Name, Totals};
pub use crate::model::Direction;
use crate::model::{earliest, AccessType, Guid, SignIn, UserType, Window};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// Tenants by their number in [`Activity::tenants`]: a key of 24 bytes
    /// instead of 48 (two u128s and their alignment) hashes faster and,
    /// with a million groups, saves a fifth of the table.
    home: u32,
    resource: u32,
    access: AccessType,
    /// Interned ids ([`Interner`]): a group key holds no heap memory.
    app: u32,
    resource_app: u32,
    user: u32,
    /// Which policy epoch (span between audited changes) the sign-in falls
    /// in; always 0 without `replay --audit`.
    epoch: u16,
}

/// The policy epoch a sign-in at `t` falls in: 0 before `starts[0]`, i from
/// `starts[i-1]`.
fn epoch_of(starts: &[DateTime<Utc>], t: DateTime<Utc>) -> u16 {
    starts.partition_point(|s| *s <= t) as u16
}

/// The newest spelling of a name; ties go to the greater string so that the
/// choice never depends on input order.
#[derive(Clone, Debug, Default)]
struct Latest<T> {
    at: Option<DateTime<Utc>>,
    value: Option<T>,
}

impl<T> Latest<T> {
    /// Offers a value seen at `at`; `order` compares it with the current
    /// one, and `make` builds it only when it wins (most offers repeat the
    /// current value and allocate nothing).
    fn offer(&mut self, at: DateTime<Utc>, order: impl FnOnce(&T) -> Ordering, make: impl FnOnce() -> T) {
        self.offer_to(at, order, |value| *value = Some(make()));
    }

    /// [`Latest::offer`], the value updated in place by `update` when the
    /// offer wins (it may keep what is there).
    fn offer_to(
        &mut self,
        at: DateTime<Utc>,
        order: impl FnOnce(&T) -> Ordering,
        update: impl FnOnce(&mut Option<T>),
    ) {
        if self.beaten_by(at, order) {
            self.at = Some(at);
            update(&mut self.value);
        }
    }

    /// Whether a value seen at `at` wins over the current one (`order`
    /// compares it with the current one).
    fn beaten_by(&self, at: DateTime<Utc>, order: impl FnOnce(&T) -> Ordering) -> bool {
        match (&self.at, &self.value) {
            (Some(t), Some(cur)) => at > *t || (at == *t && order(cur) == Ordering::Greater),
            _ => true,
        }
    }
}

impl<T: Ord> Latest<T> {
    /// Offers what `other` holds, as if its sign-in came now: the newer
    /// (ties: the greater) wins, whichever came first.
    fn absorb(&mut self, other: Latest<T>) {
        if let (Some(at), Some(v)) = (other.at, other.value) {
            if self.beaten_by(at, |cur| v.cmp(cur)) {
                (self.at, self.value) = (Some(at), Some(v));
            }
        }
    }
}

impl Latest<Name> {
    /// Offers name `v` seen at `at`. A later sign-in with the name held
    /// keeps it as it is (no copy); `taken` is told of a name kept anew.
    fn offer_text(&mut self, at: DateTime<Utc>, v: &str, taken: impl FnOnce(&str)) {
        self.offer_to(
            at,
            |cur| v.cmp(cur),
            |value| match value {
                Some(cur) if **cur == *v => {}
                value => {
                    taken(v);
                    *value = Some(v.into());
                }
            },
        );
    }
}

/// Offers name `v` seen at `at` for `key` ([`Latest::offer_text`]).
fn offer_name<K: std::hash::Hash + Eq>(
    m: &mut HashMap<K, Latest<Name>>,
    key: K,
    at: DateTime<Utc>,
    v: &str,
    taken: impl FnOnce(&str),
) {
    m.entry(key).or_default().offer_text(at, v, taken);
}

/// The entry of the id numbered `i` ([`Interner`]) in a table by number,
/// made (empty) when first asked for.
fn numbered<T: Default>(table: &mut Vec<T>, i: u32) -> &mut T {
    let i = i as usize;
    if table.len() <= i {
        table.resize_with(i + 1, T::default);
    }
    &mut table[i]
}

/// App, resource and user ids, each stored once and named by a number in
/// group keys: with a million groups, keys of three strings would cost
/// more than the counters they index. 0 is "none".
#[derive(Default)]
struct Interner {
    /// Each id's place in `strings`, found by its text there: a table of
    /// numbers (4 bytes a slot), where a map keyed by the ids took 24 (a
    /// forged export naming a million apps: 52 MB -> 16).
    index: hashbrown::HashTable<u32>,
    strings: Vec<Name>,
    /// The bytes of the ids in `strings`.
    text_bytes: usize,
}

fn hash_of(s: &str) -> u64 {
    std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, s)
}

impl Interner {
    fn intern(&mut self, s: Option<&str>) -> u32 {
        self.number_within(s, usize::MAX, usize::MAX)
    }

    /// The id's number, numbering it if fewer than `cap` are and its text
    /// keeps them within `bytes`: else [`spill::OVERFLOW`], an id past
    /// those held for the run.
    fn number_within(&mut self, s: Option<&str>, cap: usize, bytes: usize) -> u32 {
        let Some(s) = s else { return 0 };
        let hash = hash_of(s);
        let strings = &self.strings;
        if let Some(i) = self.index.find(hash, |&i| *strings[i as usize] == *s) {
            return i + 1;
        }
        if self.strings.len() >= cap || self.text_bytes.saturating_add(s.len()) > bytes {
            return spill::OVERFLOW;
        }
        let Ok(i) = u32::try_from(self.strings.len()) else { return u32::MAX };
        self.text_bytes += s.len();
        self.strings.push(s.into());
        let strings = &self.strings;
        self.index.insert_unique(hash, i, |&j| hash_of(&strings[j as usize]));
        i.saturating_add(1)
    }

    /// Room for `n` ids more without growing.
    fn reserve(&mut self, n: usize) {
        let strings = &self.strings;
        self.index.reserve(n, |&j| hash_of(&strings[j as usize]));
        self.strings.reserve(n);
    }

    /// How many ids are numbered.
    fn len(&self) -> usize {
        self.strings.len()
    }

    /// Drops the table that finds an id's number: what numbers them is done.
    fn stop_numbering(&mut self) {
        self.index = hashbrown::HashTable::new();
    }

    /// The id numbered `i` (0: none).
    fn get(&self, i: u32) -> Option<&Name> {
        i.checked_sub(1).and_then(|i| self.strings.get(i as usize))
    }

    fn resolve(&self, i: u32) -> Option<Name> {
        self.get(i).cloned()
    }

    /// The id numbered `i`, borrowed: no count of references moved.
    fn text(&self, i: u32) -> Option<&str> {
        self.get(i).map(|s| &**s)
    }
}

/// How many of the tenants the logs belong to are kept to be named.
const LOG_TENANTS_LISTED: usize = 10;

/// Tenants (ours and the partners), each numbered once for the group
/// keys, from 0.
#[derive(Default)]
struct Tenants {
    /// Each tenant's place in `ids`, found by the tenant: 4 bytes a slot,
    /// where a map from tenant to number took 32 (a GUID's alignment) and
    /// was most of what a million forged partners cost.
    index: hashbrown::HashTable<u32>,
    ids: Vec<Guid>,
}

fn tenant_hash(g: Guid) -> u64 {
    std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, g.0)
}

impl Tenants {
    fn number(&mut self, g: Guid) -> u32 {
        self.number_within(g, usize::MAX)
    }

    /// The tenant's number, numbering it if fewer than `cap` are: else
    /// [`spill::OVERFLOW`], a tenant past those held for the run.
    fn number_within(&mut self, g: Guid, cap: usize) -> u32 {
        let hash = tenant_hash(g);
        let ids = &self.ids;
        if let Some(&i) = self.index.find(hash, |&i| ids[i as usize] == g) {
            return i;
        }
        match u32::try_from(self.ids.len()) {
            Ok(i) if (i as usize) < cap && i < spill::LOCAL => {
                self.ids.push(g);
                let ids = &self.ids;
                self.index.insert_unique(hash, i, |&j| tenant_hash(ids[j as usize]));
                i
            }
            _ => spill::OVERFLOW,
        }
    }

    /// The tenant numbered `i`.
    fn get(&self, i: u32) -> Option<Guid> {
        self.ids.get(i as usize).copied()
    }
}

/// User ids at the user grain, each with the newest principal name (empty
/// when not exported) and type seen for it. Grouping in memory keeps one
/// for all users; on disk, each partition keeps its own ([`spill`]).
#[derive(Default)]
struct Users {
    ids: Interner,
    names: Vec<Latest<(Name, UserType)>>,
    /// The bytes of the names taken (a name replaced by another still
    /// counts); with the ids' ([`Users::text_bytes`]).
    names_bytes: usize,
}

impl Users {
    /// Room for `n` users more without growing.
    fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.names.reserve(n);
    }

    /// How many users (with an id) are numbered.
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The bytes of the ids and names taken: what the users hold beyond
    /// their count, which a forged export can make kilobytes a user
    /// ([`spill::Budget::text_bytes`]).
    fn text_bytes(&self) -> usize {
        self.ids.text_bytes.saturating_add(self.names_bytes)
    }

    /// The user's number (0: no id).
    fn intern(&mut self, id: Option<&str>) -> u32 {
        let i = self.ids.intern(id);
        if self.names.len() <= i as usize {
            self.names.resize_with(i as usize + 1, Latest::default);
        }
        i
    }

    /// Offers a name and type seen at `at` for user `i` (from [`Users::intern`]).
    fn offer(&mut self, i: u32, at: DateTime<Utc>, upn: &str, ty: UserType) {
        if i > 0 {
            let names_bytes = &mut self.names_bytes;
            // A later sign-in of the user with the same name keeps the name
            // as it is: no copy, nothing more held.
            self.names[i as usize].offer_to(
                at,
                |(cur, t)| (upn, ty).cmp(&(&**cur, *t)),
                |value| match value {
                    Some((cur, t)) if **cur == *upn => *t = ty,
                    value => {
                        *names_bytes += upn.len();
                        *value = Some((upn.into(), ty));
                    }
                },
            );
        }
    }

    fn id(&self, i: u32) -> Option<Name> {
        self.ids.resolve(i)
    }

    fn name(&self, i: u32) -> Option<&(Name, UserType)> {
        self.names.get(i as usize).and_then(|l| l.value.as_ref())
    }
}

/// The accumulator: feed it sign-ins, then [`Activity::finish`].
#[derive(Default)]
pub struct Activity {
    groups: HashMap<Key, Counters>,
    /// The grain told in advance ([`Activity::for_grain`]), if any. Below
    /// the user grain and with no budget ([`Activity::spill_beyond`]),
    /// groups are not split by user: each keeps the set of its users
    /// (numbers from `user_numbers`, not the ids' text) and no principal
    /// names are kept, so that memory follows the groups of the output, not
    /// the distinct users. With a budget, groups are split by user at every
    /// grain, so that they can move to disk partitioned by user.
    grain: Option<GroupBy>,
    users_of: HashMap<Key, HashSet<u32>>,
    user_numbers: HashMap<u128, u32>,
    seen: HashSet<u128>,
    /// App and resource ids: as many as partners use, kept in memory up
    /// to the budget of groups once the grouping is on disk; past it, an
    /// id goes to the partition files as text and its names and owner to
    /// `overflow` ([`spill::Overflow`]).
    ids: Interner,
    overflow: Option<spill::Overflow>,
    /// Users at the user grain: as many as there are, so they go to disk
    /// with the groups ([`spill`]).
    users: Users,
    /// When to move the grouping to disk; `None`: never.
    budget: Option<Budget>,
    spill: Option<Spill>,
    /// Why moving to disk failed, reported by [`Activity::finish`].
    spill_error: Option<anyhow::Error>,
    /// App and resource names, and owners, by the ids' numbers in `ids`
    /// (a table, not a map: a forged export naming a million apps took
    /// 129 MB for the map of their names, where the list takes 34).
    app_names: Vec<Latest<Name>>,
    resource_names: Vec<Latest<Name>>,
    /// The tenant that owns each app or resource id (interned), the newest
    /// seen: an id has one owner, whichever side of a sign-in it is on.
    owners: Vec<Latest<Guid>>,
    /// The bytes of the app, resource and tenant names taken (a name
    /// replaced by another still counts): with the ids' own
    /// ([`Activity::held_text`]), what the ids and tenants held for the run
    /// weigh beyond their count, which a forged export can make kilobytes
    /// an id ([`spill::Budget::held_text`]).
    names_bytes: usize,
    /// The newest name of each tenant held in `tenants` (Entra names the
    /// home tenant of a sign-in); those past them go to `overflow`.
    tenant_names: HashMap<Guid, Latest<Name>>,
    /// Tenants of the groups: as many as partners, kept in memory up to
    /// the budget of groups once the grouping is on disk; past it, a tenant
    /// goes to the partition files as its id and its name to `overflow`,
    /// as app ids do.
    tenants: Tenants,
    /// The tenants the logs belong to, the [`LOG_TENANTS_LISTED`] lowest
    /// ids of them (Entra's logs are one tenant's: a forged export can name
    /// a tenant a sign-in), and whether there were more.
    log_tenants: BTreeSet<Guid>,
    more_log_tenants: bool,
    window: Window,
    /// Start times of policy epochs after the first, in order.
    epoch_starts: Vec<DateTime<Utc>>,
    /// Tenants present on every cross-tenant sign-in so far (at most two).
    common: Option<Vec<Guid>>,
    totals: Totals,
}

impl Activity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps only sign-ins in `window`; the others are counted.
    pub fn with_window(window: Window) -> Self {
        Activity { window, ..Self::default() }
    }

    /// Groups for `by` only: [`Activity::finish`] must then be asked for
    /// the same grain. Below the user grain this keeps far less.
    pub fn for_grain(mut self, by: GroupBy) -> Self {
        self.grain = Some(by);
        self
    }

    /// Lets the grouping move to a temporary folder once it holds `groups`
    /// groups (or twenty times as many sign-ins' keys for dropping
    /// duplicates), so that memory stops growing with the input; rows come
    /// out the same. Only with a grain told with [`Activity::for_grain`];
    /// elsewhere it has no effect.
    pub fn spill_beyond(mut self, groups: usize) -> Self {
        self.budget = Some(Budget::of_groups(groups));
        self
    }

    /// The bytes of text the ids and tenants held for the run take: the
    /// ids' and the names taken for them ([`Activity::names_bytes`]).
    fn held_text(&self) -> usize {
        self.ids.text_bytes.saturating_add(self.names_bytes)
    }

    /// Whether the grouping may move to disk ([`Activity::spill_beyond`]).
    fn may_spill(&self) -> bool {
        self.budget.is_some() && self.grain.is_some()
    }

    /// Whether groups are split by user: at the user grain, when the grain
    /// was not told, and when the grouping may move to disk (partitioned by
    /// user, a partition's distinct users are its own, so that the counts
    /// of distinct users below the user grain add up across partitions).
    fn by_user(&self) -> bool {
        self.grain.is_none_or(|g| g == GroupBy::User) || self.may_spill()
    }

    /// A user's number below the user grain: by a 128-bit hash of the id,
    /// whose text is never needed there.
    fn user_number(&mut self, id: Option<&str>) -> u32 {
        let Some(id) = id else { return 0 };
        let next = u32::try_from(self.user_numbers.len() + 1).unwrap_or(u32::MAX);
        *self.user_numbers.entry(xxhash_rust::xxh3::xxh3_128(id.as_bytes())).or_insert(next)
    }

    /// Also counts each group per policy epoch ([`ActivityRow::by_epoch`]):
    /// epoch 0 before `starts[0]`, epoch i from `starts[i-1]`
    /// ([`epoch_of`]). At most 65535 epochs.
    pub fn split_by_epochs(mut self, mut starts: Vec<DateTime<Utc>>) -> Self {
        starts.sort();
        starts.truncate(crate::model::activity::MAX_EPOCH_STARTS);
        self.epoch_starts = starts;
        self
    }

    pub fn add(&mut self, s: SignIn) {
        let t = &mut self.totals;
        if !self.window.contains(s.time) {
            t.outside_window += 1;
            return;
        }
        t.first_seen = Some(t.first_seen.map_or(s.time, |x| x.min(s.time)));
        t.last_seen = Some(t.last_seen.map_or(s.time, |x| x.max(s.time)));
        if let Some(l) = s.log_tenant {
            if self.log_tenants.insert(l) && self.log_tenants.len() > LOG_TENANTS_LISTED {
                self.log_tenants.pop_last();
                self.more_log_tenants = true;
            }
        }
        let (home, resource) = match (s.home_tenant, s.resource_tenant) {
            (Some(h), Some(r)) => (h, r),
            _ => {
                t.unclassified += 1;
                return;
            }
        };
        if home == resource {
            t.intra_tenant += 1;
            return;
        }
        // Only cross-tenant sign-ins are remembered for dedup: memory grows
        // with them (16 bytes each), not with the whole input. On disk,
        // duplicates are dropped when their partition is read.
        let dedup = dedup_key(&s);
        if self.spill.is_none() {
            if !self.seen.insert(dedup) {
                t.duplicates_dropped += 1;
                return;
            }
            t.count_cross_tenant(s.event_type.as_str());
        }
        // What follows up to the groups is the same for every copy of a
        // sign-in, so it may run before duplicates are known.
        match self.common.as_mut() {
            None => self.common = Some(vec![home, resource]),
            Some(c) => c.retain(|x| *x == home || *x == resource),
        }
        let (app, res) = match (&self.spill, self.budget) {
            (Some(_), Some(b)) => {
                let bytes = b.held_text.saturating_sub(self.names_bytes);
                (
                    self.ids.number_within(s.app_id(), b.groups, bytes),
                    self.ids.number_within(s.resource_id(), b.groups, bytes),
                )
            }
            _ => (self.ids.intern(s.app_id()), self.ids.intern(s.resource_id())),
        };
        if app == spill::OVERFLOW || res == spill::OVERFLOW {
            self.offer_overflow(&s, app, res);
        }
        let (app_held, res_held) = (app != spill::OVERFLOW, res != spill::OVERFLOW);
        let names_bytes = &mut self.names_bytes;
        if let (true, true, Some(n)) = (app > 0, app_held, s.app_name()) {
            numbered(&mut self.app_names, app).offer_text(s.time, n, |n| *names_bytes += n.len());
        }
        if let (true, true, Some(n)) = (res > 0, res_held, s.resource_name()) {
            numbered(&mut self.resource_names, res).offer_text(s.time, n, |n| *names_bytes += n.len());
        }
        for (id, owner) in [(app, s.app_owner_tenant), (res, s.resource_owner_tenant)] {
            if let (true, true, Some(o)) = (id > 0, id != spill::OVERFLOW, owner) {
                numbered(&mut self.owners, id).offer(s.time, |cur| o.cmp(cur), || o);
            }
        }
        let tenants = match (&self.spill, self.budget) {
            (Some(_), Some(b)) => {
                // No tenant more once the names held reach their bytes.
                let cap = if self.held_text() >= b.held_text { 0 } else { b.groups };
                (self.tenants.number_within(home, cap), self.tenants.number_within(resource, cap))
            }
            _ => (self.tenants.number(home), self.tenants.number(resource)),
        };
        if let Some(n) = s.home_tenant_name() {
            match tenants.0 {
                spill::OVERFLOW => self.offer_tenant_overflow(home, s.time, n),
                _ => {
                    let names_bytes = &mut self.names_bytes;
                    offer_name(&mut self.tenant_names, home, s.time, n, |n| *names_bytes += n.len())
                }
            }
        }
        if let Some(spill) = self.spill.as_mut() {
            spill.sign_in(dedup, &s, tenants, app, res);
            return;
        }
        let by_user = self.by_user();
        let user = if by_user {
            let user = self.users.intern(s.user_id());
            self.users.offer(user, s.time, s.user_principal_name().unwrap_or_default(), s.user_type);
            user
        } else {
            self.user_number(s.user_id())
        };
        let key = Key {
            home: tenants.0,
            resource: tenants.1,
            access: s.access_type,
            app,
            resource_app: res,
            user: if by_user { user } else { 0 },
            epoch: epoch_of(&self.epoch_starts, s.time),
        };
        if !by_user && user > 0 {
            self.users_of.entry(key.clone()).or_default().insert(user);
        }
        self.groups.entry(key).or_default().add(&s);
        if self.may_spill() && self.over_budget() {
            self.start_spilling();
        }
    }

    /// Decides our tenant: the one given, else the log's own, else the one
    /// tenant on every cross-tenant sign-in.
    fn resolve_tenant(&self, given: Option<Guid>) -> Result<(Option<Guid>, Option<String>)> {
        if let Some(t) = given {
            return Ok((Some(t), None));
        }
        match self.log_tenants.len() {
            1 => {
                let t = *self.log_tenants.iter().next().unwrap();
                return Ok((Some(t), Some(format!("our tenant is {t}, the tenant the logs belong to"))));
            }
            n if n > 1 => {
                let list: Vec<String> = self.log_tenants.iter().map(Guid::to_string).collect();
                let (count, more) = match self.more_log_tenants {
                    true => (format!("more than {n}"), ", ..."),
                    false => (n.to_string(), ""),
                };
                bail!(
                    "the logs belong to {count} tenants ({}{more}); say which is ours with --tenant ID",
                    list.join(", ")
                );
            }
            _ => {}
        }
        match self.common.as_deref() {
            None => Ok((None, None)),
            Some([t]) => Ok((Some(*t), Some(format!("our tenant is {t}, the one tenant on every cross-tenant sign-in")))),
            Some([a, b]) => bail!(
                "every cross-tenant sign-in is between {a} and {b}, so either could be ours; say which with --tenant ID"
            ),
            Some(_) => bail!(
                "no tenant is on every cross-tenant sign-in (the input mixes several tenants' logs); say which is ours with --tenant ID"
            ),
        }
    }

    /// [`Activity::finish_stream`], for a caller that turns every row into
    /// a record of its own (`make`, given the table without its rows, its
    /// tenant and partners decided, gives the mapping)
    /// and wants them in `order`, which must be total (or the runs' order
    /// would show through its ties). When the grouping went through the
    /// disk at the user grain, each partition's rows are mapped and sorted
    /// into `order` where the partition is finished (in parallel, partition
    /// by partition), so that they are merged once, in their own order,
    /// instead of merged in the grouping's order and sorted again. In
    /// memory, with no more rows than `budget`, the rows are mapped in
    /// parallel and sorted once, into `order`, not first into the grouping's
    /// order, if `in_memory` asks for that. Else (more rows, or below the
    /// user grain through the disk) the rows come as they are, for the
    /// caller to map. `budget`: mapped records in memory at most (through
    /// the disk, the rows without a user, mapped after their partitions'
    /// parts are added up).
    pub(crate) fn finish_stream_then<R, M>(
        mut self,
        tenant: Option<Guid>,
        by: GroupBy,
        order: Order<R>,
        (budget, in_memory): (Option<usize>, InMemory),
        make: impl FnOnce(&ActivityTable) -> M,
    ) -> Result<(ActivityTable, Finished<R>)>
    where
        R: super::runs::Record + Send,
        M: Fn(ActivityRow) -> R + Sync,
    {
        if self.spill.is_none() {
            let (table, spill) = self.finish_table(tenant, by)?;
            debug_assert!(spill.is_none(), "a grouping in memory has no folder");
            let (table, mut rows) = self.rows_of(table, by);
            let within = || !mapped_past(rows.len(), rows.iter().map(ActivityRow::text_bytes).sum(), budget);
            if in_memory == InMemory::Mapped && within() {
                let map = make(&table);
                let mut mapped: Vec<R> = rows.into_par_iter().map(&map).collect();
                order.sort(&mut mapped);
                return Ok((table, Finished::Mapped(Stream::memory(mapped))));
            }
            sort_rows(&mut rows);
            return Ok((table, Finished::Rows(Stream::memory(rows))));
        }
        if by != GroupBy::User || self.spill_error.is_some() {
            let (table, rows) = self.finish_stream(tenant, by)?;
            return Ok((table, Finished::Rows(rows)));
        }
        let (mut table, spill) = self.finish_table(tenant, by)?;
        let Some(spill) = spill else {
            bail!("internal error: a spilled grouping lost its folder; please report this");
        };
        let map = make(&table);
        let then = spill::Then { map: &map, order, budget };
        let rows = self.finish_spilled_then(spill, table.tenant, &mut table.totals, &then)?;
        Ok((table, Finished::Mapped(rows)))
    }

    /// The table with all its rows.
    pub fn finish(self, tenant: Option<Guid>, by: GroupBy) -> Result<ActivityTable> {
        let (mut table, rows) = self.finish_stream(tenant, by)?;
        table.rows = rows.collect_rows()?;
        Ok(table)
    }

    /// The table without its rows (its totals complete), and the rows in
    /// output order, one at a time: a sink that writes them as they come
    /// holds one row, however many groups there are.
    pub(crate) fn finish_stream(
        mut self,
        tenant: Option<Guid>,
        by: GroupBy,
    ) -> Result<(ActivityTable, RowStream)> {
        let (mut table, spill) = self.finish_table(tenant, by)?;
        if let Some(spill) = spill {
            let tenant = table.tenant;
            let rows = self.finish_spilled(spill, tenant, by, &mut table.totals)?;
            return Ok((table, rows));
        }
        let (table, mut rows) = self.rows_of(table, by);
        sort_rows(&mut rows);
        Ok((table, Stream::memory(rows)))
    }

    /// The rows of the groups in memory, not sorted.
    fn rows_of(mut self, mut table: ActivityTable, by: GroupBy) -> (ActivityTable, Vec<ActivityRow>) {
        let tenant = table.tenant;
        let split = !self.epoch_starts.is_empty();
        // At the user grain without epochs each group is one row: built
        // straight from the group, with no second map (with a million groups
        // it would double the peak).
        let direct = by == GroupBy::User && !split;
        let mut rows = Vec::with_capacity(if direct { self.groups.len() } else { 0 });
        let mut rolled: HashMap<GroupKeyOut, Rollup> = HashMap::default();
        // In memory every id is held: no partition numbered any itself.
        let local = Local::default();
        for (k, c) in std::mem::take(&mut self.groups) {
            let Some(out) = self.output_key(&k, tenant, by, &local) else {
                table.totals.other_tenants = table.totals.other_tenants.saturating_add(c.sign_ins);
                continue;
            };
            if direct {
                rows.push(self.row(&out, self.users.id(out.user), self.users.name(out.user), c, &local));
                continue;
            }
            let r = rolled.entry(out).or_default();
            r.add(&k, &c, by, split);
            if let Some(users) = self.users_of.remove(&k) {
                r.users.extend(users);
            }
        }
        rows.extend(self.rolled_rows(rolled, by, &self.users, &local));
        (table, rows)
    }

    /// The table without its rows (tenant resolved, totals as
    /// read), and the grouping's folder if it went to disk; releases what
    /// only the reading needed, since the rows are built next, at the peak
    /// of memory.
    fn finish_table(&mut self, tenant: Option<Guid>, by: GroupBy) -> Result<(ActivityTable, Option<Spill>)> {
        if self.grain.is_some_and(|g| g != by) {
            bail!(
                "internal error: sign-ins grouped for one grain were asked for another; please report this"
            );
        }
        if let Some(e) = self.spill_error.take() {
            return Err(e);
        }
        let (tenant, inferred) = self.resolve_tenant(tenant)?;
        let totals = std::mem::take(&mut self.totals);
        self.seen = HashSet::default();
        self.ids.stop_numbering();
        self.users.ids.stop_numbering();
        let table = ActivityTable { tenant, inferred_tenant: inferred, by, totals, rows: Vec::new() };
        let mut spill = self.spill.take();
        if let Some(spill) = spill.as_mut() {
            spill.take_overflow(self.overflow.take())?;
        }
        Ok((table, spill))
    }

    /// The rows of groups rolled up to grain `by`, in no order.
    /// `users` names the users of the keys (at the user grain), `local`
    /// the ids a partition numbered itself.
    fn rolled_rows(
        &self,
        rolled: HashMap<GroupKeyOut, Rollup>,
        by: GroupBy,
        users: &Users,
        local: &Local,
    ) -> Vec<ActivityRow> {
        let mut rows = Vec::with_capacity(rolled.len());
        for (k, r) in rolled {
            let mut row = self.row(&k, users.id(k.user), users.name(k.user), r.counters, local);
            row.distinct_users = (by != GroupBy::User).then_some(r.users.len() as u64 + r.users_counted);
            row.distinct_apps = (by == GroupBy::Tenant).then_some(r.apps.len() as u64);
            row.by_epoch = r.epochs.finish();
            rows.push(row);
        }
        rows
    }

    /// A group's key in the output at grain `by`; `None` when neither side
    /// of it is our tenant.
    /// `local` names the tenants a partition numbered itself.
    fn output_key(&self, k: &Key, tenant: Option<Guid>, by: GroupBy, local: &Local) -> Option<GroupKeyOut> {
        let tenant_of = |i: u32| local.tenant(i).unwrap_or_else(|| self.tenants.get(i));
        let (home, resource) = (tenant_of(k.home)?, tenant_of(k.resource)?);
        let (direction, partner) = Direction::of(tenant?, home, resource)?;
        Some(GroupKeyOut {
            direction,
            access_type: k.access,
            partner,
            app: if by == GroupBy::Tenant { 0 } else { k.app },
            resource_app: if by == GroupBy::Tenant { 0 } else { k.resource_app },
            user: if by == GroupBy::User { k.user } else { 0 },
        })
    }

    /// A row for one output group, its names and ids shared with the rest
    /// (`k.user` is not read: the user's id and name come with it).
    fn row(
        &self,
        k: &GroupKeyOut,
        user_id: Option<Name>,
        user: Option<&(Name, UserType)>,
        counters: Counters,
        local: &Local,
    ) -> ActivityRow {
        self.row_named(k, user_id, user, counters, |of| self.name(of, local), local)
    }

    /// A name or id a row carries, from the maps all rows share, or for an
    /// id a partition numbered itself, from `local`.
    fn name(&self, of: NameOf, local: &Local) -> Option<Name> {
        if let Some(name) = local.name(of) {
            return name;
        }
        let latest = |m: &[Latest<Name>], id: u32| m.get(id as usize).and_then(|l| l.value.clone());
        match of {
            NameOf::Partner(partner) => self.tenant_names.get(&partner).and_then(|l| l.value.clone()),
            NameOf::App(app) => latest(&self.app_names, app),
            NameOf::Resource(app) => latest(&self.resource_names, app),
            NameOf::Id(id) => self.ids.resolve(id),
        }
    }

    /// [`Activity::row`] with its names and ids from `name`.
    fn row_named(
        &self,
        k: &GroupKeyOut,
        user_id: Option<Name>,
        user: Option<&(Name, UserType)>,
        counters: Counters,
        mut name: impl FnMut(NameOf) -> Option<Name>,
        local: &Local,
    ) -> ActivityRow {
        let owner = |id: u32| match local.owner(id) {
            Some(owner) => owner,
            None => self.owners.get(id as usize).and_then(|l| l.value),
        };
        ActivityRow {
            direction: k.direction,
            access_type: k.access_type,
            partner_tenant_id: k.partner,
            partner_tenant_name: name(NameOf::Partner(k.partner)),
            app_name: name(NameOf::App(k.app)),
            app_owner_tenant_id: owner(k.app),
            resource_name: name(NameOf::Resource(k.resource_app)),
            resource_owner_tenant_id: owner(k.resource_app),
            user_principal_name: user.map(|u| u.0.clone()).filter(|u| !u.is_empty()),
            user_type: user.map(|u| u.1),
            app_id: name(NameOf::Id(k.app)),
            resource_id: name(NameOf::Id(k.resource_app)),
            user_id,
            distinct_users: None,
            distinct_apps: None,
            counters,
            by_epoch: Vec::new(),
        }
    }
}

/// Which name or id of a row ([`Activity::row_named`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum NameOf {
    Partner(Guid),
    App(u32),
    Resource(u32),
    Id(u32),
}

/// The names and ids of the rows one thread builds, each copied out of the
/// shared maps into a name of this thread's own the first time it is
/// asked. Rows built on both threads of the pool at once cloned and
/// dropped the same shared names, and each clone and drop moved the
/// name's count from one core to the other: at a million groups that was
/// nine tenths of building and dropping the rows, an eighth of finishing
/// the partitions.
#[derive(Default)]
struct OwnNames(HashMap<NameOf, Option<Name>>);

impl OwnNames {
    fn name(&mut self, activity: &Activity, of: NameOf, local: &Local) -> Option<Name> {
        self.0
            .entry(of)
            .or_insert_with(|| activity.name(of, local).map(|shared| Name::from(&*shared)))
            .clone()
    }
}

/// Whether `rows` rows with `text` bytes of ids and names
/// ([`ActivityRow::text_bytes`]), mapped, would be past `budget` mapped
/// records: more of them, or more than half of [`BYTES_A_RECORD`] of text
/// each on average (a mapped row, a replayed row's line, holds its ids and
/// names about twice: in its sort key and in its text).
fn mapped_past(rows: usize, text: usize, budget: Option<usize>) -> bool {
    budget.is_some_and(|b| rows > b || text.saturating_mul(2) > b.saturating_mul(BYTES_A_RECORD))
}

/// Sorts rows into output order ([`ActivityRow::sort_key`]).
fn sort_rows(rows: &mut [ActivityRow]) {
    sort_by(rows, by_sort_key);
}

fn by_sort_key(a: &ActivityRow, b: &ActivityRow) -> Ordering {
    a.sort_key().cmp(&b.sort_key())
}

/// [`ActivityRow::sort_key`] as bytes in the same order, for the merge.
fn sort_key_bytes(r: &ActivityRow, out: &mut Vec<u8>) {
    let (direction, partner, access, app, resource, user) = r.sort_key();
    out.push(direction as u8);
    out.extend_from_slice(&partner.0.to_be_bytes());
    key::text(out, access);
    key::opt_text(out, app);
    key::opt_text(out, resource);
    key::opt_text(out, user);
}

/// The order of activity rows ([`ActivityRow::sort_key`]).
pub(crate) const ROW_ORDER: Order<ActivityRow> = Order { cmp: by_sort_key, key: sort_key_bytes, sort: None };

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKeyOut {
    direction: Direction,
    access_type: AccessType,
    partner: Guid,
    app: u32,
    resource_app: u32,
    user: u32,
}

/// One output group, rolled up from the groups (split finer) that fall in it.
#[derive(Default)]
struct Rollup {
    counters: Counters,
    /// Its counters per epoch, as its groups come.
    epochs: EpochsAdded,
    users: HashSet<u32>,
    /// Distinct users counted and let go of ([`Rollup::count_users`]),
    /// none of them in `users`.
    users_counted: u64,
    /// Distinct apps: an id's number, or past the ids held for the run,
    /// a hash of its text ([`Local::identity`]), the same in every
    /// partition.
    apps: HashSet<u128>,
}

impl Rollup {
    /// Adds group `k` and its counters at grain `by`, per epoch if `split`.
    fn add(&mut self, k: &Key, c: &Counters, by: GroupBy, split: bool) {
        self.counters.merge(c);
        if split {
            self.epochs.add(k.epoch, c);
        }
        // Distinct users and apps are counted only at the grains that
        // report them: at the user grain a set per group would cost more
        // than the group itself.
        if by != GroupBy::User && k.user > 0 {
            self.users.insert(k.user);
        }
        if by == GroupBy::Tenant && k.app > 0 {
            self.apps.insert(u128::from(k.app));
        }
    }

    /// Keeps the number of distinct users, not their numbers: all that a
    /// partition on disk hands on (the sets of all partitions at once would
    /// hold every user again).
    fn count_users(&mut self) {
        self.users_counted += std::mem::take(&mut self.users).len() as u64;
    }
}

/// The rows of a finished grouping in output order
/// ([`Activity::finish_stream`]); after the last, [`Stream::finish`] says
/// whether every row was read.
pub(crate) type RowStream = Stream<ActivityRow>;

/// What [`Activity::finish_stream_then`] gives of a grouping that stayed in
/// memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum InMemory {
    /// Its rows, sorted, for the caller to map as they come: a caller that
    /// writes each row out as it comes holds no more than the rows.
    Rows,
    /// Its rows mapped in parallel and sorted once, into the caller's
    /// order (if there are no more than the budget): for a caller that
    /// would otherwise hold every mapped record to sort them again.
    Mapped,
}

/// What [`Activity::finish_stream_then`] gives: the rows, or the records
/// made of them.
pub(crate) enum Finished<R> {
    /// The activity rows in output order, for the caller to map.
    Rows(RowStream),
    /// Every row mapped, in the order asked for.
    Mapped(Stream<R>),
}

/// The result of `activity`.
pub struct ActivityTable {
    pub tenant: Option<Guid>,
    pub inferred_tenant: Option<String>,
    pub by: GroupBy,
    pub totals: Totals,
    pub rows: Vec<ActivityRow>,
}

impl ActivityTable {
    /// A table read back from files, its rows apart: the totals its rows
    /// can give (the cross-tenant sign-ins and the time they span; nothing
    /// about what was dropped before grouping), added up a row at a time
    /// by [`ActivityTable::count`].
    pub fn read_back(tenant: Option<Guid>, by: GroupBy) -> ActivityTable {
        ActivityTable { tenant, inferred_tenant: None, by, totals: Totals::default(), rows: Vec::new() }
    }

    /// Adds a row read back to the totals.
    pub fn count(&mut self, r: &ActivityRow) {
        let c = &r.counters;
        self.totals.cross_tenant = self.totals.cross_tenant.saturating_add(c.sign_ins);
        self.totals.first_seen = earliest(self.totals.first_seen, c.first_seen);
        self.totals.last_seen = self.totals.last_seen.max(c.last_seen);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Text;
    use proptest::prelude::*;

    /// Texts that test an order's bytes: empty, NUL inside and at the
    /// end, prefixes of one another, bytes above ASCII.
    pub(crate) fn key_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[ab\u{0}\u{1}é]{0,3}")
    }

    proptest! {
        /// The merge's bytes of two rows' sort keys compare as the sort keys.
        #[test]
        fn the_bytes_of_a_sort_key_order_rows_as_the_sort_key(
            a in (any::<bool>(), 0u128..3, key_text(), key_text(), key_text()),
            b in (any::<bool>(), 0u128..3, key_text(), key_text(), key_text()),
        ) {
            let row = |(outbound, partner, app, resource, user): (bool, u128, Option<String>, Option<String>, Option<String>)| ActivityRow {
                direction: if outbound { Direction::Outbound } else { Direction::Inbound },
                partner_tenant_id: Guid(partner << 100 | partner),
                app_id: app.map(Name::from),
                resource_id: resource.map(Name::from),
                user_id: user.map(Name::from),
                ..crate::analysis::runs::codec::tests::sample_row()
            };
            let (a, b) = (row(a), row(b));
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            sort_key_bytes(&a, &mut ka);
            sort_key_bytes(&b, &mut kb);
            prop_assert_eq!(ka.cmp(&kb), by_sort_key(&a, &b));
        }
    }

    pub(crate) fn signin(n: u32, partner: u128, user: &str, app: &str) -> SignIn {
        use crate::model::{CaStatus, Device, EventType, Evidence, Texts};
        SignIn {
            texts: Texts::of(&[
                (Text::Id, &format!("{n}")),
                (Text::UserId, user),
                (Text::UserPrincipalName, &format!("{user}@x.example")),
                (Text::AppId, app),
            ]),
            time: DateTime::from_timestamp(1_790_000_000 + n as i64 * 60, 0).unwrap(),
            event_type: EventType::Interactive,
            user_type: UserType::Guest,
            home_tenant: Some(Guid(partner)),
            resource_tenant: Some(Guid(1)),
            log_tenant: Some(Guid(1)),
            access_type: AccessType::B2bCollaboration,
            app_owner_tenant: None,
            resource_owner_tenant: None,
            error_code: n % 3,
            ca_status: CaStatus::NotApplied,
            evidence: Evidence::default(),
            device: Device::default(),
        }
    }

    #[test]
    fn grouping_told_the_grain_gives_the_table_grouping_for_every_grain_gives() {
        let signins: Vec<SignIn> = (0..600)
            .map(|n| signin(n, 2 + (n % 3) as u128, &format!("u{}", n % 17), ["a", "b"][(n % 2) as usize]))
            .collect();
        for by in [GroupBy::Tenant, GroupBy::App, GroupBy::User] {
            let (mut told, mut untold) = (Activity::new().for_grain(by), Activity::new());
            for s in &signins {
                told.add(s.clone());
                untold.add(s.clone());
            }
            let keep = told.user_numbers.len();
            let (told, untold) = (told.finish(None, by).unwrap(), untold.finish(None, by).unwrap());
            assert_eq!(told.rows, untold.rows, "{by:?}");
            assert!(told.rows.iter().all(|r| r.distinct_users.is_none_or(|n| n > 0)));
            // Below the user grain no user id's text is kept.
            assert_eq!(keep > 0, by != GroupBy::User, "{by:?}");
        }
        let mut told = Activity::new().for_grain(GroupBy::Tenant);
        told.add(signins[0].clone());
        assert!(told.finish(None, GroupBy::User).is_err(), "asked for another grain");
    }

    #[test]
    fn logs_of_many_tenants_are_refused_naming_the_ten_lowest_whatever_their_number() {
        let mut a = Activity::new();
        for n in (0..1000).rev() {
            let mut s = signin(n, 2, "u", "a");
            s.log_tenant = Some(Guid(10 + n as u128));
            a.add(s);
        }
        assert_eq!(a.log_tenants.len(), 10);
        let e = a.finish(None, GroupBy::User).err().unwrap().to_string();
        assert!(
            e.starts_with("the logs belong to more than 10 tenants (00000000-0000-0000-0000-00000000000a, "),
            "{e}"
        );
        assert!(e.contains("-000000000013, ...); say which is ours with --tenant ID"), "{e}");
        let mut two = Activity::new();
        for n in 0..2 {
            let mut s = signin(n, 2, "u", "a");
            s.log_tenant = Some(Guid(10 + n as u128));
            two.add(s);
        }
        let e = two.finish(None, GroupBy::User).err().unwrap().to_string();
        assert!(e.starts_with("the logs belong to 2 tenants (00000000-0000-0000-0000-00000000000a, "), "{e}");
        assert!(e.ends_with("-00000000000b); say which is ours with --tenant ID"), "{e}");
    }

    /// Sign-ins that exercise what spilling must keep: duplicates far apart
    /// in the input, users without an id, names that change over time,
    /// policy blocks, grant clauses, tenants that are not ours.
    pub(crate) fn varied_signins(n: u32) -> Vec<SignIn> {
        use crate::model::{Clause, Controls};
        let mut out: Vec<SignIn> = (0..n)
            .map(|i| {
                let mut s = signin(
                    i,
                    2 + (i % 5) as u128,
                    &format!("u{}", i % 701),
                    ["a", "b", "c"][(i % 3) as usize],
                );
                if i % 13 == 0 {
                    s.texts = s.texts.with(Text::UserId, None);
                }
                s.texts =
                    s.texts.with(Text::UserPrincipalName, Some(&format!("u{}@v{}.example", i % 701, i % 4)));
                s.user_type = [UserType::Guest, UserType::Member][(i % 2) as usize];
                s.error_code = [0, 0, 500212, 500213, 50076][(i % 5) as usize];
                s.time = DateTime::from_timestamp(1_790_000_000 + (i % 97) as i64 * 3600, 0).unwrap();
                s.texts = s.texts.with(Text::AppName, Some(&format!("App {}", i % 7)));
                if i % 11 == 0 {
                    // Rarer apps and resources, named and owned anew over
                    // time: more ids than a small budget holds.
                    s.texts = s.texts.with(Text::AppId, Some(&format!("app-{}", i % 50)));
                    s.texts = s.texts.with(Text::ResourceId, Some(&format!("res-{}", i % 40)));
                    s.texts = s.texts.with(Text::ResourceName, Some(&format!("Resource {}", i % 9)));
                    s.app_owner_tenant = Some(Guid(100 + (i % 4) as u128));
                    s.resource_owner_tenant = (i % 2 == 0).then_some(Guid(200 + (i % 3) as u128));
                }
                s.texts = s.texts.with(Text::HomeTenantName, Some(&format!("Partner {}", i % 3)));
                if i % 19 == 0 {
                    // Many more partners, a few named, renamed over time:
                    // more tenants than a small budget holds.
                    s.home_tenant = Some(Guid(1000 + (i % 60) as u128));
                    let name = (i % 38 == 0).then(|| format!("Far partner {}", i % 5));
                    s.texts = s.texts.with(Text::HomeTenantName, name.as_deref());
                }
                s.evidence.mfa_required = i % 4 == 0;
                s.evidence.ca_details = i % 6 != 0;
                if i % 17 == 0 {
                    s.evidence.clauses = vec![Clause {
                        policy: Some(Guid(i as u128 % 3)),
                        controls: Controls::MFA.union(Controls::COMPLIANT_DEVICE),
                        strength: None,
                    }];
                }
                if i % 29 == 0 {
                    // Outbound: our user in the partner's tenant.
                    s.resource_tenant = s.home_tenant;
                    s.home_tenant = Some(Guid(1));
                }
                if i % 31 == 0 {
                    // Neither side is ours.
                    s.resource_tenant = Some(Guid(99));
                }
                s
            })
            .collect();
        // Copies of earlier sign-ins, as overlapping exports give them.
        let copies: Vec<SignIn> = out.iter().step_by(7).cloned().collect();
        out.extend(copies);
        out
    }

    #[test]
    fn rows_in_memory_whose_texts_outweigh_the_budget_are_not_mapped_in_memory_though_their_count_fits() {
        // 50 groups whose user ids and names are 2 KB each: 200 KB of text,
        // some 400 KB mapped.
        let signins: Vec<SignIn> =
            (0..50).map(|n| signin(n, 7, &format!("{n}-{}", "u".repeat(2000)), "app")).collect();
        for (then_budget, mapped_in_memory) in [(60, false), (1000, true)] {
            let mut a = Activity::new().for_grain(GroupBy::User).spill_beyond(1_000_000);
            for s in &signins {
                a.add(s.clone());
            }
            let (_, finished) = a
                .finish_stream_then(
                    Some(Guid(1)),
                    GroupBy::User,
                    ROW_ORDER,
                    (Some(then_budget), InMemory::Mapped),
                    |_| |r| r,
                )
                .unwrap();
            let (mapped, rows) = match finished {
                Finished::Mapped(rows) => (true, rows.collect_rows().unwrap()),
                Finished::Rows(rows) => (false, rows.collect_rows().unwrap()),
            };
            assert_eq!((mapped, rows.len()), (mapped_in_memory, 50), "budget {then_budget}");
        }
    }

    #[test]
    fn rows_mapped_in_memory_or_where_the_partitions_are_finished_come_as_mapping_and_sorting_the_rows_gives()
    {
        // An order other than the grouping's (most sign-ins first), total.
        const MOST_FIRST: Order<ActivityRow> = Order {
            cmp: |a, b| b.counters.sign_ins.cmp(&a.counters.sign_ins).then_with(|| by_sort_key(a, b)),
            key: |r, out| {
                out.extend_from_slice(&(!r.counters.sign_ins).to_be_bytes());
                sort_key_bytes(r, out);
            },
            sort: None,
        };
        let signins = varied_signins(5000);
        let changes = [1_790_050_000, 1_790_200_000].map(|t| DateTime::from_timestamp(t, 0).unwrap());
        for starts in [vec![], changes.to_vec()] {
            let mut memory = Activity::new().for_grain(GroupBy::User).split_by_epochs(starts.clone());
            for s in &signins {
                memory.add(s.clone());
            }
            let memory = memory.finish(Some(Guid(1)), GroupBy::User).unwrap();
            let mapped = |table: &ActivityTable| {
                let ours = table.tenant.map(|t| t.to_string()).unwrap_or_default();
                move |mut r: ActivityRow| {
                    r.partner_tenant_name = Some(format!("mapped for {ours}").into());
                    r
                }
            };
            let mut expected: Vec<ActivityRow> = memory.rows.iter().cloned().map(mapped(&memory)).collect();
            sort_by(&mut expected, MOST_FIRST.cmp);
            assert!(expected.iter().filter(|r| r.user_id.is_none()).count() > 1);
            let pairs = [(1, Some(1)), (7, Some(3)), (500, None), (1_000_000, Some(2)), (1_000_000, None)];
            for ((budget, then_budget), in_memory) in
                pairs.into_iter().flat_map(|pair| [(pair, InMemory::Rows), (pair, InMemory::Mapped)])
            {
                let label =
                    format!("{} epoch starts, budget {budget}, {in_memory:?} in memory", starts.len());
                let mut disk = Activity::new()
                    .for_grain(GroupBy::User)
                    .split_by_epochs(starts.clone())
                    .spill_beyond(budget);
                for s in &signins {
                    disk.add(s.clone());
                }
                let (table, finished) = disk
                    .finish_stream_then(
                        Some(Guid(1)),
                        GroupBy::User,
                        MOST_FIRST,
                        (then_budget, in_memory),
                        mapped,
                    )
                    .unwrap();
                assert_eq!(table.totals, memory.totals, "{label}");
                // In memory, mapped only if asked and within the budget.
                let mapped_in_memory =
                    in_memory == InMemory::Mapped && then_budget.is_none_or(|b| b >= expected.len());
                let rows = match finished {
                    Finished::Mapped(rows) => {
                        assert!(
                            budget < 1000 || mapped_in_memory,
                            "{label}: mapped past the budget, or as asked"
                        );
                        rows.collect_rows().unwrap()
                    }
                    Finished::Rows(rows) => {
                        assert!(
                            budget >= 1000 && !mapped_in_memory,
                            "{label}: the rows as they are within the budget"
                        );
                        let mut rows: Vec<ActivityRow> =
                            rows.collect_rows().unwrap().into_iter().map(mapped(&table)).collect();
                        sort_by(&mut rows, MOST_FIRST.cmp);
                        rows
                    }
                };
                assert_eq!(rows, expected, "{label}");
            }
        }
    }

    #[test]
    fn users_with_ids_and_names_far_longer_than_entra_writes_move_the_grouping_to_disk_before_their_groups_do(
    ) {
        // 300 users, each in one group, with ids and names of some 2 KB:
        // 1.2 MB of text against 512 KB for a budget of 1,000 groups.
        let signins: Vec<SignIn> =
            (0..300).map(|n| signin(n, 7, &format!("{n}-{}", "u".repeat(2000)), "app")).collect();
        let group = |budget: Option<usize>| {
            let mut a = Activity::new().for_grain(GroupBy::User);
            if let Some(b) = budget {
                a = a.spill_beyond(b);
            }
            for s in &signins {
                a.add(s.clone());
            }
            let spilled = a.spill.is_some();
            let (_, rows) = a.finish_stream(Some(Guid(1)), GroupBy::User).unwrap();
            (spilled, rows.collect_rows().unwrap())
        };
        let (_, memory) = group(None);
        assert_eq!(memory.len(), 300);
        let (spilled, disk) = group(Some(1000));
        assert!(spilled, "300 groups of 1,000, but 1.2 MB of text of 512 KB");
        assert_eq!(disk, memory);
        // A user's later sign-ins with the same name hold nothing more:
        // 1,000 sign-ins, one id and one name counted.
        let mut a = Activity::new().for_grain(GroupBy::User).spill_beyond(1000);
        for n in 0..1000 {
            a.add(signin(n, 7, "u1", &format!("app{}", n % 3)));
        }
        assert_eq!(a.users.text_bytes(), "u1".len() + "u1@x.example".len());
        // Short ids and names: the groups decide.
        let short: Vec<SignIn> = (0..300).map(|n| signin(n, 7, &format!("{n}"), "app")).collect();
        let mut a = Activity::new().for_grain(GroupBy::User).spill_beyond(1000);
        for s in short {
            a.add(s);
        }
        assert!(a.spill.is_none());
    }

    /// `signins` grouped at grain `by`, in the policy epochs that start at
    /// `starts`, within `budget` groups (none: in memory): whether the
    /// grouping went to disk, whether ids went to its files past those
    /// held, and the table with its rows.
    pub(crate) fn grouped_signins(
        signins: &[SignIn],
        by: GroupBy,
        starts: &[DateTime<Utc>],
        budget: Option<usize>,
    ) -> (bool, bool, ActivityTable) {
        let mut a = Activity::new().for_grain(by).split_by_epochs(starts.to_vec());
        if let Some(b) = budget {
            a = a.spill_beyond(b);
        }
        for s in signins {
            a.add(s.clone());
        }
        let (spilled, overflowed) = (a.spill.is_some(), a.overflow.is_some());
        (spilled, overflowed, a.finish(Some(Guid(1)), by).unwrap())
    }

    /// [`grouped_signins`] at the user grain, without epochs: its rows.
    fn grouped_at_user_grain(signins: &[SignIn], budget: Option<usize>) -> (bool, bool, Vec<ActivityRow>) {
        let (spilled, overflowed, table) = grouped_signins(signins, GroupBy::User, &[], budget);
        (spilled, overflowed, table.rows)
    }

    #[test]
    fn apps_and_partners_with_ids_and_names_far_longer_than_entra_writes_move_the_grouping_to_disk_and_then_to_its_files(
    ) {
        // 300 sign-ins of 30 users, each with an app and a partner of its
        // own, app ids, app names and partner names of some 1 KB: 900 KB of
        // text against 256 KB held for a budget of 1,000 groups.
        let long = |n: u32, what: &str| format!("{n}-{}", what.repeat(1000));
        let signins: Vec<SignIn> = (0..300)
            .map(|n| {
                let mut s = signin(n, 1000 + u128::from(n), &format!("u{}", n % 30), &long(n, "a"));
                s.texts = s.texts.with(Text::AppName, Some(&long(n, "n")));
                s.texts = s.texts.with(Text::HomeTenantName, Some(&long(n, "p")));
                s
            })
            .collect();
        let (_, _, memory) = grouped_at_user_grain(&signins, None);
        assert_eq!(memory.len(), 300);
        let (spilled, overflowed, disk) = grouped_at_user_grain(&signins, Some(1000));
        assert!(spilled && overflowed, "300 groups of 1,000, but 900 KB of text of 256 KB");
        assert_eq!(disk, memory);
        // What is held counts the ids and the names taken, once each.
        let mut a = Activity::new().for_grain(GroupBy::User).spill_beyond(1000);
        for n in 0..1000 {
            let mut s = signin(n, 7, &format!("u{n}"), "app");
            s.texts = s.texts.with(Text::AppName, Some("App"));
            a.add(s);
        }
        assert_eq!(a.held_text(), "app".len() + "App".len());
        // Ids and names of Entra's lengths: the groups decide.
        let short: Vec<SignIn> =
            (0..300).map(|n| signin(n, 1000 + u128::from(n), "u", &format!("app-{n}"))).collect();
        assert!(!grouped_at_user_grain(&short, Some(1000)).0);
    }

    #[test]
    fn a_few_users_with_many_groups_each_are_finished_past_the_budget_into_the_rows_of_grouping_in_memory() {
        // Three guests, 700 apps each; some sign-ins exported twice, the
        // copy naming another app (a forged export: the first copy counts),
        // names changing over time.
        let mut signins: Vec<SignIn> = (0..2100)
            .map(|n| {
                let mut s =
                    signin(n, 7 + u128::from(n % 2), &format!("u{}", n % 3), &format!("app-{}", n / 3));
                let upn = format!("u{}-{}@x.example", n % 3, n / 500);
                s.texts = s.texts.with(Text::UserPrincipalName, Some(&upn));
                s
            })
            .collect();
        for n in (0..2100).step_by(7) {
            let mut copy = signins[n].clone();
            copy.texts = copy.texts.with(Text::AppId, Some(&format!("copy-{n}")));
            copy.texts = copy.texts.with(Text::UserPrincipalName, Some("zz-copy@x.example"));
            signins.push(copy);
        }
        let (_, _, memory) = grouped_at_user_grain(&signins, None);
        assert_eq!(memory.len(), 2100);
        for budget in [5, 40, 300] {
            let (spilled, _, disk) = grouped_at_user_grain(&signins, Some(budget));
            assert!(spilled, "budget {budget}");
            assert_eq!(disk, memory, "budget {budget}");
        }
        // Below the user grain too, where a row counts its distinct users
        // (each guest's apps spread over passes by group) and apps.
        for by in [GroupBy::App, GroupBy::Tenant] {
            let (_, _, memory) = grouped_signins(&signins, by, &[], None);
            assert!(memory.rows.iter().any(|r| r.distinct_users > Some(1)), "{by:?}");
            for budget in [5, 40, 300] {
                let (_, _, disk) = grouped_signins(&signins, by, &[], Some(budget));
                assert_eq!(disk.totals, memory.totals, "{by:?}, budget {budget}");
                assert_eq!(disk.rows, memory.rows, "{by:?}, budget {budget}");
            }
        }
    }

    #[test]
    fn grouping_moved_to_disk_gives_the_rows_and_totals_of_grouping_in_memory() {
        let signins = varied_signins(5000);
        // Policy epochs as `replay --audit` gives them: none, or two changes
        // inside the sign-ins' four days.
        let changes = [1_790_050_000, 1_790_200_000].map(|t| DateTime::from_timestamp(t, 0).unwrap());
        for (by, starts) in [GroupBy::User, GroupBy::App, GroupBy::Tenant]
            .into_iter()
            .flat_map(|by| [(by, vec![]), (by, changes.to_vec())])
        {
            let label = format!("{by:?}, {} epoch starts", starts.len());
            let (_, _, memory) = grouped_signins(&signins, by, &starts, None);
            assert!(memory.totals.duplicates_dropped > 0 && memory.totals.other_tenants > 0);
            if by == GroupBy::User {
                assert!(memory.rows.iter().any(|r| r.user_id.is_none()));
            } else {
                assert!(memory.rows.iter().all(|r| r.distinct_users.is_some()), "{label}");
                assert!(memory.rows.iter().any(|r| r.distinct_users.is_some_and(|n| n > 100)), "{label}");
            }
            assert_eq!(memory.rows.iter().any(|r| r.by_epoch.len() == 3), !starts.is_empty(), "{label}");
            for budget in [1, 7, 500, 1_000_000] {
                let mut disk =
                    Activity::new().for_grain(by).split_by_epochs(starts.clone()).spill_beyond(budget);
                for s in &signins {
                    disk.add(s.clone());
                }
                assert_eq!(disk.spill.is_some(), budget < 1000, "{label}, budget {budget}");
                // Past the budget the apps, resources and tenants go to
                // disk too.
                assert_eq!(disk.overflow.is_some(), budget < 100, "{label}, budget {budget}");
                assert_eq!(disk.tenants.ids.len() < 60, budget < 60, "{label}, budget {budget}");
                let (table, rows) = disk.finish_stream(Some(Guid(1)), by).unwrap();
                assert_eq!(table.totals, memory.totals, "{label}, budget {budget}");
                assert_eq!(rows.collect_rows().unwrap(), memory.rows, "{label}, budget {budget}");
            }
        }
    }
}
