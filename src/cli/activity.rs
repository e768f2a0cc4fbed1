//! `xtenant activity`: who works with which partner tenant, in which
//! direction, through which apps.

use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use super::args::{CsvSafeArg, Files, InputArgs, OutputArgs};
use super::Global;
use crate::model::GroupBy;
use crate::pipeline::activity::activity_stream;
use crate::pipeline::read_twice;
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
    let (table, mut rows, stats) = activity_stream(&plan, vec![], rejects.as_mut().map(|r| r as _))?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    for line in render::activity::summary_lines(&table, &stats, true) {
        g.note(&line);
    }
    let mut out = args.output.create()?;
    let columns = render::activity::columns(table.by);
    // CSV, NDJSON and JSON are written a row at a time as the grouping
    // gives them; the table lays out all rows. A row that cannot be read
    // back fails the run before the output is committed.
    match args.format {
        Format::Ndjson => {
            table::stream_ndjson(&columns, render::activity::cells(&mut rows, &columns), &mut out)?
        }
        Format::Csv => render::activity::stream_csv(&mut rows, &columns, &mut out, args.csv.style())?,
        Format::Json => render::activity::write_json_document(&mut out, &table, &stats, &mut rows)?,
        Format::Table => {
            // Columns as wide as their widest cell: every row is measured
            // on a first reading, and laid out on the second.
            let mut layout = table::TextLayout::new(&render::activity::text_headers(table.by));
            let budget = rows.budget_again(plan.groups_in_memory);
            let mut again = read_twice(rows.by_ref(), budget, |r| {
                layout.measure(&render::activity::text_row(r, table.by).0);
                Ok(true)
            })?;
            let color = g.color_for(&out);
            render::activity::write_text(&mut out, table.by, &layout, &mut again, color)?;
            again.finish()?;
        }
    }
    rows.finish()?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
