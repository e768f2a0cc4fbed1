//! The figures of the overview report: per-day counts, top partners, apps
//! and users, partners new, idle or on the default, computed once from the
//! activity rows and every sign-in read. The render layer draws them as
//! HTML or Markdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};

use super::activity::ActivityTable;
use super::replay::Summary;
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

    /// What an activity table can tell without per-sign-in times: when each
    /// partner was first seen (for "new partners"), and no days.
    pub fn from_table(table: &ActivityTable) -> Daily {
        let mut daily = Daily::default();
        let Some(ours) = table.tenant else { return daily };
        for r in &table.rows {
            let pair = match r.direction {
                Direction::Outbound => (ours, r.partner_tenant_id),
                Direction::Inbound => (r.partner_tenant_id, ours),
            };
            if let Some(at) = r.counters.first_seen {
                let f = daily.first_seen.entry(pair).or_insert(at);
                *f = (*f).min(at);
            }
        }
        daily
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

impl Overview {
    /// `report` is at the user grain over the period; `daily` saw every sign-in.
    pub fn build(
        report: &ActivityTable,
        daily: &Daily,
        policy: Option<&Policy>,
        period_start: Option<DateTime<Utc>>,
    ) -> Overview {
        let t = &report.totals;
        let names: BTreeMap<Guid, String> = report
            .rows
            .iter()
            .filter_map(|r| r.partner_tenant_name.as_deref().map(|n| (r.partner_tenant_id, n.to_string())))
            .collect();
        let label = |g: Guid| partner_name(&names, g);

        // Partner, app and user rollups from the user-grain rows.
        #[derive(Default)]
        struct Acc {
            sign_ins: u64,
            failures: u64,
            us: u64,
            them: u64,
            users: BTreeSet<String>,
            apps: BTreeSet<String>,
            last: Option<DateTime<Utc>>,
            label: String,
        }
        let mut partners: BTreeMap<Guid, Acc> = BTreeMap::new();
        let mut apps: BTreeMap<String, Acc> = BTreeMap::new();
        let mut users: BTreeMap<String, Acc> = BTreeMap::new();
        let (mut inbound, mut outbound) = (0, 0);
        for r in &report.rows {
            let c = &r.counters;
            match r.direction {
                Direction::Inbound => inbound += c.sign_ins,
                Direction::Outbound => outbound += c.sign_ins,
            }
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            let app = r.app_name.as_deref().or(r.app_id.as_deref()).unwrap_or("-").to_string();
            for (acc, lbl) in [
                (partners.entry(r.partner_tenant_id).or_default(), label(r.partner_tenant_id)),
                (apps.entry(r.app_id.as_deref().unwrap_or_default().to_string()).or_default(), app.clone()),
                (users.entry(user.clone()).or_default(), user.clone()),
            ] {
                acc.label = lbl;
                acc.sign_ins += c.sign_ins;
                acc.failures += c.failures;
                acc.us += r.blocked_by_us();
                acc.them += r.blocked_by_partner();
                acc.users.insert(user.clone());
                acc.apps.insert(app.clone());
                acc.last = acc.last.max(c.last_seen);
            }
        }
        let top = |m: BTreeMap<String, Acc>, n: usize| -> Vec<Top> {
            let mut v: Vec<Top> = m
                .into_iter()
                .map(|(id, a)| Top {
                    label: a.label,
                    id,
                    sign_ins: a.sign_ins,
                    users: a.users.len(),
                    apps: a.apps.len(),
                    failures: a.failures,
                    blocks_by_us: a.us,
                    blocks_by_partner: a.them,
                    last_seen: a.last,
                })
                .collect();
            v.sort_by(|a, b| b.sign_ins.cmp(&a.sign_ins).then(a.label.cmp(&b.label)));
            v.truncate(n);
            v
        };
        let all_users = users.len();
        let seen: BTreeSet<Guid> = partners.keys().copied().collect();
        let partners_top = top(partners.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), usize::MAX);

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
            top_users: top(users, 10),
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
