//! The activity table as a query for the engine the logs already live in:
//! KQL for Log Analytics, Microsoft Sentinel and Azure Data Explorer
//! ([`kql`]), Spark SQL for diagnostic-settings records on a data lake
//! ([`spark_sql`]).
//!
//! Each query computes exactly what `xtenant activity --format csv` writes
//! from the same sign-ins (the columns of [`columns`], in order, with the
//! same meaning), so that only the small table comes back here for
//! `replay` and `report`. The rules copied are those of
//! `analysis::activity` and `ingest::normalize`; each is written once per
//! engine in a template next to this file, and `tests/engines/` runs the
//! queries on real engines and compares their results with `activity`
//! row for row. Change a rule there, change it here.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::activity::columns;
use crate::model::{GroupBy, Guid, Window};

pub(crate) mod kql;
pub(crate) mod spark_sql;

/// Which engine's language to write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Kusto Query Language: Log Analytics, Microsoft Sentinel, Azure Data
    /// Explorer (over `SigninLogs` and `AADNonInteractiveUserSignInLogs`).
    Kql,
    /// Spark SQL (Databricks, Synapse, Fabric, local Spark) over the
    /// diagnostic-settings records Azure Monitor writes to storage.
    SparkSql,
}

/// What the sign-in records are, for Spark SQL.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Records {
    /// Diagnostic-settings records as Azure Monitor writes them to storage.
    #[default]
    Diagnostic,
    /// The Parquet files of an xtenant store (`STORE/signins`), moved to a lake as they are.
    Store,
}

/// What to compute, and where the sign-ins are.
#[derive(Clone, Debug)]
pub struct QuerySpec {
    pub engine: Engine,
    pub tenant: Guid,
    pub by: GroupBy,
    pub window: Window,
    /// Table names or paths; empty means the engine's usual names.
    pub sources: Vec<String>,
    pub records: Records,
}

/// The query text, headed by comments that say what it computes and how
/// to bring the result back.
pub fn query(spec: &QuerySpec) -> Result<String, String> {
    match spec.engine {
        Engine::Kql if spec.records == Records::Store => {
            Err("an xtenant store is read with --engine spark-sql (KQL reads the workspace's tables)".into())
        }
        Engine::Kql => kql::query(spec),
        Engine::SparkSql => spark_sql::query(spec),
    }
}

/// A time as both languages write a literal's text: RFC 3339, UTC.
pub(crate) fn literal_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Comment lines that head every query (`prefix` is the engine's comment mark).
pub(crate) fn header(spec: &QuerySpec, prefix: &str, run: &[&str]) -> String {
    let mut lines = vec![
        format!(
            "xtenant activity table, --by {}, for tenant {}{}",
            by_name(spec.by),
            spec.tenant,
            window_text(&spec.window)
        ),
        "Computes what `xtenant activity --format csv` writes from the same sign-ins; bring the".into(),
        "result back as CSV or JSON and give it to `xtenant replay` or `xtenant report`.".into(),
        format!("Columns: {}", columns(spec.by).join(", ")),
    ];
    lines.extend(run.iter().map(|s| s.to_string()));
    lines.iter().map(|l| format!("{prefix} {l}\n")).collect()
}

fn by_name(by: GroupBy) -> &'static str {
    match by {
        GroupBy::User => "user",
        GroupBy::App => "app",
        GroupBy::Tenant => "tenant",
    }
}

fn window_text(w: &Window) -> String {
    match (w.since, w.until) {
        (None, None) => String::new(),
        (s, u) => format!(
            ", sign-ins from {} until {}",
            s.map_or("the start".into(), |t| literal_time(&t)),
            u.map_or("the end".into(), |t| literal_time(&t))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(engine: Engine, by: GroupBy, records: Records, window: Window) -> QuerySpec {
        QuerySpec { engine, tenant: Guid(0x3b8e), by, window, sources: vec![], records }
    }

    #[test]
    fn every_template_placeholder_is_filled() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().to_utc();
        for (engine, records) in [
            (Engine::Kql, Records::Diagnostic),
            (Engine::SparkSql, Records::Diagnostic),
            (Engine::SparkSql, Records::Store),
        ] {
            for by in [GroupBy::User, GroupBy::App, GroupBy::Tenant] {
                for window in [Window::default(), Window::new(Some(t), None), Window::new(None, Some(t))] {
                    let q = query(&spec(engine, by, records, window)).unwrap();
                    for left in [
                        "{source}",
                        "{window}",
                        "{tenant}",
                        "{guid}",
                        "{says:",
                        "{needed:",
                        "{control_bit:",
                        "{interactive}",
                        "{noninteractive}",
                        "{prefilter}",
                    ] {
                        assert!(!q.contains(left), "{engine:?} {by:?} {records:?}: {left} left in\n{q}");
                    }
                    assert!(q.contains("00000000-0000-0000-0000-000000003b8e"));
                }
            }
        }
    }

    #[test]
    fn the_store_is_read_with_spark_only() {
        let e = query(&spec(Engine::Kql, GroupBy::User, Records::Store, Window::default())).unwrap_err();
        assert!(e.contains("--engine spark-sql"), "{e}");
    }
}
