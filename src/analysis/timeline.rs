//! Timeline: each cross-tenant policy change from the audit log, joined
//! with the sign-ins of the partner it touched in a window before and
//! after it, to show who lost access because of it.
//!
//! Settings take up to a few hours to apply, so the window after a change
//! is stretched by a grace period: `[t - window, t)` before and
//! `[t, t + grace + window)` after. A change is flagged when users who had
//! no policy block before it have one after, and policy blocks rose. A
//! change to the default is joined with the sign-ins of every partner
//! (without the policy, which partners inherit the default is not known).
//!
//! What is held, whatever the trail's length: the changes listed are read
//! back from a temporary folder as their rows are written ([`Timeline`]);
//! of every change, two bytes for its row ([`Place`]) and, for the join,
//! its time and its place in its configuration's list ([`Join`]); the
//! users near the changes within a budget ([`Tally`]). An audit trail of a
//! million changes, each held with its join and check, took a gigabyte.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};

use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::value::RawValue;

use super::runs::codec::{Dec, Enc};
use super::runs::{key, ByKey, Order, Record, Spool, Stream, Tally};
use crate::model::activity::Name;
use crate::model::codes::is_policy_block;
use crate::model::{Direction, Guid, SignIn};
use crate::policy::change::{ChangeKind, Decoded, PolicyChange, PropertyChange, Scope};
use crate::policy::history::{ChangeCheck, TrailChecks};

/// Sign-ins on one side of a change.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Side {
    pub sign_ins: u64,
    pub users: u64,
    pub policy_blocks: u64,
    pub blocked_users: u64,
}

/// A user seen near a change ([`Join`]): which sides of it they signed in
/// on, and on which they had a policy block, as bits ([`SEEN_BEFORE`] and
/// the others), added up by (change, user) in a [`Tally`]: the users near
/// each change are counted without holding them (a default's change
/// meets every partner's users).
#[derive(Clone, Debug, PartialEq)]
struct UserNear {
    change: u32,
    user: Name,
    bits: u8,
}

const SEEN_BEFORE: u8 = 1;
const BLOCKED_BEFORE: u8 = 2;
const SEEN_AFTER: u8 = 4;
const BLOCKED_AFTER: u8 = 8;

impl Record for UserNear {
    fn write(&self, enc: &mut Enc) {
        enc.u32(self.change);
        enc.str(&self.user);
        enc.u8(self.bits);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(UserNear { change: dec.u32()?, user: dec.name(0)?, bits: dec.u8()? })
    }

    fn text_bytes(&self) -> usize {
        self.user.len()
    }
}

/// By change, then user (as texts sort: the order the newly blocked
/// users are listed in).
const USERS_NEAR: ByKey<(u32, Name), UserNear> = ByKey {
    key: |u| (u.change, u.user.clone()),
    order: Order {
        cmp: |a, b| a.change.cmp(&b.change).then_with(|| a.user.cmp(&b.user)),
        key: |u, out| {
            out.extend_from_slice(&u.change.to_be_bytes());
            key::text(out, &u.user);
        },
        sort: None,
    },
    combine: |into, other| into.bits |= other.bits,
};

/// What the sign-ins say about one change.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Effect {
    pub before: Side,
    pub after: Side,
    /// Users with a policy block after the change and none before it
    /// (user principal name where the logs give one, else the id).
    pub newly_blocked_users: Vec<String>,
    /// Followed by new policy blocks: likely the cause.
    pub flagged: bool,
}

/// One line of the timeline: a change, what the sign-ins say about it, and
/// whether the policy before it could be rebuilt.
pub struct ChangeRow<'a> {
    pub change: PolicyChange,
    pub partner_name: Option<&'a str>,
    pub effect: Option<Effect>,
    pub check: Option<ChangeCheck>,
    /// Not joined with the sign-ins: too many other changes near it
    /// ([`MAX_CHANGES_NEAR`]).
    pub crowded: bool,
}

/// What the sign-ins say about one change listed ([`Join::finish`]), or
/// that it was not joined.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Joined {
    /// None: the change alters no access, or is crowded.
    pub effect: Option<Effect>,
    /// Not joined: too many other changes near it ([`MAX_CHANGES_NEAR`]).
    pub crowded: bool,
}

impl Record for Joined {
    fn write(&self, enc: &mut Enc) {
        enc.u8(u8::from(self.crowded));
        enc.u8(u8::from(self.effect.is_some()));
        let Some(e) = &self.effect else { return };
        for side in [&e.before, &e.after] {
            [side.sign_ins, side.users, side.policy_blocks, side.blocked_users]
                .into_iter()
                .for_each(|n| enc.var(n));
        }
        write_texts(enc, &e.newly_blocked_users);
        enc.u8(u8::from(e.flagged));
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let crowded = dec.u8()? != 0;
        if dec.u8()? == 0 {
            return Ok(Joined { effect: None, crowded });
        }
        let mut side = || -> io::Result<Side> {
            Ok(Side {
                sign_ins: dec.var()?,
                users: dec.var()?,
                policy_blocks: dec.var()?,
                blocked_users: dec.var()?,
            })
        };
        let (before, after) = (side()?, side()?);
        let (newly_blocked_users, flagged) = (read_texts(dec)?, dec.u8()? != 0);
        Ok(Joined { effect: Some(Effect { before, after, newly_blocked_users, flagged }), crowded })
    }

    fn text_bytes(&self) -> usize {
        self.effect.as_ref().map_or(0, |e| e.newly_blocked_users.iter().map(|u| u.len() + 24).sum())
    }
}

/// Of each change of an audit trail, in time order, what its row needs
/// held: whether it alters access (a change's check depends on the
/// changes after it that do) and whether it is listed. Two bytes a change.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub alters: bool,
    pub listed: bool,
}

/// The changes listed, read back in time order (from a temporary folder
/// past the budget), each with what the sign-ins say about it (read back
/// too) and its check (worked out as it is read). An audit trail of a
/// million changes held every change (some 1 KB each), its join and its
/// check until they were written: now it holds two bytes a change
/// ([`Place`]), and the join some sixteen ([`Join`]).
pub struct Timeline {
    /// The changes listed.
    changes: Stream<PolicyChange>,
    /// One per change listed, or none (no sign-ins joined).
    joined: Option<Stream<Joined>>,
    /// None: no policy given.
    checks: Option<TrailChecks>,
    /// One per change of the trail.
    places: std::vec::IntoIter<Place>,
    names: BTreeMap<Guid, String>,
    /// What the document's summary says before the rows.
    pub counts: TimelineCounts,
}

/// How many changes are listed, and how many of them are flagged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimelineCounts {
    pub changes: usize,
    pub flagged: usize,
}

impl Timeline {
    /// The rows of `places`, whose changes listed are `changes`, and, one
    /// per change listed, what the sign-ins say (`joined`, with how many
    /// of them are flagged).
    pub fn new(
        places: Vec<Place>,
        changes: Stream<PolicyChange>,
        joined: Option<(Stream<Joined>, usize)>,
        checks: Option<TrailChecks>,
        names: BTreeMap<Guid, String>,
    ) -> Timeline {
        let listed = places.iter().filter(|p| p.listed).count();
        let (joined, flagged) = joined.map_or((None, 0), |(j, flagged)| (Some(j), flagged));
        Timeline {
            changes,
            joined,
            checks,
            places: places.into_iter(),
            names,
            counts: TimelineCounts { changes: listed, flagged },
        }
    }

    /// Every change listed, in time order, read as it is asked for; then
    /// [`Timeline::finish`] says whether all could be read.
    pub fn rows(&mut self) -> impl Iterator<Item = ChangeRow<'_>> {
        let Timeline { changes, joined, checks, places, names, .. } = self;
        let names = &*names;
        std::iter::from_fn(move || loop {
            let place = places.next()?;
            // Every change's check, listed or not: they are handed out in
            // the trail's order.
            let check = checks.as_mut().map(|c| c.next(place.alters));
            if !place.listed {
                continue;
            }
            let change = changes.next()?;
            let joined = joined.as_mut().and_then(|j| j.next()).unwrap_or_default();
            return Some(ChangeRow {
                partner_name: change.partner().and_then(|p| names.get(&p)).map(String::as_str),
                change,
                effect: joined.effect,
                check,
                crowded: joined.crowded,
            });
        })
    }

    /// Whether every change listed (and what the sign-ins say of it) was
    /// read back: an error if one could not be.
    pub fn finish(self) -> anyhow::Result<()> {
        self.changes.finish()?;
        self.joined.map_or(Ok(()), Stream::finish)
    }
}

/// What the join and the rows need of a change, made as the trail is read
/// (and not held): when, to which configuration, and whether it altered
/// access.
#[derive(Clone, Copy, Debug)]
pub struct Brief {
    pub time: DateTime<Utc>,
    pub scope: Scope,
    /// Succeeded and changes access: undone by a history, joined with the
    /// sign-ins.
    pub alters: bool,
}

impl Brief {
    pub fn of(c: &PolicyChange) -> Brief {
        Brief { time: c.time, scope: c.scope, alters: c.alters_access() }
    }
}

/// The order changes are listed in: by time, then id (ties between equal
/// ones in the order they were read).
pub const CHANGE_ORDER: Order<PolicyChange> = Order {
    cmp: |a, b| (a.time, &a.id).cmp(&(b.time, &b.id)),
    key: |c, out| {
        key_time(out, c.time);
        key::text(out, &c.id);
    },
    sort: None,
};

/// A time's order-preserving bytes: seconds with the sign bit flipped,
/// then nanoseconds, both big-endian.
fn key_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.extend_from_slice(&((t.timestamp() as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&t.timestamp_subsec_nanos().to_be_bytes());
}

const KINDS: [ChangeKind; 8] = [
    ChangeKind::PartnerAdded,
    ChangeKind::PartnerUpdated,
    ChangeKind::PartnerDeleted,
    ChangeKind::DefaultUpdated,
    ChangeKind::DefaultReset,
    ChangeKind::Migrated,
    ChangeKind::IdentitySync,
    ChangeKind::Other,
];

fn write_decoded(enc: &mut Enc, d: &Decoded) {
    match d {
        Decoded::Unset => enc.u8(0),
        Decoded::Value(v) => {
            enc.u8(1);
            enc.str(v.get());
        }
        Decoded::Undecodable(why) => {
            enc.u8(2);
            enc.str(why);
        }
    }
}

/// A change read back that this process did not write so.
fn damaged() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a damaged change in the temporary folder")
}

fn read_decoded<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Decoded> {
    Ok(match dec.u8()? {
        0 => Decoded::Unset,
        1 => Decoded::Value(RawValue::from_string(dec.string()?).map_err(|_| damaged())?),
        2 => Decoded::Undecodable(dec.string()?),
        _ => return Err(damaged()),
    })
}

fn write_texts(enc: &mut Enc, texts: &[String]) {
    enc.var(texts.len() as u64);
    texts.iter().for_each(|t| enc.str(t));
}

fn read_texts<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Vec<String>> {
    let n = dec.var()?;
    // Not reserved by the count: a damaged one would ask for any size.
    (0..n).map(|_| dec.string()).collect()
}

/// A change as it goes to a temporary folder (sorted there, and kept to
/// be listed), every field of it.
impl Record for PolicyChange {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.id);
        enc.time(self.time);
        enc.str(&self.actor);
        enc.str(&self.activity);
        enc.one_of(&KINDS, self.kind);
        enc.u8(u8::from(self.succeeded));
        match self.scope {
            Scope::Default => enc.u8(0),
            Scope::Partner(p) => {
                enc.u8(1);
                enc.u128(p.0);
            }
            Scope::UnknownPartner => enc.u8(2),
        }
        enc.opt_guid(self.owner);
        enc.var(self.properties.len() as u64);
        for p in &self.properties {
            enc.str(&p.property);
            write_decoded(enc, &p.old);
            write_decoded(enc, &p.new);
            write_texts(enc, &p.summary);
        }
        write_texts(enc, &self.notes);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let (id, time, actor, activity) = (dec.string()?, dec.time()?, dec.string()?, dec.string()?);
        let kind = dec.one_of(&KINDS, "change kind")?;
        let succeeded = dec.u8()? != 0;
        let scope = match dec.u8()? {
            0 => Scope::Default,
            1 => Scope::Partner(Guid(dec.u128()?)),
            2 => Scope::UnknownPartner,
            _ => return Err(damaged()),
        };
        let owner = dec.opt_guid()?;
        let properties = (0..dec.var()?)
            .map(|_| {
                Ok(PropertyChange {
                    property: dec.string()?,
                    old: read_decoded(dec)?,
                    new: read_decoded(dec)?,
                    summary: read_texts(dec)?,
                })
            })
            .collect::<io::Result<_>>()?;
        let notes = read_texts(dec)?;
        Ok(PolicyChange { id, time, actor, activity, kind, succeeded, scope, owner, properties, notes })
    }

    fn text_bytes(&self) -> usize {
        let decoded = |d: &Decoded| match d {
            Decoded::Unset => 0,
            Decoded::Value(v) => v.get().len(),
            Decoded::Undecodable(why) => why.len(),
        };
        let texts = |t: &[String]| t.iter().map(|t| t.len() + 24).sum::<usize>();
        self.id.len()
            + self.actor.len()
            + self.activity.len()
            + texts(&self.notes)
            + self
                .properties
                .iter()
                .map(|p| p.property.len() + decoded(&p.old) + decoded(&p.new) + texts(&p.summary) + 64)
                .sum::<usize>()
    }
}

/// What a timeline run read, for its summary.
pub struct TimelineRun {
    pub audit: crate::model::ReadStats,
    pub signins: Option<crate::model::ReadStats>,
    pub joined_sign_ins: u64,
    pub policy: Option<String>,
    pub window: Duration,
    pub grace: Duration,
}

/// Each change's time, and how far before and after it its windows reach:
/// a change's windows are worked out when asked (three times a change,
/// held for every change of a long trail, were most of a join's memory).
struct Windows {
    times: Vec<DateTime<Utc>>,
    before: Duration,
    /// The grace and the window.
    after: Duration,
}

impl Windows {
    /// Change `i`'s windows: before it from the first time to the second,
    /// after it from the second to the third. Saturating: a time at either
    /// end of the calendar.
    fn of(&self, i: u32) -> [DateTime<Utc>; 3] {
        let t = self.times[i as usize];
        [
            t.checked_sub_signed(self.before).unwrap_or(DateTime::<Utc>::MIN_UTC),
            t,
            t.checked_add_signed(self.after).unwrap_or(DateTime::<Utc>::MAX_UTC),
        ]
    }
}

/// The times of the changes whose windows hold a time `t`: a change at `c`
/// holds `t` when `c - before <= t < c + after`, that is when
/// `t - after < c <= t + before`. Worked out once a sign-in, so that
/// finding its changes compares times alone (working out each change's
/// windows as it was looked at was a tenth of a dense trail's join).
#[derive(Clone, Copy, Debug)]
struct Reach {
    /// None: no lower bound (`t - after` before the calendar's start).
    above: Option<DateTime<Utc>>,
    /// None: no upper bound (`t + before` past the calendar's end).
    up_to: Option<DateTime<Utc>>,
}

impl Reach {
    fn of(windows: &Windows, t: DateTime<Utc>) -> Reach {
        Reach { above: t.checked_sub_signed(windows.after), up_to: t.checked_add_signed(windows.before) }
    }

    /// Below the reach: every window of a change at `c` ends at or before `t`.
    fn passed(&self, c: DateTime<Utc>) -> bool {
        self.above.is_some_and(|a| c <= a)
    }

    /// Not past the reach: a window of a change at `c` starts at or before `t`.
    fn begun(&self, c: DateTime<Utc>) -> bool {
        self.up_to.is_none_or(|u| c <= u)
    }
}

/// Of `ids` (changes in time order), the range whose windows hold `t`
/// (given as its [`Reach`]): from the first window ending after `t` to the
/// last starting at or before it.
fn near_changes(windows: &Windows, ids: &[u32], reach: Reach) -> std::ops::Range<usize> {
    let first = ids.partition_point(|&i| reach.passed(windows.times[i as usize]));
    let end = ids.partition_point(|&i| reach.begun(windows.times[i as usize]));
    first..end.max(first)
}

/// The note of a change not joined ([`MAX_CHANGES_NEAR`]).
pub fn crowded_note() -> String {
    format!(
        "not joined with the sign-ins: its window holds more than {MAX_CHANGES_NEAR} other changes to the same configuration, whose effects the sign-ins cannot tell apart"
    )
}

/// The most other changes to the same configuration (one partner, or the
/// default) a change's window may hold for it to be joined with the
/// sign-ins. Each sign-in is joined with every change whose window holds it,
/// so a dense trail cost sign-ins times changes: 60,000 changes to a
/// partner twenty seconds apart with 200,000 of its sign-ins had not
/// finished in ten minutes. Nor can the sign-ins tell apart the effects of
/// changes that close: each one's "before" and "after" hold hundreds of
/// the others. A pipeline changing a partner every quarter of an hour puts
/// some 220 in a window of the defaults (a day before, thirty hours after).
pub const MAX_CHANGES_NEAR: usize = 256;

/// Of `ids` (changes in time order), those whose window holds more than
/// `most` others.
fn crowded(windows: &Windows, ids: &[u32], most: usize) -> Vec<u32> {
    ids.iter()
        .copied()
        .filter(|&i| {
            let [from, _, until] = windows.of(i);
            let first = ids.partition_point(|&j| windows.times[j as usize] < from);
            let end = ids.partition_point(|&j| windows.times[j as usize] < until);
            end.saturating_sub(first).saturating_sub(1) > most
        })
        .collect()
}

/// Joins changes with sign-ins, one sign-in at a time; the users seen near
/// each change are added up by (change, user), in memory within the
/// budget, past it on disk: memory does not grow with them. Of each change
/// it holds its time and its place in its configuration's list (some 16
/// bytes), and of a change with sign-ins near it their counts (some 50). A
/// change whose window holds more than [`MAX_CHANGES_NEAR`] others of its
/// configuration is not joined ([`Join::crowded`]).
///
/// Changes are pushed in time order ([`Join::push`]), then the join is
/// sealed ([`Join::seal`]) before the first sign-in is added.
pub struct Join {
    windows: Windows,
    by_partner: HashMap<Guid, Vec<u32>>,
    defaults: Vec<u32>,
    /// The changes not joined, in order: too many others near them.
    crowded: Vec<u32>,
    /// The most others near a change joined.
    most: usize,
    our_tenant: Option<Guid>,
    /// Of each change with sign-ins near it: its sign-ins before, policy
    /// blocks before, sign-ins after and policy blocks after (held for
    /// those alone: a trail of a million changes, each with its counters,
    /// held them for every change).
    counts: FxHashMap<u32, [u64; 4]>,
    users: Tally<(u32, Name), UserNear>,
    /// The first write to the temporary folder that failed, for `finish`.
    error: Option<anyhow::Error>,
    /// The first name the sign-ins gave each partner a change names.
    names: HashMap<Guid, Option<String>>,
    pub joined: u64,
}

impl Join {
    /// The changes `changes` (in time order) joined, sealed: see
    /// [`Join::start`].
    pub fn new(
        changes: &[Brief],
        our_tenant: Option<Guid>,
        window: Duration,
        grace: Duration,
        budget: Option<usize>,
    ) -> Join {
        let mut join = Join::start(window, grace, budget);
        changes.iter().for_each(|c| join.push(c));
        join.seal(our_tenant);
        join
    }

    /// A join of no changes yet. `budget`: the (change, user) pairs held
    /// in memory before the temporary folder (the run's groups in memory).
    pub fn start(window: Duration, grace: Duration, budget: Option<usize>) -> Join {
        Join::bounded(window, grace, budget, MAX_CHANGES_NEAR)
    }

    /// [`Join::start`], not joining a change whose window holds more than
    /// `most` other changes to its configuration.
    fn bounded(window: Duration, grace: Duration, budget: Option<usize>, most: usize) -> Join {
        Join {
            windows: Windows {
                times: vec![],
                before: window,
                after: grace.checked_add(&window).unwrap_or(Duration::MAX),
            },
            by_partner: HashMap::new(),
            defaults: vec![],
            crowded: vec![],
            most,
            our_tenant: None,
            counts: FxHashMap::default(),
            users: Tally::new("timeline", USERS_NEAR, budget).text_a_record(128),
            error: None,
            names: HashMap::new(),
            joined: 0,
        }
    }

    /// The next change of the trail, in time order.
    pub fn push(&mut self, c: &Brief) {
        let i = self.windows.times.len() as u32;
        self.windows.times.push(c.time);
        if let Scope::Partner(p) = c.scope {
            // Only the partners the changes name are named: a forged log's
            // million other partners are not held.
            self.names.entry(p).or_insert(None);
        }
        if !c.alters {
            return;
        }
        match c.scope {
            Scope::Partner(p) => self.by_partner.entry(p).or_default().push(i),
            Scope::Default => self.defaults.push(i),
            Scope::UnknownPartner => {}
        }
    }

    /// Every change pushed: sets the crowded ones apart, and takes our
    /// tenant (the one the audit logs belong to, known once they are all
    /// read; else each sign-in's own log's).
    pub fn seal(&mut self, our_tenant: Option<Guid>) {
        self.our_tenant = our_tenant;
        let (windows, most) = (&self.windows, self.most);
        let mut crowded_ids: Vec<u32> = self
            .by_partner
            .values()
            .chain([&self.defaults])
            .flat_map(|ids| crowded(windows, ids, most))
            .collect();
        crowded_ids.sort_unstable();
        if !crowded_ids.is_empty() {
            for ids in self.by_partner.values_mut().chain([&mut self.defaults]) {
                ids.retain(|i| crowded_ids.binary_search(i).is_err());
            }
        }
        self.crowded = crowded_ids;
    }

    pub fn add(&mut self, s: &SignIn) {
        let Some(our) = self.our_tenant.or(s.log_tenant) else { return };
        let (Some(home), Some(resource)) = (s.home_tenant, s.resource_tenant) else { return };
        let Some((direction, partner)) = Direction::of(our, home, resource) else { return };
        if let (Direction::Inbound, Some(n)) = (direction, s.home_tenant_name()) {
            if let Some(name @ None) = self.names.get_mut(&partner) {
                *name = Some(n.into());
            }
        }
        let blocked = is_policy_block(s.error_code);
        let mut user: Option<Name> = None;
        let mut hit = false;
        // Only the changes whose windows can hold the sign-in: every change
        // of its partner looked at, 60,000 changes to one partner with
        // 200,000 of its sign-ins had not finished in ten minutes.
        let reach = Reach::of(&self.windows, s.time);
        let near = |ids: &[u32]| -> std::ops::Range<usize> { near_changes(&self.windows, ids, reach) };
        let own = self.by_partner.get(&partner).map_or(&[][..], Vec::as_slice);
        let (own_near, defaults_near) = (near(own), near(&self.defaults));
        let ids = own[own_near].iter().chain(&self.defaults[defaults_near]);
        for &i in ids {
            let t = self.windows.times[i as usize];
            let (bits, side) = if reach.passed(t) || !reach.begun(t) {
                continue;
            } else if s.time < t {
                (SEEN_BEFORE | if blocked { BLOCKED_BEFORE } else { 0 }, 0)
            } else {
                (SEEN_AFTER | if blocked { BLOCKED_AFTER } else { 0 }, 2)
            };
            let counts = self.counts.entry(i).or_default();
            counts[side] += 1;
            counts[side + 1] += u64::from(blocked);
            hit = true;
            if self.error.is_some() {
                continue;
            }
            let user = user
                .get_or_insert_with(|| {
                    s.user_principal_name().or(s.user_id()).unwrap_or("(unknown user)").into()
                })
                .clone();
            if let Err(e) = self.users.add(UserNear { change: i, user, bits }) {
                self.error = Some(e);
            }
        }
        self.joined += u64::from(hit);
    }

    /// The changes not joined: their windows hold more than
    /// [`MAX_CHANGES_NEAR`] other changes to their configuration.
    pub fn crowded(&self) -> &[u32] {
        &self.crowded
    }

    /// Partner names the sign-ins gave.
    pub fn names(&self) -> BTreeMap<Guid, String> {
        self.names.iter().filter_map(|(k, v)| Some((*k, v.clone()?))).collect()
    }

    /// What the sign-ins say about each change `listed` says is (by its
    /// place among all, in order), kept within `budget` in memory, past it
    /// in a temporary folder; and how many of those are flagged. The users
    /// near each change are read once, in the order of changes then users,
    /// and counted into the change as they come.
    pub fn finish(
        self,
        listed: impl Fn(usize) -> bool,
        budget: Option<usize>,
    ) -> anyhow::Result<(Stream<Joined>, usize)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut joined = vec![false; self.windows.times.len()];
        for &i in self.by_partner.values().flatten().chain(&self.defaults) {
            joined[i as usize] = true;
        }
        let mut users = self.users.finish()?;
        let mut near = users.by_ref().peekable();
        let (mut kept, mut flagged) = (Spool::new("timeline", budget), 0);
        let mut crowded = self.crowded.iter().peekable();
        for i in (0..joined.len()).filter(|&i| listed(i)) {
            // Users before, blocked before, users after, blocked after, and
            // the newly blocked; those of changes not listed passed over.
            let (mut n, mut newly) = ([0u64; 4], vec![]);
            while let Some(u) = near.next_if(|u| u.change as usize <= i) {
                if u.change as usize != i {
                    continue;
                }
                for (k, bit) in
                    [SEEN_BEFORE, BLOCKED_BEFORE, SEEN_AFTER, BLOCKED_AFTER].into_iter().enumerate()
                {
                    n[k] += u64::from(u.bits & bit != 0);
                }
                if u.bits & (BLOCKED_AFTER | BLOCKED_BEFORE) == BLOCKED_AFTER {
                    newly.push(u.user.to_string());
                }
            }
            while crowded.next_if(|&&c| (c as usize) < i).is_some() {}
            let is_crowded = crowded.peek().is_some_and(|&&c| c as usize == i);
            let effect = joined[i].then(|| {
                let counts = self.counts.get(&(i as u32)).copied().unwrap_or_default();
                let side = |k: usize| Side {
                    sign_ins: counts[k],
                    users: n[k],
                    policy_blocks: counts[k + 1],
                    blocked_users: n[k + 1],
                };
                let (before, after) = (side(0), side(2));
                let flagged = !newly.is_empty() && after.policy_blocks > before.policy_blocks;
                Effect { before, after, newly_blocked_users: newly, flagged }
            });
            flagged += usize::from(effect.as_ref().is_some_and(|e| e.flagged));
            kept.push(Joined { effect, crowded: is_crowded })?;
        }
        drop(near);
        users.finish()?;
        Ok((kept.finish()?, flagged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::runs::codec::tests::{keys_sort_as_compared, read_back};
    use crate::model::{AccessType, CaStatus, EventType, Text, Texts, UserType};
    use crate::policy::change::ChangeKind;

    const OURS: Guid = Guid(1);
    const PARTNER: Guid = Guid(2);

    #[test]
    fn the_changes_near_a_sign_in_are_those_whose_windows_hold_it() {
        // Changes at uneven times (some at the same second), windows of an
        // hour before and an hour and a half after; every change of the
        // list, and every other one.
        let at = |minutes: i64| DateTime::<Utc>::from_timestamp(1_790_000_000 + minutes * 60, 0).unwrap();
        let (before, after) = (Duration::hours(1), Duration::minutes(90));
        let times = [0, 0, 5, 50, 61, 130, 130, 131, 400, 401, 1000];
        let windows = Windows { times: times.iter().map(|&m| at(m)).collect(), before, after };
        let all: Vec<u32> = (0..times.len() as u32).collect();
        let every_other: Vec<u32> = all.iter().copied().step_by(2).collect();
        for ids in [&all, &every_other] {
            for minute in -100..1200 {
                let t = at(minute);
                let range = near_changes(&windows, ids, Reach::of(&windows, t));
                let held: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|&i| at(times[i as usize]) - before <= t && t < at(times[i as usize]) + after)
                    .collect();
                assert_eq!(ids[range].to_vec(), held, "minute {minute}");
            }
        }
    }

    fn signin(at: &str, user: &str, code: u32) -> SignIn {
        let (time, tenants) = (at.parse().unwrap(), (Some(PARTNER), Some(OURS)));
        SignIn {
            texts: Texts::of(&[(Text::Id, &format!("{at}{user}")), (Text::UserId, user)]),
            user_type: UserType::Guest,
            access_type: AccessType::B2bCollaboration,
            ca_status: CaStatus::NotApplied,
            ..SignIn::not_cross_tenant(time, EventType::Interactive, code, Some(OURS), tenants.0, tenants.1)
        }
    }

    fn briefs(changes: &[PolicyChange]) -> Vec<Brief> {
        changes.iter().map(Brief::of).collect()
    }

    /// What `join` says of the changes `listed`, its budget `budget`.
    fn joined(join: Join, listed: &[usize], budget: Option<usize>) -> Vec<Joined> {
        let (joined, flagged) = join.finish(|i| listed.contains(&i), budget).unwrap();
        let joined = joined.collect_rows().unwrap();
        assert_eq!(flagged, joined.iter().filter(|j| j.effect.as_ref().is_some_and(|e| e.flagged)).count());
        joined
    }

    fn effects(joined: Vec<Joined>) -> Vec<Option<Effect>> {
        joined.into_iter().map(|j| j.effect).collect()
    }

    fn change(at: &str, scope: Scope) -> PolicyChange {
        PolicyChange {
            id: at.into(),
            time: at.parse().unwrap(),
            actor: "a".into(),
            activity: "Update a partner cross-tenant access setting".into(),
            kind: ChangeKind::PartnerUpdated,
            succeeded: true,
            scope,
            owner: None,
            properties: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn blocks_after_the_change_and_its_grace_are_attributed() {
        let changes = [
            change("2026-03-03T12:00:00Z", Scope::Partner(PARTNER)),
            change("2026-03-03T12:00:00Z", Scope::Partner(Guid(9))),
        ];
        let mut j = Join::new(&briefs(&changes), None, Duration::hours(24), Duration::hours(6), None);
        for s in [
            signin("2026-03-03T01:00:00Z", "ann", 0),
            signin("2026-03-03T02:00:00Z", "bob", 500213),
            signin("2026-03-03T14:00:00Z", "ann", 500213),
            signin("2026-03-04T17:59:00Z", "cy", 500213),
            signin("2026-03-04T18:00:00Z", "dee", 500213), // past window + grace
            signin("2026-03-01T00:00:00Z", "eve", 500213), // before the window
        ] {
            j.add(&s);
        }
        let effects = effects(joined(j, &[0, 1], None));
        let e = effects[0].as_ref().unwrap();
        assert_eq!(e.before, Side { sign_ins: 2, users: 2, policy_blocks: 1, blocked_users: 1 });
        assert_eq!(e.after.policy_blocks, 2);
        assert_eq!(e.newly_blocked_users, ["ann", "cy"]);
        assert!(e.flagged);
        assert_eq!(effects[1].as_ref().unwrap().after.sign_ins, 0);
        assert!(!effects[1].as_ref().unwrap().flagged);
    }

    #[test]
    fn the_users_near_changes_are_counted_the_same_through_the_disk_as_in_memory() {
        let mut default = change("2026-03-03T12:00:00Z", Scope::Default);
        default.kind = ChangeKind::DefaultUpdated;
        let changes = [
            change("2026-03-03T06:00:00Z", Scope::Partner(PARTNER)),
            default,
            change("2026-03-04T00:00:00Z", Scope::Partner(PARTNER)),
        ];
        let effects = |budget: Option<usize>| {
            let mut j = Join::new(&briefs(&changes), None, Duration::hours(24), Duration::hours(6), budget);
            for i in 0..3000u32 {
                let at = format!("2026-03-0{}T{:02}:{:02}:00Z", 2 + i % 3, i % 24, i % 60);
                let user = format!("user-{}\u{0}{}", i % 700, i % 2);
                j.add(&signin(&at, &user, if i % 5 == 0 { 500213 } else { 0 }));
            }
            super::tests::effects(joined(j, &[0, 1, 2], budget))
        };
        let memory = effects(None);
        assert!(memory
            .iter()
            .all(|e| e.as_ref().is_some_and(|e| e.before.users > 100 && e.after.users > 100)));
        assert!(memory.iter().any(|e| e.as_ref().is_some_and(|e| !e.newly_blocked_users.is_empty())));
        for budget in [1, 2, 50] {
            assert_eq!(effects(Some(budget)), memory, "budget {budget}");
        }
        // Some of the changes listed: their effects alone, the same.
        for listed in [vec![], vec![0], vec![1], vec![2], vec![0, 2]] {
            let mut j = Join::new(&briefs(&changes), None, Duration::hours(24), Duration::hours(6), Some(2));
            for i in 0..3000u32 {
                let at = format!("2026-03-0{}T{:02}:{:02}:00Z", 2 + i % 3, i % 24, i % 60);
                j.add(&signin(
                    &at,
                    &format!("user-{}\u{0}{}", i % 700, i % 2),
                    if i % 5 == 0 { 500213 } else { 0 },
                ));
            }
            let some: Vec<Option<Effect>> = listed.iter().map(|&i| memory[i].clone()).collect();
            assert_eq!(super::tests::effects(joined(j, &listed, Some(1))), some, "{listed:?}");
        }
        let newly = &memory[0].as_ref().unwrap().newly_blocked_users;
        let mut sorted = newly.clone();
        sorted.sort();
        assert_eq!(*newly, sorted);
    }

    #[test]
    fn a_change_crowded_by_others_to_its_partner_is_not_joined_and_the_others_are_as_alone() {
        // A partner changed every minute for 300 minutes (a window of an
        // hour each side holds up to 120 others: crowded past a bound of
        // 100, as past 256 with the defaults' day), and twice more a week
        // later; another partner's change among the crowd.
        let minute = |m: i64| {
            let t = DateTime::<Utc>::from_timestamp(1_790_000_000 + m * 60, 0).unwrap();
            crate::model::rfc3339(&t)
        };
        let mut changes: Vec<PolicyChange> =
            (0..300).map(|m| change(&minute(m), Scope::Partner(PARTNER))).collect();
        changes.push(change(&minute(150), Scope::Partner(Guid(9))));
        changes.push(change(&minute(10_000), Scope::Partner(PARTNER)));
        changes.push(change(&minute(10_090), Scope::Partner(PARTNER)));
        changes.sort_by_key(|c| c.time);
        let (window, grace) = (Duration::minutes(60), Duration::zero());
        let ids: Vec<usize> =
            (0..changes.len()).filter(|&i| changes[i].scope == Scope::Partner(PARTNER)).collect();
        let bounded = |changes: &[PolicyChange], most: usize| {
            let mut join = Join::bounded(window, grace, None, most);
            briefs(changes).iter().for_each(|c| join.push(c));
            join.seal(None);
            join
        };
        // By brute force: the partner's others in [t - window, t + window).
        let expected: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&i| {
                let t = changes[i].time;
                let near = |j: usize| j != i && changes[j].time >= t - window && changes[j].time < t + window;
                ids.iter().filter(|&&j| near(j)).count() > 100
            })
            .collect();
        let mut with_crowd = bounded(&changes, 100);
        let expected_u32: Vec<u32> = expected.iter().map(|&i| i as u32).collect();
        assert_eq!(with_crowd.crowded(), expected_u32);
        assert!(!expected.is_empty() && expected.len() < 300);
        // The default bound: none of these.
        assert!(Join::new(&briefs(&changes), None, window, grace, None).crowded().is_empty());
        // The lone changes' effects are those of a join of them alone.
        let lone: Vec<PolicyChange> = changes[changes.len() - 2..].to_vec();
        let mut alone = Join::new(&briefs(&lone), None, window, grace, None);
        for m in (9_900..10_200).step_by(7) {
            let s = signin(&minute(m), &format!("u{}", m % 13), if m % 3 == 0 { 500213 } else { 0 });
            alone.add(&s);
            with_crowd.add(&s);
        }
        let every = |n: usize| (0..n).collect::<Vec<usize>>();
        let (alone, with_crowd) =
            (joined(alone, &every(lone.len()), None), joined(with_crowd, &every(changes.len()), Some(1)));
        assert_eq!(&with_crowd[with_crowd.len() - 2..], &alone[..]);
        assert!(alone
            .iter()
            .all(|j| j.effect.as_ref().is_some_and(|e| e.before.sign_ins + e.after.sign_ins > 0)));
        for (i, j) in with_crowd.iter().enumerate() {
            assert_eq!(j.crowded, expected.contains(&i), "{i}");
            assert!(!j.crowded || j.effect.is_none(), "{i}");
        }
    }

    #[test]
    fn a_change_and_its_join_written_and_read_back_are_the_same_and_changes_sort_by_time_then_id() {
        let decoded = |text: &str| Decoded::Value(RawValue::from_string(text.into()).unwrap());
        let mut full = change("2026-03-03T12:00:00.123456789Z", Scope::Partner(Guid(u128::MAX)));
        full.owner = Some(Guid(7));
        full.actor = "=cmd|' /C calc'!A0\u{0}\n\u{1b}[31m".into();
        full.notes = vec!["".into(), "a note".into()];
        full.properties = vec![
            PropertyChange {
                property: "b2bCollaborationInbound".into(),
                old: Decoded::Unset,
                new: decoded(r#"{"a":[1,"x\u0000"]}"#),
                summary: vec!["one".into(), "two".into()],
            },
            PropertyChange {
                property: "".into(),
                old: Decoded::Undecodable("bad".into()),
                new: Decoded::Unset,
                summary: vec![],
            },
        ];
        let mut records = vec![full];
        for (at, scope, kind) in [
            ("1969-12-31T23:59:59.5Z", Scope::Default, ChangeKind::DefaultReset),
            ("2026-03-03T12:00:00Z", Scope::UnknownPartner, ChangeKind::Other),
            ("2026-03-03T12:00:00Z", Scope::Default, ChangeKind::IdentitySync),
        ] {
            let mut c = change(at, scope);
            c.kind = kind;
            c.succeeded = kind != ChangeKind::Other;
            records.push(c);
        }
        records[3].id = "2026-03-03T12:00:00Z\u{0}".into();
        for c in &records {
            assert_eq!(read_back(c), *c);
        }
        keys_sort_as_compared(&records, CHANGE_ORDER);
        let side = |n: u64| Side { sign_ins: n, users: n / 2, policy_blocks: u64::MAX, blocked_users: 0 };
        for joined in [
            Joined { effect: None, crowded: true },
            Joined { effect: None, crowded: false },
            Joined {
                effect: Some(Effect {
                    before: side(3),
                    after: side(1 << 40),
                    newly_blocked_users: vec!["".into(), "a\u{0}\n@b".into()],
                    flagged: true,
                }),
                crowded: false,
            },
        ] {
            assert_eq!(read_back(&joined), joined);
        }
    }

    #[test]
    fn a_user_near_a_change_written_and_read_back_is_the_same_and_sorts_as_compared() {
        let users = ["", "a", "a\u{0}", "a\u{0}b", "ab", "b"];
        let mut records = vec![];
        for change in [0, 1, u32::MAX] {
            for user in users {
                records.push(UserNear { change, user: user.into(), bits: SEEN_AFTER | BLOCKED_AFTER });
            }
        }
        keys_sort_as_compared(&records, USERS_NEAR.order);
        for a in &records {
            assert_eq!(read_back(a), *a);
        }
    }
}
