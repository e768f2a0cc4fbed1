//! End-to-end `query`: what the command line promises about the queries it
//! writes. Whether the queries compute the activity table is proved by
//! running them on real engines (tests/engines/run.sh, in CI), not here.

mod common;

use common::*;

const TENANT: &str = "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60";

fn query(extra: &[&str]) -> String {
    let mut args = vec!["query", "-q", "--tenant", TENANT];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn a_query_names_the_columns_activity_writes_in_their_order() {
    for by in ["user", "app", "tenant"] {
        let activity =
            ok(&["activity", "-q", "--by", by, "--format", "csv", &fixture("signins").to_string_lossy()]);
        let header = activity.lines().next().unwrap().replace(',', ", ");
        for engine in ["kql", "spark-sql"] {
            let q = query(&["--engine", engine, "--by", by]);
            assert!(q.contains(&format!("Columns: {header}\n")), "{engine} --by {by}");
        }
    }
}

#[test]
fn the_same_flags_write_the_same_query() {
    for engine in ["kql", "spark-sql"] {
        let args = ["--engine", engine, "--since", "2026-11-01", "--until", "2026-12-01"];
        assert_eq!(query(&args), query(&args));
    }
}

#[test]
fn kql_reads_both_sign_in_tables_each_normalised_before_the_union() {
    let q = query(&["--engine", "kql"]);
    assert!(q.contains("let Interactive = SigninLogs"));
    assert!(q.contains("let NonInteractive = AADNonInteractiveUserSignInLogs"));
    assert!(q.contains("Status = todynamic(Status)"));
    assert!(q.contains("union Interactive, NonInteractive"));
    let renamed =
        query(&["--engine", "kql", "--source", "Contoso_SignIns", "--source", "Contoso_NonInteractive"]);
    assert!(renamed.contains("let Interactive = Contoso_SignIns"));
    assert!(renamed.contains("let NonInteractive = Contoso_NonInteractive"));
}

#[test]
fn a_window_reads_a_day_either_side_by_time_generated_and_keeps_the_sign_ins_in_it() {
    let q = query(&["--engine", "kql", "--since", "2026-11-01", "--until", "2026-11-08T12:00:00Z"]);
    assert!(q.contains("where TimeGenerated >= datetime(2026-11-01T00:00:00Z) - 1d"), "{q}");
    assert!(q.contains("where TimeGenerated < datetime(2026-11-08T12:00:00Z) + 1d"));
    assert!(
        q.contains("and Time >= datetime(2026-11-01T00:00:00Z) and Time < datetime(2026-11-08T12:00:00Z)")
    );
    let s = query(&["--engine", "spark-sql", "--since", "2026-11-01"]);
    assert!(s.contains("AND at >= TIMESTAMP '2026-11-01T00:00:00Z'"));
}

#[test]
fn spark_reads_a_folder_through_a_view_with_the_schema_it_needs() {
    let q = query(&[
        "--engine",
        "spark-sql",
        "--source",
        "abfss://insights-logs-signinlogs@acct.dfs.core.windows.net/",
        "--source",
        "abfss://insights-logs-noninteractiveusersigninlogs@acct.dfs.core.windows.net/",
    ]);
    assert!(q.contains("CREATE OR REPLACE TEMPORARY VIEW xtenant_records_1 (`time` STRING"));
    assert!(q.contains("OPTIONS (path 'abfss://insights-logs-signinlogs@acct.dfs.core.windows.net/', recursiveFileLookup 'true')"));
    assert!(q.contains("UNION ALL"));
    let named = query(&["--engine", "spark-sql"]);
    assert!(named.contains("FROM signin_logs"));
    assert!(!named.contains("CREATE"));
    let store = query(&["--engine", "spark-sql", "--records", "store", "--source", "/lake/xtenant/signins"]);
    assert!(store.contains("USING parquet OPTIONS (path '/lake/xtenant/signins', mergeSchema 'true')"));
}

#[test]
fn a_quote_in_a_path_cannot_end_the_sql_string() {
    let q = query(&["--engine", "spark-sql", "--source", "/data/it's here/"]);
    assert!(q.contains(r"path '/data/it\'s here/'"), "{q}");
}

#[test]
fn wrong_combinations_are_usage_errors_that_say_what_to_do() {
    let o = run(&["query", "--engine", "kql", "--tenant", TENANT, "--source", "OnlyOne"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give --source twice"), "{}", stderr(&o));
    let o = run(&["query", "--engine", "kql", "--tenant", TENANT, "--records", "store"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--engine spark-sql"), "{}", stderr(&o));
    let o = xtenant().args(["query", "--engine", "kql"]).env_remove("XTENANT_TENANT").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--tenant"), "{}", stderr(&o));
    let o = run(&[
        "query",
        "--engine",
        "kql",
        "--tenant",
        TENANT,
        "--since",
        "2026-12-01",
        "--until",
        "2026-11-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn without_since_kql_says_which_time_range_log_analytics_will_use() {
    let o = run(&["query", "--engine", "kql", "--tenant", TENANT]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("no --since"), "{}", stderr(&o));
}

#[test]
fn the_query_is_written_to_a_file_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("activity.kql");
    ok(&["query", "-q", "--engine", "kql", "--tenant", TENANT, "-o", &out.to_string_lossy()]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("// xtenant activity table, --by user, for tenant 3b8e5f2a"));
}

#[test]
fn a_period_split_into_parts_replays_as_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let signins = fixture("../../samples/signins").to_string_lossy().into_owned();
    let policies = fixture("../../samples/policies").to_string_lossy().into_owned();
    let part = |name: &str, range: &[&str]| {
        let path = dir.path().join(name).to_string_lossy().into_owned();
        let mut args = vec!["activity", "-q", "--format", "csv", "--tenant", TENANT, &signins, "-o", &path];
        args.extend_from_slice(range);
        ok(&args);
        path
    };
    let whole = part("whole.csv", &[]);
    let first = part("first.csv", &["--until", "2026-11-13"]);
    let second = part("second.csv", &["--since", "2026-11-13"]);
    let replay = |tables: &[&str], budget: &str| {
        let (current, proposed) = (format!("{policies}/current.json"), format!("{policies}/proposed.json"));
        let mut args = vec![
            "replay",
            "-q",
            "--groups-in-memory",
            budget,
            "--format",
            "csv",
            "--tenant",
            TENANT,
            "--current",
            &current,
            "--proposed",
            &proposed,
        ];
        args.extend_from_slice(tables);
        ok(&args)
    };
    let expected = replay(&[&whole], "0");
    assert!(expected.lines().count() > 100);
    // The parts' rows meet in a sort, on disk past the budget.
    for budget in ["0", "1", "7"] {
        assert_eq!(replay(&[&first, &second], budget), expected, "--groups-in-memory {budget}");
        assert_eq!(replay(&[&whole], budget), expected, "--groups-in-memory {budget}");
    }
}
