//! `xtenant policy`: load, show, check and diff cross-tenant access policies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::{parse_guid, Global};
use crate::model::Guid;
use crate::policy::diff::diff;
use crate::policy::evaluate::targets_text;
use crate::policy::load::{load, load_valid, to_combined_json};
use crate::policy::model::{service_default, Policy, Section};
use crate::policy::resolve::{effective, Effective, Sourced};
use crate::policy::validate::{check, Severity};
use crate::report::{table, Output};

/// Work with cross-tenant access policies (Graph JSON).
///
/// POLICY is a file or directory: our combined `{"default": ..., "partners": [...]}`
/// document, the Graph responses of /policies/crossTenantAccessPolicy/default and
/// /partners (any number of pages), or an EntraExporter backup folder.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant policy default > policy.json
  xtenant policy show samples/policies/current.json
  xtenant policy check samples/policies/proposed.json
  xtenant policy diff samples/policies/current.json samples/policies/proposed.json --format markdown

Getting the policy from a tenant (Microsoft Graph PowerShell, Policy.Read.All):
  Get-MgPolicyCrossTenantAccessPolicyDefault | ConvertTo-Json -Depth 10 > default.json
  Get-MgPolicyCrossTenantAccessPolicyPartner -All | ConvertTo-Json -Depth 10 > partners.json")]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print Microsoft's service default in the combined format, as a starting point.
    Default {
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The settings that apply to each partner after inheritance, and where each comes from.
    Show {
        policy: PathBuf,
        /// Only this partner (a tenant id); `default` shows what unlisted tenants get.
        #[arg(long, value_name = "TENANT_ID")]
        partner: Option<String>,
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Structural errors, Microsoft's rules, and risky settings. Exit 1 on errors.
    Check {
        policy: PathBuf,
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// What changes per partner, direction and setting, after inheritance.
    Diff {
        current: PathBuf,
        proposed: PathBuf,
        #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
        format: DiffFormat,
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Table,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
    Markdown,
}

pub fn run(args: Args, g: &Global) -> Result<ExitCode> {
    match args.command {
        PolicyCommand::Default { output } => {
            let p = Policy { default: Some(service_default()), ..Policy::default() };
            let mut out = Output::create(output.as_deref())?;
            serde_json::to_writer_pretty(&mut out, &to_combined_json(&p))?;
            std::io::Write::write_all(&mut out, b"\n")?;
            out.commit()?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Show { policy, partner, format, output } => show(&policy, partner, format, output, g),
        PolicyCommand::Check { policy, format } => run_check(&policy, format, g),
        PolicyCommand::Diff { current, proposed, format, output } => {
            run_diff(&current, &proposed, format, output, g)
        }
    }
}

fn warn_all(p: &Policy, g: &Global) {
    for w in &p.warnings {
        g.note(&format!("warning: {w}"));
    }
}

fn sourced_json<T: serde::Serialize>(s: &Sourced<T>) -> Value {
    json!({"value": s.value, "from": s.origin.as_str()})
}

fn effective_json(e: &Effective) -> Value {
    let mut sections = serde_json::Map::new();
    for s in Section::ALL {
        let x = e.section(s);
        let half = |c: &Sourced<crate::policy::model::TargetConfig>| {
            json!({"accessType": c.value.access_type.as_str(),
                   "targets": c.value.targets.iter().map(|t| json!({"target": t.target, "targetType": t.target_type})).collect::<Vec<_>>(),
                   "from": c.origin.as_str()})
        };
        sections.insert(
            s.name().into(),
            json!({"usersAndGroups": half(&x.users_and_groups), "applications": half(&x.applications)}),
        );
    }
    json!({
        "partner": e.partner.map(|g| g.to_string()),
        "configured": e.configured,
        "sections": sections,
        "inboundTrust": {
            "isMfaAccepted": sourced_json(&e.inbound_trust.is_mfa_accepted),
            "isCompliantDeviceAccepted": sourced_json(&e.inbound_trust.is_compliant_device_accepted),
            "isHybridAzureADJoinedDeviceAccepted": sourced_json(&e.inbound_trust.is_hybrid_joined_device_accepted),
        },
        "automaticUserConsentSettings": {
            "inboundAllowed": sourced_json(&e.automatic_consent_inbound),
            "outboundAllowed": sourced_json(&e.automatic_consent_outbound),
        },
        "isServiceProvider": e.is_service_provider,
        "isInMultiTenantOrganization": e.is_in_multi_tenant_organization,
        "cloud": e.cloud,
        "notes": e.notes,
    })
}

fn show(
    path: &Path,
    partner: Option<String>,
    format: ShowFormat,
    output: Option<PathBuf>,
    g: &Global,
) -> Result<ExitCode> {
    let p = load_valid(path)?;
    warn_all(&p, g);
    let scopes: Vec<Option<Guid>> = match partner.as_deref() {
        Some("default") => vec![None],
        Some(id) => vec![Some(parse_guid(id).map_err(anyhow::Error::msg)?)],
        None => std::iter::once(None).chain(p.partners.keys().map(|k| Some(*k))).collect(),
    };
    let effs: Vec<Effective> = scopes.iter().map(|s| effective(&p, *s)).collect();
    let mut out = Output::create(output.as_deref())?;
    match format {
        ShowFormat::Json => {
            let doc = json!({"schema_version": crate::report::SCHEMA_VERSION, "allowedCloudEndpoints": p.allowed_cloud_endpoints,
                             "effective": effs.iter().map(effective_json).collect::<Vec<_>>()});
            serde_json::to_writer_pretty(&mut out, &doc)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        ShowFormat::Table => {
            let mut rows = Vec::new();
            for e in &effs {
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
                    for (half, c) in
                        [("usersAndGroups", &x.users_and_groups), ("applications", &x.applications)]
                    {
                        push(
                            format!("{}.{half}", s.name()),
                            table::clip(
                                &format!("{} [{}]", c.value.access_type.as_str(), targets_text(&c.value)),
                                60,
                            ),
                            c.origin.as_str(),
                        );
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
            write_table(&mut out, &["partner", "setting", "value", "from"], &rows, g)?;
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

fn run_check(path: &Path, format: ShowFormat, g: &Global) -> Result<ExitCode> {
    let (p, load_errors) = load(path)?;
    let problems = check(&p, &load_errors);
    let errors = problems.iter().filter(|x| x.severity == Severity::Error).count();
    let warnings = problems.len() - errors;
    let mut out = Output::create(None)?;
    match format {
        ShowFormat::Json => {
            let doc = json!({"schema_version": crate::report::SCHEMA_VERSION, "policy": p.source,
                             "errors": errors, "warnings": warnings, "problems": problems});
            serde_json::to_writer_pretty(&mut out, &doc)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        ShowFormat::Table => {
            let mut text = String::new();
            for x in &problems {
                let sev = match x.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let sev = if g.color && out.is_stdout() {
                    let code = if x.severity == Severity::Error { "31" } else { "33" };
                    format!("\x1b[{code}m{sev}\x1b[0m")
                } else {
                    sev.to_string()
                };
                text.push_str(&format!("{sev}: {}: {}\n", x.at, x.message));
            }
            text.push_str(&format!("{}: {errors} error(s), {warnings} warning(s)\n", p.source));
            std::io::Write::write_all(&mut out, text.as_bytes())?;
        }
    }
    out.commit()?;
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_diff(
    current: &Path,
    proposed: &Path,
    format: DiffFormat,
    output: Option<PathBuf>,
    g: &Global,
) -> Result<ExitCode> {
    let a = load_valid(current)?;
    let b = load_valid(proposed)?;
    warn_all(&a, g);
    warn_all(&b, g);
    let changes = diff(&a, &b);
    let mut out = Output::create(output.as_deref())?;
    match format {
        DiffFormat::Json => {
            let doc = json!({"schema_version": crate::report::SCHEMA_VERSION, "current": a.source, "proposed": b.source, "changes": changes});
            serde_json::to_writer_pretty(&mut out, &doc)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        DiffFormat::Markdown => {
            let mut s = format!(
                "### Cross-tenant access policy changes\n\n`{}` → `{}`: {} change(s)\n\n",
                a.source,
                b.source,
                changes.len()
            );
            if !changes.is_empty() {
                s.push_str("| partner | setting | before | after |\n|---|---|---|---|\n");
                for c in &changes {
                    let esc = |t: &str| t.replace('|', "\\|");
                    s.push_str(&format!(
                        "| {} | `{}` | {} ({}) | {} ({}) |\n",
                        c.partner,
                        c.setting,
                        esc(&c.before),
                        c.before_origin,
                        esc(&c.after),
                        c.after_origin
                    ));
                }
            }
            std::io::Write::write_all(&mut out, s.as_bytes())?;
        }
        DiffFormat::Table => {
            if changes.is_empty() {
                std::io::Write::write_all(&mut out, b"no changes\n")?;
            } else {
                let rows: Vec<Vec<String>> = changes
                    .iter()
                    .map(|c| {
                        let mut p = crate::report::activity::short(Some(&c.partner));
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
                write_table(&mut out, &["partner", "setting", "before", "after"], &rows, g)?;
            }
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// Settings tables are wide by nature (setting paths): no width limit.
fn write_table(out: &mut Output, headers: &[&str], rows: &[Vec<String>], g: &Global) -> Result<()> {
    let text = table::render_text(headers, rows, &[], 200, g.color && out.is_stdout());
    std::io::Write::write_all(out, format!("{text}\n").as_bytes())?;
    Ok(())
}
