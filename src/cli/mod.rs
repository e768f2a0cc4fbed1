//! Command-line interface: one file per subcommand. Flags are documented
//! where they are declared; `--help` shows the same text.

pub mod activity;
pub mod generate;
pub mod policy;
pub mod replay;
pub mod report;
pub mod store;
pub mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::ingest::{self, DateOrder, InputFormat, RecordKind, Stats};
use crate::model::Guid;
use crate::report::style::ColorChoice;
use crate::report::Output;

const ABOUT: &str =
    "Replay Entra ID sign-in logs against cross-tenant access policies before you change them.";

const EXAMPLES: &str = "\
Examples:
  xtenant replay --proposed samples/policies/proposed.json --current samples/policies/current.json samples/signins/
  xtenant activity samples/signins/                    who works with which partner tenant
  xtenant activity --by tenant --format csv logs.json.gz
  xtenant policy diff samples/policies/current.json samples/policies/proposed.json
  xtenant timeline samples/audit/ --signins samples/signins/   policy changes and who they blocked
  xtenant report samples/signins/ --current samples/policies/current.json -o report.html
  xtenant store add --store history/ samples/signins/ --audit samples/audit/
  xtenant generate --count 1000 --format graph-ndjson -o big.ndjson

Exit codes: 0 done, 1 a finding --fail-on asked about, 2 usage or input error.";

#[derive(Parser, Debug)]
#[command(name = "xtenant", version, about = ABOUT, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Worker threads for parsing (default: one per core). Output never
    /// depends on it.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// No summary or progress on stderr; errors are still printed.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Activity(activity::Args),
    Generate(generate::Args),
    Policy(policy::Args),
    Replay(replay::Args),
    Report(report::Args),
    /// Keep cross-tenant sign-ins and audit events beyond Entra's 30 days (Parquet history store).
    #[command(subcommand)]
    Store(store::Command),
    Timeline(timeline::Args),
}

/// `--format` of the commands that report findings (`replay`, `timeline`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
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
    /// Findings (not unchanged rows) as Elastic Common Schema NDJSON (replay).
    Ecs,
    /// Findings as ArcSight CEF lines, for syslog and Sentinel's CEF connector (replay).
    Cef,
}

/// Where to read sign-ins from and how; shared by every command that does.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Sign-in exports: files, directories (read recursively) or `-` for
    /// stdin. Any format, gzip or not; detected from the content.
    #[arg(value_name = "PATH", required_unless_present = "store", conflicts_with = "store")]
    pub paths: Vec<PathBuf>,
    /// Read sign-ins from a history store (`xtenant store add`) instead of exports.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Only sign-ins at or after this time: 2026-11-01, an RFC 3339 time, or 30d / 12h ago.
    #[arg(long, value_name = "WHEN", value_parser = replay::parse_when)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only sign-ins before this time (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = replay::parse_when)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// How to read inputs, whatever they hold.
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// Our tenant id. Without it, it is inferred from the logs (their own
    /// tenant id, else the one tenant on every cross-tenant sign-in).
    #[arg(long, value_name = "ID", value_parser = parse_guid)]
    pub tenant: Option<Guid>,
    /// Read every input as this format instead of detecting it.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,
    /// How to read dates like 03/04/2024 in CSV exports.
    #[arg(long, value_enum, default_value_t = DateOrder::Auto)]
    pub date_order: DateOrder,
    /// Skip malformed records (counted in the summary) instead of stopping
    /// at the first one.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Write skipped records to FILE as NDJSON (file, line, record, field,
    /// error and the raw text). Implies --skip-invalid.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
}

impl ReadArgs {
    /// The file `--rejects` names, opened for an atomic write.
    pub fn rejects_output(&self) -> Result<Option<Output>> {
        self.rejects.as_deref().map(|p| Output::create(Some(p))).transpose()
    }

    /// Reads `paths` as records of `kind` with these options, handing each
    /// to `sink` in input order.
    pub fn read<K: RecordKind>(
        &self,
        kind: K,
        paths: &[PathBuf],
        g: &Global,
        rejects: Option<&mut Output>,
        sink: impl FnMut(K::Item) + Send,
    ) -> Result<Stats> {
        let inputs = ingest::source::expand(paths)?;
        let opts = ingest::Options {
            format: self.input_format,
            date_order: self.date_order,
            skip_invalid: self.skip_invalid || self.rejects.is_some(),
            progress: !g.quiet,
        };
        ingest::read_records(
            kind,
            &inputs,
            &opts,
            rejects.map(|r| r as &mut (dyn std::io::Write + Send)),
            sink,
        )
    }
}

pub fn parse_guid(s: &str) -> Result<Guid, String> {
    Guid::parse(s)
        .ok_or_else(|| format!("`{s}` is not a tenant id (a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47)"))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global().ok();
    }
    let ctx = Global { color: cli.color.enabled(), quiet: cli.quiet };
    match cli.command {
        Command::Activity(a) => activity::run(a, &ctx),
        Command::Generate(a) => generate::run(a, &ctx),
        Command::Policy(a) => policy::run(a, &ctx),
        Command::Replay(a) => replay::run(a, &ctx),
        Command::Report(a) => report::run(a, &ctx),
        Command::Store(a) => store::run(a, &ctx),
        Command::Timeline(a) => timeline::run(a, &ctx),
    }
}

/// Settings every subcommand sees.
pub struct Global {
    pub color: bool,
    pub quiet: bool,
}

impl Global {
    pub fn note(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}
