//! Rendering `propose`: the policy document, and the rationale for people.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::escape::{code_span, markdown as md};
use super::Each;
use crate::analysis::propose::Proposal;
use crate::analysis::replay::Impact;
use crate::model::rfc3339;
use crate::policy::model::{DefaultConfig, PartnerConfig, Section, Settings, Targets};

/// Our combined policy document (`{"allowedCloudEndpoints", "default",
/// "partners"}`, as [`crate::policy::load::Combined`] writes a policy),
/// which every other command reads; written as the plans are read, one
/// partner's entry in memory at a time.
pub(crate) fn write_combined(out: &mut dyn std::io::Write, p: Proposal) -> anyhow::Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase", bound(serialize = "Each<I>: Serialize"))]
    struct Combined<'a, I> {
        allowed_cloud_endpoints: [&'a str; 0],
        default: &'a DefaultConfig,
        partners: Each<I>,
    }
    let Proposal { mut partners, entries, default, .. } = p;
    let entries = partners.by_ref().map(|plan| PartnerConfig::clone(&entries.of(&plan)));
    super::write_json(
        out,
        &Combined { allowed_cloud_endpoints: [], default: &default, partners: Each::new(entries) },
    )?;
    partners.finish()
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::CollaborationInbound => "B2B collaboration inbound",
        Section::CollaborationOutbound => "B2B collaboration outbound",
        Section::DirectConnectInbound => "B2B direct connect inbound",
        Section::DirectConnectOutbound => "B2B direct connect outbound",
    }
}

fn list(items: impl ExactSizeIterator<Item = impl AsRef<str>>, all: &str) -> String {
    let count = items.len();
    if count == 0 {
        return all.to_string();
    }
    let shown: Vec<String> = items.take(10).map(|item| code_span(item.as_ref())).collect();
    match count {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// The rationale: per partner what is allowed and the evidence, what is
/// left out and why, and the replay of the proposal against the same logs.
pub(crate) fn write_markdown(w: &mut dyn std::io::Write, p: Proposal) -> anyhow::Result<()> {
    let Proposal { mut partners, mut left_out, mut removed, .. } = p;
    let mut out = String::new();
    let _ = writeln!(out, "# Proposed cross-tenant access policy\n");
    let _ = writeln!(
        out,
        "Default: B2B collaboration and B2B direct connect blocked both ways, no inbound trust. \
         {} partner(s) allowed for exactly what their sign-ins used.\n",
        p.partner_count
    );
    for plan in partners.by_ref() {
        w.write_all(out.as_bytes())?;
        out.clear();
        let name =
            plan.partner_tenant_name.as_deref().map(md).unwrap_or_else(|| "(no name in the logs)".into());
        let _ = writeln!(out, "## {name} ({})\n", plan.partner_tenant_id);
        if let Some(reason) = &plan.kept {
            let _ = writeln!(out, "- Kept by --keep, without needing evidence: {}", md(reason));
        }
        for s in &plan.sections {
            let everyone = if s.section.is_inbound() {
                "all (the partner's users; their home ids are not in our logs)"
            } else {
                "all"
            };
            let mut users = if s.users.is_empty() && !s.groups.is_empty() {
                String::new()
            } else {
                list(s.users.iter().map(|t| t.target.as_str()), everyone)
            };
            for g in &s.groups {
                let extra = g.members.saturating_sub(g.observed);
                let _ = write!(
                    users,
                    "{}group {} ({} of the users seen{})",
                    if users.is_empty() { "" } else { ", " },
                    code_span(&g.group),
                    g.observed,
                    if extra > 0 { format!(", and {extra} member(s) not seen") } else { String::new() }
                );
            }
            let evidence = if s.sign_ins == 0 && s.failed_attempts > 0 {
                format!(
                    "no successful sign-in; {} failed attempt(s) the current policy allows, kept (the proposal only narrows)",
                    s.failed_attempts
                )
            } else {
                format!("{} successful sign-in(s)", s.sign_ins)
            };
            let _ = writeln!(
                out,
                "- **{}** allowed: users {}; apps {}. Evidence: {evidence}, {} user(s), last {}.{}",
                section_name(s.section),
                users,
                list(s.apps.iter().map(String::as_str), "all"),
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
        let direct_inbound = plan.sections.iter().any(|s| s.section == Section::DirectConnectInbound);
        let _ = writeln!(
            out,
            "- Inbound trust: {}.{}\n",
            if trusted.is_empty() {
                "none (no sign-in relied on the partner's claims)".to_string()
            } else {
                format!("{} (without it, replay shows sign-ins lost or degraded)", trusted.join(", "))
            },
            if direct_inbound && !plan.trust_mfa {
                " `policy check` warns that B2B direct connect users can meet an MFA requirement only with \
                 trusted MFA; none of this partner's direct connect sign-ins needed it, so it is not \
                 trusted: turn it on before a Conditional Access policy asks them for MFA"
            } else {
                ""
            }
        );
    }
    partners.finish()?;
    if p.left_out_count > 0 {
        let _ = writeln!(out, "## Seen but not allowed\n");
        for l in left_out.by_ref() {
            w.write_all(out.as_bytes())?;
            out.clear();
            let name = l.partner_tenant_name.as_deref().map(md).unwrap_or_default();
            let _ = writeln!(out, "- {name} ({}): {}", l.partner_tenant_id, md(&l.reason));
        }
        out.push('\n');
    }
    left_out.finish()?;
    if !p.dropped.is_empty() || p.not_granted > 0 || p.removed_count > 0 {
        let _ = writeln!(out, "## Removed from the current policy\n");
        let _ = writeln!(
            out,
            "Allowed today, not by the proposal: no successful sign-in in the period used it.\n"
        );
        if p.removed_count > 0 {
            let _ = writeln!(out, "| scope | setting | no longer allowed |\n|---|---|---|");
            for r in removed.by_ref() {
                w.write_all(out.as_bytes())?;
                out.clear();
                let scope = r
                    .partner
                    .map_or_else(|| "default (tenants without an entry)".to_string(), |g| g.to_string());
                let _ = writeln!(out, "| {scope} | `{}` | {} |", r.setting, md(&r.removed));
            }
            out.push('\n');
        }
        for d in &p.dropped {
            let _ = writeln!(
                out,
                "- partner {d}: configured today, no successful sign-in in the period (its entry is deleted)"
            );
        }
        if p.not_granted > 0 {
            let _ = writeln!(
                out,
                "- {} successful sign-in(s) the current policy blocks today (it changed after them): not granted again",
                p.not_granted
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Replay of the proposal against the same sign-ins\n");
    let _ = writeln!(out, "| impact | groups | sign-ins |\n|---|---:|---:|");
    for i in Impact::ALL {
        let (groups, sign_ins) = p.proof.get(i.as_str()).copied().unwrap_or_default();
        let _ = writeln!(out, "| {} | {groups} | {sign_ins} |", i.as_str());
    }
    removed.finish()?;
    w.write_all(out.as_bytes())?;
    Ok(())
}

const GRAPH: &str = "https://graph.microsoft.com/v1.0/policies/crossTenantAccessPolicy";

/// One Microsoft Graph call that applies part of the proposal.
pub(crate) struct Call {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) body: Option<Body>,
    /// For the PowerShell form: the cmdlet and the partner it names.
    pub(crate) cmdlet: &'static str,
    pub(crate) partner: Option<String>,
}

/// A body as Graph takes it: no nulls, no read-only fields. Its target
/// lists are written from the policy as the body is, never copied into a
/// JSON value: a partner naming a million users is some 300 MB as one
/// (three such partners took `propose --format graph` to 1.5 GB).
pub(crate) struct Body {
    /// The body with every target list empty.
    skeleton: Value,
    /// The target lists, by section and half (`usersAndGroups`, `applications`).
    lists: Vec<(&'static str, &'static str, Targets)>,
}

impl Body {
    /// The body of `config` (the default's or a partner's, whose settings
    /// `settings` finds) without the keys `drop`.
    fn of<T: Serialize>(mut config: T, settings: fn(&mut T) -> &mut Settings, drop: &[&str]) -> Body {
        let mut lists = Vec::new();
        for section in Section::ALL {
            if let Some(b) = settings(&mut config).section_mut(section) {
                for (half, t) in
                    [("usersAndGroups", &mut b.users_and_groups), ("applications", &mut b.applications)]
                {
                    if let Some(t) = t {
                        lists.push((section.name(), half, std::mem::take(&mut t.targets)));
                    }
                }
            }
        }
        let mut skeleton = serde_json::to_value(&config).unwrap_or_default();
        if let Value::Object(m) = &mut skeleton {
            for k in drop {
                m.remove(*k);
            }
        }
        prune(&mut skeleton);
        Body { skeleton, lists }
    }
}

/// Removes every null.
fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(prune);
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Filled { body: self, value: &self.skeleton, path: [""; 2], depth: 0 }.serialize(s)
    }
}

/// Part of a body's skeleton at `path`, its target lists filled in.
struct Filled<'a> {
    body: &'a Body,
    value: &'a Value,
    path: [&'a str; 2],
    depth: usize,
}

impl Serialize for Filled<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(m) = self.value else { return self.value.serialize(s) };
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            if self.depth < 2 {
                let mut path = self.path;
                path[self.depth] = k;
                map.serialize_entry(k, &Filled { body: self.body, value: v, path, depth: self.depth + 1 })?;
                continue;
            }
            let list = (k == "targets")
                .then(|| self.body.lists.iter().find(|(s, h, _)| [*s, *h] == self.path))
                .flatten();
            match list {
                Some((_, _, targets)) => map.serialize_entry(k, targets)?,
                None => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// The calls that apply the proposal, in order: the default, then each
/// partner (created, or updated when `--current` has it), then the
/// partners the proposal drops. Each body is built when its call is taken,
/// so that one partner's is in memory at a time.
fn calls<'a>(
    default: &DefaultConfig,
    entries: impl Iterator<Item = std::sync::Arc<PartnerConfig>> + 'a,
    current: &'a std::collections::BTreeSet<crate::model::Guid>,
    dropped: &'a [crate::model::Guid],
) -> impl Iterator<Item = Call> + 'a {
    let first = Call {
        method: "PATCH",
        url: format!("{GRAPH}/default"),
        body: Some(Body::of(default.clone(), |d| &mut d.settings, &["isServiceDefault"])),
        cmdlet: "Update-MgPolicyCrossTenantAccessPolicyDefault",
        partner: None,
    };
    let partners = entries.map(move |partner| {
        let id = partner.tenant_id.to_string();
        let config = PartnerConfig::clone(&partner);
        if current.contains(&partner.tenant_id) {
            Call {
                method: "PATCH",
                url: format!("{GRAPH}/partners/{id}"),
                body: Some(Body::of(config, |p| &mut p.settings, &["tenantId"])),
                cmdlet: "Update-MgPolicyCrossTenantAccessPolicyPartner",
                partner: Some(id),
            }
        } else {
            Call {
                method: "POST",
                url: format!("{GRAPH}/partners"),
                body: Some(Body::of(config, |p| &mut p.settings, &[])),
                cmdlet: "New-MgPolicyCrossTenantAccessPolicyPartner",
                partner: None,
            }
        }
    });
    let dropped = dropped.iter().map(|g| Call {
        method: "DELETE",
        url: format!("{GRAPH}/partners/{g}"),
        body: None,
        cmdlet: "Remove-MgPolicyCrossTenantAccessPolicyPartner",
        partner: Some(g.to_string()),
    });
    std::iter::once(first).chain(partners).chain(dropped)
}

/// One `$batch` request body: its calls numbered from `first_id`, each
/// depending on the one before so that they run in order.
struct Batch {
    first_id: usize,
    calls: Vec<Call>,
}

#[derive(Serialize)]
struct Request<'a> {
    id: String,
    method: &'static str,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Body>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<JsonContent>,
    #[serde(rename = "dependsOn", skip_serializing_if = "Option::is_none")]
    depends_on: Option<[String; 1]>,
}

#[derive(Serialize)]
struct JsonContent {
    #[serde(rename = "Content-Type")]
    content_type: &'static str,
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let requests = self.calls.iter().enumerate().map(|(i, c)| {
            let id = self.first_id + i;
            Request {
                id: id.to_string(),
                method: c.method,
                url: c.url.trim_start_matches("https://graph.microsoft.com/v1.0"),
                body: c.body.as_ref(),
                headers: c.body.as_ref().map(|_| JsonContent { content_type: "application/json" }),
                depends_on: (i > 0).then(|| [(id - 1).to_string()]),
            }
        });
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("requests", &super::Each::new(requests))?;
        map.end()
    }
}

/// The calls as JSON batches for `POST https://graph.microsoft.com/v1.0/$batch`
/// (at most 20 requests each, Graph's limit), written one batch at a time.
pub(crate) fn write_graph(out: &mut dyn std::io::Write, p: Proposal) -> anyhow::Result<()> {
    let Proposal { default, mut partners, entries, current_partners, dropped, .. } = p;
    let mut calls =
        calls(&default, partners.by_ref().map(|plan| entries.of(&plan)), &current_partners, &dropped);
    let batches = (0..).map_while(move |b| {
        let chunk: Vec<Call> = calls.by_ref().take(20).collect();
        (!chunk.is_empty()).then_some(Batch { first_id: b * 20 + 1, calls: chunk })
    });
    super::write_json(out, &super::Each::new(batches))?;
    partners.finish()
}

/// A Microsoft Graph PowerShell script making the same calls: stops at the
/// first error; `-DryRun` prints each call instead of making it. Written
/// one call at a time.
pub(crate) fn write_powershell(out: &mut dyn std::io::Write, p: Proposal) -> anyhow::Result<()> {
    let Proposal { default, mut partners, entries, current_partners, dropped, .. } = p;
    out.write_all(
        b"# Applies the proposed cross-tenant access policy (xtenant propose).\n\
         # Needs Microsoft.Graph.Identity.SignIns and Policy.ReadWrite.CrossTenantAccess:\n\
         #   Connect-MgGraph -Scopes Policy.ReadWrite.CrossTenantAccess\n\
         # Run with -DryRun first: it prints every call and changes nothing.\n\
         param([switch]$DryRun)\n\
         $ErrorActionPreference = 'Stop'\n\n",
    )?;
    let calls = calls(&default, partners.by_ref().map(|plan| entries.of(&plan)), &current_partners, &dropped);
    for (i, c) in calls.enumerate() {
        writeln!(out, "# {} {} {}", i + 1, c.method, c.url)?;
        let mut args = String::new();
        if let Some(id) = &c.partner {
            args.push_str(&format!(" -CrossTenantAccessPolicyConfigurationPartnerTenantId '{id}'"));
        }
        if let Some(b) = &c.body {
            out.write_all(b"$body = @'\n")?;
            serde_json::to_writer_pretty(&mut *out, b)?;
            out.write_all(b"\n'@ | ConvertFrom-Json -AsHashtable\n")?;
            args.push_str(" -BodyParameter $body");
        }
        writeln!(
            out,
            "if ($DryRun) {{ Write-Host 'would run: {cmd}{shown}' }} else {{ {cmd}{args} }}\n",
            cmd = c.cmdlet,
            shown = args.replace('\'', "''"),
        )?;
    }
    partners.finish()
}
