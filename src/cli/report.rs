//! `xtenant report`: the weekly overview, as a self-contained HTML page or
//! Markdown.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::ValueHint;

use super::args::{ChangeWindowArgs, DirectoryArgs, Files, InputArgs, OUTPUT_HELP};
use super::Global;
use crate::model::GroupBy;
use crate::pipeline::overview::{overview, OverviewPlan};
use crate::pipeline::source::Source;
use crate::render::{self, Output};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
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
  xtenant report activity.csv --tenant ID --proposed proposed.json -o report.html
      (an activity table --by user, or `xtenant query`'s result: no per-day chart)

The period is --since to --until (default: everything read). \"New partners\" are
those whose first sign-in in all the data read falls in the period: with a store,
give --since so the days before it count as history.")]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// The policy in force: lists idle partner configurations and partners on the default.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    current: Option<PathBuf>,
    /// A planned policy: adds the impact section (as `replay` computes it).
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    proposed: Option<PathBuf>,
    /// Audit exports for the policy change timeline; repeat for more paths.
    /// With --store, the store's audit events are used when this is not given.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "AUDIT_PATH")]
    audit: Vec<PathBuf>,
    #[command(flatten)]
    change_window: ChangeWindowArgs,
    #[command(flatten)]
    directory: DirectoryArgs,
    /// Output format; by default from the file name (`.md` is Markdown, else HTML).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[arg(value_hint = ValueHint::FilePath, short, long, value_name = "FILE", help = OUTPUT_HELP)]
    output: PathBuf,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        let files =
            self.input.files(Files::default()).read(&self.current).read(&self.proposed).read(&self.audit);
        self.directory.files(files).write([&self.output])
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let markdown_name = args
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"));
    let format = args.format.unwrap_or(if markdown_name { Format::Markdown } else { Format::Html });
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && format == Format::Html && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("refusing to write HTML to a terminal; give -o report.html");
    }
    let audit = match (&args.input.store.store, args.audit.is_empty()) {
        (_, false) => Some(Source::Exports(args.audit.clone())),
        (Some(dir), true) => Some(Source::Store(dir.clone())),
        (None, true) => None,
    };
    let plan = OverviewPlan {
        activity: args.input.activity_plan(g, GroupBy::User)?,
        current: args.current.clone(),
        proposed: args.proposed.clone(),
        audit,
        window: args.change_window.window,
        grace: args.change_window.grace,
        directory: args.directory.paths(),
    };
    let mut rejects = args.input.rejects_output(&plan.activity.source)?;
    let (overview, table, stats) = overview(&plan, &|l| g.note(l), rejects.as_mut().map(|r| r as _))?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    // From activity tables nothing was read sign-in by sign-in: the note
    // about the tables was given when they were read.
    for line in stats.iter().flat_map(|s| render::activity::summary_lines(&table, s, true)) {
        g.note(&line);
    }
    if overview.cross_tenant == 0 && table.totals.cross_tenant == 0 {
        g.note("warning: no cross-tenant sign-ins in the period; the report will be mostly empty");
    }
    let mut out = Output::create(Some(&args.output))?;
    match format {
        Format::Html => render::overview::html(overview, &mut out)?,
        Format::Markdown => render::overview::markdown(overview, &mut out)?,
    }
    out.commit()?;
    if !to_stdout {
        g.note(&format!("wrote {}", args.output.display()));
    }
    Ok(ExitCode::SUCCESS)
}
