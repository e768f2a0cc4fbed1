//! The figures of the overview report: per-day counts, top partners, apps
//! and users, partners new, idle or on the default, computed from one
//! reading of the activity rows ([`Rollups`], memory flat however many
//! users) and every sign-in read ([`Daily`]). The render layer draws them
//! as HTML or Markdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};

use std::io::{self, BufRead};

use anyhow::Result;

use super::activity::{ActivityRow, ActivityTable};
use super::replay::Summary;
use super::runs::codec::{Dec, Enc};
use super::runs::{Order, Record, Sorter};
use crate::model::codes::is_policy_block;
use crate::model::{rfc3339, Direction, Guid, SignIn, Window};
use crate::policy::Policy;

#[derive(Default, Clone, Copy)]
struct DayCount {
    sign_ins: u64,
    failures: u64,
    blocks: u64,
}

/// Sees every sign-in read: per-day counts inside the period, and when
/// each tenant pair was first seen at all (for "new partners").
#[derive(Default)]
pub struct Daily {
    period: Window,
    days: HashMap<(NaiveDate, Guid, Guid), DayCount>,
    first_seen: HashMap<(Guid, Guid), DateTime<Utc>>,
}

impl Daily {
    pub fn new(period: Window) -> Daily {
        Daily { period, ..Daily::default() }
    }

    /// Adds what an activity row read back can tell without per-sign-in
    /// times: when its partner was first seen (for "new partners"; `ours`:
    /// our tenant, without which nothing), and no days.
    pub fn add_row(&mut self, ours: Option<Guid>, r: &ActivityRow) {
        let Some(ours) = ours else { return };
        let pair = match r.direction {
            Direction::Outbound => (ours, r.partner_tenant_id),
            Direction::Inbound => (r.partner_tenant_id, ours),
        };
        if let Some(at) = r.counters.first_seen {
            let f = self.first_seen.entry(pair).or_insert(at);
            *f = (*f).min(at);
        }
    }

    pub fn add(&mut self, s: &SignIn) {
        let (Some(h), Some(r)) = (s.home_tenant, s.resource_tenant) else { return };
        if h == r {
            return;
        }
        let f = self.first_seen.entry((h, r)).or_insert(s.time);
        *f = (*f).min(s.time);
        if !self.period.contains(s.time) {
            return;
        }
        let d = self.days.entry((s.time.date_naive(), h, r)).or_default();
        d.sign_ins += 1;
        d.failures += u64::from(!s.succeeded());
        d.blocks += u64::from(is_policy_block(s.error_code));
    }
}

/// One row of a "top" table.
#[derive(Debug, PartialEq)]
pub struct Top {
    pub label: String,
    pub id: String,
    pub sign_ins: u64,
    pub users: usize,
    pub apps: usize,
    pub failures: u64,
    pub blocks_by_us: u64,
    pub blocks_by_partner: u64,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A policy change: time, kind, partner, what changed, followed by new blocks.
pub type ChangeLine = (DateTime<Utc>, String, String, Vec<String>, bool);

/// What one bar of the sign-ins series spans. A day, unless the data spans
/// so long that a bar per day would make a page of millions of rows (one
/// sign-in dated year 1 and one dated 9999 made an 84 MB report): then the
/// week, month or year, whichever keeps the series within [`MAX_BARS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bucket {
    #[default]
    Day,
    Week,
    Month,
    Year,
}

/// The most bars a series has.
pub const MAX_BARS: usize = 400;

impl Bucket {
    pub fn noun(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
            Bucket::Year => "year",
        }
    }

    /// The first day of the bar `d` falls in.
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => d,
            Bucket::Week => d.week(chrono::Weekday::Mon).first_day(),
            Bucket::Month => d.with_day(1).unwrap_or(d),
            Bucket::Year => d.with_ordinal(1).unwrap_or(d),
        }
    }

    fn next(self, d: NaiveDate) -> Option<NaiveDate> {
        match self {
            Bucket::Day => d.succ_opt(),
            Bucket::Week => d.checked_add_days(chrono::Days::new(7)),
            Bucket::Month => d.checked_add_months(chrono::Months::new(1)),
            Bucket::Year => d.checked_add_months(chrono::Months::new(12)),
        }
    }

    /// The bars for the days that have sign-ins: every bar from the first
    /// to the last (empty ones too) at the finest bucket that fits in
    /// [`MAX_BARS`]; if even years do not, only the years with data.
    pub fn series(seen: &BTreeSet<NaiveDate>) -> (Bucket, Vec<NaiveDate>) {
        let (Some(&first), Some(&last)) = (seen.first(), seen.last()) else { return (Bucket::Day, vec![]) };
        for bucket in [Bucket::Day, Bucket::Week, Bucket::Month, Bucket::Year] {
            let mut bars = vec![];
            let mut at = Some(bucket.start(first));
            while let Some(d) = at.filter(|d| *d <= last) {
                if bars.len() == MAX_BARS {
                    break;
                }
                bars.push(d);
                at = bucket.next(d);
            }
            if at.is_none_or(|d| d > last) {
                return (bucket, bars);
            }
        }
        let years: BTreeSet<NaiveDate> = seen.iter().map(|d| Bucket::Year.start(*d)).collect();
        (Bucket::Year, years.into_iter().collect())
    }
}

/// Everything the report shows, computed once for both renderers.
pub struct Overview {
    pub title: String,
    pub tenant: Option<Guid>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub cross_tenant: u64,
    pub inbound: u64,
    pub outbound: u64,
    pub failures: u64,
    pub policy_blocks: u64,
    pub users: usize,
    /// What one bar of the series spans: a day unless the data spans years.
    pub bucket: Bucket,
    /// The first day of each bar.
    pub days: Vec<NaiveDate>,
    /// Partner label -> sign-ins per bar (index into `days`), top partners and "other".
    pub per_partner: Vec<(String, Vec<u64>)>,
    pub per_direction: Vec<(String, Vec<u64>)>,
    pub partners: Vec<Top>,
    pub apps: Vec<Top>,
    pub top_users: Vec<Top>,
    /// Partners whose first sign-in (in all the data read) is in the period.
    pub new_partners: Vec<(String, DateTime<Utc>)>,
    pub new_partners_basis: String,
    /// With a policy: configured partners with no sign-in in the period.
    pub idle_partners: Option<Vec<String>>,
    /// With a policy: partners seen that have no configuration of their own.
    pub default_partners: Option<Vec<String>>,
    /// With audit logs: (time, change, partner, summary lines, flagged).
    pub changes: Option<Vec<ChangeLine>>,
    /// With a proposed policy.
    pub impact: Option<Summary>,
}

fn partner_name(names: &BTreeMap<Guid, String>, id: Guid) -> String {
    match names.get(&id) {
        Some(n) => format!("{n} ({})", &id.to_string()[..8]),
        None => id.to_string(),
    }
}

/// What the report adds up per partner, app or user.
#[derive(Default)]
struct Acc {
    sign_ins: u64,
    failures: u64,
    us: u64,
    them: u64,
    /// Distinct users: counted in the pass over the users ([`Rollups::finish`]).
    users: usize,
    apps: BTreeSet<String>,
    last: Option<DateTime<Utc>>,
    label: String,
}

impl Acc {
    fn add(&mut self, share: &UserShare) {
        self.sign_ins += share.sign_ins;
        self.failures += share.failures;
        self.us += share.us;
        self.them += share.them;
        self.last = self.last.max(share.last);
    }

    fn top(self, id: String) -> Top {
        Top {
            label: self.label,
            id,
            sign_ins: self.sign_ins,
            users: self.users,
            apps: self.apps.len(),
            failures: self.failures,
            blocks_by_us: self.us,
            blocks_by_partner: self.them,
            last_seen: self.last,
        }
    }
}

/// Busiest first, ties by label.
fn busiest_first(a: &Top, b: &Top) -> std::cmp::Ordering {
    b.sign_ins.cmp(&a.sign_ins).then(a.label.cmp(&b.label))
}

/// One row's part in its user's figures: what the pass over the users
/// (rows sorted by user, on disk past the budget) adds up per user.
#[derive(Clone, Debug, PartialEq)]
struct UserShare {
    user: String,
    app_key: String,
    app: String,
    partner: Guid,
    sign_ins: u64,
    failures: u64,
    us: u64,
    them: u64,
    last: Option<DateTime<Utc>>,
}

impl Record for UserShare {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.user);
        enc.str(&self.app_key);
        enc.str(&self.app);
        enc.u128(self.partner.0);
        for v in [self.sign_ins, self.failures, self.us, self.them] {
            enc.u64(v);
        }
        enc.opt_time(self.last);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(UserShare {
            user: dec.string()?,
            app_key: dec.string()?,
            app: dec.string()?,
            partner: Guid(dec.u128()?),
            sign_ins: dec.u64()?,
            failures: dec.u64()?,
            us: dec.u64()?,
            them: dec.u64()?,
            last: dec.opt_time()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.user.len() + self.app_key.len() + self.app.len()
    }
}

const BY_USER: Order<UserShare> = Order {
    cmp: |a, b| a.user.cmp(&b.user),
    key: |s, out| crate::analysis::runs::key::text(out, &s.user),
    sort: None,
};

/// The partner, app and user figures of the report, from the user-grain
/// rows fed one at a time ([`Rollups::add`]): partners and apps are added
/// up in memory (they grow with partners and apps); what grows with users
/// (each user's figures, the distinct users of each partner and app) is
/// added up in a pass over the rows sorted by user, through the disk past
/// the budget, so memory stays flat however many users there are.
pub struct Rollups {
    sums: Sums,
    shares: Sorter<UserShare>,
    /// The first write to the temporary folder that failed, for `finish`.
    error: Option<anyhow::Error>,
}

/// What grows with partners and apps, added up as the rows come.
#[derive(Default)]
struct Sums {
    names: BTreeMap<Guid, String>,
    partners: BTreeMap<Guid, Acc>,
    apps: BTreeMap<String, Acc>,
    inbound: u64,
    outbound: u64,
}

/// What [`Rollups::finish`] gives [`Overview::build`].
pub struct Rolled {
    sums: Sums,
    top_users: Vec<Top>,
    users: usize,
}

/// Users listed in the report.
const TOP_USERS: usize = 10;

impl Rollups {
    /// Keeps up to `budget` rows' shares in memory before the disk.
    pub fn new(budget: Option<usize>) -> Rollups {
        // A share's texts are a user id, an app's id and its name.
        let shares = Sorter::new("report", BY_USER, budget).text_a_record(256);
        Rollups { sums: Sums::default(), shares, error: None }
    }

    pub fn add(&mut self, r: &ActivityRow) {
        let sums = &mut self.sums;
        let c = &r.counters;
        match r.direction {
            Direction::Inbound => sums.inbound += c.sign_ins,
            Direction::Outbound => sums.outbound += c.sign_ins,
        }
        if let Some(n) = r.partner_tenant_name.as_deref() {
            sums.names.insert(r.partner_tenant_id, n.to_string());
        }
        let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
        let app = r.app_name.as_deref().or(r.app_id.as_deref()).unwrap_or("-").to_string();
        let share = UserShare {
            user,
            app_key: r.app_id.as_deref().unwrap_or_default().to_string(),
            app,
            partner: r.partner_tenant_id,
            sign_ins: c.sign_ins,
            failures: c.failures,
            us: r.blocked_by_us(),
            them: r.blocked_by_partner(),
            last: c.last_seen,
        };
        let partner = sums.partners.entry(r.partner_tenant_id).or_default();
        partner.add(&share);
        partner.apps.insert(share.app.clone());
        let app = sums.apps.entry(share.app_key.clone()).or_default();
        app.add(&share);
        app.apps.insert(share.app.clone());
        app.label = share.app.clone();
        if self.error.is_none() {
            if let Err(e) = self.shares.push(share) {
                self.error = Some(e);
            }
        }
    }

    /// The pass over the users.
    pub fn finish(mut self) -> Result<Rolled> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut shares = self.shares.finish()?;
        let mut top_users: Vec<Top> = Vec::new();
        let mut users = 0;
        let mut current: Option<(String, Acc, BTreeSet<Guid>, BTreeSet<String>)> = None;
        let mut close = |done: (String, Acc, BTreeSet<Guid>, BTreeSet<String>), top_users: &mut Vec<Top>| {
            let (user, acc, partners, apps) = done;
            for p in partners {
                self.sums.partners.entry(p).or_default().users += 1;
            }
            for a in apps {
                self.sums.apps.entry(a).or_default().users += 1;
            }
            top_users.push(acc.top(user));
            if top_users.len() >= 64 * TOP_USERS {
                top_users.sort_by(busiest_first);
                top_users.truncate(TOP_USERS);
            }
        };
        for share in shares.by_ref() {
            if current.as_ref().is_some_and(|(u, ..)| *u != share.user) {
                if let Some(done) = current.take() {
                    close(done, &mut top_users);
                }
            }
            let (_, acc, partners, apps) = current.get_or_insert_with(|| {
                users += 1;
                let acc = Acc { label: share.user.clone(), users: 1, ..Acc::default() };
                (share.user.clone(), acc, BTreeSet::new(), BTreeSet::new())
            });
            acc.add(&share);
            acc.apps.insert(share.app);
            partners.insert(share.partner);
            apps.insert(share.app_key);
        }
        if let Some(done) = current.take() {
            close(done, &mut top_users);
        }
        shares.finish()?;
        top_users.sort_by(busiest_first);
        top_users.truncate(TOP_USERS);
        Ok(Rolled { sums: self.sums, top_users, users })
    }
}

impl Overview {
    /// `report` is at the user grain over the period (its totals, not its
    /// rows, are read: those went through `rolled`); `daily` saw every
    /// sign-in.
    pub fn build(
        rolled: Rolled,
        report: &ActivityTable,
        daily: &Daily,
        policy: Option<&Policy>,
        period_start: Option<DateTime<Utc>>,
    ) -> Overview {
        let t = &report.totals;
        let Rolled { sums: Sums { names, partners, apps, inbound, outbound }, top_users, users: all_users } =
            rolled;
        let label = |g: Guid| partner_name(&names, g);
        let top = |m: BTreeMap<String, Acc>, n: usize| -> Vec<Top> {
            let mut v: Vec<Top> = m.into_iter().map(|(id, a)| a.top(id)).collect();
            v.sort_by(busiest_first);
            v.truncate(n);
            v
        };
        let seen: BTreeSet<Guid> = partners.keys().copied().collect();
        let partners_top = top(
            partners
                .into_iter()
                .map(|(k, mut v)| {
                    v.label = label(k);
                    (k.to_string(), v)
                })
                .collect(),
            usize::MAX,
        );

        // Daily series: the six busiest partners and the rest.
        let ours = report.tenant;
        let side = |h: Guid, r: Guid| ours.and_then(|t| Direction::of(t, h, r));
        let seen_days: BTreeSet<NaiveDate> = daily.days.keys().map(|k| k.0).collect();
        let (bucket, days) = Bucket::series(&seen_days);
        let index: HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        let busiest: Vec<String> = partners_top.iter().take(6).map(|p| p.id.clone()).collect();
        let mut per_partner: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut per_direction: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for ((day, h, r), c) in &daily.days {
            let Some((dir, partner)) = side(*h, *r) else { continue };
            let key =
                if busiest.contains(&partner.to_string()) { label(partner) } else { "other partners".into() };
            let at = index[&bucket.start(*day)];
            per_partner.entry(key).or_insert_with(|| vec![0; days.len()])[at] += c.sign_ins;
            per_direction.entry(dir.as_str().to_string()).or_insert_with(|| vec![0; days.len()])[at] +=
                c.sign_ins;
        }
        let mut per_partner: Vec<(String, Vec<u64>)> = per_partner.into_iter().collect();
        per_partner.sort_by_key(|(k, v)| (k == "other partners", std::cmp::Reverse(v.iter().sum::<u64>())));

        // New partners: first seen (in everything read) inside the period.
        let start = period_start.or_else(|| t.last_seen.map(|l| l - Duration::days(7)));
        let mut first: BTreeMap<Guid, DateTime<Utc>> = BTreeMap::new();
        for ((h, r), at) in &daily.first_seen {
            if let Some((_, p)) = side(*h, *r) {
                let e = first.entry(p).or_insert(*at);
                *e = (*e).min(*at);
            }
        }
        let new_partners = match start {
            Some(s) => first.iter().filter(|(_, at)| **at >= s).map(|(p, at)| (label(*p), *at)).collect(),
            None => vec![],
        };
        let new_partners_basis = match (period_start, start) {
            (Some(s), _) => format!("first sign-in at or after {} in all the data read", rfc3339(&s)),
            (None, Some(s)) => format!(
                "first sign-in in the last 7 days of the data (since {}); give --since, and a store for a longer memory",
                rfc3339(&s)
            ),
            _ => "no sign-ins".into(),
        };

        let (idle_partners, default_partners) = match policy {
            Some(p) => {
                let configured: BTreeSet<Guid> = p.partners.keys().copied().collect();
                (
                    Some(configured.difference(&seen).map(|g| label(*g)).collect()),
                    Some(seen.difference(&configured).map(|g| label(*g)).collect()),
                )
            }
            None => (None, None),
        };
        Overview {
            title: "Cross-tenant access report".into(),
            tenant: report.tenant,
            first: t.first_seen,
            last: t.last_seen,
            cross_tenant: inbound + outbound,
            inbound,
            outbound,
            failures: partners_top.iter().map(|p| p.failures).sum(),
            policy_blocks: partners_top.iter().map(|p| p.blocks_by_us + p.blocks_by_partner).sum(),
            users: all_users,
            bucket,
            days,
            per_partner,
            per_direction: per_direction.into_iter().collect(),
            apps: top(apps, 10),
            top_users,
            partners: partners_top,
            new_partners,
            new_partners_basis,
            idle_partners,
            default_partners,
            changes: None,
            impact: None,
        }
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;

    fn days(v: &[&str]) -> BTreeSet<NaiveDate> {
        v.iter().map(|d| d.parse().unwrap()).collect()
    }

    #[test]
    fn the_series_has_a_bar_per_day_unless_that_would_be_too_many() {
        let (b, bars) = Bucket::series(&days(&["2026-11-01", "2026-11-30"]));
        assert_eq!((b, bars.len()), (Bucket::Day, 30));
        let (b, bars) = Bucket::series(&days(&["2020-01-01", "2026-11-30"]));
        assert_eq!(b, Bucket::Week);
        assert!(bars.len() <= MAX_BARS);
        let (b, bars) = Bucket::series(&days(&["0001-01-01", "9999-12-31"]));
        assert_eq!((b, bars.len()), (Bucket::Year, 2), "only the years with data: {bars:?}");
        assert_eq!(Bucket::series(&BTreeSet::new()).1.len(), 0);
    }
}

#[cfg(test)]
mod rollup_tests {
    use super::*;
    use crate::analysis::runs::codec::tests::sample_row;

    /// Rows of many users, several rows each, some users sharing sign-in
    /// counts (ties broken by name), over a few partners and apps.
    fn rows() -> Vec<ActivityRow> {
        (0..2000u32)
            .map(|i| {
                let mut r = sample_row();
                r.user_id = Some(format!("user-{}", i % 900).into());
                r.user_principal_name = (i % 3 != 0).then(|| format!("u{}@x.example", i % 900).into());
                r.partner_tenant_id = Guid(u128::from(i % 7));
                r.app_id = Some(format!("app-{}", i % 11).into());
                r.counters.sign_ins = u64::from(i % 13);
                r
            })
            .collect()
    }

    fn rolled(budget: Option<usize>) -> Rolled {
        let mut r = Rollups::new(budget);
        rows().iter().for_each(|row| r.add(row));
        r.finish().unwrap()
    }

    #[test]
    fn the_users_figures_are_the_same_through_the_disk_as_in_memory() {
        let memory = rolled(None);
        for budget in [1, 7, 500] {
            let disk = rolled(Some(budget));
            assert_eq!(disk.top_users, memory.top_users, "budget {budget}");
            assert_eq!(disk.users, memory.users);
            let users = |r: &Rolled| r.sums.partners.values().map(|a| a.users).collect::<Vec<_>>();
            assert_eq!(users(&disk), users(&memory));
            let app_users = |r: &Rolled| r.sums.apps.values().map(|a| a.users).collect::<Vec<_>>();
            assert_eq!(app_users(&disk), app_users(&memory));
        }
        // The top users are the busiest by a full sort of every user's figures.
        let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows() {
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            *per_user.entry(user).or_default() += r.counters.sign_ins;
        }
        let mut expected: Vec<(u64, String)> = per_user.into_iter().map(|(u, n)| (n, u)).collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let top: Vec<(u64, String)> =
            memory.top_users.iter().map(|t| (t.sign_ins, t.label.clone())).collect();
        assert_eq!(top, expected[..TOP_USERS]);
    }

    #[test]
    fn a_user_share_written_and_read_back_is_the_same() {
        let share = UserShare {
            user: "a\u{0}b".into(),
            app_key: String::new(),
            app: "Résumé".into(),
            partner: Guid(u128::MAX),
            sign_ins: 3,
            failures: 1,
            us: 0,
            them: 2,
            last: DateTime::from_timestamp(1_790_000_000, 5),
        };
        let mut buf = Vec::new();
        share.write(&mut Enc(&mut buf));
        assert_eq!(UserShare::read(&mut Dec::new(&buf[..])).unwrap(), share);
    }
}
