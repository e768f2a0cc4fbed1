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

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use serde_json::value::RawValue;

use super::runs::codec::{Dec, Enc};
use super::runs::{key, ByKey, Order, Record, Stream, Tally};
use crate::model::activity::Name;
use crate::model::codes::is_policy_block;
use crate::model::{Direction, Guid, SignIn};
use crate::policy::change::{ChangeKind, Decoded, PolicyChange, PropertyChange, Scope};
use crate::policy::history::ChangeCheck;

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

/// Sign-ins and policy blocks on one side of a change; its users are
/// counted from the [`UserNear`]s.
#[derive(Default)]
struct SideAcc {
    sign_ins: u64,
    policy_blocks: u64,
}

impl SideAcc {
    fn add(&mut self, blocked: bool) {
        self.sign_ins += 1;
        self.policy_blocks += u64::from(blocked);
    }

    fn side(&self, users: u64, blocked_users: u64) -> Side {
        Side { sign_ins: self.sign_ins, users, policy_blocks: self.policy_blocks, blocked_users }
    }
}

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

/// The changes listed, read back in time order (from a temporary folder
/// past the budget), each with its effect and check. An audit trail of a
/// million changes held every change (some 1 KB each) until it was
/// written: now a change listed is held only while it is written.
pub struct Timeline {
    changes: Stream<PolicyChange>,
    /// One per change listed, or none (no sign-ins joined).
    effects: std::vec::IntoIter<Option<Effect>>,
    /// One per change listed, or none (no policy given).
    checks: std::vec::IntoIter<ChangeCheck>,
    /// One per change listed, or none (no sign-ins joined): not joined,
    /// too many other changes near it ([`Join::crowded`]).
    crowded: std::vec::IntoIter<bool>,
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
    /// `changes` listed in time order, `changes` of them; the rest one per
    /// change listed, or none.
    pub fn new(
        (changes, listed): (Stream<PolicyChange>, usize),
        effects: Vec<Option<Effect>>,
        checks: Vec<ChangeCheck>,
        crowded: Vec<bool>,
        names: BTreeMap<Guid, String>,
    ) -> Timeline {
        let flagged = effects.iter().filter(|e| e.as_ref().is_some_and(|e| e.flagged)).count();
        Timeline {
            changes,
            effects: effects.into_iter(),
            checks: checks.into_iter(),
            crowded: crowded.into_iter(),
            names,
            counts: TimelineCounts { changes: listed, flagged },
        }
    }

    /// Every change listed, in time order, read as it is asked for; then
    /// [`Timeline::finish`] says whether all could be read.
    pub fn rows(&mut self) -> impl Iterator<Item = ChangeRow<'_>> {
        let Timeline { changes, effects, checks, crowded, names, .. } = self;
        let names = &*names;
        changes.by_ref().map(move |change| ChangeRow {
            partner_name: change.partner().and_then(|p| names.get(&p)).map(String::as_str),
            change,
            effect: effects.next().flatten(),
            check: checks.next(),
            crowded: crowded.next().unwrap_or(false),
        })
    }

    /// Whether every change listed was read back: an error if one could
    /// not be.
    pub fn finish(self) -> anyhow::Result<()> {
        self.changes.finish()
    }
}

/// What the join and the checks need of a change, held for every change
/// of an audit trail (the changes themselves are read back to be
/// listed): when, to which configuration, and whether it altered access.
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
        Brief { time: c.time, scope: c.scope, alters: c.succeeded && c.kind.changes_access() }
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

fn read_decoded<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Decoded> {
    let damaged = || io::Error::new(io::ErrorKind::InvalidData, "a damaged change in the temporary folder");
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
            _ => Scope::UnknownPartner,
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

/// Of `ids` (changes in time order), the range whose windows (from the
/// first time to the third: before and after the change) hold `t`. Every
/// window is as long as the others (but where one reaches either end of
/// the calendar), so that both ends come in the changes' order: the range
/// from the first window ending after `t` to the last starting at or
/// before it.
fn near_changes(windows: &[[DateTime<Utc>; 3]], ids: &[usize], t: DateTime<Utc>) -> std::ops::Range<usize> {
    let first = ids.partition_point(|&i| windows[i][2] <= t);
    let end = ids.partition_point(|&i| windows[i][0] <= t);
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

/// Of `ids` (changes in time order, their `windows` as [`Join`] keeps
/// them), those whose window holds more than `most` others.
fn crowded(windows: &[[DateTime<Utc>; 3]], ids: &[usize], most: usize) -> Vec<usize> {
    ids.iter()
        .copied()
        .filter(|&i| {
            let [from, _, until] = windows[i];
            let first = ids.partition_point(|&j| windows[j][1] < from);
            let end = ids.partition_point(|&j| windows[j][1] < until);
            end.saturating_sub(first).saturating_sub(1) > most
        })
        .collect()
}

/// Joins changes with sign-ins, one sign-in at a time; the users seen near
/// each change are added up by (change, user), in memory within the
/// budget, past it on disk: memory does not grow with them. A change whose
/// window holds more than [`MAX_CHANGES_NEAR`] others of its configuration
/// is not joined ([`Join::crowded`]).
pub struct Join {
    /// Each change's windows, worked out once: before it from the first
    /// time to the second, after it from the second to the third.
    windows: Vec<[DateTime<Utc>; 3]>,
    by_partner: HashMap<Guid, Vec<usize>>,
    defaults: Vec<usize>,
    /// The changes not joined, in order: too many others near them.
    crowded: Vec<usize>,
    our_tenant: Option<Guid>,
    acc: Vec<(SideAcc, SideAcc)>,
    users: Tally<(u32, Name), UserNear>,
    /// The first write to the temporary folder that failed, for `finish`.
    error: Option<anyhow::Error>,
    /// The first name the sign-ins gave each partner a change names.
    names: HashMap<Guid, Option<String>>,
    pub joined: u64,
}

impl Join {
    /// `budget`: the (change, user) pairs held in memory before the
    /// temporary folder (the run's groups in memory).
    pub fn new(
        changes: &[Brief],
        our_tenant: Option<Guid>,
        window: Duration,
        grace: Duration,
        budget: Option<usize>,
    ) -> Join {
        Join::bounded(changes, our_tenant, (window, grace), budget, MAX_CHANGES_NEAR)
    }

    /// [`Join::new`], not joining a change whose window holds more than
    /// `most` other changes to its configuration.
    fn bounded(
        changes: &[Brief],
        our_tenant: Option<Guid>,
        (window, grace): (Duration, Duration),
        budget: Option<usize>,
        most: usize,
    ) -> Join {
        let mut by_partner: HashMap<Guid, Vec<usize>> = HashMap::new();
        let mut defaults = vec![];
        for (i, c) in changes.iter().enumerate() {
            if !c.alters {
                continue;
            }
            match c.scope {
                Scope::Partner(p) => by_partner.entry(p).or_default().push(i),
                Scope::Default => defaults.push(i),
                Scope::UnknownPartner => {}
            }
        }
        // Saturating: a time at either end of the calendar.
        let windows: Vec<[DateTime<Utc>; 3]> = changes
            .iter()
            .map(|c| {
                let after = grace.checked_add(&window).unwrap_or(Duration::MAX);
                [
                    c.time.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC),
                    c.time,
                    c.time.checked_add_signed(after).unwrap_or(DateTime::<Utc>::MAX_UTC),
                ]
            })
            .collect();
        let mut crowded_ids: Vec<usize> =
            by_partner.values().chain([&defaults]).flat_map(|ids| crowded(&windows, ids, most)).collect();
        crowded_ids.sort_unstable();
        if !crowded_ids.is_empty() {
            for ids in by_partner.values_mut().chain([&mut defaults]) {
                ids.retain(|i| crowded_ids.binary_search(i).is_err());
            }
        }
        Join {
            windows,
            by_partner,
            defaults,
            crowded: crowded_ids,
            our_tenant,
            acc: changes.iter().map(|_| Default::default()).collect(),
            users: Tally::new("timeline", USERS_NEAR, budget).text_a_record(128),
            error: None,
            // Only the partners the changes name are named: a forged log's
            // million other partners are not held.
            names: changes
                .iter()
                .filter_map(|c| match c.scope {
                    Scope::Partner(p) => Some((p, None)),
                    _ => None,
                })
                .collect(),
            joined: 0,
        }
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
        let near = |ids: &[usize]| -> std::ops::Range<usize> { near_changes(&self.windows, ids, s.time) };
        let own = self.by_partner.get(&partner).map_or(&[][..], Vec::as_slice);
        let (own_near, defaults_near) = (near(own), near(&self.defaults));
        let ids = own[own_near].iter().chain(&self.defaults[defaults_near]);
        for &i in ids {
            let [from, t, until] = self.windows[i];
            let bits = if s.time >= from && s.time < t {
                self.acc[i].0.add(blocked);
                if blocked {
                    SEEN_BEFORE | BLOCKED_BEFORE
                } else {
                    SEEN_BEFORE
                }
            } else if s.time >= t && s.time < until {
                self.acc[i].1.add(blocked);
                if blocked {
                    SEEN_AFTER | BLOCKED_AFTER
                } else {
                    SEEN_AFTER
                }
            } else {
                continue;
            };
            hit = true;
            if self.error.is_some() {
                continue;
            }
            let user = user
                .get_or_insert_with(|| {
                    s.user_principal_name().or(s.user_id()).unwrap_or("(unknown user)").into()
                })
                .clone();
            if let Err(e) = self.users.add(UserNear { change: i as u32, user, bits }) {
                self.error = Some(e);
            }
        }
        self.joined += u64::from(hit);
    }

    /// The changes not joined: their windows hold more than
    /// [`MAX_CHANGES_NEAR`] other changes to their configuration.
    pub fn crowded(&self) -> &[usize] {
        &self.crowded
    }

    /// Partner names the sign-ins gave.
    pub fn names(&self) -> BTreeMap<Guid, String> {
        self.names.iter().filter_map(|(k, v)| Some((*k, v.clone()?))).collect()
    }

    /// One effect per change of `listed` (indices of the changes given,
    /// ascending; `None` for a change not joined): the users near each
    /// change read once, in the order of changes then users, and counted
    /// into the change they are near as it comes.
    pub fn finish(self, listed: &[usize]) -> anyhow::Result<Vec<Option<Effect>>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut joined = vec![false; self.acc.len()];
        for &i in self.by_partner.values().flatten().chain(&self.defaults) {
            joined[i] = true;
        }
        let mut users = self.users.finish()?;
        let mut near = users.by_ref().peekable();
        let mut effects = Vec::with_capacity(listed.len());
        for &i in listed {
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
            effects.push(joined.get(i).copied().unwrap_or(false).then(|| {
                let (before, after) = &self.acc[i];
                let flagged = !newly.is_empty() && after.policy_blocks > before.policy_blocks;
                Effect {
                    before: before.side(n[0], n[1]),
                    after: after.side(n[2], n[3]),
                    newly_blocked_users: newly,
                    flagged,
                }
            }));
        }
        drop(near);
        users.finish()?;
        Ok(effects)
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
        let windows: Vec<[DateTime<Utc>; 3]> =
            times.iter().map(|&m| [at(m) - before, at(m), at(m) + after]).collect();
        let all: Vec<usize> = (0..times.len()).collect();
        let every_other: Vec<usize> = all.iter().copied().step_by(2).collect();
        for ids in [&all, &every_other] {
            for minute in -100..1200 {
                let t = at(minute);
                let range = near_changes(&windows, ids, t);
                let held: Vec<usize> =
                    ids.iter().copied().filter(|&i| windows[i][0] <= t && t < windows[i][2]).collect();
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
        let effects = j.finish(&[0, 1]).unwrap();
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
            j.finish(&[0, 1, 2]).unwrap()
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
            assert_eq!(j.finish(&listed).unwrap(), some, "{listed:?}");
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
        let mut with_crowd = Join::bounded(&briefs(&changes), None, (window, grace), None, 100);
        assert_eq!(with_crowd.crowded(), expected);
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
            (alone.finish(&every(lone.len())).unwrap(), with_crowd.finish(&every(changes.len())).unwrap());
        assert_eq!(&with_crowd[with_crowd.len() - 2..], &alone[..]);
        assert!(alone.iter().all(|e| e.as_ref().is_some_and(|e| e.before.sign_ins + e.after.sign_ins > 0)));
        for &i in &expected {
            assert!(with_crowd[i].is_none());
        }
    }

    #[test]
    fn a_change_written_and_read_back_is_the_same_and_changes_sort_by_time_then_id() {
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
