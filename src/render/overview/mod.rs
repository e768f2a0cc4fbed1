//! The overview report ([`crate::analysis::overview::Overview`]) drawn as
//! one self-contained HTML page ([`html`](mod@html): inline CSS and SVG, no script,
//! nothing fetched at view time) or Markdown ([`markdown`](mod@markdown)) with the same
//! sections, laid out once here.

mod html;
mod markdown;
mod svg;

pub(crate) use html::html;
pub(crate) use markdown::markdown;

use chrono::{DateTime, Utc};

use anyhow::Result;

use crate::analysis::overview::{Listed, Overview, Top};
use crate::analysis::runs::Stream;
use crate::model::rfc3339;

pub(super) fn day(t: &Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d").to_string())
}

/// A section's table, shared by both renderers: its headers and its rows,
/// read once as the document is written (a forged export's million
/// partners are not held), an error if a row could not be read.
pub(super) struct Grid {
    pub(super) headers: Vec<&'static str>,
    pub(super) rows: Box<dyn Iterator<Item = Result<Vec<String>>>>,
}

impl Grid {
    fn new(headers: Vec<&'static str>, rows: impl Iterator<Item = Result<Vec<String>>> + 'static) -> Grid {
        Grid { headers, rows: Box::new(rows) }
    }
}

/// Whether a column holds counts (right-aligned in HTML): told by its
/// header, not by its cells, which are read once as they are written and
/// may be anything another tenant named.
pub(super) fn is_count(header: &str) -> bool {
    const TEXTS: [&str; 9] =
        ["partner", "app", "user", "last seen", "first sign-in", "time", "change", "what changed", "flag"];
    !TEXTS.contains(&header)
}

fn top_row(r: &Top, with_apps: bool) -> Vec<String> {
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
}

fn top_grid(rows: impl Iterator<Item = Result<Top>> + 'static, first: &'static str, with_apps: bool) -> Grid {
    let mut headers = vec![first, "sign-ins", "users"];
    if with_apps {
        headers.push("apps");
    }
    headers.extend(["failures", "blocked by us", "blocked by partner", "last seen"]);
    Grid::new(headers, rows.map(move |r| r.map(|r| top_row(&r, with_apps))))
}

fn listed_grid(rows: Stream<Listed>) -> Grid {
    Grid::new(vec!["partner"], rows.into_results().map(|r| r.map(|l| vec![l.label])))
}

/// Every section after the headline, in order: (title, intro, grid). The
/// lists of partners are read from `o` as they are written.
pub(super) fn sections(o: Overview) -> Vec<(String, String, Option<Grid>)> {
    let mut out = vec![
        (
            "Partners".into(),
            "Cross-tenant sign-ins by partner tenant, both directions.".into(),
            Some(top_grid(o.partners.into_results(), "partner", true)),
        ),
        ("Top apps".into(), String::new(), Some(top_grid(o.apps.into_iter().map(Ok), "app", false))),
        ("Top users".into(), String::new(), Some(top_grid(o.top_users.into_iter().map(Ok), "user", true))),
        (
            "Partners seen for the first time".into(),
            o.new_partners_basis,
            Some(Grid::new(
                vec!["partner", "first sign-in"],
                o.new_partners
                    .into_results()
                    .map(|r| r.map(|l| vec![l.label, l.at.as_ref().map_or_else(String::new, rfc3339)])),
            )),
        ),
    ];
    match o.idle_partners {
        Some(v) => out.push((
            "Configured partners with no activity".into(),
            "Partner configurations in the current policy with no sign-in in the period: candidates for clean-up.".into(),
            Some(listed_grid(v)),
        )),
        None => out.push(("Configured partners with no activity".into(), "Give --current POLICY to list them.".into(), None)),
    }
    match o.default_partners {
        Some(v) => out.push((
            "Partners on the default policy".into(),
            "Partners seen in the period that have no configuration of their own: the default settings decide for them.".into(),
            Some(listed_grid(v)),
        )),
        None => out.push(("Partners on the default policy".into(), "Give --current POLICY to list them.".into(), None)),
    }
    out.push((
        "Failures and policy blocks".into(),
        "Blocked by us: our cross-tenant settings refused (AADSTS500213 inbound, 500212 outbound). Blocked by partner: theirs did.".into(),
        Some(Grid::new(
            vec!["partner", "sign-ins", "failures", "blocked by us", "blocked by partner"],
            o.failing.into_results().map(|p| {
                p.map(|p| {
                    vec![
                        p.label,
                        p.sign_ins.to_string(),
                        p.failures.to_string(),
                        p.blocks_by_us.to_string(),
                        p.blocks_by_partner.to_string(),
                    ]
                })
            }),
        )),
    ));
    match o.changes {
        Some(c) => out.push((
            "Policy changes".into(),
            if o.changes_in_period > c.len() as u64 {
                format!(
                    "From the audit log, the newest {} of {} changes in the period (xtenant timeline lists them all); flagged changes were followed by new policy blocks.",
                    c.len(),
                    o.changes_in_period
                )
            } else {
                "From the audit log; flagged changes were followed by new policy blocks (xtenant timeline).".into()
            },
            Some(Grid::new(
                vec!["time", "change", "partner", "what changed", "flag"],
                c.into_iter().map(|(t, k, p, lines, f)| {
                    Ok(vec![
                        rfc3339(&t),
                        k,
                        p,
                        lines.join("; "),
                        f.unwrap_or_default().to_string(),
                    ])
                }),
            )),
        )),
        None => out.push((
            "Policy changes".into(),
            "Give --audit PATH (or a store with audit events) to list them.".into(),
            None,
        )),
    }
    match o.impact {
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
                Some(Grid::new(
                    vec![
                        "partner",
                        "lost users",
                        "lost apps",
                        "lost sign-ins",
                        "degraded users",
                        "unknown sign-ins",
                        "gained sign-ins",
                    ],
                    s.partners.take().into_results().map(|p| {
                        p.map(|p| {
                            let mut row = vec![p
                                .partner_tenant_name
                                .clone()
                                .map_or(p.partner_tenant_id.clone(), |n| {
                                    format!("{n} ({})", &p.partner_tenant_id[..8])
                                })];
                            row.extend(p.count_cells());
                            row
                        })
                    }),
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

pub(super) fn headline(o: &Overview) -> Vec<(&'static str, String)> {
    vec![
        ("cross-tenant sign-ins", o.cross_tenant.to_string()),
        ("inbound", o.inbound.to_string()),
        ("outbound", o.outbound.to_string()),
        ("partners", o.partner_count.to_string()),
        ("users", o.users.to_string()),
        ("failures", o.failures.to_string()),
        ("policy blocks", o.policy_blocks.to_string()),
        ("new partners", o.new_partner_count.to_string()),
    ]
}

pub(super) fn period(o: &Overview) -> String {
    format!(
        "{} to {}{}",
        day(&o.first),
        day(&o.last),
        o.tenant.map_or(String::new(), |t| format!(" · tenant {t}"))
    )
}
