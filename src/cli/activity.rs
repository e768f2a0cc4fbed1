//! `xtenant activity`: who works with which partner tenant, in which
//! direction, through which apps.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use super::{Global, InputArgs};
use crate::activity::{Activity, ActivityReport, Direction, GroupBy};
use crate::ingest::{self, Stats};
use crate::report::activity::{app_label, named, partner_label};
use crate::report::{self, table, Output};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned text for people (ids shortened).
    #[default]
    Table,
    /// One document: schema_version, summary and rows.
    Json,
    /// One row per line.
    Ndjson,
    Csv,
}

/// Summarise cross-tenant sign-ins by direction, access type, partner, app and user.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant activity samples/signins/
  xtenant activity --by tenant exports/*.json.gz
  xtenant activity --format csv -o activity.csv --skip-invalid --rejects bad.ndjson logs/")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The grain of the rows: `user` (partner, app, resource, user), `app`
    /// (adds distinct_users), `tenant` (adds distinct_apps and distinct_users).
    #[arg(long, value_enum, default_value_t = GroupBy::User)]
    pub by: GroupBy,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE instead of stdout (atomically: all or nothing).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Reads the inputs and aggregates them: shared by `activity` and `replay`.
pub fn collect(input: &InputArgs, by: GroupBy, g: &Global) -> Result<(ActivityReport, Stats)> {
    collect_window(input, by, vec![], g, None::<fn(&crate::model::SignIn)>)
}

/// [`collect`], keeping only sign-ins in `[--since, --until)`, and counting
/// each group per policy epoch when `epoch_starts` is not empty. `tap`, when
/// given, sees every sign-in read, in the window or not (from a store,
/// also the days before `--since`).
pub fn collect_window(
    input: &InputArgs,
    by: GroupBy,
    epoch_starts: Vec<chrono::DateTime<chrono::Utc>>,
    g: &Global,
    mut tap: Option<impl FnMut(&crate::model::SignIn) + Send>,
) -> Result<(ActivityReport, Stats)> {
    let mut acc = Activity::with_window(input.since, input.until);
    if !epoch_starts.is_empty() {
        acc = acc.split_by_epochs(epoch_starts);
    }
    if let Some(dir) = &input.store {
        let store = crate::store::Store::open(dir)?;
        let n = store.read_signins(if tap.is_some() { None } else { input.since }, input.until, |s| {
            if let Some(t) = tap.as_mut() {
                t(&s);
            }
            acc.add(s)
        })?;
        let stats = Stats { files: store.manifest.signins.len() as u64, records_read: n, ..Stats::default() };
        return Ok((acc.finish(input.read.tenant, by)?, stats));
    }
    let mut rejects = input.read.rejects_output()?;
    let stats = input.read.read(ingest::SignIns, &input.paths, g, rejects.as_mut(), |s| {
        if let Some(t) = tap.as_mut() {
            t(&s);
        }
        acc.add(s)
    })?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    let report = acc.finish(input.read.tenant, by)?;
    Ok((report, stats))
}

pub fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let (report, stats) = collect(&args.input, args.by, g)?;
    for line in report::activity::summary_lines(&report, &stats) {
        g.note(&line);
    }
    let mut out = Output::create(args.output.as_deref())?;
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report::activity::json_document(&report, &stats))?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        Format::Ndjson => {
            let columns = report::activity::columns(report.by);
            table::stream_ndjson(&columns, report::activity::rows(&report, &columns), &mut out)?
        }
        Format::Csv => {
            let columns = report::activity::columns(report.by);
            table::stream_csv(&columns, report::activity::rows(&report, &columns), &mut out)?
        }
        Format::Table => {
            let text = text_view(&report, g.color && out.is_stdout());
            std::io::Write::write_all(&mut out, text.as_bytes())?;
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// The table for people: names where the logs have them, short ids else,
/// clipped so that a row fits in 120 columns.
fn text_view(report: &ActivityReport, color: bool) -> String {
    if report.rows.is_empty() {
        return "no cross-tenant sign-ins found\n".into();
    }
    let mut headers = vec!["dir", "access", "partner"];
    match report.by {
        GroupBy::User => headers.extend(["app", "user"]),
        GroupBy::App => headers.extend(["app", "users"]),
        GroupBy::Tenant => headers.extend(["apps", "users"]),
    }
    headers.extend(["sign-ins", "fail", "blocks", "last seen"]);
    let mut rows = Vec::new();
    let mut colors = Vec::new();
    for r in &report.rows {
        let dir = match r.direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        };
        let mut row =
            vec![dir.to_string(), table::short_access(r.access_type).to_string(), partner_label(r, 17)];
        match report.by {
            GroupBy::User => {
                row.push(app_label(r, 24));
                row.push(named(r.user_principal_name.as_deref(), r.user_id.as_deref(), 19));
            }
            GroupBy::App => {
                row.push(app_label(r, 36));
                row.push(r.distinct_users.unwrap_or(0).to_string());
            }
            GroupBy::Tenant => {
                row.push(r.distinct_apps.unwrap_or(0).to_string());
                row.push(r.distinct_users.unwrap_or(0).to_string());
            }
        }
        let c = &r.counters;
        row.extend([
            c.sign_ins.to_string(),
            c.failures.to_string(),
            c.policy_blocks.to_string(),
            c.last_seen.map_or(String::new(), |t| t.format("%Y-%m-%d").to_string()),
        ]);
        rows.push(row);
        colors.push((c.policy_blocks > 0).then_some(comfy_table::Color::Red));
    }
    let mut s = table::render_text(&headers, &rows, &colors, table::terminal_width(), color);
    s.push('\n');
    s
}
