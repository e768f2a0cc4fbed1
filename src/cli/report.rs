//! `xtenant report`: the weekly overview, as a self-contained HTML page or
//! Markdown.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Duration;

use super::{Global, InputArgs};
use crate::activity::GroupBy;
use crate::policy::change::PolicyChange;
use crate::policy::directory::{load_groups, load_identities};
use crate::policy::load::load_valid;
use crate::replay::{replay, summarize, Inputs};
use crate::report::overview::{html, markdown, Daily, Overview};
use crate::report::Output;
use crate::timeline::Join;

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One self-contained page: inline CSS and SVG charts, no script.
    Html,
    /// The same sections, for tickets and wikis.
    Markdown,
}

/// Write the overview of cross-tenant activity: an HTML page or Markdown.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant report samples/signins/ --current samples/policies/current.json --audit samples/audit/ -o report.html
  xtenant report --store history/ --since 7d --current current.json --proposed proposed.json -o weekly.html
  xtenant report samples/signins/ -o report.md

The period is --since to --until (default: everything read). \"New partners\" are
those whose first sign-in in all the data read falls in the period: with a store,
give --since so the days before it count as history.")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The policy in force: lists idle partner configurations and partners on the default.
    #[arg(long, value_name = "POLICY")]
    pub current: Option<PathBuf>,
    /// A planned policy: adds the impact section (as `replay` computes it).
    #[arg(long, value_name = "POLICY")]
    pub proposed: Option<PathBuf>,
    /// Audit exports for the policy change timeline; repeat for more paths.
    /// With --store, the store's audit events are used when this is not given.
    #[arg(long, value_name = "AUDIT_PATH")]
    pub audit: Vec<PathBuf>,
    /// For the change timeline: how far before and after each change to
    /// compare sign-ins (as `timeline --window`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = super::timeline::parse_duration)]
    pub window: Duration,
    /// For the change timeline: settings take time to apply, so the window
    /// after a change is stretched by this (as `timeline --grace`).
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = super::timeline::parse_duration)]
    pub grace: Duration,
    /// Group memberships for the impact section (as `replay --groups`).
    #[arg(long, value_name = "FILE")]
    pub groups: Vec<PathBuf>,
    /// Guests' home-tenant ids for the impact section (as `replay --identities`).
    #[arg(long, value_name = "FILE")]
    pub identities: Option<PathBuf>,
    /// Conditional Access policies for the impact section (as `replay --ca-policies`).
    #[arg(long, value_name = "PATH")]
    pub ca_policies: Vec<PathBuf>,
    /// App keyword memberships for the impact section (as `replay --app-table`).
    #[arg(long, value_name = "FILE")]
    pub app_table: Option<PathBuf>,
    /// Output format; by default from the file name (`.md` is Markdown, else HTML).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where to write (atomically); `-` for stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let current = args.current.as_deref().map(load_valid).transpose()?;
    let proposed = args.proposed.as_deref().map(load_valid).transpose()?;
    let format = args.format.unwrap_or(
        if args
            .output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"))
        {
            Format::Markdown
        } else {
            Format::Html
        },
    );

    let changes: Option<Vec<PolicyChange>> = if !args.audit.is_empty() {
        Some(super::timeline::read_changes(&args.audit, &args.input.read, g, None)?.0)
    } else if let Some(dir) = &args.input.store {
        let events = crate::store::Store::open(dir)?.read_audit(None, None)?;
        (!events.is_empty()).then(|| {
            super::timeline::sort_changes(events.iter().map(crate::policy::change::decode).collect())
        })
    } else {
        None
    };
    let changes = changes.map(|c| {
        c.into_iter()
            .filter(|c| c.succeeded && c.kind.changes_access())
            .filter(|c| {
                args.input.since.is_none_or(|s| c.time >= s) && args.input.until.is_none_or(|u| c.time < u)
            })
            .collect::<Vec<_>>()
    });

    let mut daily = Daily::new(args.input.since, args.input.until);
    let mut join = changes.as_ref().map(|c| Join::new(c, args.input.read.tenant, args.window, args.grace));
    let (activity, stats) = super::activity::collect_window(
        &args.input,
        GroupBy::User,
        vec![],
        g,
        Some(|s: &crate::model::SignIn| {
            daily.add(s);
            if let Some(j) = join.as_mut() {
                j.add(s);
            }
        }),
    )?;
    for line in crate::report::activity::summary_lines(&activity, &stats) {
        g.note(&line);
    }
    if activity.rows.is_empty() && activity.totals.cross_tenant == 0 {
        g.note("warning: no cross-tenant sign-ins in the period; the report will be mostly empty");
    }
    let mut overview = Overview::build(&activity, &daily, current.as_ref(), args.input.since);
    if let (Some(changes), Some(join)) = (changes, join) {
        let names = join.names();
        let effects = join.finish();
        overview.changes = Some(
            changes
                .into_iter()
                .zip(effects)
                .map(|(c, e)| {
                    let partner = match c.partner() {
                        Some(p) => {
                            names.get(&p).map_or(p.to_string(), |n| format!("{n} ({})", &p.to_string()[..8]))
                        }
                        None => c.kind.as_str().to_string(),
                    };
                    (c.time, c.kind.as_str().to_string(), partner, c.summary(), e.is_some_and(|e| e.flagged))
                })
                .collect(),
        );
    }
    if let Some(p) = &proposed {
        let groups = if args.groups.is_empty() { None } else { Some(load_groups(&args.groups)?) };
        let identities = args.identities.as_deref().map(load_identities).transpose()?;
        let apps = match &args.app_table {
            Some(p) => crate::policy::apps::AppCatalog::with_user_table(p)?,
            None => crate::policy::apps::AppCatalog::built_in().clone(),
        };
        let ca = if args.ca_policies.is_empty() {
            crate::policy::conditional_access::CaPolicies::default()
        } else {
            crate::policy::conditional_access::CaPolicies::load(&args.ca_policies)?
        };
        let inputs = Inputs {
            current: current.as_ref(),
            proposed: p,
            groups: groups.as_ref(),
            identities: identities.as_ref(),
            history: None,
            apps: &apps,
            ca: &ca,
        };
        let rows = replay(activity.rows.clone(), &inputs);
        overview.impact = Some(summarize(&rows, Some(&activity.totals), current.is_some()));
    }
    if args.output.as_os_str() == "-"
        && format == Format::Html
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        bail!("refusing to write HTML to a terminal; give -o report.html");
    }
    let mut out = Output::create((args.output.as_os_str() != "-").then_some(args.output.as_path()))?;
    let text = match format {
        Format::Html => html(&overview),
        Format::Markdown => markdown(&overview),
    };
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    out.commit()?;
    if args.output.as_os_str() != "-" {
        g.note(&format!("wrote {}", args.output.display()));
    }
    Ok(ExitCode::SUCCESS)
}
