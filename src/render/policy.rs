//! `policy show`, `check` and `diff`, for people and machines.

use serde_json::{json, Value};

use super::style::paint;
use super::{table, SCHEMA_VERSION};
use crate::policy::diff::Change;
use crate::policy::load::Combined;
use crate::policy::model::{Policy, Section, Target, TargetConfig};
use crate::policy::resolve::{Effective, Sourced};
use crate::policy::validate::{Problem, Severity};

/// A policy in our combined format (`policy default`).
pub(crate) fn combined(p: &Policy) -> Combined<'_> {
    Combined::of(p)
}

fn sourced_json<T: serde::Serialize>(s: &Sourced<T>) -> Value {
    json!({"value": s.value, "from": s.origin.as_str()})
}

/// A scope's settings as `policy show --format json` writes them, its
/// target lists serialized straight from the policy: a half naming a
/// million users is some 300 MB as a JSON value.
struct EffectiveJson<'a>(&'a Effective);

impl serde::Serialize for EffectiveJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.0;
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("partner", &e.partner.map(|g| g.to_string()))?;
        map.serialize_entry("configured", &e.configured)?;
        map.serialize_entry("sections", &SectionsJson(e))?;
        map.serialize_entry(
            "inboundTrust",
            &json!({
                "isMfaAccepted": sourced_json(&e.inbound_trust.is_mfa_accepted),
                "isCompliantDeviceAccepted": sourced_json(&e.inbound_trust.is_compliant_device_accepted),
                "isHybridAzureADJoinedDeviceAccepted": sourced_json(&e.inbound_trust.is_hybrid_joined_device_accepted),
            }),
        )?;
        map.serialize_entry(
            "automaticUserConsentSettings",
            &json!({
                "inboundAllowed": sourced_json(&e.automatic_consent_inbound),
                "outboundAllowed": sourced_json(&e.automatic_consent_outbound),
            }),
        )?;
        map.serialize_entry("isServiceProvider", &e.is_service_provider)?;
        map.serialize_entry("isInMultiTenantOrganization", &e.is_in_multi_tenant_organization)?;
        map.serialize_entry("cloud", &e.cloud)?;
        map.serialize_entry("notes", &e.notes)?;
        map.end()
    }
}

/// The four sections of a scope, by name.
struct SectionsJson<'a>(&'a Effective);

impl serde::Serialize for SectionsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(Section::ALL.iter().map(|&section| {
            let x = self.0.section(section);
            let halves = HalvesJson {
                users_and_groups: HalfJson::of(&x.users_and_groups),
                applications: HalfJson::of(&x.applications),
            };
            (section.name(), halves)
        }))
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HalvesJson<'a> {
    users_and_groups: HalfJson<'a>,
    applications: HalfJson<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HalfJson<'a> {
    access_type: &'static str,
    targets: &'a [Target],
    from: &'static str,
}

impl<'a> HalfJson<'a> {
    fn of(c: &'a Sourced<TargetConfig>) -> Self {
        HalfJson {
            access_type: c.value.access_type.as_str(),
            targets: &c.value.targets,
            from: c.origin.as_str(),
        }
    }
}

/// `policy show --format json`, serialized a partner at a time: with a
/// default naming 20,000 users, each of 3,000 partners that inherits it
/// lists them, and the document is gigabytes where the policy is megabytes.
pub(crate) fn show_json<'a>(p: &'a Policy, effs: &'a [Effective]) -> impl serde::Serialize + 'a {
    struct Each<'a>(&'a [Effective]);
    impl serde::Serialize for Each<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(EffectiveJson))
        }
    }
    struct Show<'a>(&'a Policy, Each<'a>);
    impl serde::Serialize for Show<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("schema_version", &SCHEMA_VERSION)?;
            map.serialize_entry("allowedCloudEndpoints", &self.0.allowed_cloud_endpoints)?;
            map.serialize_entry("effective", &self.1)?;
            map.end()
        }
    }
    Show(p, Each(effs))
}

/// The settings that apply to each scope, a row per setting.
pub(crate) fn show_text(effs: &[Effective], color: bool) -> String {
    let mut rows = Vec::new();
    for e in effs {
        let who = match e.partner {
            None => "default (any other tenant)".to_string(),
            Some(g) if e.configured => g.to_string(),
            Some(g) => format!("{g} (not configured)"),
        };
        let mut push = |setting: String, value: String, from: &str| {
            rows.push(vec![who.clone(), setting, value, from.to_string()]);
        };
        for s in Section::ALL {
            let x = e.section(s);
            for (half, text, origin) in [
                ("usersAndGroups", x.users_and_groups.text(), x.users_and_groups.origin),
                ("applications", x.applications.text(), x.applications.origin),
            ] {
                push(format!("{}.{half}", s.name()), table::clip(text, 60), origin.as_str());
            }
        }
        for (name, f) in [
            ("inboundTrust.isMfaAccepted", &e.inbound_trust.is_mfa_accepted),
            ("inboundTrust.isCompliantDeviceAccepted", &e.inbound_trust.is_compliant_device_accepted),
            (
                "inboundTrust.isHybridAzureADJoinedDeviceAccepted",
                &e.inbound_trust.is_hybrid_joined_device_accepted,
            ),
            ("automaticUserConsentSettings.inboundAllowed", &e.automatic_consent_inbound),
            ("automaticUserConsentSettings.outboundAllowed", &e.automatic_consent_outbound),
        ] {
            push(name.into(), f.value.to_string(), f.origin.as_str());
        }
        if e.partner.is_some() {
            push("isServiceProvider".into(), e.is_service_provider.to_string(), "partner");
            push(
                "isInMultiTenantOrganization".into(),
                e.is_in_multi_tenant_organization.to_string(),
                "partner",
            );
        }
        for n in &e.notes {
            push("note".into(), table::clip(n, 60), "");
        }
    }
    settings_table(&["partner", "setting", "value", "from"], &rows, color)
}

/// Settings tables are wide by nature (setting paths): no width limit.
fn settings_table(headers: &[&str], rows: &[Vec<String>], color: bool) -> String {
    format!("{}\n", table::render_text(headers, rows, &[], color))
}

/// Error and warning counts of a check.
pub(crate) fn counts(problems: &[Problem]) -> (usize, usize) {
    let errors = problems.iter().filter(|x| x.severity == Severity::Error).count();
    (errors, problems.len() - errors)
}

pub(crate) fn check_json(p: &Policy, problems: &[Problem]) -> Value {
    let (errors, warnings) = counts(problems);
    json!({"schema_version": SCHEMA_VERSION, "policy": p.source,
           "errors": errors, "warnings": warnings, "problems": problems})
}

pub(crate) fn check_text(p: &Policy, problems: &[Problem], color: bool) -> String {
    let (errors, warnings) = counts(problems);
    let mut text = String::new();
    for x in problems {
        let sev = match x.severity {
            Severity::Error => paint(color, "31", "error"),
            Severity::Warning => paint(color, "33", "warning"),
        };
        text.push_str(&format!("{sev}: {}: {}\n", x.at, x.message));
    }
    text.push_str(&format!("{}: {errors} error(s), {warnings} warning(s)\n", p.source));
    text
}

pub(crate) fn diff_json(a: &Policy, b: &Policy, changes: &[Change]) -> Value {
    json!({"schema_version": SCHEMA_VERSION, "current": a.source, "proposed": b.source, "changes": changes})
}

use super::escape::markdown as md;

pub(crate) fn diff_markdown(a: &Policy, b: &Policy, changes: &[Change]) -> String {
    let mut s = format!(
        "### Cross-tenant access policy changes\n\n{} → {}: {} change(s)\n\n",
        md(&a.source),
        md(&b.source),
        changes.len()
    );
    if !changes.is_empty() {
        s.push_str("| partner | setting | before | after |\n|---|---|---|---|\n");
        for c in changes {
            s.push_str(&format!(
                "| {} | `{}` | {} ({}) | {} ({}) |\n",
                md(&c.partner.to_string()),
                c.setting,
                md(&c.before),
                md(c.before_origin),
                md(&c.after),
                md(c.after_origin)
            ));
        }
    }
    s
}

pub(crate) fn diff_text(changes: &[Change], color: bool) -> String {
    if changes.is_empty() {
        return "no changes\n".into();
    }
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            let mut p = super::activity::short(Some(&c.partner));
            if matches!(c.partner_status, "added" | "removed") {
                p = format!("{p} ({})", c.partner_status);
            }
            vec![
                p,
                c.setting.clone(),
                table::clip(&format!("{} ({})", c.before, c.before_origin), 44),
                table::clip(&format!("{} ({})", c.after, c.after_origin), 44),
            ]
        })
        .collect();
    settings_table(&["partner", "setting", "before", "after"], &rows, color)
}
