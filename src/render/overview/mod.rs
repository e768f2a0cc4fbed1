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

use crate::analysis::overview::{Overview, Top};
use crate::model::rfc3339;

pub(super) fn day(t: &Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d").to_string())
}

/// A section's table: (headers, rows), shared by both renderers.
pub(super) type Grid = (Vec<&'static str>, Vec<Vec<String>>);

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
pub(super) fn sections(o: &Overview) -> Vec<(String, String, Option<Grid>)> {
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
        Some((s, partners)) => {
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
                    partners
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

pub(super) fn headline(o: &Overview) -> Vec<(&'static str, String)> {
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

pub(super) fn period(o: &Overview) -> String {
    format!(
        "{} to {}{}",
        day(&o.first),
        day(&o.last),
        o.tenant.map_or(String::new(), |t| format!(" · tenant {t}"))
    )
}
