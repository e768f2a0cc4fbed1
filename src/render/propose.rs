//! Rendering `propose`: the policy document, and the rationale for people.

use std::fmt::Write as _;

use serde_json::Value;

use super::escape::{code_span, markdown as md};
use crate::analysis::propose::Proposal;
use crate::analysis::replay::{summarize, Impact};
use crate::model::rfc3339;
use crate::policy::load::to_combined_json;
use crate::policy::model::Section;

/// Our combined policy document (`{"allowedCloudEndpoints", "default",
/// "partners"}`), which every other command reads.
pub(crate) fn combined(p: &Proposal) -> Value {
    to_combined_json(&p.policy)
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::CollaborationInbound => "B2B collaboration inbound",
        Section::CollaborationOutbound => "B2B collaboration outbound",
        Section::DirectConnectInbound => "B2B direct connect inbound",
        Section::DirectConnectOutbound => "B2B direct connect outbound",
    }
}

fn list(items: &[String], all: &str) -> String {
    if items.is_empty() {
        return all.to_string();
    }
    let shown: Vec<String> = items.iter().take(10).map(|i| code_span(i)).collect();
    match items.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// The rationale: per partner what is allowed and the evidence, what is
/// left out and why, and the replay of the proposal against the same logs.
pub(crate) fn markdown(p: &Proposal) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Proposed cross-tenant access policy\n");
    let _ = writeln!(
        out,
        "Default: B2B collaboration and B2B direct connect blocked both ways, no inbound trust. \
         {} partner(s) allowed for exactly what their sign-ins used.\n",
        p.partners.len()
    );
    for plan in &p.partners {
        let name =
            plan.partner_tenant_name.as_deref().map(md).unwrap_or_else(|| "(no name in the logs)".into());
        let _ = writeln!(out, "## {name} ({})\n", plan.partner_tenant_id);
        for s in &plan.sections {
            let _ = writeln!(
                out,
                "- **{}** allowed: users {}; apps {}. Evidence: {} successful sign-in(s), {} user(s), last {}.{}",
                section_name(s.section),
                list(&s.users, "all (the partner's users; their home ids are not in our logs)"),
                list(&s.apps, "all"),
                s.sign_ins,
                s.distinct_users,
                s.last_seen.as_ref().map_or("-".into(), rfc3339),
                s.widened.as_deref().map(|w| format!(" Widened: {w}.")).unwrap_or_default()
            );
        }
        let trusted: Vec<&str> = [
            (plan.trust_mfa, "MFA"),
            (plan.trust_compliant_device, "compliant devices"),
            (plan.trust_hybrid_joined_device, "hybrid joined devices"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        let _ = writeln!(
            out,
            "- Inbound trust: {}.\n",
            if trusted.is_empty() {
                "none (no sign-in relied on the partner's claims)".to_string()
            } else {
                format!("{} (without it, replay shows sign-ins lost or degraded)", trusted.join(", "))
            }
        );
    }
    if !p.left_out.is_empty() {
        let _ = writeln!(out, "## Seen but not allowed\n");
        for l in &p.left_out {
            let name = l.partner_tenant_name.as_deref().map(md).unwrap_or_default();
            let _ = writeln!(out, "- {name} ({}): {}", l.partner_tenant_id, md(&l.reason));
        }
        out.push('\n');
    }
    let summary = summarize(&p.replayed, None, false);
    let _ = writeln!(out, "## Replay of the proposal against the same sign-ins\n");
    let _ = writeln!(out, "| impact | groups | sign-ins |\n|---|---:|---:|");
    for i in [Impact::Lost, Impact::Degraded, Impact::Unknown, Impact::Gained, Impact::Unchanged] {
        let (groups, sign_ins) = summary.impacts.get(i.as_str()).copied().unwrap_or_default();
        let _ = writeln!(out, "| {} | {groups} | {sign_ins} |", i.as_str());
    }
    out
}
