//! `xtenant replay`: which access a proposed policy would remove (or add),
//! with the evidence and the rule that decides.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueHint;
use serde_json::json;

use super::args::{CsvSafeArg, DirectoryArgs, Files, InputArgs, OutputArgs};
use super::Global;
use crate::model::GroupBy;
use crate::pipeline::read_twice;
use crate::pipeline::replay::{replay, Impact, LinesFor, Read, ReplayPlan, ReplayRow, ReplayRun, Replayed};
use crate::render::{self, table, Output};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// Text for people: a summary, then the findings with their reasons.
    #[default]
    Table,
    /// One document: schema_version, summary and rows.
    Json,
    /// Rows only, one JSON object per line.
    Ndjson,
    /// Rows only.
    Csv,
    /// Summary and findings, for a change ticket or a wiki.
    Markdown,
    /// Findings (not unchanged rows) as Elastic Common Schema NDJSON.
    Ecs,
    /// Findings as ArcSight CEF lines, for syslog and Sentinel's CEF connector.
    Cef,
}

/// Replay sign-ins against a proposed policy: what would be lost, degraded or gained, and why.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant replay --proposed samples/policies/proposed.json --current samples/policies/current.json samples/signins/
  xtenant replay --proposed policy/ --fail-on lost,unknown logs/*.json.gz        (a CI gate: exit 1 on findings)
  xtenant activity --format csv -o activity.csv logs/ && xtenant replay --proposed p.json activity.csv
  xtenant replay --proposed p.json --current c.json --audit audit/ logs/    (calibrate across mid-window changes)
  xtenant replay --proposed p.json --current c.json --ca-policies ca.json logs/   (grant operators, strengths)

PATH may also be an activity table: written by `xtenant activity --format csv|ndjson`, or computed
by a query engine and exported as CSV (Log Analytics portal, Data Explorer), JSON rows (`az monitor
log-analytics query -o json`), a query API response, or a Spark output folder of part files.")]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// The policy you plan to apply (file or folder, any layout `policy show` reads).
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    proposed: PathBuf,
    /// The policy in force. Without it, the current verdict is what the logs saw:
    /// a group with a successful sign-in is allowed, one whose sign-ins all failed
    /// with our cross-tenant policy error is blocked.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    current: Option<PathBuf>,
    /// Audit logs of the window (any format `timeline` reads): rebuild the current
    /// policy back through its changes, so sign-ins before a change are checked
    /// against the policy in force then. Needs --current.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "AUDIT_PATH", requires = "current")]
    audit: Vec<PathBuf>,
    #[command(flatten)]
    directory: DirectoryArgs,
    /// The grain of the rows, as `activity --by`.
    #[arg(long, value_enum, default_value_t = GroupBy::User)]
    by: GroupBy,
    /// What to write.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    csv: CsvSafeArg,
    /// Exit 1 when any of these impacts occurs (comma-separated), for CI gates.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "IMPACTS")]
    fail_on: Vec<Impact>,
    /// With --store: emit only findings no earlier --new-only run emitted (the
    /// state is kept in the store), so a scheduled job feeds each finding once.
    #[arg(long, requires = "store")]
    new_only: bool,
    /// Show unchanged groups too (table and markdown).
    #[arg(long)]
    all: bool,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        let files =
            self.input.files(Files::default()).read([&self.proposed]).read(&self.current).read(&self.audit);
        self.output.files(self.directory.files(files))
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let plan = ReplayPlan {
        activity: args.input.activity_plan(g, args.by)?,
        proposed: args.proposed.clone(),
        current: args.current.clone(),
        audit: args.audit.clone(),
        directory: args.directory.paths(),
        new_only: args.new_only,
    };
    let mut rejects = args.input.rejects_output(&plan.activity.source)?;
    // Formats of a line a row may be written where the rows are sorted
    // (past the memory budget, on the pool); the SIEM formats name our
    // tenant, known once the logs are read.
    let (columns, style) = (render::replay::columns(args.by), args.csv.style());
    let line: Option<Box<LinesFor<ReplayRow>>> = match args.format {
        Format::Csv => Some(Box::new(move |_| Box::new(render::replay::csv_line(&columns, style)))),
        Format::Ndjson => Some(Box::new(move |_| Box::new(render::replay::ndjson_line(&columns)))),
        Format::Ecs => Some(Box::new(|tenant| Box::new(render::siem::ecs_line(tenant)))),
        Format::Cef => Some(Box::new(|tenant| Box::new(render::siem::cef_line(tenant)))),
        Format::Json | Format::Markdown | Format::Table => None,
    };
    let (run, rows) = replay(&plan, &|l| g.note(l), rejects.as_mut().map(|r| r as _), line.as_deref())?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    if let Read::SignIns(table, stats) = &run.read {
        // The table states the window in its own summary, just below.
        for line in render::activity::summary_lines(table, stats, args.format != Format::Table) {
            g.note(&line);
        }
    }
    if let Some(n) = &run.new_findings {
        g.note(&format!("--new-only: {} of {} finding(s) not emitted before", n.count(), n.total));
    }
    let mut out = args.output.create()?;
    let impacts = write(&run, rows, &args, &mut out, g)?;
    out.commit()?;
    if let Some(n) = run.new_findings {
        n.mark_emitted()?;
    }
    let found: Vec<&str> = args.fail_on.iter().filter(|i| impacts.contains(i)).map(|i| i.as_str()).collect();
    if !found.is_empty() {
        g.note(&format!("--fail-on: found {} impact(s)", found.join(", ")));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the rows in `args.format`; returns the impacts among them.
/// Rows-only formats take the rows as they come. The documents (JSON,
/// Markdown, table) open with the summary of all rows: it is added up as
/// the rows come, and the rows the document shows (JSON: all; Markdown
/// and the table: the findings, or all with --all) are read a second time,
/// kept on disk past `--groups-in-memory`.
fn write(
    run: &ReplayRun,
    rows: Replayed,
    args: &Args,
    out: &mut Output,
    g: &Global,
) -> Result<BTreeSet<Impact>> {
    let columns = render::replay::columns(run.by);
    let mut rows = match rows {
        Replayed::Lines(lines, impacts) => {
            if args.format == Format::Csv {
                table::write_csv_header(&columns, out)?;
            }
            table::write_lines(lines, out)?;
            return Ok(impacts);
        }
        Replayed::Rows(rows) => rows,
    };
    let mut impacts = BTreeSet::new();
    let mut summary = run.summarizer();
    let mut again = None;
    let budget_again = rows.budget_again(run.budget);
    {
        let seen = rows.by_ref().inspect(|r| {
            impacts.insert(r.impact);
        });
        match args.format {
            Format::Ndjson => table::write_each_line(seen, render::replay::ndjson_line(&columns), out)?,
            Format::Csv => render::replay::stream_csv(seen, &columns, out, args.csv.style())?,
            Format::Ecs => render::siem::write_ecs(seen, run.tenant, out)?,
            Format::Cef => render::siem::write_cef(seen, run.tenant, out)?,
            Format::Json | Format::Markdown | Format::Table => {
                let every = args.all || args.format == Format::Json;
                again = Some(read_twice(seen, budget_again, |r| {
                    summary.add(r)?;
                    Ok(every || r.impact != Impact::Unchanged)
                })?)
            }
        }
    }
    rows.finish()?;
    let (summary, mut mismatches) = summary.finish()?;
    let Some(mut again) = again else { return Ok(impacts) };
    match args.format {
        Format::Json => {
            let input = match &run.read {
                Read::SignIns(t, s) => json!({
                    "files": s.files, "records_read": s.records_read, "invalid_records": s.invalid_records,
                    "cross_tenant_sign_ins": t.totals.cross_tenant, "duplicates_dropped": t.totals.duplicates_dropped,
                    "outside_window": t.totals.outside_window,
                }),
                Read::Tables => serde_json::Value::Null,
            };
            let about = json!({
                "proposed": run.proposed.source,
                "current": run.current.as_ref().map(|c| c.source.clone()),
                "current_from": if run.current.is_some() { "policy" } else { "logs" },
                "groups_supplied": run.groups_supplied,
                "identities_supplied": run.identities_supplied,
                "input": input,
            });
            render::replay::write_json_document(out, &mut again, run.by, &summary, &mut mismatches, about)?;
        }
        Format::Markdown => render::replay::write_markdown(out, &mut again, &summary, &mut mismatches)?,
        Format::Table => {
            let color = g.color_for(out);
            let width = table::terminal_width() as usize;
            render::replay::write_text(out, &mut again, &summary, &mismatches.first, color, width)?
        }
        Format::Ndjson | Format::Csv | Format::Ecs | Format::Cef => {}
    }
    again.finish()?;
    mismatches.all.finish()?;
    Ok(impacts)
}
