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
use super::replay::{PartnerImpact, Summary};
use super::runs::codec::{Dec, Enc};
use super::runs::{count_per_tenant, key, ByKey, Order, Record, Sorter, Tally, TenantText, TENANT_TEXTS};
use crate::model::activity::{total, Name};
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
    pub impact: Option<ImpactSection>,
}

/// The replay's summary and its partners, listed whole: the report lists
/// every partner in other sections too.
pub type ImpactSection = (Summary, Vec<PartnerImpact>);

fn partner_name(names: &BTreeMap<Guid, String>, id: Guid) -> String {
    match names.get(&id) {
        Some(n) => format!("{n} ({})", &id.to_string()[..8]),
        None => id.to_string(),
    }
}

/// What one row adds to the figures of its partner, app and user.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Figures {
    sign_ins: u64,
    failures: u64,
    us: u64,
    them: u64,
    last: Option<DateTime<Utc>>,
}

impl Figures {
    fn of(r: &ActivityRow) -> Figures {
        let c = &r.counters;
        Figures {
            sign_ins: c.sign_ins,
            failures: c.failures,
            us: r.blocked_by_us(),
            them: r.blocked_by_partner(),
            last: c.last_seen,
        }
    }

    /// Saturating: an activity table read back may bring any counts.
    fn add(&mut self, o: &Figures) {
        self.sign_ins = self.sign_ins.saturating_add(o.sign_ins);
        self.failures = self.failures.saturating_add(o.failures);
        self.us = self.us.saturating_add(o.us);
        self.them = self.them.saturating_add(o.them);
        self.last = self.last.max(o.last);
    }

    fn write(&self, enc: &mut Enc) {
        for v in [self.sign_ins, self.failures, self.us, self.them] {
            enc.u64(v);
        }
        enc.opt_time(self.last);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Figures> {
        Ok(Figures {
            sign_ins: dec.u64()?,
            failures: dec.u64()?,
            us: dec.u64()?,
            them: dec.u64()?,
            last: dec.opt_time()?,
        })
    }
}

/// What the report shows of a partner, app or user.
#[derive(Default)]
struct Acc {
    figures: Figures,
    /// Distinct users: counted in the pass over the users ([`Rollups::finish`]).
    users: usize,
    /// Distinct app names: a partner's from their tally, a user's in the
    /// pass over the users.
    apps: usize,
    label: String,
}

impl Acc {
    fn top(self, id: String) -> Top {
        let f = self.figures;
        Top {
            label: self.label,
            id,
            sign_ins: f.sign_ins,
            users: self.users,
            apps: self.apps,
            failures: f.failures,
            blocks_by_us: f.us,
            blocks_by_partner: f.them,
            last_seen: f.last,
        }
    }
}

/// Busiest first, ties by label, then by id.
fn busiest_first(a: &Top, b: &Top) -> std::cmp::Ordering {
    b.sign_ins.cmp(&a.sign_ins).then(a.label.cmp(&b.label)).then(a.id.cmp(&b.id))
}

/// The `n` busiest of what is offered ([`busiest_first`]), holding no
/// more than 64 times `n` at once, however many are offered.
struct Busiest {
    n: usize,
    top: Vec<Top>,
}

impl Busiest {
    fn new(n: usize) -> Busiest {
        Busiest { n, top: Vec::new() }
    }

    fn offer(&mut self, t: Top) {
        self.top.push(t);
        if self.top.len() >= 64 * self.n {
            self.keep_busiest();
        }
    }

    fn keep_busiest(&mut self) {
        self.top.sort_by(busiest_first);
        self.top.truncate(self.n);
    }

    fn finish(mut self) -> Vec<Top> {
        self.keep_busiest();
        self.top
    }
}

/// One row's part in its user's figures: what the pass over the users
/// (rows sorted by user, on disk past the budget) adds up per user.
#[derive(Clone, Debug, PartialEq)]
struct UserShare {
    user: Name,
    app_key: Name,
    app: Name,
    partner: Guid,
    figures: Figures,
}

impl Record for UserShare {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.user);
        enc.str(&self.app_key);
        enc.str(&self.app);
        enc.u128(self.partner.0);
        self.figures.write(enc);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(UserShare {
            user: dec.name(0)?,
            app_key: dec.name(1)?,
            app: dec.name(2)?,
            partner: Guid(dec.u128()?),
            figures: Figures::read(dec)?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.user.len() + self.app_key.len() + self.app.len()
    }
}

const BY_USER: Order<UserShare> =
    Order { cmp: |a, b| a.user.cmp(&b.user), key: |s, out| key::text(out, &s.user), sort: None };

/// An app's figures added up ([`Tally`]): its label is the name on the
/// last row read with it (`seq`: the row's place in the input).
#[derive(Clone, Debug, PartialEq)]
struct AppFigures {
    app_key: Name,
    label: Name,
    seq: u64,
    figures: Figures,
}

impl Record for AppFigures {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.app_key);
        enc.str(&self.label);
        enc.u64(self.seq);
        self.figures.write(enc);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(AppFigures {
            app_key: dec.name(0)?,
            label: dec.name(1)?,
            seq: dec.u64()?,
            figures: Figures::read(dec)?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.app_key.len() + self.label.len()
    }
}

const APP_FIGURES: ByKey<Name, AppFigures> = ByKey {
    key: |a| a.app_key.clone(),
    order: Order {
        cmp: |a, b| a.app_key.cmp(&b.app_key),
        key: |a, out| key::text(out, &a.app_key),
        sort: None,
    },
    combine: |into, other| {
        into.figures.add(&other.figures);
        if other.seq > into.seq {
            (into.label, into.seq) = (other.label, other.seq);
        }
    },
};

/// An app's distinct users added up ([`Tally`]), one a user in the pass
/// over the users.
#[derive(Clone, Debug, PartialEq)]
struct AppUsers {
    app_key: Name,
    users: u64,
}

impl Record for AppUsers {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.app_key);
        enc.u64(self.users);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(AppUsers { app_key: dec.name(0)?, users: dec.u64()? })
    }

    fn text_bytes(&self) -> usize {
        self.app_key.len()
    }
}

const APP_USERS: ByKey<Name, AppUsers> = ByKey {
    key: |a| a.app_key.clone(),
    order: Order {
        cmp: |a, b| a.app_key.cmp(&b.app_key),
        key: |a, out| key::text(out, &a.app_key),
        sort: None,
    },
    combine: |into, other| into.users = into.users.saturating_add(other.users),
};

/// The partner, app and user figures of the report, from the user-grain
/// rows fed one at a time ([`Rollups::add`]). Partners are added up in
/// memory (they grow with partners). What grows with apps (each app's
/// figures and distinct users, a partner's distinct app names) is added up
/// by key ([`Tally`]) in memory while the apps are few, on disk past the
/// budget; what grows with users (each user's figures, the distinct users
/// of each partner and app) in a pass over the rows sorted by user, on
/// disk past the budget. Memory stays flat however many users and apps
/// there are.
pub struct Rollups {
    sums: Sums,
    shares: Sorter<UserShare>,
    apps: Tally<Name, AppFigures>,
    partner_apps: Tally<(Guid, Name), TenantText>,
    /// The tallies' budget.
    budget: Option<usize>,
    /// Rows added: the place of the next in the input.
    seq: u64,
    /// What a row without a user or an app is listed as.
    dash: Name,
    /// The first write to the temporary folder that failed, for `finish`.
    error: Option<anyhow::Error>,
}

/// What grows with partners, added up as the rows come.
#[derive(Default)]
struct Sums {
    names: BTreeMap<Guid, String>,
    partners: BTreeMap<Guid, Acc>,
    inbound: u64,
    outbound: u64,
}

/// What [`Rollups::finish`] gives [`Overview::build`].
pub struct Rolled {
    sums: Sums,
    top_apps: Vec<Top>,
    top_users: Vec<Top>,
    users: usize,
}

/// Users listed in the report.
const TOP_USERS: usize = 10;

/// Apps listed in the report.
const TOP_APPS: usize = 10;

impl Rollups {
    /// Keeps up to `budget` rows' shares (and apps) in memory before the disk.
    pub fn new(budget: Option<usize>) -> Rollups {
        // A share's texts are a user id or name, an app's id and its name.
        let shares = Sorter::new("report", BY_USER, budget).text_a_record(256);
        // The tallies hold a record an app (or a partner's app): nothing
        // while the apps are as few as Entra's logs name, and each a quarter
        // of the budget however many a forged export names, beside the
        // shares' and (with a proposal) the replayed rows' budgets.
        let budget = budget.map(|b| (b / 4).max(1));
        Rollups {
            sums: Sums::default(),
            shares,
            apps: Tally::new("report", APP_FIGURES, budget).text_a_record(256),
            partner_apps: Tally::new("report", TENANT_TEXTS, budget).text_a_record(128),
            budget,
            seq: 0,
            dash: "-".into(),
            error: None,
        }
    }

    pub fn add(&mut self, r: &ActivityRow) {
        let sums = &mut self.sums;
        match r.direction {
            Direction::Inbound => sums.inbound = sums.inbound.saturating_add(r.counters.sign_ins),
            Direction::Outbound => sums.outbound = sums.outbound.saturating_add(r.counters.sign_ins),
        }
        if let Some(n) = r.partner_tenant_name.as_deref() {
            sums.names.insert(r.partner_tenant_id, n.to_string());
        }
        let figures = Figures::of(r);
        sums.partners.entry(r.partner_tenant_id).or_default().figures.add(&figures);
        let user = r.user_principal_name.as_ref().or(r.user_id.as_ref()).unwrap_or(&self.dash).clone();
        let app = r.app_name.as_ref().or(r.app_id.as_ref()).unwrap_or(&self.dash).clone();
        let app_key = r.app_id.clone().unwrap_or_else(|| Name::from(""));
        let seq = self.seq;
        self.seq += 1;
        if self.error.is_some() {
            return;
        }
        let partner = r.partner_tenant_id;
        let added = self
            .partner_apps
            .add(TenantText { tenant: partner, text: app.clone() })
            .and_then(|()| {
                self.apps.add(AppFigures { app_key: app_key.clone(), label: app.clone(), seq, figures })
            })
            .and_then(|()| self.shares.push(UserShare { user, app_key, app, partner, figures }));
        if let Err(e) = added {
            self.error = Some(e);
        }
    }

    /// The passes over the partners' app names, the users and the apps.
    pub fn finish(mut self) -> Result<Rolled> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut sums = self.sums;
        for (partner, apps) in count_per_tenant(self.partner_apps)? {
            sums.partners.entry(partner).or_default().apps = apps;
        }
        let mut app_users = Tally::new("report", APP_USERS, self.budget).text_a_record(128);
        let (top_users, users) = users(self.shares, &mut sums, &mut app_users)?;
        let top_apps = apps(self.apps, app_users)?;
        Ok(Rolled { sums, top_apps, top_users, users })
    }
}

/// The pass over the users: the busiest, each with its distinct app names,
/// and how many there are; each partner's distinct users into `sums`, each
/// app's into `app_users`.
fn users(
    shares: Sorter<UserShare>,
    sums: &mut Sums,
    app_users: &mut Tally<Name, AppUsers>,
) -> Result<(Vec<Top>, usize)> {
    let mut shares = shares.finish()?;
    let mut busiest = Busiest::new(TOP_USERS);
    let mut users = 0;
    // The user being added up: its name, figures, partners, app ids and
    // app names.
    type Current = (Name, Acc, BTreeSet<Guid>, BTreeSet<Name>, BTreeSet<Name>);
    let mut close = |(user, mut acc, partners, app_keys, names): Current| -> Result<()> {
        for p in partners {
            sums.partners.entry(p).or_default().users += 1;
        }
        for app_key in app_keys {
            app_users.add(AppUsers { app_key, users: 1 })?;
        }
        acc.apps = names.len();
        busiest.offer(acc.top(user.to_string()));
        Ok(())
    };
    let mut current: Option<Current> = None;
    for s in shares.by_ref() {
        if current.as_ref().is_some_and(|(u, ..)| *u != s.user) {
            if let Some(done) = current.take() {
                close(done)?;
            }
        }
        let (_, acc, partners, app_keys, names) = current.get_or_insert_with(|| {
            users += 1;
            let acc = Acc { label: s.user.to_string(), users: 1, ..Acc::default() };
            (s.user.clone(), acc, BTreeSet::new(), BTreeSet::new(), BTreeSet::new())
        });
        acc.figures.add(&s.figures);
        partners.insert(s.partner);
        app_keys.insert(s.app_key);
        names.insert(s.app);
    }
    if let Some(done) = current.take() {
        close(done)?;
    }
    shares.finish()?;
    Ok((busiest.finish(), users))
}

/// The busiest apps, each with its distinct users: the apps' figures and
/// their users, both one record an app in the order of app ids, side by
/// side.
fn apps(apps: Tally<Name, AppFigures>, app_users: Tally<Name, AppUsers>) -> Result<Vec<Top>> {
    let mut figures = apps.finish()?;
    let mut users = app_users.finish()?;
    let mut next = users.next();
    let mut busiest = Busiest::new(TOP_APPS);
    for app in figures.by_ref() {
        // Every app has a user (the row's, or "-"), so both have its id.
        let mut count = 0;
        while let Some(u) = next.take() {
            if u.app_key > app.app_key {
                next = Some(u);
                break;
            }
            if u.app_key == app.app_key {
                count = u.users;
            }
            next = users.next();
        }
        let acc = Acc { figures: app.figures, users: count as usize, apps: 0, label: app.label.to_string() };
        busiest.offer(acc.top(app.app_key.to_string()));
    }
    figures.finish()?;
    users.finish()?;
    Ok(busiest.finish())
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
        let Rolled {
            sums: Sums { names, partners, inbound, outbound },
            top_apps,
            top_users,
            users: all_users,
        } = rolled;
        let label = |g: Guid| partner_name(&names, g);
        let seen: BTreeSet<Guid> = partners.keys().copied().collect();
        let mut partners_top: Vec<Top> = partners
            .into_iter()
            .map(|(k, mut v)| {
                v.label = label(k);
                v.top(k.to_string())
            })
            .collect();
        partners_top.sort_by(busiest_first);

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
            cross_tenant: inbound.saturating_add(outbound),
            inbound,
            outbound,
            failures: total(partners_top.iter().map(|p| p.failures)),
            policy_blocks: total(partners_top.iter().flat_map(|p| [p.blocks_by_us, p.blocks_by_partner])),
            users: all_users,
            bucket,
            days,
            per_partner,
            per_direction: per_direction.into_iter().collect(),
            apps: top_apps,
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
                r.app_id = (i % 17 != 0).then(|| format!("app-{}", i % 11).into());
                // An app id seen under several names: its label is the last.
                r.app_name = (i % 4 != 0).then(|| format!("App {}", i % 5).into());
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
            let partners =
                |r: &Rolled| r.sums.partners.values().map(|a| (a.users, a.apps)).collect::<Vec<_>>();
            assert_eq!(partners(&disk), partners(&memory));
            assert_eq!(disk.top_apps, memory.top_apps, "budget {budget}");
        }
        // The top users are the busiest by a full sort of every user's figures.
        let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows() {
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            let sum = per_user.entry(user).or_default();
            *sum = sum.saturating_add(r.counters.sign_ins);
        }
        let mut expected: Vec<(u64, String)> = per_user.into_iter().map(|(u, n)| (n, u)).collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let top: Vec<(u64, String)> =
            memory.top_users.iter().map(|t| (t.sign_ins, t.label.clone())).collect();
        assert_eq!(top, expected[..TOP_USERS]);
    }

    #[test]
    fn the_apps_and_partners_figures_are_those_of_every_row_added_up_at_once() {
        // Each app id's figures, distinct users and last name; each
        // partner's distinct users and app names.
        let mut apps: BTreeMap<String, (Figures, BTreeSet<String>, String)> = BTreeMap::new();
        let mut partners: BTreeMap<Guid, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for r in rows() {
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            let name = r.app_name.as_deref().or(r.app_id.as_deref()).unwrap_or("-").to_string();
            let app = apps.entry(r.app_id.as_deref().unwrap_or_default().to_string()).or_default();
            app.0.add(&Figures::of(&r));
            app.1.insert(user.clone());
            app.2 = name.clone();
            let partner = partners.entry(r.partner_tenant_id).or_default();
            partner.0.insert(user);
            partner.1.insert(name);
        }
        let mut expected: Vec<Top> = apps
            .into_iter()
            .map(|(id, (figures, users, label))| Acc { figures, users: users.len(), apps: 0, label }.top(id))
            .collect();
        expected.sort_by(busiest_first);
        expected.truncate(TOP_APPS);
        let partners: Vec<(usize, usize)> = partners.values().map(|(u, a)| (u.len(), a.len())).collect();
        for budget in [None, Some(1), Some(7), Some(500)] {
            let rolled = rolled(budget);
            assert_eq!(rolled.top_apps, expected, "budget {budget:?}");
            let got: Vec<(usize, usize)> = rolled.sums.partners.values().map(|a| (a.users, a.apps)).collect();
            assert_eq!(got, partners, "budget {budget:?}");
        }
    }

    #[test]
    fn the_records_of_apps_and_partners_written_and_read_back_are_the_same() {
        fn again<T: Record + PartialEq + std::fmt::Debug>(record: T) {
            let mut buf = Vec::new();
            record.write(&mut Enc(&mut buf));
            assert_eq!(T::read(&mut Dec::new(&buf[..])).unwrap(), record);
        }
        let figures = Figures { sign_ins: 1, failures: 2, us: 3, them: 4, last: None };
        again(AppFigures { app_key: "k\u{0}".into(), label: "Résumé".into(), seq: u64::MAX, figures });
        again(AppUsers { app_key: "".into(), users: 9 });
        again(TenantText { tenant: Guid(7), text: "\u{1b}[31m".into() });
    }

    #[test]
    fn each_order_s_bytes_sort_as_its_comparison_does_and_its_key_tells_what_it_does() {
        fn agree<K: Eq, T>(records: &[T], ByKey { key, order, .. }: &ByKey<K, T>) {
            for a in records {
                for b in records {
                    let (mut ka, mut kb) = (Vec::new(), Vec::new());
                    (order.key)(a, &mut ka);
                    (order.key)(b, &mut kb);
                    assert_eq!(ka.cmp(&kb), (order.cmp)(a, b));
                    assert_eq!(key(a) == key(b), (order.cmp)(a, b).is_eq());
                }
            }
        }
        let texts = ["", "a", "a\u{0}", "a\u{0}b", "ab", "b"];
        let figures = Figures::default();
        let (mut users, mut apps, mut app_users, mut partners) = (vec![], vec![], vec![], vec![]);
        for x in texts {
            let share =
                UserShare { user: x.into(), app_key: "".into(), app: "".into(), partner: Guid(0), figures };
            users.push(share);
            apps.push(AppFigures { app_key: x.into(), label: "".into(), seq: 0, figures });
            app_users.push(AppUsers { app_key: x.into(), users: 0 });
            for p in [0, 1, 256, u128::MAX] {
                partners.push(TenantText { tenant: Guid(p), text: x.into() });
            }
        }
        agree(&users, &ByKey { key: |s: &UserShare| s.user.clone(), order: BY_USER, combine: |_, _| {} });
        agree(&apps, &APP_FIGURES);
        agree(&app_users, &APP_USERS);
        agree(&partners, &TENANT_TEXTS);
    }

    #[test]
    fn a_user_share_written_and_read_back_is_the_same() {
        let share = UserShare {
            user: "a\u{0}b".into(),
            app_key: "".into(),
            app: "Résumé".into(),
            partner: Guid(u128::MAX),
            figures: Figures {
                sign_ins: 3,
                failures: 1,
                us: 0,
                them: 2,
                last: DateTime::from_timestamp(1_790_000_000, 5),
            },
        };
        let mut buf = Vec::new();
        share.write(&mut Enc(&mut buf));
        assert_eq!(UserShare::read(&mut Dec::new(&buf[..])).unwrap(), share);
    }
}
