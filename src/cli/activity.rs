//! `xtenant activity`: who works with which partner tenant, in which
//! direction, through which apps.

use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use super::args::{CsvSafeArg, Files, InputArgs, OutputArgs};
use super::Global;
use crate::model::{ActivityRow, GroupBy, ReadStats};
use crate::pipeline::activity::{
    activity_lines, activity_stream, ActivityPlan, ActivityTable, Finished, LineWriter, RowStream,
};
use crate::pipeline::read_twice;
use crate::render::output::Output;
use crate::render::{self, table};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    /// Aligned text for people (ids shortened).
    #[default]
    Table,
    /// One document: schema_version, summary and rows.
    Json,
    /// One row per line.
    Ndjson,
    /// One row per line, with a header.
    Csv,
}

/// Summarise cross-tenant sign-ins by direction, access type, partner, app and user.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant activity samples/signins/
  xtenant activity --by tenant exports/*.json.gz
  xtenant activity --format csv -o activity.csv --skip-invalid --rejects bad.ndjson logs/")]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// The grain of the rows: `user` (partner, app, resource, user), `app`
    /// (adds distinct_users), `tenant` (adds distinct_apps and distinct_users).
    #[arg(long, value_enum, default_value_t = GroupBy::User)]
    by: GroupBy,
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
        self.output.files(self.input.files(Files::default()))
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let plan = args.input.activity_plan(g, args.by)?;
    let mut rejects = args.input.rejects_output(&plan.source)?;
    let columns = render::activity::columns(args.by);
    // CSV, NDJSON and the JSON document's rows are written as text a row
    // at a time: past the memory budget, where the grouping sorts them (on
    // the pool), not after.
    let line: Option<Box<LineWriter<ActivityRow>>> = match args.format {
        Format::Csv => Some(Box::new(render::activity::csv_line(&columns, args.csv.style()))),
        Format::Ndjson => Some(Box::new(render::activity::ndjson_line(&columns))),
        Format::Json => Some(Box::new(render::activity::json_row(&columns))),
        Format::Table => None,
    };
    let rejected = rejects.as_mut().map(|r| r as _);
    let (table, rows, stats) = match &line {
        Some(line) => activity_lines(&plan, rejected, line.as_ref())?,
        None => {
            let (table, rows, stats) = activity_stream(&plan, vec![], rejected)?;
            (table, Finished::Rows(rows), stats)
        }
    };
    if let Some(r) = rejects {
        r.commit()?;
    }
    for line in render::activity::summary_lines(&table, &stats, true) {
        g.note(&line);
    }
    let mut out = args.output.create()?;
    match rows {
        Finished::Mapped(lines) => match args.format {
            Format::Json => render::activity::write_json_document(&mut out, &table, &stats, |w| {
                table::write_lines(lines, w)
            })?,
            Format::Csv => {
                table::write_csv_header(&columns, &mut out)?;
                table::write_lines(lines, &mut out)?;
            }
            Format::Ndjson | Format::Table => table::write_lines(lines, &mut out)?,
        },
        Finished::Rows(mut rows) => {
            write_rows(&args, g, &plan, (&table, &stats), &columns, &mut rows, &mut out)?;
            rows.finish()?;
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the rows as they come from the grouping. CSV, NDJSON and JSON
/// are written a row at a time (CSV formatted on the pool), as past the
/// memory budget; the table lays out all rows. A row that cannot be read
/// back fails the run before the output is committed.
fn write_rows(
    args: &Args,
    g: &Global,
    plan: &ActivityPlan,
    (table, stats): (&ActivityTable, &ReadStats),
    columns: &[&'static str],
    rows: &mut RowStream,
    out: &mut Output,
) -> Result<()> {
    match args.format {
        Format::Csv => render::activity::stream_csv(rows, columns, out, args.csv.style())?,
        Format::Json => {
            let row = render::activity::json_row(columns);
            render::activity::write_json_document(out, table, stats, |w| {
                table::write_each_line(rows, row, w)
            })?
        }
        Format::Ndjson => table::write_each_line(rows, render::activity::ndjson_line(columns), out)?,
        Format::Table => {
            // Columns as wide as their widest cell: every row is measured
            // on a first reading, and laid out on the second.
            let mut layout = table::TextLayout::new(&render::activity::text_headers(table.by));
            let budget = rows.budget_again(plan.groups_in_memory);
            let mut again = read_twice(rows.by_ref(), budget, |r| {
                layout.measure(&render::activity::text_row(r, table.by).0);
                Ok(true)
            })?;
            let color = g.color_for(out);
            render::activity::write_text(out, table.by, &layout, &mut again, color)?;
            again.finish()?;
        }
    }
    Ok(())
}
