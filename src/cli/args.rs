//! Flag groups several commands share, each declared once with one help
//! text, and how each becomes part of a plan. A command flattens the
//! groups it takes; `--help` shows the same words everywhere.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::{Args, ValueHint};

use super::Global;
use crate::model::{GroupBy, Guid, Window};
use crate::pipeline::activity::ActivityPlan;
use crate::pipeline::inputs::DirectoryPaths;
use crate::pipeline::source::{DateOrder, InputFormat, ReadOptions, Source};
use crate::render::table::CsvStyle;
use crate::render::Output;

/// Where to read sign-ins from: exports or a store, in a period.
#[derive(Args, Debug, Clone)]
pub(crate) struct InputArgs {
    /// Sign-in exports: files, directories (read recursively) or `-` for
    /// stdin. Any format, gzip or not; detected from the content.
    #[arg(value_hint = ValueHint::AnyPath, value_name = "PATH", required_unless_present = "store")]
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) period: PeriodArgs,
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    #[command(flatten)]
    pub(crate) groups: GroupsArg,
}

/// `--groups-in-memory`: what is held in memory before the temporary folder.
#[derive(Args, Debug, Clone)]
pub(crate) struct GroupsArg {
    /// Groups (partner, app, resource, user) held in memory; beyond them
    /// grouping moves to a temporary folder in $TMPDIR (some 100 bytes per
    /// cross-tenant sign-in read after that), as do sorting replayed rows
    /// (beyond half as many, unless they were grouped in memory) and the
    /// rows a document reads twice, and
    /// memory stays flat; sooner for rows whose ids and names are far
    /// longer than Entra's (past a kilobyte a row on average). App ids past
    /// N go there too (a forged export naming millions), the users
    /// `timeline` counts near each change, and its audit changes past N or
    /// 16,384, whichever is fewer. Results are the same either way. 0:
    /// never.
    #[arg(long, value_name = "N", env = "XTENANT_GROUPS_IN_MEMORY", default_value_t = 100_000)]
    pub(crate) groups_in_memory: usize,
}

impl GroupsArg {
    /// The budget: none for 0 (never the disk).
    pub(crate) fn budget(&self) -> Option<usize> {
        (self.groups_in_memory > 0).then_some(self.groups_in_memory)
    }
}

impl InputArgs {
    pub(crate) fn files<'a>(&'a self, files: Files<'a>) -> Files<'a> {
        self.read.files(files.read(&self.paths))
    }

    /// Exports when paths are given, else the store.
    pub(crate) fn source(&self) -> Result<Source> {
        self.store.pick(&self.paths)
    }

    /// The sign-ins these flags name, to be grouped at `by`.
    pub(crate) fn activity_plan(&self, g: &Global, by: GroupBy) -> Result<ActivityPlan> {
        Ok(ActivityPlan {
            source: self.source()?,
            read: self.read.options(g),
            window: self.period.window()?,
            tenant: self.read.tenant,
            by,
            groups_in_memory: self.groups.budget(),
        })
    }

    /// The `--rejects` file for reading `source`; none for a store, whose
    /// records were checked when they were added.
    pub(crate) fn rejects_output(&self, source: &Source) -> Result<Option<Output>> {
        if source.is_store() {
            Ok(None)
        } else {
            self.read.rejects_output()
        }
    }
}

impl StoreArg {
    /// Exports when paths are given, else the store. `XTENANT_STORE` in the
    /// environment gives way to paths on the command line; `--store` given
    /// together with paths is a usage error.
    pub(crate) fn pick(&self, paths: &[PathBuf]) -> Result<Source> {
        match &self.store {
            Some(dir) if paths.is_empty() => Ok(Source::Store(dir.clone())),
            Some(dir) if std::env::var_os("XTENANT_STORE").is_none_or(|e| Path::new(&e) != dir) => {
                anyhow::bail!("give either --store or paths to read, not both")
            }
            _ => Ok(Source::Exports(paths.to_vec())),
        }
    }
}

/// `--store`: read from a history store instead of exports.
#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArg {
    /// Read from a history store (`xtenant store add`) instead of exports. From the
    /// environment, it is used when no PATH is given.
    #[arg(value_hint = ValueHint::DirPath, long, value_name = "DIR", env = "XTENANT_STORE")]
    pub(crate) store: Option<PathBuf>,
}

/// `--since` / `--until`: the period a command looks at.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct PeriodArgs {
    /// Only what happened at or after this time: 2026-11-01, an RFC 3339 time, or 30d / 12h ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub(crate) since: Option<DateTime<Utc>>,
    /// Only what happened before this time (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub(crate) until: Option<DateTime<Utc>>,
}

impl PeriodArgs {
    /// The period; a `--since` at or after `--until` is a usage error
    /// rather than a silently empty result.
    pub(crate) fn window(&self) -> Result<Window> {
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since >= until {
                anyhow::bail!(
                    "--since {} is not before --until {}: nothing happens in that period",
                    crate::model::rfc3339(&since),
                    crate::model::rfc3339(&until)
                );
            }
        }
        Ok(Window::new(self.since, self.until))
    }
}

/// How to read inputs, whatever they hold.
#[derive(Args, Debug, Clone)]
pub(crate) struct ReadArgs {
    /// Our tenant id. Without it, it is inferred from the logs (their own
    /// tenant id, else the one tenant on every cross-tenant sign-in).
    #[arg(long, value_name = "ID", value_parser = parse_guid, env = "XTENANT_TENANT")]
    pub(crate) tenant: Option<Guid>,
    /// Read every input as this format instead of detecting it.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub(crate) input_format: InputFormat,
    /// How to read dates like 03/04/2024 in CSV exports.
    #[arg(long, value_enum, default_value_t = DateOrder::Auto)]
    pub(crate) date_order: DateOrder,
    /// Skip malformed records (counted in the summary) instead of stopping
    /// at the first one.
    #[arg(long)]
    pub(crate) skip_invalid: bool,
    /// Write skipped records to FILE as NDJSON (file, line, record, field,
    /// error and the raw text). Implies --skip-invalid.
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    pub(crate) rejects: Option<PathBuf>,
}

impl ReadArgs {
    pub(crate) fn files<'a>(&'a self, files: Files<'a>) -> Files<'a> {
        files.write(&self.rejects)
    }

    pub(crate) fn options(&self, g: &Global) -> ReadOptions {
        ReadOptions {
            format: self.input_format,
            date_order: self.date_order,
            skip_invalid: self.skip_invalid || self.rejects.is_some(),
            progress: crate::render::progress::bar(!g.quiet),
        }
    }

    /// The file `--rejects` names, opened for an atomic write.
    pub(crate) fn rejects_output(&self) -> Result<Option<Output>> {
        self.rejects.as_deref().map(|p| Output::create(Some(p))).transpose()
    }
}

/// The help of every `-o`.
pub(crate) const OUTPUT_HELP: &str =
    "Write to FILE instead of stdout, atomically (all or nothing); `-` is stdout";

/// `-o`: where a command writes.
#[derive(Args, Debug, Clone)]
pub(crate) struct OutputArgs {
    #[arg(value_hint = ValueHint::FilePath, short, long, value_name = "FILE", help = OUTPUT_HELP)]
    pub(crate) output: Option<PathBuf>,
}

impl OutputArgs {
    pub(crate) fn files<'a>(&'a self, files: Files<'a>) -> Files<'a> {
        files.write(&self.output)
    }

    pub(crate) fn create(&self) -> Result<Output> {
        Output::create(self.output.as_deref())
    }
}

/// `--csv-safe`: CSV for spreadsheets rather than programs.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct CsvSafeArg {
    /// With --format csv: defuse cells a spreadsheet would run as formulas (a
    /// leading =, +, -, @, tab or CR gets a `'` before it). Off by default, so that
    /// CSV stays exact for programs, and for `replay` reading an activity table back.
    #[arg(long)]
    pub(crate) csv_safe: bool,
}

impl CsvSafeArg {
    pub(crate) fn style(&self) -> CsvStyle {
        if self.csv_safe {
            CsvStyle::Spreadsheet
        } else {
            CsvStyle::Exact
        }
    }
}

/// `--window` / `--grace`: how sign-ins are joined with a policy change.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct ChangeWindowArgs {
    /// How far before and after each policy change to compare sign-ins: 24h, 7d, 90m.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub(crate) window: Duration,
    /// Settings take time to apply: the window after a change is stretched by this.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub(crate) grace: Duration,
}

/// What evaluation may need from the directory and Conditional Access.
#[derive(Args, Debug, Clone)]
pub(crate) struct DirectoryArgs {
    /// Group memberships: CSV `group_id,member_id`, or Graph transitiveMembers JSON
    /// per group (a file or a folder). Repeatable.
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    pub(crate) groups: Vec<PathBuf>,
    /// Guests' home-tenant ids: CSV `local_user_id` or `user_principal_name`, `home_user_id`.
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    pub(crate) identities: Option<PathBuf>,
    /// Conditional Access policies (`GET /identity/conditionalAccess/policies`, or
    /// `Get-MgIdentityConditionalAccessPolicy | ConvertTo-Json -Depth 10`), and custom
    /// authentication strengths: each policy's grant operator (all or one of its
    /// controls) and strength, which sign-in logs do not carry. File or folder; repeatable.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "PATH")]
    pub(crate) ca_policies: Vec<PathBuf>,
    /// Add or override which apps `Office365` and `AllMicrosoftApps` stand for: CSV
    /// `keyword,app_id`, keyword `Office365`, `AllMicrosoftApps` or `None` (not Microsoft).
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    pub(crate) app_table: Option<PathBuf>,
}

impl DirectoryArgs {
    pub(crate) fn files<'a>(&'a self, files: Files<'a>) -> Files<'a> {
        files.read(&self.groups).read(&self.identities).read(&self.ca_policies).read(&self.app_table)
    }

    pub(crate) fn paths(&self) -> DirectoryPaths {
        DirectoryPaths {
            groups: self.groups.clone(),
            identities: self.identities.clone(),
            ca_policies: self.ca_policies.clone(),
            app_table: self.app_table.clone(),
        }
    }
}

pub(crate) fn parse_guid(s: &str) -> Result<Guid, String> {
    Guid::parse(s)
        .ok_or_else(|| format!("`{s}` is not a tenant id (a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47)"))
}

/// The files a command reads and the files it writes: an output that is
/// one of its inputs would be destroyed by the run that reads it
/// (`--rejects x.ndjson x.ndjson` replaced the export with its rejects).
#[derive(Default)]
pub(crate) struct Files<'a> {
    inputs: Vec<&'a Path>,
    outputs: Vec<&'a Path>,
}

impl<'a> Files<'a> {
    pub(crate) fn read(mut self, paths: impl IntoIterator<Item = &'a PathBuf>) -> Self {
        self.inputs.extend(paths.into_iter().map(PathBuf::as_path));
        self
    }

    pub(crate) fn write(mut self, paths: impl IntoIterator<Item = &'a PathBuf>) -> Self {
        self.outputs.extend(paths.into_iter().map(PathBuf::as_path));
        self
    }

    /// Refuses an output that is an input (the same file, however it is
    /// named: links and `./` count) or lies in an input directory, where the
    /// next run would read it as a log.
    pub(crate) fn check(&self) -> Result<()> {
        let stdio = |p: &Path| p.as_os_str() == "-";
        for out in self.outputs.iter().filter(|p| !stdio(p)) {
            for input in self.inputs.iter().filter(|p| !stdio(p)) {
                if same_file::is_same_file(out, input).unwrap_or(false) {
                    anyhow::bail!(
                        "{} is both an input and an output: writing it would destroy what is read; \
                         write somewhere else",
                        out.display()
                    );
                }
                if input.is_dir() && within(out, input) {
                    anyhow::bail!(
                        "{} is inside the input directory {}: the next run would read it as input; \
                         write somewhere else",
                        out.display(),
                        input.display()
                    );
                }
            }
        }
        Ok(())
    }
}

/// Whether `path` (which may not exist yet) lies below the directory `dir`.
fn within(path: &Path, dir: &Path) -> bool {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

/// `2026-11-01`, RFC 3339, or a duration before now (`30d`, `12h`, `1h 30m`).
pub(crate) fn parse_when(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    if t.starts_with('-') {
        return Err(format!("`{s}`: a time before now is written without a sign (30d means 30 days ago)"));
    }
    let ago = parse_duration(t).map_err(|_| {
        format!("`{s}`: use a date (2026-11-01), an RFC 3339 time, or a duration before now like 30d or 12h")
    })?;
    Utc::now().checked_sub_signed(ago).ok_or_else(|| format!("`{s}`: too far from now"))
}

/// The longest duration taken: adding it to any sign-in time stays in range.
const LONGEST: Duration = Duration::days(3650);

/// `24h`, `7d`, `90m`, `1h 30m` (humantime's forms).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}`: {e}; use a duration like 24h, 7d or 90m"))?;
    Duration::from_std(d)
        .ok()
        .filter(|d| *d <= LONGEST)
        .ok_or_else(|| format!("`{s}`: too long a duration (at most 3650d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_may_not_be_an_input_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let export = logs.join("x.ndjson");
        std::fs::write(&export, "{}").unwrap();
        let alias = logs.join(".").join("x.ndjson");
        let elsewhere = dir.path().join("out.csv");
        let later = logs.join("out.csv");
        let check = |input: &PathBuf, output: &PathBuf| {
            Files::default().read([input]).write([output]).check().map_err(|e| e.to_string())
        };
        assert!(check(&export, &alias).unwrap_err().contains("both an input and an output"));
        assert!(check(&logs, &later).unwrap_err().contains("inside the input directory"));
        assert!(check(&export, &elsewhere).is_ok());
        assert!(check(&export, &PathBuf::from("-")).is_ok());
    }

    #[test]
    fn when_accepts_dates_times_and_ago_and_refuses_the_rest() {
        assert_eq!(parse_when("2026-11-01").unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert!(parse_when("2026-11-01T10:00:00+02:00").is_ok());
        assert!(parse_when("30d").unwrap() < Utc::now());
        for bad in ["", "yesterday", "5é", "é", "99999999999999d", "-99999999d", "-3d", "3 fortnights"] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
        assert!(parse_when("-3d").unwrap_err().contains("without a sign"));
    }

    #[test]
    fn durations_are_checked_not_trusted() {
        assert_eq!(parse_duration("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("0h"), Ok(Duration::zero()));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::minutes(90)));
        for bad in ["", "h", "-5h", "5é", "日", "99999999999999d", "3651d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
