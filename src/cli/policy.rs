//! `xtenant policy`: load, show, check and diff cross-tenant access policies.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum, ValueHint};

use super::args::{parse_guid, Files, OutputArgs};
use super::Global;
use crate::pipeline::policy::{check, diff, service_default_policy, show, Scope};
use crate::render::{self, Output};

/// Work with cross-tenant access policies (Graph JSON).
///
/// POLICY is a file or directory: our combined `{"default": ..., "partners": [...]}`
/// document, the Graph responses of /policies/crossTenantAccessPolicy/default and
/// /partners (any number of pages), or an EntraExporter backup folder; UTF-8 or
/// UTF-16 (what Windows PowerShell's `>` writes), `-` for standard input.
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
pub(crate) struct Args {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Print Microsoft's service default in the combined format, as a starting point.
    Default {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The settings that apply to each partner after inheritance, and where each comes from.
    Show {
        /// The policy: a file or folder.
        #[arg(value_hint = ValueHint::AnyPath)]
        policy: PathBuf,
        /// Only this partner (a tenant id); `default` shows what unlisted tenants get.
        #[arg(long, value_name = "TENANT_ID")]
        partner: Option<String>,
        /// What to write.
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Structural errors, Microsoft's rules, and risky settings. Exit 1 on errors.
    Check {
        /// The policy: a file or folder.
        #[arg(value_hint = ValueHint::AnyPath)]
        policy: PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// What changes per partner, direction and setting, after inheritance.
    Diff {
        /// The policy in force.
        #[arg(value_hint = ValueHint::AnyPath)]
        current: PathBuf,
        /// The policy you plan to apply.
        #[arg(value_hint = ValueHint::AnyPath)]
        proposed: PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
        format: DiffFormat,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ShowFormat {
    /// Aligned text for people.
    Table,
    /// One document for scripts.
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    /// Aligned text for people.
    Table,
    /// One document for scripts.
    Json,
    /// For a change ticket or a wiki.
    Markdown,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        match &self.command {
            PolicyCommand::Default { output } => output.files(Files::default()),
            PolicyCommand::Show { policy, output, .. } => output.files(Files::default().read([policy])),
            PolicyCommand::Check { policy, .. } => Files::default().read([policy]),
            PolicyCommand::Diff { current, proposed, output, .. } => {
                output.files(Files::default().read([current, proposed]))
            }
        }
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    match args.command {
        PolicyCommand::Default { output } => {
            let mut out = output.create()?;
            render::write_json(&mut out, &render::policy::combined(&service_default_policy()))?;
            out.commit()?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Show { policy, partner, format, output } => {
            run_show(&policy, partner, format, &output, g)
        }
        PolicyCommand::Check { policy, format } => run_check(&policy, format, g),
        PolicyCommand::Diff { current, proposed, format, output } => {
            run_diff(&current, &proposed, format, &output, g)
        }
    }
}

fn run_show(
    policy: &std::path::Path,
    partner: Option<String>,
    format: ShowFormat,
    output: &OutputArgs,
    g: &Global,
) -> Result<ExitCode> {
    let scope = match partner.as_deref() {
        Some("default") => Scope::Default,
        Some(id) => Scope::Partner(parse_guid(id).map_err(anyhow::Error::msg)?),
        None => Scope::All,
    };
    let (p, effs) = show(policy, scope, &|l| g.note(l))?;
    let mut out = output.create()?;
    match format {
        ShowFormat::Json => render::write_json(&mut out, &render::policy::show_json(&p, &effs))?,
        ShowFormat::Table => {
            let text = render::policy::show_text(&effs, g.color_for(&out));
            std::io::Write::write_all(&mut out, text.as_bytes())?
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

fn run_check(policy: &std::path::Path, format: ShowFormat, g: &Global) -> Result<ExitCode> {
    let (p, problems) = check(policy)?;
    let mut out = Output::create(None)?;
    match format {
        ShowFormat::Json => render::write_json(&mut out, &render::policy::check_json(&p, &problems))?,
        ShowFormat::Table => {
            let text = render::policy::check_text(&p, &problems, g.color_for(&out));
            std::io::Write::write_all(&mut out, text.as_bytes())?
        }
    }
    out.commit()?;
    let (errors, _) = render::policy::counts(&problems);
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_diff(
    current: &std::path::Path,
    proposed: &std::path::Path,
    format: DiffFormat,
    output: &OutputArgs,
    g: &Global,
) -> Result<ExitCode> {
    let (a, b, changes) = diff(current, proposed, &|l| g.note(l))?;
    let mut out = output.create()?;
    match format {
        DiffFormat::Json => render::write_json(&mut out, &render::policy::diff_json(&a, &b, &changes))?,
        DiffFormat::Markdown => {
            std::io::Write::write_all(&mut out, render::policy::diff_markdown(&a, &b, &changes).as_bytes())?
        }
        DiffFormat::Table => {
            let text = render::policy::diff_text(&changes, g.color_for(&out));
            std::io::Write::write_all(&mut out, text.as_bytes())?
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
