//! `xtenant replay`: which access a proposed policy would remove (or add),
//! with the evidence and the rule that decides.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{Global, InputArgs};
use crate::activity::GroupBy;
use crate::ingest::activity_table;
use crate::policy::apps::AppCatalog;
use crate::policy::conditional_access::CaPolicies;
use crate::policy::directory::{load_groups, load_identities};
use crate::policy::load::load_valid;
use crate::replay::{replay, summarize, Impact, Inputs};
use crate::report::{self, Output};

use super::ReportFormat as Format;

/// Replay sign-ins against a proposed policy: what would be lost, degraded or gained, and why.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant replay --proposed samples/policies/proposed.json --current samples/policies/current.json samples/signins/
  xtenant replay --proposed policy/ --fail-on lost,unknown logs/*.json.gz        (a CI gate: exit 1 on findings)
  xtenant activity --format csv -o activity.csv logs/ && xtenant replay --proposed p.json activity.csv
  xtenant replay --proposed p.json --current c.json --audit audit/ logs/    (calibrate across mid-window changes)

PATH may also be an activity table written by `xtenant activity --format csv|ndjson`.")]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The policy you plan to apply (file or folder, any layout `policy show` reads).
    #[arg(long, value_name = "POLICY")]
    pub proposed: PathBuf,
    /// The policy in force. Without it, the current verdict is what the logs saw:
    /// a group with a successful sign-in is allowed, one whose sign-ins all failed
    /// with our cross-tenant policy error is blocked.
    #[arg(long, value_name = "POLICY")]
    pub current: Option<PathBuf>,
    /// Audit logs of the window (any format `timeline` reads): rebuild the current
    /// policy back through its changes, so sign-ins before a change are checked
    /// against the policy in force then. Needs --current.
    #[arg(long, value_name = "AUDIT_PATH", requires = "current")]
    pub audit: Vec<PathBuf>,
    /// Group memberships: CSV `group_id,member_id`, or Graph transitiveMembers JSON
    /// per group (a file or a folder). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub groups: Vec<PathBuf>,
    /// Guests' home-tenant ids: CSV `local_user_id` or `user_principal_name`, `home_user_id`.
    #[arg(long, value_name = "FILE")]
    pub identities: Option<PathBuf>,
    /// Conditional Access policies (`GET /identity/conditionalAccess/policies`, or
    /// `Get-MgIdentityConditionalAccessPolicy | ConvertTo-Json -Depth 10`), and custom
    /// authentication strengths: each policy's grant operator (all or one of its
    /// controls) and strength, which sign-in logs do not carry. File or folder; repeatable.
    #[arg(long, value_name = "PATH")]
    pub ca_policies: Vec<PathBuf>,
    /// Add or override which apps `Office365` and `AllMicrosoftApps` stand for: CSV
    /// `keyword,app_id`, keyword `Office365`, `AllMicrosoftApps` or `None` (not Microsoft).
    #[arg(long, value_name = "FILE")]
    pub app_table: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GroupBy::User)]
    pub by: GroupBy,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE instead of stdout (atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when any of these impacts occurs (comma-separated), for CI gates.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "IMPACTS")]
    pub fail_on: Vec<Impact>,
    /// With --store: emit only findings no earlier --new-only run emitted (the
    /// state is kept in the store), so a scheduled job feeds each finding once.
    #[arg(long, requires = "store")]
    pub new_only: bool,
    /// Show unchanged groups too (table and markdown).
    #[arg(long)]
    pub all: bool,
}

/// `2026-11-01`, RFC 3339, or `30d` / `12h` before now.
pub fn parse_when(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    if let Ok(n) = n.parse::<i64>() {
        let d = match unit {
            "d" => chrono::Duration::try_days(n),
            "h" => chrono::Duration::try_hours(n),
            _ => {
                return Err(format!(
                    "`{s}`: use a date (2026-11-01), an RFC 3339 time, or a duration like 30d or 12h"
                ))
            }
        };
        return d
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .ok_or_else(|| format!("`{s}`: too far from now"));
    }
    Err(format!("`{s}`: use a date (2026-11-01), an RFC 3339 time, or a duration like 30d or 12h"))
}

pub fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let proposed = load_valid(&args.proposed)?;
    let current = args.current.as_deref().map(load_valid).transpose()?;
    for p in std::iter::once(&proposed).chain(current.as_ref()) {
        for w in &p.warnings {
            g.note(&format!("warning: {w}"));
        }
    }
    let (history, change_times) = match &current {
        Some(cur) if !args.audit.is_empty() => {
            let (changes, stats) = super::timeline::read_changes(&args.audit, &args.input.read, g, None)?;
            let history = crate::policy::history::reconstruct(cur, &changes);
            let starts: Vec<_> = history.epochs.iter().filter_map(|e| e.from).collect();
            let unknown = history.epochs.iter().filter(|e| !e.unknown.is_empty()).count();
            g.note(&format!(
                "audit: {} policy change(s) in {} audit record(s); the current policy rebuilt for {} epoch(s){}",
                starts.len(),
                stats.records_read,
                history.epochs.len(),
                if unknown > 0 { format!(", {unknown} of them only in part (see `xtenant timeline --policy`)") } else { String::new() }
            ));
            (Some(history), starts)
        }
        _ => (None, vec![]),
    };
    let groups = if args.groups.is_empty() { None } else { Some(load_groups(&args.groups)?) };
    let identities = args.identities.as_deref().map(load_identities).transpose()?;

    let tables: Vec<bool> = args
        .input
        .paths
        .iter()
        .map(|p| p.is_file() && activity_table::looks_like_activity_table(p))
        .collect();
    let (by, rows, totals, stats, tenant) = if !tables.is_empty() && tables.iter().all(|t| *t) {
        if args.input.since.is_some() || args.input.until.is_some() || !args.audit.is_empty() {
            bail!("--since, --until and --audit need raw sign-in logs: an activity table has no per-sign-in times");
        }
        let mut rows = Vec::new();
        let mut grain = None;
        for p in &args.input.paths {
            let (by, r) = activity_table::read(p)?;
            if grain.is_some_and(|g| g != by) {
                bail!(
                    "{}: the activity tables have different grains (--by); replay one grain at a time",
                    p.display()
                );
            }
            grain = Some(by);
            rows.extend(r);
        }
        g.note(&format!(
            "replaying {} activity group(s) from {} table(s)",
            rows.len(),
            args.input.paths.len()
        ));
        (grain.unwrap_or(GroupBy::User), rows, None, None, args.input.read.tenant)
    } else if tables.iter().any(|t| *t) {
        bail!("the inputs mix activity tables and raw sign-in logs: replay one kind at a time");
    } else {
        let (report, stats) =
            super::activity::collect_window(&args.input, args.by, change_times, g, None::<fn(&_)>)?;
        for line in report::activity::summary_lines(&report, &stats) {
            g.note(&line);
        }
        (report.by, report.rows, Some(report.totals), Some(stats), report.tenant)
    };

    let apps = match &args.app_table {
        Some(p) => AppCatalog::with_user_table(p)?,
        None => AppCatalog::built_in().clone(),
    };
    let ca = if args.ca_policies.is_empty() {
        CaPolicies::default()
    } else {
        CaPolicies::load(&args.ca_policies)?
    };
    let inputs = Inputs {
        current: current.as_ref(),
        proposed: &proposed,
        groups: groups.as_ref(),
        identities: identities.as_ref(),
        history: history.as_ref(),
        apps: &apps,
        ca: &ca,
    };
    let mut replayed = replay(rows, &inputs);
    let mut new_findings = None;
    if args.new_only {
        let dir = args.input.store.as_deref().ok_or_else(|| anyhow::anyhow!("--new-only needs --store"))?;
        let store = crate::store::Store::open(dir)?;
        let ids: Vec<String> =
            replayed.iter().filter(|r| r.impact != Impact::Unchanged).map(report::siem::finding_id).collect();
        let unseen = store.unseen_findings(ids.iter());
        replayed.retain(|r| r.impact != Impact::Unchanged && unseen.contains(&report::siem::finding_id(r)));
        g.note(&format!("--new-only: {} of {} finding(s) not emitted before", unseen.len(), ids.len()));
        new_findings = Some((store, unseen));
    }
    let summary = summarize(&replayed, totals.as_ref(), current.is_some());

    let mut out = Output::create(args.output.as_deref())?;
    match args.format {
        Format::Json => {
            let run = json!({
                "proposed": proposed.source,
                "current": current.as_ref().map(|c| c.source.clone()),
                "current_from": if current.is_some() { "policy" } else { "logs" },
                "groups_supplied": groups.is_some(),
                "identities_supplied": identities.is_some(),
                "input": stats.as_ref().zip(totals.as_ref()).map(|(s, t)| json!({
                    "files": s.files, "records_read": s.records_read, "invalid_records": s.invalid_records,
                    "cross_tenant_sign_ins": t.cross_tenant, "duplicates_dropped": t.duplicates_dropped,
                    "outside_window": t.outside_window,
                })),
            });
            serde_json::to_writer_pretty(
                &mut out,
                &report::replay::json_document(&replayed, by, &summary, run),
            )?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        Format::Ndjson => {
            let columns = report::replay::columns(by);
            let rows = replayed.iter().map(|r| report::replay::cells(r, &columns));
            report::table::stream_ndjson(&columns, rows, &mut out)?
        }
        Format::Csv => {
            let columns = report::replay::columns(by);
            let rows = replayed.iter().map(|r| report::replay::cells(r, &columns));
            report::table::stream_csv(&columns, rows, &mut out)?
        }
        Format::Ecs => report::siem::write_ecs(&replayed, tenant, &mut out)?,
        Format::Cef => report::siem::write_cef(&replayed, tenant, &mut out)?,
        Format::Markdown => std::io::Write::write_all(
            &mut out,
            report::replay::markdown(&replayed, &summary, args.all).as_bytes(),
        )?,
        Format::Table => {
            let text = report::replay::text(
                &replayed,
                &summary,
                args.all,
                g.color && out.is_stdout(),
                report::table::terminal_width() as usize,
            );
            std::io::Write::write_all(&mut out, text.as_bytes())?;
        }
    }
    out.commit()?;
    if let Some((mut store, ids)) = new_findings {
        store.mark_emitted(ids)?;
    }
    let failed: Vec<&str> = args
        .fail_on
        .iter()
        .filter(|i| replayed.iter().any(|r| r.impact == **i))
        .map(|i| i.as_str())
        .collect();
    if !failed.is_empty() {
        g.note(&format!("--fail-on: found {} impact(s)", failed.join(", ")));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_accepts_dates_times_and_ago_and_refuses_the_rest() {
        assert_eq!(parse_when("2026-11-01").unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert!(parse_when("2026-11-01T10:00:00+02:00").is_ok());
        assert!(parse_when("30d").unwrap() < Utc::now());
        for bad in ["", "yesterday", "5w", "99999999999999d", "-99999999d"] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }
}
