//! `xtenant query`: the activity table as a query for the engine the logs
//! already live in, so that only the small table comes back.

use std::process::ExitCode;

use anyhow::Result;

use super::args::{parse_guid, Files, OutputArgs, PeriodArgs};
use super::Global;
use crate::model::{GroupBy, Guid};
use crate::pipeline::query::{Engine, QuerySpec, Records};

/// Write a KQL or Spark SQL query that computes the activity table where the logs live.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant query --engine kql --tenant ID --since 30d -o activity.kql
      paste into Log Analytics / Sentinel Logs or Azure Data Explorer, export the result as CSV
  az monitor log-analytics query -w WORKSPACE_ID --analytics-query @activity.kql -o json > activity.json
  xtenant query --engine spark-sql --tenant ID --source 'abfss://insights-logs-signinlogs@ACCOUNT.dfs.core.windows.net/' \\
      --source 'abfss://insights-logs-noninteractiveusersigninlogs@ACCOUNT.dfs.core.windows.net/' -o activity.sql
  xtenant query --engine spark-sql --tenant ID --records store --source 'abfss://lake@ACCOUNT.dfs.core.windows.net/xtenant/signins/'
      (an xtenant store moved to a lake as it is)
  xtenant replay --proposed proposed.json activity.csv     (replay reads the result as it comes back)

The result has the columns and meaning of `xtenant activity --format csv --by ...` on the same
sign-ins (docs/query.md). Log Analytics cuts results past 500,000 rows or 64 MB: split the period
with --since/--until, or use --by app or --by tenant.")]
pub(crate) struct Args {
    /// The query language to write.
    #[arg(long, value_enum)]
    engine: Engine,
    /// Our tenant id: sign-ins from it are outbound, into it inbound.
    #[arg(long, value_name = "ID", value_parser = parse_guid, env = "XTENANT_TENANT")]
    tenant: Guid,
    /// One row per partner tenant, per partner and app, or per partner, app and user.
    #[arg(long, value_enum, default_value_t = GroupBy::User)]
    by: GroupBy,
    #[command(flatten)]
    period: PeriodArgs,
    /// Where the sign-ins are. kql: the interactive then the non-interactive table (give it
    /// twice; default SigninLogs and AADNonInteractiveUserSignInLogs). spark-sql: a table or
    /// view of diagnostic-settings records (default signin_logs), or a folder of them
    /// (abfss://, s3://, a local path), read with the schema the query needs; repeat for
    /// more, they are read together.
    #[arg(long, value_name = "NAME")]
    source: Vec<String>,
    /// spark-sql: what the source holds.
    #[arg(long, value_enum, default_value_t = Records::Diagnostic)]
    records: Records,
    #[command(flatten)]
    output: OutputArgs,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        self.output.files(Files::default())
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let spec = QuerySpec {
        engine: args.engine,
        tenant: args.tenant,
        by: args.by,
        window: args.period.window()?,
        sources: args.source,
        records: args.records,
    };
    let text = crate::pipeline::query::query(&spec, &|l| g.note(l))?;
    let mut out = args.output.create()?;
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
