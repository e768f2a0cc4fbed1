//! `xtenant report`: the recurring overview of cross-tenant activity for
//! an identity team, as one self-contained HTML page (inline CSS and SVG,
//! no script, nothing fetched at view time) or Markdown with the same
//! sections.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::rfc3339;
use crate::activity::ActivityReport;
use crate::model::codes::is_policy_block;
use crate::model::{Direction, Guid, SignIn};
use crate::policy::Policy;
use crate::replay::Summary;

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
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    days: HashMap<(NaiveDate, Guid, Guid), DayCount>,
    first_seen: HashMap<(Guid, Guid), DateTime<Utc>>,
}

impl Daily {
    pub fn new(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Daily {
        Daily { since, until, ..Daily::default() }
    }

    pub fn add(&mut self, s: &SignIn) {
        let (Some(h), Some(r)) = (s.home_tenant, s.resource_tenant) else { return };
        if h == r {
            return;
        }
        let f = self.first_seen.entry((h, r)).or_insert(s.time);
        *f = (*f).min(s.time);
        if self.since.is_some_and(|x| s.time < x) || self.until.is_some_and(|x| s.time >= x) {
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
    pub days: Vec<NaiveDate>,
    /// Partner label -> sign-ins per day (index into `days`), top partners and "other".
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
        report: &ActivityReport,
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
        let side = |h: Guid, r: Guid| match ours {
            Some(t) if h == t => Some((Direction::Outbound, r)),
            Some(t) if r == t => Some((Direction::Inbound, h)),
            _ => None,
        };
        let mut days: Vec<NaiveDate> =
            daily.days.keys().map(|k| k.0).collect::<BTreeSet<_>>().into_iter().collect();
        if let (Some(a), Some(b)) = (days.first().copied(), days.last().copied()) {
            days = a.iter_days().take_while(|d| *d <= b).collect();
        }
        let index: HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        let busiest: Vec<String> = partners_top.iter().take(6).map(|p| p.id.clone()).collect();
        let mut per_partner: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut per_direction: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for ((day, h, r), c) in &daily.days {
            let Some((dir, partner)) = side(*h, *r) else { continue };
            let key =
                if busiest.contains(&partner.to_string()) { label(partner) } else { "other partners".into() };
            per_partner.entry(key).or_insert_with(|| vec![0; days.len()])[index[day]] += c.sign_ins;
            per_direction.entry(dir.as_str().to_string()).or_insert_with(|| vec![0; days.len()])
                [index[day]] += c.sign_ins;
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const PALETTE: [&str; 7] = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#94a3b8"];

/// A stacked bar chart as inline SVG: one bar per day, one colour per series.
fn stacked_bars(days: &[NaiveDate], series: &[(String, Vec<u64>)], title: &str) -> String {
    let (w, h, left, bottom, top) = (960.0, 240.0, 48.0, 28.0, 10.0);
    let totals: Vec<u64> = (0..days.len()).map(|i| series.iter().map(|(_, v)| v[i]).sum()).collect();
    let (max, lines) = nice_axis(totals.iter().copied().max().unwrap_or(0).max(1) as f64);
    let plot_h = h - bottom - top;
    let slot = (w - left) / days.len().max(1) as f64;
    let bar = (slot * 0.75).max(1.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    for k in 0..=lines {
        let v = max * k as f64 / lines as f64;
        let y = top + plot_h - plot_h * k as f64 / lines as f64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#6b7280">{}</text>"##,
            left - 6.0,
            y + 4.0,
            v.round()
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (j, (name, v)) in series.iter().enumerate() {
            if v[i] == 0 {
                continue;
            }
            let hgt = plot_h * v[i] as f64 / max;
            y -= hgt;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{hgt:.1}" fill="{}"><title>{d}: {} {}</title></rect>"#,
                PALETTE[j.min(PALETTE.len() - 1)],
                esc(name),
                v[i]
            );
        }
        let step = (days.len() / 12).max(1);
        if i % step == 0 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#6b7280">{}</text>"##,
                x + bar / 2.0,
                h - 8.0,
                d.format("%m-%d")
            );
        }
    }
    svg.push_str("</svg><div class=\"legend\">");
    for (j, (name, v)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<span><i style="background:{}"></i>{} ({})</span>"#,
            PALETTE[j.min(PALETTE.len() - 1)],
            esc(name),
            v.iter().sum::<u64>()
        );
    }
    svg.push_str("</div>");
    svg
}

/// An axis people can read: a step of 1, 2 or 5 times a power of ten,
/// at most five gridlines, the top at or above `v`. Returns (top, lines).
fn nice_axis(v: f64) -> (f64, usize) {
    let raw = (v / 5.0).max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p);
    let lines = ((v / step).ceil() as usize).max(1);
    (step * lines as f64, lines)
}

fn day(t: &Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d").to_string())
}

/// A section's table: (headers, rows), shared by both renderers.
type Grid = (Vec<&'static str>, Vec<Vec<String>>);

fn top_grid(rows: &[Top], first: &'static str, with_apps: bool) -> Grid {
    let mut headers = vec![first, "sign-ins", "users"];
    if with_apps {
        headers.push("apps");
    }
    headers.extend(["failures", "blocked by us", "blocked by partner", "last seen"]);
    let body = rows
        .iter()
        .map(|r| {
            let mut v = vec![r.label.clone(), r.sign_ins.to_string(), r.users.to_string()];
            if with_apps {
                v.push(r.apps.to_string());
            }
            v.extend([
                r.failures.to_string(),
                r.blocks_by_us.to_string(),
                r.blocks_by_partner.to_string(),
                day(&r.last_seen),
            ]);
            v
        })
        .collect();
    (headers, body)
}

/// Every section after the headline, in order: (title, intro, grid).
fn sections(o: &Overview) -> Vec<(String, String, Option<Grid>)> {
    let mut out = vec![];
    out.push((
        "Partners".into(),
        "Cross-tenant sign-ins by partner tenant, both directions.".into(),
        Some(top_grid(&o.partners, "partner", true)),
    ));
    out.push(("Top apps".into(), String::new(), Some(top_grid(&o.apps, "app", false))));
    out.push(("Top users".into(), String::new(), Some(top_grid(&o.top_users, "user", true))));
    let list = |v: &[String]| -> Grid { (vec!["partner"], v.iter().map(|p| vec![p.clone()]).collect()) };
    out.push((
        "Partners seen for the first time".into(),
        o.new_partners_basis.clone(),
        Some((
            vec!["partner", "first sign-in"],
            o.new_partners.iter().map(|(p, t)| vec![p.clone(), rfc3339(t)]).collect(),
        )),
    ));
    match &o.idle_partners {
        Some(v) => out.push((
            "Configured partners with no activity".into(),
            "Partner configurations in the current policy with no sign-in in the period: candidates for clean-up.".into(),
            Some(list(v)),
        )),
        None => out.push(("Configured partners with no activity".into(), "Give --current POLICY to list them.".into(), None)),
    }
    match &o.default_partners {
        Some(v) => out.push((
            "Partners on the default policy".into(),
            "Partners seen in the period that have no configuration of their own: the default settings decide for them.".into(),
            Some(list(v)),
        )),
        None => out.push(("Partners on the default policy".into(), "Give --current POLICY to list them.".into(), None)),
    }
    let blocks: Vec<&Top> = o.partners.iter().filter(|p| p.failures > 0).collect();
    out.push((
        "Failures and policy blocks".into(),
        "Blocked by us: our cross-tenant settings refused (AADSTS500213 inbound, 500212 outbound). Blocked by partner: theirs did.".into(),
        Some((
            vec!["partner", "sign-ins", "failures", "blocked by us", "blocked by partner"],
            blocks
                .iter()
                .map(|p| {
                    vec![
                        p.label.clone(),
                        p.sign_ins.to_string(),
                        p.failures.to_string(),
                        p.blocks_by_us.to_string(),
                        p.blocks_by_partner.to_string(),
                    ]
                })
                .collect(),
        )),
    ));
    match &o.changes {
        Some(c) => out.push((
            "Policy changes".into(),
            "From the audit log; flagged changes were followed by new policy blocks (xtenant timeline)."
                .into(),
            Some((
                vec!["time", "change", "partner", "what changed", "flag"],
                c.iter()
                    .map(|(t, k, p, lines, f)| {
                        vec![
                            rfc3339(t),
                            k.clone(),
                            p.clone(),
                            lines.join("; "),
                            if *f { "new blocks".into() } else { String::new() },
                        ]
                    })
                    .collect(),
            )),
        )),
        None => out.push((
            "Policy changes".into(),
            "Give --audit PATH (or a store with audit events) to list them.".into(),
            None,
        )),
    }
    match &o.impact {
        Some(s) => {
            let line: Vec<String> = ["lost", "degraded", "unknown", "gained"]
                .iter()
                .map(|k| {
                    let (n, si) = s.impacts.get(k).copied().unwrap_or_default();
                    format!("{n} {k} ({si} sign-ins)")
                })
                .collect();
            out.push((
                "Impact of the proposed policy".into(),
                format!(
                    "Groups of sign-ins (partner, app, user): {}. Details: xtenant replay.",
                    line.join(", ")
                ),
                Some((
                    vec![
                        "partner",
                        "lost users",
                        "lost apps",
                        "lost sign-ins",
                        "degraded users",
                        "unknown sign-ins",
                        "gained sign-ins",
                    ],
                    s.partners
                        .iter()
                        .map(|p| {
                            let mut row = vec![p
                                .partner_tenant_name
                                .clone()
                                .map_or(p.partner_tenant_id.clone(), |n| {
                                    format!("{n} ({})", &p.partner_tenant_id[..8])
                                })];
                            row.extend(p.count_cells());
                            row
                        })
                        .collect(),
                )),
            ));
        }
        None => out.push((
            "Impact of the proposed policy".into(),
            "Give --proposed POLICY to replay the period against it.".into(),
            None,
        )),
    }
    out
}

fn headline(o: &Overview) -> Vec<(&'static str, String)> {
    vec![
        ("cross-tenant sign-ins", o.cross_tenant.to_string()),
        ("inbound", o.inbound.to_string()),
        ("outbound", o.outbound.to_string()),
        ("partners", o.partners.len().to_string()),
        ("users", o.users.to_string()),
        ("failures", o.failures.to_string()),
        ("policy blocks", o.policy_blocks.to_string()),
        ("new partners", o.new_partners.len().to_string()),
    ]
}

fn period(o: &Overview) -> String {
    format!(
        "{} to {}{}",
        day(&o.first),
        day(&o.last),
        o.tenant.map_or(String::new(), |t| format!(" · tenant {t}"))
    )
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;margin:0;background:#f8fafc}
main{max-width:1040px;margin:0 auto;padding:24px}h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}
.sub{color:#6b7280;margin:0 0 16px}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}.card b{display:block;font-size:22px}
.card span{color:#6b7280;font-size:12px}section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;margin-top:14px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f1f5f9}
th{color:#374151;font-weight:600;background:#f8fafc}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;color:#374151;margin-top:4px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
p.note{color:#6b7280;margin:4px 0 8px}footer{color:#9ca3af;font-size:12px;margin-top:24px}";

pub fn html(o: &Overview) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main><h1>{}</h1><p class=\"sub\">{}</p><div class=\"cards\">",
        esc(&o.title),
        esc(&o.title),
        esc(&period(o))
    );
    for (k, v) in headline(o) {
        let _ = write!(h, "<div class=\"card\"><b>{}</b><span>{}</span></div>", esc(&v), esc(k));
    }
    h.push_str("</div>");
    if !o.days.is_empty() {
        let _ = write!(
            h,
            "<section><h2>Sign-ins per day by partner</h2>{}</section><section><h2>Inbound and outbound per day</h2>{}</section>",
            stacked_bars(&o.days, &o.per_partner, "Cross-tenant sign-ins per day by partner"),
            stacked_bars(&o.days, &o.per_direction, "Cross-tenant sign-ins per day by direction")
        );
    }
    for (title, intro, grid) in sections(o) {
        let _ = write!(h, "<section><h2>{}</h2>", esc(&title));
        if !intro.is_empty() {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(&intro));
        }
        if let Some((headers, rows)) = grid {
            if rows.is_empty() {
                h.push_str("<p class=\"note\">None.</p>");
            } else {
                let numeric = |i: usize| rows.iter().all(|r| r[i].parse::<f64>().is_ok());
                h.push_str("<table><thead><tr>");
                for (i, c) in headers.iter().enumerate() {
                    let _ = write!(h, "<th{}>{}</th>", if numeric(i) { " class=\"n\"" } else { "" }, esc(c));
                }
                h.push_str("</tr></thead><tbody>");
                for r in &rows {
                    h.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let _ =
                            write!(h, "<td{}>{}</td>", if numeric(i) { " class=\"n\"" } else { "" }, esc(c));
                    }
                    h.push_str("</tr>");
                }
                h.push_str("</tbody></table>");
            }
        }
        h.push_str("</section>");
    }
    let _ = writeln!(
        h,
        "<footer>xtenant {} · report schema {}</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        super::SCHEMA_VERSION
    );
    h
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(o: &Overview) -> String {
    let mut m = format!("# {}\n\n{}\n\n", o.title, period(o));
    m.push_str("| figure | value |\n|---|---:|\n");
    for (k, v) in headline(o) {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    if !o.days.is_empty() {
        m.push_str("\n## Sign-ins per day\n\n| day | inbound | outbound |\n|---|---:|---:|\n");
        let get =
            |name: &str, i: usize| o.per_direction.iter().find(|(k, _)| k == name).map_or(0, |(_, v)| v[i]);
        for (i, d) in o.days.iter().enumerate() {
            let _ = writeln!(m, "| {d} | {} | {} |", get("inbound", i), get("outbound", i));
        }
    }
    for (title, intro, grid) in sections(o) {
        let _ = write!(m, "\n## {title}\n\n");
        if !intro.is_empty() {
            let _ = write!(m, "{intro}\n\n");
        }
        if let Some((headers, rows)) = grid {
            if rows.is_empty() {
                m.push_str("None.\n");
                continue;
            }
            let _ = writeln!(m, "| {} |", headers.join(" | "));
            let _ = writeln!(m, "|{}", "---|".repeat(headers.len()));
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                let _ = writeln!(m, "| {} |", cells.join(" | "));
            }
        }
    }
    m
}
