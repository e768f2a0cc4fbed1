//! `xtenant timeline`: every cross-tenant policy change in the audit log,
//! what it changed, and what it did to the partner's sign-ins.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueHint;

use super::args::{
    ChangeWindowArgs, CsvSafeArg, Files, GroupsArg, OutputArgs, PeriodArgs, ReadArgs, StoreArg,
};
use super::Global;
use crate::pipeline::source::Source;
use crate::pipeline::timeline::{timeline, TimelinePlan};
use crate::render;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// A block per change for people.
    #[default]
    Table,
    /// One document: schema_version, summary and changes.
    Json,
    /// One change per line (lists as arrays).
    Ndjson,
    /// One change per line (lists joined with `; `).
    Csv,
    /// For a change ticket or a wiki.
    Markdown,
}

/// List cross-tenant access policy changes from audit logs, with their effect on sign-ins.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant timeline samples/audit/
  xtenant timeline samples/audit/ --signins samples/signins/          (who was blocked after each change)
  xtenant timeline audit.json --policy current.json --format json     (the policy before each change)
  xtenant replay --proposed p.json --current current.json --audit audit.json logs/

The policy given to --policy is the one in force at the end of the audit window
(`xtenant policy show` of today's export); earlier states are rebuilt from the
old values each audit record carries. --since/--until pick the changes listed.")]
pub(crate) struct Args {
    /// Audit log exports: Graph directoryAudits (page, array, NDJSON), the
    /// diagnostic-settings AuditLogs stream, Log Analytics AuditLogs (JSON or
    /// CSV), the unified audit log (Management API JSON, Purview CSV); files,
    /// directories or `-`; gzip or not. Other events are counted and skipped.
    #[arg(value_hint = ValueHint::AnyPath, value_name = "AUDIT_PATH", required_unless_present = "store")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
    /// Sign-in exports to join with each change (any format `activity` reads);
    /// repeat for more paths. With --store, its sign-ins are joined when this is not given.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "PATH")]
    signins: Vec<PathBuf>,
    /// The policy in force at the end of the audit window: rebuild the policy
    /// before each change from it.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    change_window: ChangeWindowArgs,
    #[command(flatten)]
    period: PeriodArgs,
    /// Also list failed attempts and events that change no access (identity
    /// sync, migrations).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    groups: GroupsArg,
    /// What to write.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    csv: CsvSafeArg,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        let files = Files::default().read(&self.paths).read(&self.signins).read(&self.policy);
        self.output.files(self.read.files(files))
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let audit = args.store.pick(&args.paths)?;
    let signins = match (&audit, args.signins.is_empty()) {
        (_, false) => Some(Source::Exports(args.signins.clone())),
        (Source::Store(dir), true) => Some(Source::Store(dir.clone())),
        (_, true) => None,
    };
    let plan = TimelinePlan {
        audit,
        signins,
        read: args.read.options(g),
        tenant: args.read.tenant,
        policy: args.policy.clone(),
        window: args.change_window.window,
        grace: args.change_window.grace,
        period: args.period.window()?,
        all: args.all,
        groups_in_memory: args.groups.budget(),
    };
    let mut rejects = args.read.rejects_output()?;
    let (mut listed, run) = timeline(&plan, &|l| g.note(l), rejects.as_mut().map(|r| r as _))?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    for line in render::timeline::summary_lines(listed.counts, &run) {
        g.note(&line);
    }
    let mut out = args.output.create()?;
    let counts = listed.counts;
    let rows = listed.rows();
    match args.format {
        Format::Json => render::timeline::write_json_document(&mut out, rows, counts, &run)?,
        Format::Ndjson => render::timeline::write_ndjson(&mut out, rows)?,
        Format::Csv => render::timeline::write_csv(&mut out, rows, args.csv.style())?,
        Format::Markdown => render::timeline::write_markdown(&mut out, rows, &run)?,
        Format::Table => {
            let colored = g.color_for(&out);
            render::timeline::write_text(&mut out, rows, &run, colored)?
        }
    }
    // A change that could not be read back: no output in place.
    listed.finish()?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
