//! End-to-end tests of `xtenant activity`: every export format, grouping,
//! dedup, tenant inference and bad input.

mod common;

use common::*;

const GRAPH_FAMILY: &[&str] = &[
    "graph-beta-pages.json",
    "graph-beta-array.json",
    "graph-beta.ndjson",
    "graph-beta.ndjson.gz",
    "diagnostic-records.json",
    "diagnostic.ndjson",
    "portal-download.json",
    "powershell-Get-MgBetaAuditLogSignIn.json",
];
const LA_FAMILY: &[&str] = &[
    "log-analytics.json",
    "log-analytics.csv",
    "log-analytics-excel-unicode.txt",
    "log-analytics-query-api.json",
];

fn activity_csv(file: &str) -> String {
    ok(&["activity", "-q", "--format", "csv", fixture(&format!("signins/{file}")).to_str().unwrap()])
}

#[test]
fn every_graph_shaped_export_gives_the_expected_rows() {
    let want = std::fs::read_to_string(fixture("expected/activity-graph-family.csv")).unwrap();
    for f in GRAPH_FAMILY {
        assert_eq!(activity_csv(f), want, "{f}");
    }
}

#[test]
fn every_log_analytics_export_gives_the_expected_rows() {
    // Log Analytics has no home tenant name column: partner_tenant_name is empty.
    let want = std::fs::read_to_string(fixture("expected/activity-log-analytics.csv")).unwrap();
    for f in LA_FAMILY {
        assert_eq!(activity_csv(f), want, "{f}");
    }
    let graph = std::fs::read_to_string(fixture("expected/activity-graph-family.csv")).unwrap();
    assert_eq!(
        without_columns(&want, &["partner_tenant_name"]),
        without_columns(&graph, &["partner_tenant_name"])
    );
}

#[test]
fn portal_csv_download_gives_the_same_rows_but_says_it_lacks_ca_details() {
    let got = activity_csv("InteractiveSignIns_2026-11-01_2026-11-04.csv");
    let graph = std::fs::read_to_string(fixture("expected/activity-graph-family.csv")).unwrap();
    // The download lists no Conditional Access policies: no clauses either.
    assert_eq!(
        without_columns(&got, &["ca_details_missing", "grant_clauses"]),
        without_columns(&graph, &["ca_details_missing", "grant_clauses"])
    );
    let mut r = csv::Reader::from_reader(got.as_bytes());
    for row in r.deserialize::<std::collections::BTreeMap<String, String>>() {
        let row = row.unwrap();
        assert_eq!(row["ca_details_missing"], row["sign_ins"], "every sign-in lacks CA details: {row:?}");
        assert_eq!(row["grant_clauses"], "");
    }
}

#[test]
fn one_set_of_generated_sign_ins_in_every_format_gives_identical_activity() {
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        "graph-page",
        "graph-array",
        "graph-ndjson",
        "diagnostic",
        "diagnostic-ndjson",
        "la-json",
        "la-csv",
        "portal-json",
        "portal-csv",
    ];
    let mut outputs = vec![];
    for f in formats {
        let p = dir.path().join(f);
        ok(&["generate", "--count", "600", "--seed", "11", "--format", f, "-o", p.to_str().unwrap()]);
        let out = ok(&["activity", "-q", "--format", "csv", p.to_str().unwrap()]);
        assert!(out.lines().count() > 50, "{f} produced too few rows");
        outputs.push((f, out));
    }
    // Log Analytics carries no partner name; the portal CSV no CA details.
    let lossy =
        ["partner_tenant_name", "compliant_device_required", "hybrid_join_required", "ca_details_missing"];
    let reference = without_columns(&outputs[0].1, &lossy);
    for (f, out) in &outputs {
        assert_eq!(without_columns(out, &lossy), reference, "{f} differs from graph-page");
        if !f.starts_with("la-") && *f != "portal-csv" {
            assert_eq!(out, &outputs[0].1, "{f} differs from graph-page in full");
        }
    }
}

#[test]
fn graph_v1_exports_are_counted_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v1.json");
    ok(&["generate", "--count", "50", "--format", "graph-v1", "-o", p.to_str().unwrap()]);
    let o = run(&["activity", p.to_str().unwrap()]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("50 unclassified"), "{err}");
    assert!(err.contains("Get-MgBetaAuditLogSignIn"), "{err}");
}

#[test]
fn grouping_by_app_and_tenant_adds_distinct_counts() {
    let f = fixture("signins/graph-beta.ndjson");
    let by_app = ok(&["activity", "-q", "--by", "app", "--format", "csv", f.to_str().unwrap()]);
    let header = by_app.lines().next().unwrap();
    assert!(header.contains("distinct_users") && !header.contains("user_id"), "{header}");
    let by_tenant = ok(&["activity", "-q", "--by", "tenant", "--format", "csv", f.to_str().unwrap()]);
    let mut r = csv::Reader::from_reader(by_tenant.as_bytes());
    let h = r.headers().unwrap().clone();
    assert!(!h.iter().any(|c| c == "app_id"));
    let fab: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let inbound = fab.iter().find(|r| &r[col("direction")] == "inbound").unwrap();
    assert_eq!(&inbound[col("distinct_apps")], "2");
    assert_eq!(&inbound[col("distinct_users")], "1");
    assert_eq!(&inbound[col("sign_ins")], "2");
    assert_eq!(&inbound[col("policy_blocks")], "1");
}

#[test]
fn json_output_carries_schema_version_summary_and_inferred_tenant() {
    let f = fixture("signins/diagnostic.ndjson");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["activity", "-q", "--format", "json", f.to_str().unwrap()])).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["summary"]["tenant"], "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a");
    assert_eq!(v["summary"]["tenant_inferred"], true);
    assert_eq!(v["summary"]["cross_tenant_sign_ins"], 3);
    assert_eq!(v["summary"]["intra_tenant_sign_ins"], 1);
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    let nd = ok(&["activity", "-q", "--format", "ndjson", f.to_str().unwrap()]);
    assert_eq!(nd.lines().count(), 3);
}

#[test]
fn the_same_sign_in_in_overlapping_exports_counts_once() {
    let a = fixture("signins/graph-beta.ndjson");
    let b = fixture("signins/diagnostic-records.json");
    let o = run(&["activity", "--format", "csv", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("3 duplicates dropped"), "{}", stderr(&o));
    let want = std::fs::read_to_string(fixture("expected/activity-graph-family.csv")).unwrap();
    assert_eq!(stdout(&o), want);
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.ndjson");
    ok(&[
        "generate",
        "--count",
        "3000",
        "--partners",
        "40",
        "--format",
        "graph-ndjson",
        "-o",
        p.to_str().unwrap(),
    ]);
    let one = ok(&["activity", "-q", "--threads", "1", "--format", "csv", p.to_str().unwrap()]);
    let two = ok(&["activity", "-q", "--threads", "3", "--format", "csv", p.to_str().unwrap()]);
    assert_eq!(one, two);
}

#[test]
fn our_tenant_is_inferred_or_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // Only sign-ins between two tenants, and no log tenant: either could be ours.
    let p = dir.path().join("two.ndjson");
    std::fs::write(
        &p,
        r#"{"id":"0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8","createdDateTime":"2026-11-02T09:15:30Z","status":{"errorCode":0},"homeTenantId":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","resourceTenantId":"6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a","crossTenantAccessType":"b2bCollaboration"}"#,
    )
    .unwrap();
    let o = run(&["activity", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--tenant"), "{}", stderr(&o));
    let out = ok(&[
        "activity",
        "-q",
        "--format",
        "csv",
        "--tenant",
        "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
        p.to_str().unwrap(),
    ]);
    assert!(out.lines().nth(1).unwrap().starts_with("outbound,"), "{out}");
    let o = run(&["activity", "--tenant", "nope", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a tenant id"));
}

#[test]
fn a_malformed_record_stops_the_run_naming_file_line_and_field() {
    let f = fixture("bad/malformed-records.ndjson");
    let o = run(&["activity", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("malformed-records.ndjson: line 2 (record 2): field `createdDateTime`"), "{e}");
    assert!(o.stdout.is_empty());
}

#[test]
fn skip_invalid_counts_and_writes_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let f = fixture("bad/malformed-records.ndjson");
    let ours = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";
    let o = run(&["activity", "--tenant", ours, "--rejects", rejects.to_str().unwrap(), f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 invalid skipped"), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["field"], "createdDateTime");
    assert!(lines[1]["error"].as_str().unwrap().contains("oops"), "{}", lines[1]);
    assert_eq!(lines[1]["field"], "status.errorCode");
    assert_eq!(lines[2]["field"], "homeTenantId");
    assert!(lines[2]["raw"].as_str().unwrap().contains("not-a-guid"));
}

#[test]
fn broken_and_foreign_files_get_clear_messages() {
    let cases = [
        ("bad/truncated-page.json", "truncated"),
        ("bad/truncated.ndjson.gz", "truncated"),
        ("bad/la-missing-resulttype.csv", "`resulttype` or `status`"),
        ("bad/a-policy.json", "not a sign-in record"),
        ("bad/unrelated.csv", "not a sign-in export"),
    ];
    for (f, msg) in cases {
        let p = fixture(f);
        let o = run(&["activity", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{f}");
        let e = stderr(&o);
        assert!(e.contains(msg) && e.contains(p.file_name().unwrap().to_str().unwrap()), "{f}: {e}");
    }
}

#[test]
fn empty_files_and_audit_records_are_reported_not_fatal() {
    let o = run(&[
        "activity",
        fixture("bad/empty.json").to_str().unwrap(),
        fixture("bad/audit-records.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("empty.json: empty file"), "{e}");
    assert!(e.contains("ignored 1 record(s): audit events"), "{e}");
    assert!(stdout(&o).contains("no cross-tenant sign-ins found"));
}

#[test]
fn a_failed_run_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let o = run(&[
        "activity",
        "-o",
        out.to_str().unwrap(),
        fixture("bad/malformed-records.ndjson").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temp file left behind");
    ok(&[
        "activity",
        "-q",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        fixture("signins/graph-beta.ndjson").to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("direction,"));
}

#[test]
fn reads_a_directory_and_stdin() {
    let dir = fixture("signins");
    let o = run(&["activity", "--format", "csv", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("read 52 sign-ins from 13 file(s)"), "{}", stderr(&o));
    let input = std::fs::read(fixture("signins/graph-beta.ndjson.gz")).unwrap();
    let o = xtenant().args(["activity", "-q", "--format", "csv", "-"]).write_stdin(input).output().unwrap();
    assert_eq!(stdout(&o), std::fs::read_to_string(fixture("expected/activity-graph-family.csv")).unwrap());
}

#[test]
fn table_view_fits_120_columns_and_help_has_examples() {
    let out = ok(&["activity", "-q", fixture("signins/graph-beta.ndjson").to_str().unwrap()]);
    assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
    assert!(out.contains("Fabrikam"));
    let help = ok(&["activity", "--help"]);
    assert!(help.contains("Examples:"));
}

#[test]
fn service_principal_and_managed_identity_categories_are_read() {
    let f = fixture("signins-other/diagnostic-service-principal-and-managed-identity.ndjson");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["activity", "-q", "--format", "json", f.to_str().unwrap()])).unwrap();
    assert_eq!(v["summary"]["cross_tenant_by_event_type"]["service_principal"], 1);
    assert_eq!(v["summary"]["intra_tenant_sign_ins"], 1, "the managed identity sign-in stays in our tenant");
    let row = &v["rows"][0];
    assert_eq!(row["direction"], "inbound");
    assert_eq!(row["access_type"], "none");
    assert_eq!(row["user_id"], serde_json::Value::Null);
    assert_eq!(row["app_name"], "Fabrikam sync job");
}

#[test]
fn grouping_beyond_its_memory_budget_moves_to_disk_and_gives_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.ndjson"), dir.path().join("b.ndjson"));
    for (p, seed) in [(&a, "5"), (&b, "6")] {
        let p = p.to_str().unwrap();
        ok(&[
            "generate",
            "--count",
            "3000",
            "--seed",
            seed,
            "--partners",
            "40",
            "--format",
            "graph-ndjson",
            "-o",
            p,
        ]);
    }
    // An overlapping export: the copies must still count once.
    let copy = dir.path().join("a-again.ndjson");
    std::fs::copy(&a, &copy).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [a.to_str().unwrap(), b.to_str().unwrap(), copy.to_str().unwrap()];
    // At the user grain, CSV, NDJSON and JSON rows past the budget are
    // written out where they are sorted, and merged as text.
    let grains_and_formats = ["csv", "ndjson", "json", "table"]
        .map(|format| ("user", format, None))
        .into_iter()
        .chain([("user", "csv", Some("--csv-safe")), ("app", "csv", None), ("tenant", "csv", None)])
        .chain([("tenant", "json", None)]);
    for (by, format, more) in grains_and_formats {
        let run = |budget: &str| {
            let o = xtenant()
                .env("TMPDIR", tmp.path())
                .args(["activity", "--by", by, "--format", format, "--groups-in-memory", budget])
                .args(more)
                .args(inputs)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            (stdout(&o), stderr(&o))
        };
        let (memory, disk) = (run("0"), run("1"));
        assert!(
            memory.1.contains("duplicates dropped") && !memory.1.contains(" 0 duplicates"),
            "{}",
            memory.1
        );
        assert_eq!(disk, memory, "--by {by} --format {format} {more:?}");
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    }
    // Replayed rows are sorted on disk too past the budget.
    for format in ["csv", "ndjson", "json", "table", "markdown", "cef", "ecs"] {
        let replay = |budget: &str| {
            let o = xtenant()
                .env("TMPDIR", tmp.path())
                .args(["replay", "-q", "--format", format, "--all", "--groups-in-memory", budget])
                .args(["--fail-on", "lost", "--proposed"])
                .arg(fixture("policies/combined.json"))
                .args(inputs)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            stdout(&o)
        };
        let (memory, disk) = (replay("0"), replay("7"));
        assert!(memory.lines().count() > 100, "{format}: {memory}");
        assert_eq!(disk, memory, "replay --format {format}");
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    }
}

#[test]
fn a_temporary_folder_that_cannot_be_written_is_an_error_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("g.ndjson");
    ok(&["generate", "--count", "500", "--format", "graph-ndjson", "-o", input.to_str().unwrap()]);
    let out = dir.path().join("out.csv");
    let o = xtenant()
        .env("TMPDIR", dir.path().join("missing"))
        .args(["activity", "-q", "--format", "csv", "--groups-in-memory", "10", "-o"])
        .args([out.to_str().unwrap(), input.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TMPDIR"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_temporary_folder_left_by_a_killed_run_is_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("g.ndjson");
    ok(&["generate", "--count", "500", "--format", "graph-ndjson", "-o", input.to_str().unwrap()]);
    let tmp = tempfile::tempdir().unwrap();
    // What a run killed while grouping on disk leaves: its process (an id
    // no process can have) is gone.
    let left = tmp.path().join("xtenant-groups-999999999-Xy12ab");
    std::fs::create_dir(&left).unwrap();
    std::fs::write(left.join("part-000"), vec![0u8; 4096]).unwrap();
    let o = xtenant()
        .env("TMPDIR", tmp.path())
        .args(["activity", "-q", "--format", "csv", "--groups-in-memory", "10"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "nothing left in TMPDIR");
}

#[test]
fn one_guest_with_thousands_of_apps_of_his_own_gives_on_disk_the_output_of_grouping_in_memory() {
    // A forged export: one guest, 3,000 apps of his own, every tenth
    // sign-in exported twice (one copy naming another app, with another
    // name): a partition past any small budget that passes by user cannot
    // share out, read in passes by group and written a part at a time.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one-guest.ndjson");
    let sign_in = |n: usize, app: &str, upn: &str| {
        format!(
            concat!(
                r#"{{"id":"00000000-0000-0000-0000-{:012}","createdDateTime":"2026-11-{:02}T{:02}:00:00Z","#,
                r#""userId":"00000000-0000-0001-0000-000000000001","userPrincipalName":"{}","userType":"guest","#,
                r#""homeTenantId":"00000000-0000-0000-0000-000000001000","#,
                r#""resourceTenantId":"3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60","#,
                r#""crossTenantAccessType":"b2bCollaboration","appId":"{}","appDisplayName":"App {}","#,
                r#""status":{{"errorCode":{}}}}}"#,
                "\n"
            ),
            n,
            1 + n % 28,
            n % 24,
            upn,
            app,
            n,
            [0, 53003, 50076][n % 3]
        )
    };
    let mut text = String::new();
    for n in 0..3000 {
        text += &sign_in(n, &format!("app-{n}"), &format!("guest-{}@partner.example", n / 1000));
        if n % 10 == 0 {
            text += &sign_in(n, &format!("copy-{n}"), "zz-copy@partner.example");
        }
    }
    std::fs::write(&input, text).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (input, tenant) = (input.to_str().unwrap(), "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60");
    for format in ["csv", "ndjson", "json"] {
        let activity = |budget: &str| {
            let args = [
                "activity",
                "-q",
                "--tenant",
                tenant,
                "--format",
                format,
                "--groups-in-memory",
                budget,
                input,
            ];
            ok_with_tmpdir(tmp.path(), &args)
        };
        let memory = activity("100000");
        assert!(memory.contains("app-2999") && !memory.contains("zz-copy"), "{format}");
        for budget in ["10", "150"] {
            assert_eq!(activity(budget), memory, "--format {format} --groups-in-memory {budget}");
        }
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    }
}
