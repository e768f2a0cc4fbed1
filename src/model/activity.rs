//! The activity table: cross-tenant sign-ins grouped by partner, direction,
//! access type, app, resource and user, with the counts replay and reports
//! read. What `activity --format csv` writes and `replay` reads back, and
//! what a query run where the logs live computes (docs/output.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codes::{self, INBOUND_POLICY_BLOCK, OUTBOUND_POLICY_BLOCK};
use super::grant::insert_clause;
use super::time::earliest;
use super::{AccessType, Clause, Direction, Evidence, Guid, SignIn, UserType};

/// `--by`: the grain of the output.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One row per partner tenant, direction and access type.
    Tenant,
    /// One row per partner, client app and resource.
    App,
    /// One row per partner, app, resource and user.
    #[default]
    User,
}

/// The columns of an activity table at each grain, in output order: what
/// `activity --format csv` writes and what a query run where the logs live
/// returns. The first block is the documented core; the evidence columns
/// after it are what `replay` needs to re-read an activity file (see
/// docs/output.md).
pub fn columns(by: GroupBy) -> Vec<&'static str> {
    let mut c = vec!["direction", "access_type", "partner_tenant_id", "partner_tenant_name"];
    if by != GroupBy::Tenant {
        c.extend(["app_id", "app_name", "resource_id", "resource_name"]);
    }
    if by == GroupBy::User {
        c.extend(["user_id", "user_principal_name", "user_type"]);
    }
    if by == GroupBy::Tenant {
        c.push("distinct_apps");
    }
    if by != GroupBy::User {
        c.push("distinct_users");
    }
    c.extend([
        "sign_ins",
        "successes",
        "failures",
        "policy_blocks",
        "first_seen",
        "last_seen",
        "blocked_by_us",
        "blocked_by_partner",
        "mfa_required",
        "mfa_by_claim",
        "compliant_device_required",
        "hybrid_join_required",
        "ca_details_missing",
    ]);
    if by != GroupBy::Tenant {
        c.extend(["app_owner_tenant_id", "resource_owner_tenant_id"]);
    }
    c.push("grant_clauses");
    c
}

/// The sum of counts, held at `u64::MAX` rather than wrapping: counts read
/// back from activity tables are each at most 2^40, so some sixteen
/// million rows at the bound would wrap a plain sum into a small number.
pub(crate) fn total(counts: impl IntoIterator<Item = u64>) -> u64 {
    counts.into_iter().fold(0, u64::saturating_add)
}

/// Sums over the sign-ins of one group. Everything here merges by addition,
/// min or max, so the order sign-ins arrive in never changes the result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub sign_ins: u64,
    pub successes: u64,
    pub failures: u64,
    pub policy_blocks: u64,
    /// 500212: refused by the home tenant's outbound settings.
    pub home_outbound_blocks: u64,
    /// 500213: refused by the resource tenant's inbound settings.
    pub resource_inbound_blocks: u64,
    pub mfa_required: u64,
    pub mfa_by_claim: u64,
    pub compliant_device_required: u64,
    pub hybrid_join_required: u64,
    /// Sign-ins whose export carried no Conditional Access details.
    pub ca_details_missing: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Applied policies kept whole ([`Clause`]) seen on any sign-in of the
    /// group: sorted, usually empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_clauses: Vec<Clause>,
}

impl Counters {
    pub(crate) fn add(&mut self, s: &SignIn) {
        self.add_parts(s.time, s.error_code, &s.evidence);
    }

    /// [`Counters::add`] from the parts of a sign-in it reads (what a
    /// sign-in spilled to disk keeps of it).
    pub(crate) fn add_parts(&mut self, time: DateTime<Utc>, error_code: u32, evidence: &Evidence) {
        self.sign_ins += 1;
        if codes::is_success(error_code) {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        if codes::is_policy_block(error_code) {
            self.policy_blocks += 1;
        }
        self.home_outbound_blocks += (error_code == OUTBOUND_POLICY_BLOCK) as u64;
        self.resource_inbound_blocks += (error_code == INBOUND_POLICY_BLOCK) as u64;
        self.mfa_required += evidence.mfa_required as u64;
        self.mfa_by_claim += evidence.mfa_by_claim as u64;
        self.compliant_device_required += evidence.compliant_device_required as u64;
        self.hybrid_join_required += evidence.hybrid_join_required as u64;
        self.ca_details_missing += (!evidence.ca_details) as u64;
        self.first_seen = Some(self.first_seen.map_or(time, |t| t.min(time)));
        self.last_seen = Some(self.last_seen.map_or(time, |t| t.max(time)));
        for c in &evidence.clauses {
            insert_clause(&mut self.grant_clauses, c);
        }
    }

    /// Sign-ins refused by tenant restrictions (AADSTS5000211, 500021,
    /// 500022): the policy blocks that are neither side's cross-tenant
    /// access settings.
    pub fn tenant_restriction_blocks(&self) -> u64 {
        self.policy_blocks.saturating_sub(self.home_outbound_blocks + self.resource_inbound_blocks)
    }

    pub fn merge(&mut self, o: &Counters) {
        self.sign_ins = self.sign_ins.saturating_add(o.sign_ins);
        self.successes = self.successes.saturating_add(o.successes);
        self.failures = self.failures.saturating_add(o.failures);
        self.policy_blocks = self.policy_blocks.saturating_add(o.policy_blocks);
        self.home_outbound_blocks = self.home_outbound_blocks.saturating_add(o.home_outbound_blocks);
        self.resource_inbound_blocks = self.resource_inbound_blocks.saturating_add(o.resource_inbound_blocks);
        self.mfa_required = self.mfa_required.saturating_add(o.mfa_required);
        self.mfa_by_claim = self.mfa_by_claim.saturating_add(o.mfa_by_claim);
        self.compliant_device_required =
            self.compliant_device_required.saturating_add(o.compliant_device_required);
        self.hybrid_join_required = self.hybrid_join_required.saturating_add(o.hybrid_join_required);
        self.ca_details_missing = self.ca_details_missing.saturating_add(o.ca_details_missing);
        self.first_seen = earliest(self.first_seen, o.first_seen);
        self.last_seen = match (self.last_seen, o.last_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for c in &o.grant_clauses {
            insert_clause(&mut self.grant_clauses, c);
        }
    }
}

/// Whole-run counts, reported next to the rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Distinct sign-ins between two different tenants.
    pub cross_tenant: u64,
    /// Sign-ins whose home and resource tenant are the same.
    pub intra_tenant: u64,
    /// Sign-ins without a home or resource tenant: cannot be classified.
    pub unclassified: u64,
    pub duplicates_dropped: u64,
    /// Cross-tenant sign-ins of which neither side is our tenant.
    pub other_tenants: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Sign-ins outside `--since`/`--until`, not counted anywhere else.
    pub outside_window: u64,
    /// Cross-tenant sign-ins per log (interactive, non-interactive, ...).
    pub cross_tenant_by_event_type: BTreeMap<String, u64>,
}

impl Totals {
    /// Counts one cross-tenant sign-in of `event_type` (its name is
    /// allocated once per kind, not per sign-in).
    pub fn count_cross_tenant(&mut self, event_type: &str) {
        self.cross_tenant += 1;
        match self.cross_tenant_by_event_type.get_mut(event_type) {
            Some(n) => *n += 1,
            None => {
                self.cross_tenant_by_event_type.insert(event_type.to_string(), 1);
            }
        }
    }
}

/// A name or id in an output row: shared, because with a million rows the
/// same app and resource names would otherwise be copied into each.
pub type Name = Arc<str>;

/// One output row of `activity`; replay evaluates these.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityRow {
    pub direction: Direction,
    pub access_type: AccessType,
    pub partner_tenant_id: Guid,
    pub partner_tenant_name: Option<Name>,
    pub app_id: Option<Name>,
    pub app_name: Option<Name>,
    pub app_owner_tenant_id: Option<Guid>,
    pub resource_id: Option<Name>,
    pub resource_name: Option<Name>,
    pub resource_owner_tenant_id: Option<Guid>,
    pub user_id: Option<Name>,
    pub user_principal_name: Option<Name>,
    pub user_type: Option<UserType>,
    pub counters: Counters,
    pub distinct_users: Option<u64>,
    pub distinct_apps: Option<u64>,
    /// With `Activity::split_by_epochs` (the analysis layer): the counters
    /// per policy epoch.
    pub by_epoch: Vec<(u16, Counters)>,
}

/// The most policy epoch starts a grouping tells apart: its epoch numbers
/// ([`ActivityRow::by_epoch`]) are 16 bits. An audit history rebuilds no
/// more epochs than this (`policy::history::MAX_EPOCHS`).
pub(crate) const MAX_EPOCH_STARTS: usize = u16::MAX as usize;

/// Adds `c` to `epoch`'s counters in `by_epoch` (sorted by epoch). A
/// list, not a map: a group has sign-ins in a few epochs, and a sorted
/// map's node holds room for eleven (a 1.6 KB node a group: 113 MB of them
/// in a replay of 300 audit changes). Its first few entries are made
/// room for one at a time: most groups have sign-ins in one or two epochs,
/// and a list's first growth makes room for four (608 bytes a group: 42
/// MB of mostly empty room in that replay).
pub(crate) fn add_in_epoch(by_epoch: &mut Vec<(u16, Counters)>, epoch: u16, c: &Counters) {
    let i = by_epoch.binary_search_by_key(&epoch, |(e, _)| *e).unwrap_or_else(|i| {
        if by_epoch.len() < 4 {
            by_epoch.reserve_exact(1);
        }
        by_epoch.insert(i, (epoch, Counters::default()));
        i
    });
    by_epoch[i].1.merge(c);
}

/// Merges `other` into `by_epoch`, both sorted by epoch, in one pass. Added
/// one at a time ([`add_in_epoch`]), each moved the entries after it: two
/// halves of a guest's row signing in in each of 50,000 epochs moved
/// gigabytes.
pub(crate) fn merge_epochs(by_epoch: &mut Vec<(u16, Counters)>, other: Vec<(u16, Counters)>) {
    if by_epoch.len() + other.len() <= 8 {
        for (epoch, c) in other {
            add_in_epoch(by_epoch, epoch, &c);
        }
        return;
    }
    let mine = std::mem::take(by_epoch);
    let mut merged = Vec::with_capacity(mine.len().max(other.len()));
    let (mut a, mut b) = (mine.into_iter().peekable(), other.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => a.next().zip(b.next()).map(|((epoch, mut c), (_, d))| {
                c.merge(&d);
                (epoch, c)
            }),
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(entry) => merged.push(entry),
            None => break,
        }
    }
    merged.shrink_to_fit();
    *by_epoch = merged;
}

/// A row's counters per epoch as its groups come, in any order (a hash
/// map's): appended, and sorted and merged each time they have doubled.
/// Put each in its place in a sorted list, a guest signing in in each of
/// 50,000 epochs moved the list's entries some 600 million times.
#[derive(Default)]
pub(crate) struct EpochsAdded {
    list: Vec<(u16, Counters)>,
    /// The entries after the last sort, all different epochs.
    sorted: usize,
}

impl EpochsAdded {
    pub(crate) fn add(&mut self, epoch: u16, c: &Counters) {
        if self.list.len() < 4 {
            // Most groups have sign-ins in one or two epochs ([`add_in_epoch`]).
            add_in_epoch(&mut self.list, epoch, c);
            self.sorted = self.list.len();
            return;
        }
        match self.list.last_mut() {
            Some((last, counters)) if *last == epoch => counters.merge(c),
            _ => self.list.push((epoch, c.clone())),
        }
        if self.list.len() >= 2 * self.sorted {
            self.sort();
        }
    }

    /// Sorted by epoch, each epoch once.
    pub(crate) fn finish(mut self) -> Vec<(u16, Counters)> {
        self.sort();
        self.list.shrink_to_fit();
        self.list
    }

    fn sort(&mut self) {
        // Stable: a group's counters merge in the order they came.
        self.list.sort_by_key(|(epoch, _)| *epoch);
        self.list.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1.merge(&later.1);
            }
            same
        });
        self.sorted = self.list.len();
    }
}

impl ActivityRow {
    /// The bytes of the row's texts (ids and names), shared or not: what
    /// a budget of rows in memory weighs beside their count.
    pub(crate) fn text_bytes(&self) -> usize {
        [
            &self.partner_tenant_name,
            &self.app_id,
            &self.app_name,
            &self.resource_id,
            &self.resource_name,
            &self.user_id,
            &self.user_principal_name,
        ]
        .into_iter()
        .map(|t| t.as_deref().map_or(0, str::len))
        .sum()
    }

    /// Adds the sign-ins of another row of the same group, counted apart
    /// from other users: its counters, its counters per policy epoch, and
    /// its distinct users (others than this row's, so their counts add).
    pub(crate) fn merge(&mut self, other: ActivityRow) {
        self.counters.merge(&other.counters);
        merge_epochs(&mut self.by_epoch, other.by_epoch);
        self.distinct_users = match (self.distinct_users, other.distinct_users) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
    }

    /// Adds the same group's row from another activity table (a query run
    /// once per month, say): counts summed, first and last seen widened,
    /// clauses joined, names from the part seen last (ties: the first).
    /// Distinct user and app counts cannot be added across parts (the same
    /// user may be in both): the larger is kept, a lower bound.
    pub(crate) fn merge_part(&mut self, part: ActivityRow) {
        let later = part.counters.last_seen > self.counters.last_seen;
        let mut counters = self.counters.clone();
        counters.merge(&part.counters);
        let distinct_users = self.distinct_users.max(part.distinct_users);
        let distinct_apps = self.distinct_apps.max(part.distinct_apps);
        if later {
            *self = part;
        }
        self.counters = counters;
        self.distinct_users = distinct_users;
        self.distinct_apps = distinct_apps;
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn sort_key(&self) -> (Direction, Guid, &str, Option<&str>, Option<&str>, Option<&str>) {
        (
            self.direction,
            self.partner_tenant_id,
            self.access_type.as_str(),
            self.app_id.as_deref(),
            self.resource_id.as_deref(),
            self.user_id.as_deref(),
        )
    }

    /// Blocks by our own settings: 500212 on outbound rows (our outbound),
    /// 500213 on inbound rows (our inbound).
    pub fn blocked_by_us(&self) -> u64 {
        match self.direction {
            Direction::Outbound => self.counters.home_outbound_blocks,
            Direction::Inbound => self.counters.resource_inbound_blocks,
        }
    }

    /// Blocks by the partner's settings, which we neither see nor control.
    pub fn blocked_by_partner(&self) -> u64 {
        match self.direction {
            Direction::Outbound => self.counters.resource_inbound_blocks,
            Direction::Inbound => self.counters.home_outbound_blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(sign_ins: u64, failures: u64) -> Counters {
        Counters { sign_ins, failures, ..Counters::default() }
    }

    /// Each epoch's counters added one at a time, in place.
    fn in_place(entries: &[(u16, u64)]) -> Vec<(u16, Counters)> {
        let mut list = vec![];
        for &(epoch, n) in entries {
            add_in_epoch(&mut list, epoch, &counters(n, n % 3));
        }
        list
    }

    proptest::proptest! {
        #[test]
        fn epochs_added_in_any_order_or_merged_as_lists_are_those_added_in_place(
            entries in proptest::collection::vec((0u16..300, 1u64..50), 0..2000),
            cut in 0usize..2000,
        ) {
            let mut added = EpochsAdded::default();
            for &(epoch, n) in &entries {
                added.add(epoch, &counters(n, n % 3));
            }
            let expected = in_place(&entries);
            proptest::prop_assert_eq!(&added.finish(), &expected);
            let (a, b) = entries.split_at(cut.min(entries.len()));
            let mut merged = in_place(a);
            merge_epochs(&mut merged, in_place(b));
            proptest::prop_assert_eq!(&merged, &expected);
        }
    }
}
