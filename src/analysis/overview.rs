//! The figures of the overview report: per-day counts, top partners, apps
//! and users, partners new, idle or on the default, computed from one
//! reading of the activity rows ([`Rollups`]) and every sign-in read
//! ([`Daily`]). Memory is flat however many users, apps and partners there
//! are: what grows with them is added up in tallies, and every list of
//! partners the report shows comes as a stream, sorted or kept on disk
//! past the budget ([`Overview::build`]). The render layer writes them as
//! HTML or Markdown as it reads them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};

use std::io::{self, BufRead};

use anyhow::{Context as _, Result};

use super::activity::{ActivityRow, ActivityTable};
use super::replay::Summary;
use super::runs::codec::{Dec, Enc};
use super::runs::{
    count_per_tenant, key, ByKey, Order, Record, Sorter, Spool, Stream, Tally, TenantCount, TenantText,
    TENANT_COUNTS, TENANT_TEXTS,
};
use crate::model::activity::{total, Name};
use crate::model::{rfc3339, Direction, Guid, SignIn, Window};
use crate::policy::Policy;

/// The cross-tenant sign-ins of a day between two tenants ([`Daily`]).
#[derive(Clone, Debug, PartialEq)]
struct DayPair {
    day: NaiveDate,
    home: Guid,
    resource: Guid,
    sign_ins: u64,
}

/// A day as a number that sorts as the days do, written in 4 bytes.
fn day_number(d: NaiveDate) -> u32 {
    (d.num_days_from_ce() as u32) ^ (1 << 31)
}

impl Record for DayPair {
    fn write(&self, enc: &mut Enc) {
        enc.u32(day_number(self.day));
        enc.u128(self.home.0);
        enc.u128(self.resource.0);
        enc.u64(self.sign_ins);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let n = (dec.u32()? ^ (1 << 31)) as i32;
        let day = NaiveDate::from_num_days_from_ce_opt(n)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a day out of range"))?;
        Ok(DayPair { day, home: Guid(dec.u128()?), resource: Guid(dec.u128()?), sign_ins: dec.u64()? })
    }
}

const DAY_PAIRS: ByKey<(NaiveDate, Guid, Guid), DayPair> = ByKey {
    key: |d| (d.day, d.home, d.resource),
    order: Order {
        cmp: |a, b| (a.day, a.home, a.resource).cmp(&(b.day, b.home, b.resource)),
        key: |d, out| {
            out.extend_from_slice(&day_number(d.day).to_be_bytes());
            out.extend_from_slice(&d.home.0.to_be_bytes());
            out.extend_from_slice(&d.resource.0.to_be_bytes());
        },
        sort: None,
    },
    combine: |into, other| into.sign_ins = into.sign_ins.saturating_add(other.sign_ins),
};

/// When a tenant pair (home, resource), or with `resource` nil a partner,
/// was first seen: the earliest time added up ([`Tally`]).
#[derive(Clone, Debug, PartialEq)]
struct FirstSeen {
    home: Guid,
    resource: Guid,
    at: DateTime<Utc>,
}

impl Record for FirstSeen {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.home.0);
        enc.u128(self.resource.0);
        enc.time(self.at);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(FirstSeen { home: Guid(dec.u128()?), resource: Guid(dec.u128()?), at: dec.time()? })
    }
}

const FIRST_SEEN: ByKey<(Guid, Guid), FirstSeen> = ByKey {
    key: |f| (f.home, f.resource),
    order: Order {
        cmp: |a, b| (a.home, a.resource).cmp(&(b.home, b.resource)),
        key: |f, out| {
            out.extend_from_slice(&f.home.0.to_be_bytes());
            out.extend_from_slice(&f.resource.0.to_be_bytes());
        },
        sort: None,
    },
    combine: |into, other| into.at = into.at.min(other.at),
};

/// Sees every sign-in read: per-day counts inside the period, and when
/// each tenant pair was first seen at all (for "new partners"). Both grow
/// with partners (a forged export names millions): added up by key
/// ([`Tally`]), in memory within the budget, past it on disk.
pub struct Daily {
    period: Window,
    days: Tally<(NaiveDate, Guid, Guid), DayPair>,
    first_seen: Tally<(Guid, Guid), FirstSeen>,
    budget: Option<usize>,
    /// The first write to the temporary folder that failed, for `build`.
    error: Option<anyhow::Error>,
}

impl Daily {
    /// `budget`: the run's groups in memory, a quarter of it each (as the
    /// rollups' tallies): nothing is written while the pairs are as few as
    /// Entra's logs name.
    pub fn new(period: Window, budget: Option<usize>) -> Daily {
        let budget = budget.map(|b| (b / 4).max(1));
        Daily {
            period,
            days: Tally::new("report", DAY_PAIRS, budget),
            first_seen: Tally::new("report", FIRST_SEEN, budget),
            budget,
            error: None,
        }
    }

    fn first_seen(&mut self, home: Guid, resource: Guid, at: DateTime<Utc>) {
        if self.error.is_none() {
            if let Err(e) = self.first_seen.add(FirstSeen { home, resource, at }) {
                self.error = Some(e);
            }
        }
    }

    /// Adds what an activity row read back can tell without per-sign-in
    /// times: when its partner was first seen (for "new partners"; `ours`:
    /// our tenant, without which nothing), and no days.
    pub fn add_row(&mut self, ours: Option<Guid>, r: &ActivityRow) {
        let Some(ours) = ours else { return };
        let (home, resource) = match r.direction {
            Direction::Outbound => (ours, r.partner_tenant_id),
            Direction::Inbound => (r.partner_tenant_id, ours),
        };
        if let Some(at) = r.counters.first_seen {
            self.first_seen(home, resource, at);
        }
    }

    pub fn add(&mut self, s: &SignIn) {
        let (Some(home), Some(resource)) = (s.home_tenant, s.resource_tenant) else { return };
        if home == resource {
            return;
        }
        self.first_seen(home, resource, s.time);
        if !self.period.contains(s.time) || self.error.is_some() {
            return;
        }
        let day = DayPair { day: s.time.date_naive(), home, resource, sign_ins: 1 };
        if let Err(e) = self.days.add(day) {
            self.error = Some(e);
        }
    }
}

/// One row of a "top" table.
#[derive(Clone, Debug, PartialEq)]
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

/// A policy change: time, kind, partner, what changed, and its flag: followed
/// by new blocks ([`FOLLOWED_BY_BLOCKS`]), not joined ([`NOT_JOINED`]), or none.
pub type ChangeLine = (DateTime<Utc>, String, String, Vec<String>, Option<&'static str>);

/// The flag of a change followed by new policy blocks.
pub const FOLLOWED_BY_BLOCKS: &str = "new blocks";
/// The flag of a change not joined with the sign-ins: too many other changes
/// near it for them to tell its effect apart (`timeline` says more).
pub const NOT_JOINED: &str = "not joined: too many changes near it";

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

/// Everything the report shows, computed once for both renderers. What
/// lists every partner comes as a stream (sorted or kept on disk past the
/// budget), read once as the document is written.
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
    /// How many partners `partners` lists.
    pub partner_count: u64,
    /// Every partner seen, busiest first.
    pub partners: Stream<Top>,
    /// The partners with failures, busiest first.
    pub failing: Stream<Top>,
    pub apps: Vec<Top>,
    pub top_users: Vec<Top>,
    /// How many partners `new_partners` lists.
    pub new_partner_count: u64,
    /// Partners whose first sign-in (in all the data read) is in the
    /// period, with it, in the order of their ids.
    pub new_partners: Stream<Listed>,
    pub new_partners_basis: String,
    /// With a policy: configured partners with no sign-in in the period.
    pub idle_partners: Option<Stream<Listed>>,
    /// With a policy: partners seen that have no configuration of their own.
    pub default_partners: Option<Stream<Listed>>,
    /// With audit logs: (time, change, partner, summary lines, flag), the
    /// newest in the period ([`ChangeLine`]).
    pub changes: Option<Vec<ChangeLine>>,
    /// The changes in the period that alter access, listed or not.
    pub changes_in_period: u64,
    /// With a proposed policy: the replay's summary, its partners unread.
    pub impact: Option<Summary>,
}

fn partner_label(name: Option<&str>, id: Guid) -> String {
    match name {
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

impl Record for Top {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.label);
        enc.str(&self.id);
        for v in [self.sign_ins, self.users as u64, self.apps as u64, self.failures] {
            enc.u64(v);
        }
        enc.u64(self.blocks_by_us);
        enc.u64(self.blocks_by_partner);
        enc.opt_time(self.last_seen);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(Top {
            label: dec.string()?,
            id: dec.string()?,
            sign_ins: dec.u64()?,
            users: dec.u64()? as usize,
            apps: dec.u64()? as usize,
            failures: dec.u64()?,
            blocks_by_us: dec.u64()?,
            blocks_by_partner: dec.u64()?,
            last_seen: dec.opt_time()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.label.len() + self.id.len()
    }
}

/// [`busiest_first`] as a [`Sorter`]'s order: the partners' table.
const BUSIEST: Order<Top> = Order {
    cmp: busiest_first,
    key: |t, out| {
        out.extend_from_slice(&(u64::MAX - t.sign_ins).to_be_bytes());
        key::text(out, &t.label);
        key::text(out, &t.id);
    },
    sort: None,
};

/// A partner listed by its label (new, idle, on the default), with its
/// first sign-in for the new ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub label: String,
    pub at: Option<DateTime<Utc>>,
}

impl Record for Listed {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.label);
        enc.opt_time(self.at);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(Listed { label: dec.string()?, at: dec.opt_time()? })
    }

    fn text_bytes(&self) -> usize {
        self.label.len()
    }
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

/// By user, then app id: a user's app ids come in order, each told once as
/// it ends, without a set of them (one guest's 2,000,000 forged apps held
/// 112 MB).
const BY_USER: Order<UserShare> = Order {
    cmp: |a, b| a.user.cmp(&b.user).then_with(|| a.app_key.cmp(&b.app_key)),
    key: |s, out| {
        key::text(out, &s.user);
        key::text(out, &s.app_key);
    },
    sort: None,
};

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

/// An app name a user's rows carry, or a partner he signed in with (its
/// id's text), told once each by a [`Tally`] in [`OF_USERS`], to count
/// each of the busiest users' distinct app names and each partner's
/// distinct users with memory that does not grow with them ([`users`]).
#[derive(Clone, Debug, PartialEq)]
struct OfUser {
    user: Name,
    of: Name,
}

impl Record for OfUser {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.user);
        enc.str(&self.of);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(OfUser { user: dec.name(0)?, of: dec.name(1)? })
    }

    fn text_bytes(&self) -> usize {
        self.user.len() + self.of.len()
    }
}

const OF_USERS: ByKey<(Name, Name), OfUser> = ByKey {
    key: |u| (u.user.clone(), u.of.clone()),
    order: Order {
        cmp: |a, b| a.user.cmp(&b.user).then_with(|| a.of.cmp(&b.of)),
        key: |u, out| {
            key::text(out, &u.user);
            key::text(out, &u.of);
        },
        sort: None,
    },
    combine: |_, _| {},
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

/// A partner's figures added up ([`Tally`] by partner): its name is the
/// last one read with it (`name_seq`: that row's place in the input).
#[derive(Clone, Debug, PartialEq)]
struct PartnerFigures {
    partner: Guid,
    figures: Figures,
    name: Option<Name>,
    name_seq: u64,
}

impl Record for PartnerFigures {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.partner.0);
        self.figures.write(enc);
        enc.opt_str(self.name.as_deref());
        enc.u64(self.name_seq);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(PartnerFigures {
            partner: Guid(dec.u128()?),
            figures: Figures::read(dec)?,
            name: dec.opt_name(0)?,
            name_seq: dec.u64()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.name.as_ref().map_or(0, |n| n.len())
    }
}

const PARTNER_FIGURES: ByKey<Guid, PartnerFigures> = ByKey {
    key: |p| p.partner,
    order: Order {
        cmp: |a, b| a.partner.cmp(&b.partner),
        key: |p, out| out.extend_from_slice(&p.partner.0.to_be_bytes()),
        sort: None,
    },
    combine: |into, other| {
        into.figures.add(&other.figures);
        if other.name.is_some() && (into.name.is_none() || other.name_seq > into.name_seq) {
            (into.name, into.name_seq) = (other.name, other.name_seq);
        }
    },
};

/// The partner, app and user figures of the report, from the user-grain
/// rows fed one at a time ([`Rollups::add`]). What grows with partners or
/// apps (each one's figures and names, a partner's distinct app names) is
/// added up by key ([`Tally`]) in memory while they are as few as Entra's
/// logs name, on disk past the budget; what grows with users (each user's
/// figures, the distinct users of each partner and app) in a pass over
/// the rows sorted by user, on disk past the budget. Memory stays flat
/// however many users, apps and partners there are.
pub struct Rollups {
    partners: Tally<Guid, PartnerFigures>,
    inbound: u64,
    outbound: u64,
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

/// What [`Rollups::finish`] gives [`Overview::build`]: the partners' figures,
/// distinct users and distinct app names, each one record a partner in
/// partner order, read side by side there.
pub struct Rolled {
    partners: Stream<PartnerFigures>,
    partner_users: Stream<TenantCount>,
    partner_apps: Stream<TenantCount>,
    inbound: u64,
    outbound: u64,
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
        // The tallies hold a record an app (or a partner, or a partner's
        // app): nothing while they are as few as Entra's logs name, and each
        // a quarter of the budget however many a forged export names,
        // beside the shares' and (with a proposal) the replayed rows'
        // budgets.
        let budget = budget.map(|b| (b / 4).max(1));
        Rollups {
            partners: Tally::new("report", PARTNER_FIGURES, budget).text_a_record(128),
            inbound: 0,
            outbound: 0,
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
        match r.direction {
            Direction::Inbound => self.inbound = self.inbound.saturating_add(r.counters.sign_ins),
            Direction::Outbound => self.outbound = self.outbound.saturating_add(r.counters.sign_ins),
        }
        let figures = Figures::of(r);
        let user = r.user_principal_name.as_ref().or(r.user_id.as_ref()).unwrap_or(&self.dash).clone();
        let app = r.app_name.as_ref().or(r.app_id.as_ref()).unwrap_or(&self.dash).clone();
        let app_key = r.app_id.clone().unwrap_or_else(|| Name::from(""));
        let seq = self.seq;
        self.seq += 1;
        if self.error.is_some() {
            return;
        }
        let partner = r.partner_tenant_id;
        let name = r.partner_tenant_name.clone();
        let added = self
            .partners
            .add(PartnerFigures { partner, figures, name, name_seq: seq })
            .and_then(|()| self.partner_apps.add(TenantText { tenant: partner, text: app.clone() }))
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
        let mut app_users = Tally::new("report", APP_USERS, self.budget).text_a_record(128);
        let mut partner_users = Tally::new("report", TENANT_COUNTS, self.budget);
        let of_users = [(); 2].map(|()| Tally::new("report", OF_USERS, self.budget).text_a_record(128));
        let (top_users, users) = users(self.shares, &mut partner_users, &mut app_users, of_users)?;
        let top_apps = apps(self.apps, app_users)?;
        Ok(Rolled {
            partners: self.partners.finish()?,
            partner_users: partner_users.finish()?,
            partner_apps: count_per_tenant(self.partner_apps)?,
            inbound: self.inbound,
            outbound: self.outbound,
            top_apps,
            top_users,
            users,
        })
    }
}

/// A user's distinct app names and partners held in sets as his shares
/// are read; past them they go to a tally (on disk past the budget) and
/// are counted there: his app names for the busiest users alone, his
/// partners for each partner's distinct users. Entra's guests use tens of
/// apps from one home tenant: the tally, some fifth of the pass's time had
/// every user's names gone through it, is for a forged guest's millions.
/// Two in tests, so that they take both ways.
const HELD_A_USER: usize = if cfg!(test) { 2 } else { 4096 };

/// What a user's shares name, held in a set up to [`HELD_A_USER`] and
/// past it told apart in a tally ([`OfUser`]).
struct HeldOrTold<T>(Option<BTreeSet<T>>);

impl<T: Ord> HeldOrTold<T> {
    fn new() -> Self {
        HeldOrTold(Some(BTreeSet::new()))
    }

    /// Adds `one` of `user`'s; past those held, all of his go to `tally`
    /// as `text` makes them.
    fn add(
        &mut self,
        one: T,
        user: &Name,
        tally: &mut Tally<(Name, Name), OfUser>,
        text: impl Fn(T) -> Name,
    ) -> Result<()> {
        match &mut self.0 {
            Some(held) if held.len() < HELD_A_USER => {
                held.insert(one);
            }
            _ => {
                for of in self.0.take().into_iter().flatten().chain([one]) {
                    tally.add(OfUser { user: user.clone(), of: text(of) })?;
                }
            }
        }
        Ok(())
    }
}

/// The pass over the users: the busiest, each with its distinct app names
/// (in a set, or past [`HELD_A_USER`] told apart in `of_users[0]`), and
/// how many there are; each partner's distinct users into `partner_users`
/// (a user's partners past those held told apart in `of_users[1]`), each
/// app's into `app_users`.
fn users(
    shares: Sorter<UserShare>,
    partner_users: &mut Tally<Guid, TenantCount>,
    app_users: &mut Tally<Name, AppUsers>,
    [mut user_apps, mut user_partners]: [Tally<(Name, Name), OfUser>; 2],
) -> Result<(Vec<Top>, usize)> {
    let mut shares = shares.finish()?;
    let mut busiest = Busiest::new(TOP_USERS);
    let mut users = 0;
    // The user being added up: its name, figures, partners, the app id of
    // its share before (its shares come in the order of their app ids),
    // and its app names.
    type Current = (Name, Acc, HeldOrTold<Guid>, Option<Name>, HeldOrTold<Name>);
    let mut close = |(user, mut acc, partners, _, names): Current| -> Result<()> {
        for tenant in partners.0.into_iter().flatten() {
            partner_users.add(TenantCount { tenant, count: 1 })?;
        }
        acc.apps = names.0.map_or(0, |n| n.len());
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
        let (user, acc, partners, app_key, names) = current.get_or_insert_with(|| {
            users += 1;
            let acc = Acc { label: s.user.to_string(), users: 1, ..Acc::default() };
            (s.user.clone(), acc, HeldOrTold::new(), None, HeldOrTold::new())
        });
        acc.figures.add(&s.figures);
        partners.add(s.partner, user, &mut user_partners, |p| p.hyphenated().as_str().into())?;
        if app_key.as_ref() != Some(&s.app_key) {
            app_users.add(AppUsers { app_key: s.app_key.clone(), users: 1 })?;
            *app_key = Some(s.app_key);
        }
        names.add(s.app, user, &mut user_apps, |n| n)?;
    }
    if let Some(done) = current.take() {
        close(done)?;
    }
    shares.finish()?;
    // The partners of the users past those held, each pair once.
    let mut pairs = user_partners.finish()?;
    for OfUser { of, .. } in pairs.by_ref() {
        let tenant =
            Guid::parse(&of).context("internal error: a partner id in the report's temporary folder")?;
        partner_users.add(TenantCount { tenant, count: 1 })?;
    }
    pairs.finish()?;
    let mut top = busiest.finish();
    // The app names of the users past those held, each user's together,
    // in the order of the users.
    let place: HashMap<&str, usize> = top.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
    let mut apps = vec![0; top.len()];
    let mut names = user_apps.finish()?;
    for OfUser { user, .. } in names.by_ref() {
        if let Some(&i) = place.get(&*user) {
            apps[i] += 1;
        }
    }
    names.finish()?;
    for (t, n) in top.iter_mut().zip(apps) {
        t.apps += n;
    }
    Ok((top, users))
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

/// The next of `stream`'s records if `wanted` says so (else kept in
/// `head` for the next call): a peek at a stream read beside another.
fn next_if<T: Record>(
    head: &mut Option<T>,
    stream: &mut Stream<T>,
    wanted: impl Fn(&T) -> bool,
) -> Option<T> {
    if head.is_none() {
        *head = stream.next();
    }
    head.take_if(|h| wanted(h))
}

/// What the pass over the partners gathers for the document.
struct PartnerLists {
    partners: Sorter<Top>,
    failing: Sorter<Top>,
    new_partners: Spool<Listed>,
    idle: Option<Spool<Listed>>,
    on_default: Option<Spool<Listed>>,
    partner_count: u64,
    new_partner_count: u64,
    failures: u64,
    policy_blocks: u64,
    /// The six busiest, for the series.
    busiest: Busiest,
}

impl PartnerLists {
    fn new(budget: Option<usize>, with_policy: bool) -> PartnerLists {
        let listed = || Spool::new("report", budget).text_a_record(128);
        PartnerLists {
            partners: Sorter::new("report", BUSIEST, budget).text_a_record(128),
            failing: Sorter::new("report", BUSIEST, budget).text_a_record(128),
            new_partners: listed(),
            idle: with_policy.then(listed),
            on_default: with_policy.then(listed),
            partner_count: 0,
            new_partner_count: 0,
            failures: 0,
            policy_blocks: 0,
            busiest: Busiest::new(6),
        }
    }

    fn seen(&mut self, top: Top, configured: bool) -> Result<()> {
        self.partner_count += 1;
        self.failures = self.failures.saturating_add(top.failures);
        self.policy_blocks = total([self.policy_blocks, top.blocks_by_us, top.blocks_by_partner]);
        if let (Some(list), false) = (self.on_default.as_mut(), configured) {
            list.push(Listed { label: top.label.clone(), at: None })?;
        }
        if top.failures > 0 {
            self.failing.push(top.clone())?;
        }
        self.busiest.offer(top.clone());
        self.partners.push(top)
    }

    fn new_partner(&mut self, label: String, at: DateTime<Utc>) -> Result<()> {
        self.new_partner_count += 1;
        self.new_partners.push(Listed { label, at: Some(at) })
    }

    fn idle(&mut self, partner: Guid) -> Result<()> {
        match self.idle.as_mut() {
            Some(list) => list.push(Listed { label: partner.to_string(), at: None }),
            None => Ok(()),
        }
    }
}

impl Overview {
    /// `report` is at the user grain over the period (its totals, not its
    /// rows, are read: those went through `rolled`); `daily` saw every
    /// sign-in. Each partner's figures, distinct users and app names, first
    /// sighting and configuration are read side by side in the order of
    /// partner ids, one partner at a time; the lists the document shows
    /// are sorted or kept (on disk past `budget`) as they come.
    pub fn build(
        rolled: Rolled,
        report: &ActivityTable,
        daily: Daily,
        policy: Option<&Policy>,
        period_start: Option<DateTime<Utc>>,
        budget: Option<usize>,
    ) -> Result<Overview> {
        let t = &report.totals;
        let Rolled {
            partners: mut figures,
            partner_users: mut users,
            partner_apps: mut apps,
            inbound,
            outbound,
            top_apps,
            top_users,
            users: all_users,
        } = rolled;
        let Daily { days, first_seen, budget: daily_budget, error, .. } = daily;
        if let Some(e) = error {
            return Err(e);
        }
        let ours = report.tenant;
        let side = |h: Guid, r: Guid| ours.and_then(|t| Direction::of(t, h, r));

        // Each partner's first sighting, from its tenant pairs' (a partner
        // is home of one pair, resource of the other).
        let mut firsts = Tally::new("report", FIRST_SEEN, daily_budget);
        let mut pairs = first_seen.finish()?;
        for f in pairs.by_ref() {
            if let Some((_, p)) = side(f.home, f.resource) {
                firsts.add(FirstSeen { home: p, resource: Guid(0), at: f.at })?;
            }
        }
        pairs.finish()?;
        let mut firsts = firsts.finish()?;

        // New partners: first seen (in everything read) inside the period.
        let start = period_start.or_else(|| t.last_seen.map(|l| l - Duration::days(7)));
        let configured: Vec<Guid> = policy.map(|p| p.partners.keys().copied().collect()).unwrap_or_default();
        let mut configured = configured.into_iter().peekable();
        let mut lists = PartnerLists::new(budget, policy.is_some());
        let (mut first_head, mut users_head, mut apps_head) = (None, None, None);
        let is_new = |at: &DateTime<Utc>| start.is_some_and(|s| *at >= s);
        loop {
            let seen = figures.next();
            let before = |g: Guid| seen.as_ref().is_none_or(|p| g < p.partner);
            // Partners first seen outside the rows (before the period), and
            // configured partners not seen: named by their ids.
            while let Some(f) = next_if(&mut first_head, &mut firsts, |f| before(f.home)) {
                if is_new(&f.at) {
                    lists.new_partner(f.home.to_string(), f.at)?;
                }
            }
            while let Some(c) = configured.next_if(|c| before(*c)) {
                lists.idle(c)?;
            }
            let Some(p) = seen else { break };
            let is_configured = configured.next_if_eq(&p.partner).is_some();
            let count = |head: &mut Option<TenantCount>, stream: &mut Stream<TenantCount>| {
                let mut n = 0;
                while let Some(c) = next_if(head, stream, |c| c.tenant <= p.partner) {
                    if c.tenant == p.partner {
                        n = c.count;
                    }
                }
                n as usize
            };
            let acc = Acc {
                figures: p.figures,
                users: count(&mut users_head, &mut users),
                apps: count(&mut apps_head, &mut apps),
                label: partner_label(p.name.as_deref(), p.partner),
            };
            if let Some(f) = next_if(&mut first_head, &mut firsts, |f| f.home == p.partner) {
                if is_new(&f.at) {
                    lists.new_partner(acc.label.clone(), f.at)?;
                }
            }
            lists.seen(acc.top(p.partner.to_string()), is_configured)?;
        }
        for s in [figures.finish(), users.finish(), apps.finish(), firsts.finish()] {
            s?;
        }

        // Series: the six busiest partners and the rest, from the days.
        let busiest: Vec<(Guid, String)> =
            lists.busiest.finish().into_iter().filter_map(|t| Some((t.id.parse().ok()?, t.label))).collect();
        let mut seen_days: BTreeSet<NaiveDate> = BTreeSet::new();
        let mut per_partner_day: BTreeMap<(String, NaiveDate), u64> = BTreeMap::new();
        let mut per_direction_day: BTreeMap<(&'static str, NaiveDate), u64> = BTreeMap::new();
        let mut days = days.finish()?;
        for d in days.by_ref() {
            seen_days.insert(d.day);
            let Some((dir, partner)) = side(d.home, d.resource) else { continue };
            let key =
                busiest.iter().find(|b| b.0 == partner).map_or("other partners".into(), |b| b.1.clone());
            *per_partner_day.entry((key, d.day)).or_default() += d.sign_ins;
            *per_direction_day.entry((dir.as_str(), d.day)).or_default() += d.sign_ins;
        }
        days.finish()?;
        let (bucket, bars) = Bucket::series(&seen_days);
        let index: HashMap<NaiveDate, usize> = bars.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        let mut per_partner: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for ((key, day), n) in per_partner_day {
            per_partner.entry(key).or_insert_with(|| vec![0; bars.len()])[index[&bucket.start(day)]] += n;
        }
        let mut per_direction: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for ((dir, day), n) in per_direction_day {
            per_direction.entry(dir.to_string()).or_insert_with(|| vec![0; bars.len()])
                [index[&bucket.start(day)]] += n;
        }
        let mut per_partner: Vec<(String, Vec<u64>)> = per_partner.into_iter().collect();
        per_partner.sort_by_key(|(k, v)| (k == "other partners", std::cmp::Reverse(v.iter().sum::<u64>())));

        let new_partners_basis = match (period_start, start) {
            (Some(s), _) => format!("first sign-in at or after {} in all the data read", rfc3339(&s)),
            (None, Some(s)) => format!(
                "first sign-in in the last 7 days of the data (since {}); give --since, and a store for a longer memory",
                rfc3339(&s)
            ),
            _ => "no sign-ins".into(),
        };
        Ok(Overview {
            title: "Cross-tenant access report".into(),
            tenant: report.tenant,
            first: t.first_seen,
            last: t.last_seen,
            cross_tenant: inbound.saturating_add(outbound),
            inbound,
            outbound,
            failures: lists.failures,
            policy_blocks: lists.policy_blocks,
            users: all_users,
            bucket,
            days: bars,
            per_partner,
            per_direction: per_direction.into_iter().collect(),
            partner_count: lists.partner_count,
            partners: lists.partners.finish()?,
            failing: lists.failing.finish()?,
            apps: top_apps,
            top_users,
            new_partner_count: lists.new_partner_count,
            new_partners: lists.new_partners.finish()?,
            new_partners_basis,
            idle_partners: lists.idle.map(Spool::finish).transpose()?,
            default_partners: lists.on_default.map(Spool::finish).transpose()?,
            changes: None,
            changes_in_period: 0,
            impact: None,
        })
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
    use crate::analysis::runs::codec::tests::{keys_sort_as_compared, read_back, sample_row};

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

    /// What the rollups give, read whole: the top users and apps, how many
    /// users, and each partner's (id, sign-ins, name, users, app names).
    #[derive(Debug, PartialEq)]
    struct Read {
        top_users: Vec<Top>,
        users: usize,
        top_apps: Vec<Top>,
        partners: Vec<(Guid, u64, Option<Name>, u64, u64)>,
    }

    fn rolled(budget: Option<usize>) -> Read {
        let mut r = Rollups::new(budget);
        rows().iter().for_each(|row| r.add(row));
        let r = r.finish().unwrap();
        let users = r.partner_users.collect_rows().unwrap();
        let apps = r.partner_apps.collect_rows().unwrap();
        let partners = r.partners.collect_rows().unwrap();
        assert_eq!(users.len(), partners.len());
        assert_eq!(apps.len(), partners.len());
        let partners = partners
            .into_iter()
            .zip(users.into_iter().zip(apps))
            .map(|(p, (u, a))| {
                assert_eq!((p.partner, p.partner), (u.tenant, a.tenant));
                (p.partner, p.figures.sign_ins, p.name, u.count, a.count)
            })
            .collect();
        Read { top_users: r.top_users, users: r.users, top_apps: r.top_apps, partners }
    }

    #[test]
    fn the_users_figures_are_the_same_through_the_disk_as_in_memory() {
        let memory = rolled(None);
        for budget in [1, 7, 500] {
            let disk = rolled(Some(budget));
            assert_eq!(disk.top_users, memory.top_users, "budget {budget}");
            assert_eq!(disk.users, memory.users);
            assert_eq!(disk.partners, memory.partners, "budget {budget}");
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
        // Each with the distinct app names of its rows (several ids may
        // share a name).
        let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in rows() {
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            let app = r.app_name.as_deref().or(r.app_id.as_deref()).unwrap_or("-").to_string();
            names.entry(user).or_default().insert(app);
        }
        for t in &memory.top_users {
            assert_eq!(t.apps, names[&t.label].len(), "{}", t.label);
        }
        // Some counted in their sets, some past them in the tally.
        assert!(memory.top_users.iter().any(|t| t.apps <= HELD_A_USER));
        assert!(memory.top_users.iter().any(|t| t.apps > HELD_A_USER));
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
        let partners: Vec<(u64, u64)> =
            partners.values().map(|(u, a)| (u.len() as u64, a.len() as u64)).collect();
        // Some users' partners counted from their sets, some past them
        // from the tally.
        let mut per_user: BTreeMap<String, BTreeSet<Guid>> = BTreeMap::new();
        for r in rows() {
            let user = r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("-").to_string();
            per_user.entry(user).or_default().insert(r.partner_tenant_id);
        }
        assert!(per_user.values().any(|p| p.len() <= HELD_A_USER));
        assert!(per_user.values().any(|p| p.len() > HELD_A_USER));
        for budget in [None, Some(1), Some(7), Some(500)] {
            let rolled = rolled(budget);
            assert_eq!(rolled.top_apps, expected, "budget {budget:?}");
            let got: Vec<(u64, u64)> = rolled.partners.iter().map(|p| (p.3, p.4)).collect();
            assert_eq!(got, partners, "budget {budget:?}");
        }
    }

    /// The partner lists of an overview of [`rows`] (our tenant 999, a
    /// partner 50 first seen outside the rows, a policy configuring 1, 3
    /// and 100), read whole.
    #[derive(Debug, PartialEq)]
    struct Lists {
        count: u64,
        new_count: u64,
        partners: Vec<Top>,
        failing: Vec<Top>,
        new: Vec<Listed>,
        idle: Vec<Listed>,
        on_default: Vec<Listed>,
    }

    fn lists(budget: Option<usize>) -> Lists {
        use crate::model::GroupBy;
        use crate::policy::model::{PartnerConfig, Settings};
        use std::sync::Arc;
        let ours = Some(Guid(999));
        let mut rollups = Rollups::new(budget);
        let mut daily = Daily::new(Window::default(), budget);
        let mut table = ActivityTable::read_back(ours, GroupBy::User);
        for (i, mut r) in rows().into_iter().enumerate() {
            let at = r.counters.first_seen.unwrap() + Duration::hours(i as i64);
            r.counters.first_seen = Some(at);
            r.counters.last_seen = Some(at);
            r.counters.failures = u64::from(i % 3 == 0 && r.partner_tenant_id.0 % 2 == 0);
            r.partner_tenant_name = (i % 5 != 0).then(|| format!("Partner {}", i % 19).into());
            table.count(&r);
            daily.add_row(ours, &r);
            rollups.add(&r);
        }
        let mut late = sample_row();
        late.partner_tenant_id = Guid(50);
        late.counters.first_seen = table.totals.last_seen;
        daily.add_row(ours, &late);
        let partner = |id: u128| {
            let config = PartnerConfig {
                tenant_id: Guid(id),
                is_service_provider: None,
                is_in_multi_tenant_organization: None,
                settings: Settings::default(),
                cloud: None,
                extra: Default::default(),
            };
            (Guid(id), Arc::new(config))
        };
        let policy = Policy { partners: [1, 3, 100].into_iter().map(partner).collect(), ..Policy::default() };
        let o =
            Overview::build(rollups.finish().unwrap(), &table, daily, Some(&policy), None, budget).unwrap();
        let all = |s: Option<Stream<Listed>>| s.unwrap().collect_rows().unwrap();
        Lists {
            count: o.partner_count,
            new_count: o.new_partner_count,
            partners: o.partners.collect_rows().unwrap(),
            failing: o.failing.collect_rows().unwrap(),
            new: o.new_partners.collect_rows().unwrap(),
            idle: all(o.idle_partners),
            on_default: all(o.default_partners),
        }
    }

    #[test]
    fn the_partner_lists_are_the_same_through_the_disk_as_in_memory() {
        let memory = lists(None);
        for budget in [1, 2, 7, 500] {
            assert_eq!(lists(Some(budget)), memory, "budget {budget}");
        }
        let Lists { count, new_count, partners, failing, new, idle, on_default } = memory;
        assert_eq!(count, 7);
        let mut sorted = partners.clone();
        sorted.sort_by(busiest_first);
        assert_eq!(partners, sorted);
        let with_failures: Vec<&Top> = partners.iter().filter(|p| p.failures > 0).collect();
        assert!(!with_failures.is_empty() && with_failures.len() < partners.len());
        assert_eq!(failing.iter().collect::<Vec<_>>(), with_failures);
        // Each partner is named as the last row naming it named it.
        for p in &partners {
            let id: u128 = u128::from_str_radix(&p.id.replace('-', ""), 16).unwrap();
            let last = (0..2000u32).filter(|i| i % 7 == id as u32 && i % 5 != 0).max().unwrap();
            assert!(p.label.starts_with(&format!("Partner {} (", last % 19)), "{p:?}");
        }
        assert_eq!(new_count as usize, new.len());
        assert_eq!(new.last().map(|l| l.label.clone()), Some(Guid(50).to_string()), "{new:?}");
        assert_eq!(idle, vec![Listed { label: Guid(100).to_string(), at: None }]);
        let unconfigured: Vec<&str> = partners
            .iter()
            .filter(|p| ![Guid(1), Guid(3)].iter().any(|g| g.to_string() == p.id))
            .map(|p| p.label.as_str())
            .collect();
        let mut listed: Vec<&str> = on_default.iter().map(|l| l.label.as_str()).collect();
        listed.sort_unstable();
        let mut unconfigured = unconfigured;
        unconfigured.sort_unstable();
        assert_eq!(listed, unconfigured);
    }

    #[test]
    fn the_records_of_apps_and_partners_written_and_read_back_are_the_same() {
        fn again<T: Record + PartialEq + std::fmt::Debug>(record: T) {
            assert_eq!(read_back(&record), record);
        }
        let figures = Figures { sign_ins: 1, failures: 2, us: 3, them: 4, last: None };
        again(AppFigures { app_key: "k\u{0}".into(), label: "Résumé".into(), seq: u64::MAX, figures });
        again(AppUsers { app_key: "".into(), users: 9 });
        again(TenantText { tenant: Guid(7), text: "\u{1b}[31m".into() });
        again(TenantCount { tenant: Guid(u128::MAX), count: u64::MAX });
        again(PartnerFigures { partner: Guid(3), figures, name: Some("P\u{0}".into()), name_seq: 9 });
        again(PartnerFigures { partner: Guid(3), figures, name: None, name_seq: 0 });
        for day in [NaiveDate::MIN, NaiveDate::MAX, NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()] {
            again(DayPair { day, home: Guid(1), resource: Guid(u128::MAX), sign_ins: 4 });
        }
        again(FirstSeen { home: Guid(1), resource: Guid(0), at: DateTime::<Utc>::MIN_UTC });
        let top = Acc { figures, users: 5, apps: 6, label: "Résumé".into() }.top("id".into());
        again(top);
        again(Listed { label: "<b>".into(), at: None });
        again(Listed { label: "".into(), at: Some(DateTime::<Utc>::MAX_UTC) });
    }

    #[test]
    fn each_order_s_bytes_sort_as_its_comparison_does_and_its_key_tells_what_it_does() {
        fn agree<K: Eq, T: std::fmt::Debug>(records: &[T], ByKey { key, order, .. }: &ByKey<K, T>) {
            keys_sort_as_compared(records, *order);
            for a in records {
                for b in records {
                    assert_eq!(key(a) == key(b), (order.cmp)(a, b).is_eq());
                }
            }
        }
        let texts = ["", "a", "a\u{0}", "a\u{0}b", "ab", "b"];
        let figures = Figures::default();
        let (mut users, mut apps, mut app_users, mut partners) = (vec![], vec![], vec![], vec![]);
        let mut user_apps = vec![];
        for x in texts {
            for y in texts {
                let share = UserShare {
                    user: x.into(),
                    app_key: y.into(),
                    app: "".into(),
                    partner: Guid(0),
                    figures,
                };
                users.push(share);
                user_apps.push(OfUser { user: x.into(), of: y.into() });
            }
            apps.push(AppFigures { app_key: x.into(), label: "".into(), seq: 0, figures });
            app_users.push(AppUsers { app_key: x.into(), users: 0 });
            for p in [0, 1, 256, u128::MAX] {
                partners.push(TenantText { tenant: Guid(p), text: x.into() });
            }
        }
        let by_user = ByKey {
            key: |s: &UserShare| (s.user.clone(), s.app_key.clone()),
            order: BY_USER,
            combine: |_, _| {},
        };
        agree(&users, &by_user);
        agree(&user_apps, &OF_USERS);
        agree(&apps, &APP_FIGURES);
        agree(&app_users, &APP_USERS);
        agree(&partners, &TENANT_TEXTS);
        let guids = [0, 1, 256, u128::MAX].map(Guid);
        let days = [
            NaiveDate::MIN,
            NaiveDate::from_ymd_opt(-1, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
            NaiveDate::MAX,
        ];
        let (mut counts, mut named, mut firsts, mut day_pairs, mut tops) =
            (vec![], vec![], vec![], vec![], vec![]);
        for g in guids {
            counts.push(TenantCount { tenant: g, count: 1 });
            named.push(PartnerFigures { partner: g, figures, name: None, name_seq: 0 });
            for h in guids {
                firsts.push(FirstSeen { home: g, resource: h, at: DateTime::<Utc>::MIN_UTC });
                for day in days {
                    day_pairs.push(DayPair { day, home: g, resource: h, sign_ins: 0 });
                }
            }
        }
        for (i, x) in texts.iter().enumerate() {
            for sign_ins in [0, 1, u64::MAX] {
                let figures = Figures { sign_ins, ..figures };
                tops.push(Acc { figures, label: x.to_string(), ..Acc::default() }.top(texts[i / 2].into()));
            }
        }
        agree(&counts, &TENANT_COUNTS);
        agree(&named, &PARTNER_FIGURES);
        agree(&firsts, &FIRST_SEEN);
        agree(&day_pairs, &DAY_PAIRS);
        let busiest = ByKey {
            key: |t: &Top| (t.sign_ins, t.label.clone(), t.id.clone()),
            order: BUSIEST,
            combine: |_, _| {},
        };
        agree(&tops, &busiest);
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
        assert_eq!(read_back(&share), share);
    }
}
