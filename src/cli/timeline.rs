//! `xtenant timeline`: every cross-tenant policy change in the audit log,
//! what it changed, and what it did to the partner's sign-ins.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, Utc};

use super::replay::parse_when;
use super::{Global, ReadArgs};
use crate::ingest::{AuditEvents, SignIns, Stats};
use crate::model::Guid;
use crate::policy::change::{decode, PolicyChange};
use crate::policy::history::{reconstruct, ChangeCheck};
use crate::policy::load::load_valid;
use crate::report::{self, Output};
use crate::timeline::{Effect, Join};

use super::ReportFormat as Format;

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
old values each audit record carries.")]
pub struct Args {
    /// Audit log exports: Graph directoryAudits (page, array, NDJSON), the
    /// diagnostic-settings AuditLogs stream, Log Analytics AuditLogs (JSON or
    /// CSV), the unified audit log (Management API JSON, Purview CSV); files,
    /// directories or `-`; gzip or not. Other events are counted and skipped.
    #[arg(value_name = "AUDIT_PATH", required_unless_present = "store", conflicts_with = "store")]
    pub paths: Vec<PathBuf>,
    /// Read audit events and sign-ins from a history store (`xtenant store add`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Sign-in exports to join with each change (any format `activity` reads);
    /// repeat for more paths.
    #[arg(long, value_name = "PATH")]
    pub signins: Vec<PathBuf>,
    /// The policy in force at the end of the audit window: rebuild the policy
    /// before each change from it.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// How far before and after each change to look at sign-ins: 24h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub window: Duration,
    /// Settings take time to apply: the window after a change is stretched by this.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Only changes at or after this time: a date, RFC 3339 time, or 30d / 12h ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<DateTime<Utc>>,
    /// Only changes before this time (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<DateTime<Utc>>,
    /// Also list failed attempts and events that change no access (identity
    /// sync, migrations).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE instead of stdout (atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const SIEM_ONLY_FOR_REPLAY: &str =
    "--format ecs and cef are for replay findings; feed the timeline to a SIEM with --format ndjson";

/// `24h`, `7d`, `90m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let usage = || format!("`{s}`: use a duration like 24h, 7d or 90m");
    let n: i64 = n.parse().ok().filter(|n| *n >= 0).ok_or_else(usage)?;
    let d = match unit {
        "d" => Duration::try_days(n),
        "h" => Duration::try_hours(n),
        "m" => Duration::try_minutes(n),
        _ => return Err(usage()),
    };
    // Capped so that adding it to any sign-in time stays in range.
    d.filter(|d| *d <= Duration::days(3650))
        .ok_or_else(|| format!("`{s}`: too long a duration (at most 3650d)"))
}

/// One line of the timeline.
pub struct Row {
    pub change: PolicyChange,
    pub partner_name: Option<String>,
    pub effect: Option<Effect>,
    pub check: Option<ChangeCheck>,
}

/// What the run read, for the summary.
pub struct Run {
    pub audit: Stats,
    pub signins: Option<Stats>,
    pub joined_sign_ins: u64,
    pub policy: Option<String>,
    pub window: Duration,
    pub grace: Duration,
}

/// Reads audit events and decodes the cross-tenant policy changes, in time
/// order. Shared with `replay --audit`.
pub fn read_changes(
    paths: &[PathBuf],
    input: &ReadArgs,
    g: &Global,
    rejects: Option<&mut Output>,
) -> Result<(Vec<PolicyChange>, Stats)> {
    let mut changes = vec![];
    let stats = input.read(AuditEvents, paths, g, rejects, |e| changes.push(decode(&e)))?;
    Ok((sort_changes(changes), stats))
}

/// Time order; the same record from overlapping exports once.
pub fn sort_changes(mut changes: Vec<PolicyChange>) -> Vec<PolicyChange> {
    changes.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    changes.dedup_by(|a, b| !a.id.is_empty() && a.id == b.id);
    changes
}

pub fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let input = &args.read;
    if matches!(args.format, Format::Ecs | Format::Cef) {
        bail!(SIEM_ONLY_FOR_REPLAY);
    }
    let policy = args.policy.as_deref().map(load_valid).transpose()?;
    let mut rejects = input.rejects_output()?;
    let store = args.store.as_deref().map(crate::store::Store::open).transpose()?;
    let (changes, audit) = match &store {
        Some(st) => {
            let events = st.read_audit(None, None)?;
            let stats = Stats {
                files: st.manifest.audit.len() as u64,
                records_read: events.len() as u64,
                ..Stats::default()
            };
            (sort_changes(events.iter().map(decode).collect()), stats)
        }
        None => read_changes(&args.paths, input, g, rejects.as_mut())?,
    };
    let owners: std::collections::BTreeSet<Guid> = changes.iter().filter_map(|c| c.owner).collect();
    if input.tenant.is_none() && owners.len() > 1 {
        let list: Vec<String> = owners.iter().map(Guid::to_string).collect();
        bail!(
            "the audit logs belong to {} tenants ({}); say which is ours with --tenant ID",
            owners.len(),
            list.join(", ")
        );
    }
    let our_tenant = input.tenant.or_else(|| owners.iter().next().copied());

    let history = policy.as_ref().map(|p| reconstruct(p, &changes));
    let (effects, names, signins, joined) = if args.signins.is_empty() && store.is_none() {
        (vec![None; changes.len()], Default::default(), None, 0)
    } else {
        let mut join = Join::new(&changes, our_tenant, args.window, args.grace);
        let stats = match &store {
            Some(st) if args.signins.is_empty() => {
                let n = st.read_signins(None, None, |s| join.add(&s))?;
                Stats { files: st.manifest.signins.len() as u64, records_read: n, ..Stats::default() }
            }
            _ => input.read(SignIns, &args.signins, g, rejects.as_mut(), |s| join.add(&s))?,
        };
        let (names, joined) = (join.names(), join.joined);
        (join.finish(), names, Some(stats), joined)
    };
    if let Some(r) = rejects {
        r.commit()?;
    }
    let keep = |c: &PolicyChange| {
        (args.all || (c.succeeded && c.kind.changes_access()))
            && args.since.is_none_or(|s| c.time >= s)
            && args.until.is_none_or(|u| c.time < u)
    };
    let checks: Vec<Option<ChangeCheck>> = match &history {
        Some(h) => h.checks.iter().cloned().map(Some).collect(),
        None => vec![None; changes.len()],
    };
    let rows: Vec<Row> = changes
        .into_iter()
        .zip(effects)
        .zip(checks)
        .filter(|((c, _), _)| keep(c))
        .map(|((change, effect), check)| Row {
            partner_name: change.partner().and_then(|p| names.get(&p).cloned()),
            change,
            effect,
            check,
        })
        .collect();
    let run = Run {
        audit,
        signins,
        joined_sign_ins: joined,
        policy: policy.map(|p| p.source),
        window: args.window,
        grace: args.grace,
    };
    for line in report::timeline::summary_lines(&rows, &run) {
        g.note(&line);
    }
    let mut out = Output::create(args.output.as_deref())?;
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report::timeline::json_document(&rows, &run))?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        Format::Ndjson => report::timeline::table(&rows).write_ndjson(&mut out)?,
        Format::Ecs | Format::Cef => bail!(SIEM_ONLY_FOR_REPLAY),
        Format::Csv => report::timeline::csv_table(&rows).write_csv(&mut out)?,
        Format::Markdown => {
            std::io::Write::write_all(&mut out, report::timeline::markdown(&rows, &run).as_bytes())?
        }
        Format::Table => {
            let text = report::timeline::text(&rows, &run, g.color && out.is_stdout());
            std::io::Write::write_all(&mut out, text.as_bytes())?;
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_checked_not_trusted() {
        assert_eq!(parse_duration("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("0h"), Ok(Duration::zero()));
        for bad in ["", "h", "-5h", "5w", "99999999999999d", "3651d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
