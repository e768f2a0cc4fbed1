//! End-to-end `report`: the HTML page is self-contained and carries every
//! section; Markdown carries the same sections. The page is also rendered
//! in headless Chromium by tests/browser/report.sh (run by CI).

mod common;

use common::*;

const SECTIONS: [&str; 10] = [
    "Partners",
    "Top apps",
    "Top users",
    "Partners seen for the first time",
    "Configured partners with no activity",
    "Partners on the default policy",
    "Failures and policy blocks",
    "Policy changes",
    "Impact of the proposed policy",
    "Sign-ins per day",
];

fn sample(rel: &str) -> String {
    fixture(&format!("../../samples/{rel}")).to_string_lossy().into_owned()
}

fn report(out: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "report".to_string(),
        "-q".into(),
        sample("signins"),
        "--current".into(),
        sample("policies/current.json"),
        "--proposed".into(),
        sample("policies/proposed.json"),
        "--audit".into(),
        sample("audit"),
        "-o".into(),
        out.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&refs);
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn html_is_self_contained_and_has_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let html = report(&dir.path().join("weekly.html"), &[]);
    assert!(html.starts_with("<!doctype html>"));
    for forbidden in ["<script", "<link", "src=", "http://", "https://", "url("] {
        assert!(!html.contains(forbidden), "the page must not reference {forbidden}");
    }
    for s in SECTIONS {
        assert!(html.contains(&format!("<h2>{s}")), "missing section {s}");
    }
    assert_eq!(html.matches("<svg").count(), 2, "two charts");
    // The narrowing of Tailspin's inbound apps is in the change timeline, flagged.
    assert!(html.contains("allowed AllApplications -&gt; blocked [1 app]"));
    assert!(html.contains("new blocks"));
    // Northwind has no configuration of its own in current.json.
    assert!(html.contains("Northwind Traders (436efab1)"));
}

#[test]
fn the_change_window_is_the_users_to_choose() {
    let dir = tempfile::tempdir().unwrap();
    // Tailspin's portal sign-ins are blocked from 40 minutes after the
    // narrowing: a 30-minute window without grace ends before that.
    let narrow = report(&dir.path().join("narrow.md"), &["--window", "30m", "--grace", "0h"]);
    assert!(narrow.contains("allowed AllApplications -> blocked \\[1 app]"));
    assert!(!narrow.contains("new blocks"), "{narrow}");
    let wide = report(&dir.path().join("wide.md"), &["--window", "24h", "--grace", "6h"]);
    assert!(wide.contains("new blocks"));
}

#[test]
fn the_report_is_the_same_when_its_rows_and_users_go_through_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let run = |budget: &str| {
        let out = dir.path().join(format!("report-{budget}.md"));
        let o = xtenant()
            .env("TMPDIR", tmp.path())
            .args(["report", "-q", "--groups-in-memory", budget, "-o"])
            .arg(&out)
            .args([
                "--current",
                &sample("policies/current.json"),
                "--proposed",
                &sample("policies/proposed.json"),
            ])
            .args([sample("signins"), "--audit".into(), sample("audit")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let memory = run("0");
    assert!(memory.contains("## Top users"), "{memory}");
    for budget in ["1", "3"] {
        assert_eq!(run(budget), memory, "--groups-in-memory {budget}");
    }
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folders are removed");
}

#[test]
fn markdown_has_the_same_sections() {
    let dir = tempfile::tempdir().unwrap();
    let md = report(&dir.path().join("weekly.md"), &[]);
    assert!(md.starts_with("# Cross-tenant access report"));
    for s in SECTIONS {
        assert!(md.contains(&format!("## {s}")), "missing section {s}");
    }
}

#[test]
fn new_partners_are_those_first_seen_in_the_period_and_a_store_works_as_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_string_lossy();
    ok(&["store", "add", "-q", "--store", &store, &sample("signins"), "--audit", &sample("audit")]);
    let out = dir.path().join("r.md");
    let args = ["report", "-q", "--store", &store, "--since", "2026-11-06", "-o", out.to_str().unwrap()];
    ok(&args);
    let md = std::fs::read_to_string(&out).unwrap();
    let new = md.split("## Partners seen for the first time").nth(1).unwrap();
    let new = new.split("\n## ").next().unwrap();
    assert!(new.contains("Fabrikam"), "every partner is new from the first day: {new}");
    // The store's audit events feed the change timeline.
    assert!(md.contains("b2bCollaborationInbound.applications: allowed AllApplications -> blocked \\[1 app]"));
    let args = ["report", "-q", "--store", &store, "--since", "2026-11-12", "-o", out.to_str().unwrap()];
    ok(&args);
    let md = std::fs::read_to_string(&out).unwrap();
    let new = md
        .split("## Partners seen for the first time")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap()
        .to_string();
    assert!(new.contains("None."), "all partners were seen before the 12th: {new}");
}

#[test]
fn the_change_timeline_joins_sign_ins_that_do_not_say_whose_log_they_are() {
    // Graph exports carry no tenant of the log: our tenant is the audit
    // log's, as `timeline` takes it, not left unknown until the grouping
    // has inferred it (the changes then met no sign-in: no partner names,
    // no flags).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("graph.md");
    let graph = sample("signins/graph-beta-signins.json");
    let o = out.to_string_lossy().into_owned();
    ok(&["report", "-q", &graph, "--audit", &sample("audit"), "-o", &o]);
    let changes = sections(&std::fs::read_to_string(&out).unwrap(), &["Policy changes"]);
    assert!(changes.contains("| Tailspin Toys (1b3c602b) |"), "{changes}");
    assert!(changes.contains("| Fabrikam (1eae0b55) |"), "{changes}");
}

/// The Markdown sections named `titles`, each up to the next heading.
fn sections(markdown: &str, titles: &[&str]) -> String {
    let mut out = String::new();
    for part in markdown.split("\n## ").skip(1) {
        if titles.iter().any(|t| part.starts_with(t)) {
            out.push_str(part);
        }
    }
    out
}

#[test]
fn an_activity_table_or_a_query_result_gives_the_same_partners_apps_users_and_impact() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("activity.csv");
    let tenant = "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60";
    ok(&["activity", "-q", "--format", "csv", &sample("signins"), "-o", &table.to_string_lossy()]);
    let (current, proposed, signins) =
        (sample("policies/current.json"), sample("policies/proposed.json"), sample("signins"));
    let policies = ["--current", &current, "--proposed", &proposed];
    let mut from_logs = vec!["report", "-q", "-o", "-", "--format", "markdown", "--tenant", tenant, &signins];
    from_logs.extend(policies);
    let from_logs = ok(&from_logs);
    let table_path = table.to_string_lossy().into_owned();
    let mut from_table = vec!["report", "-o", "-", "--format", "markdown", "--tenant", tenant, &table_path];
    from_table.extend(policies);
    let o = run(&from_table);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("per-day chart needs sign-in logs"), "{}", stderr(&o));
    let from_table = stdout(&o);
    let same = [
        "Partners\n",
        "Top apps",
        "Top users",
        "Configured partners",
        "Partners on the default",
        "Failures",
        "Impact",
    ];
    assert!(sections(&from_logs, &same).contains("Impact of the proposed policy"));
    assert_eq!(sections(&from_table, &same), sections(&from_logs, &same));
    assert!(!from_table.contains("Sign-ins per day"));
    // The table's rows read twice, through the disk past the budget.
    let tmp = tempfile::tempdir().unwrap();
    for budget in ["1", "5"] {
        let mut args = vec!["report", "-q", "--groups-in-memory", budget, "-o", "-", "--format", "markdown"];
        args.extend(["--tenant", tenant, &table_path]);
        args.extend(policies);
        let o = xtenant().env("TMPDIR", tmp.path()).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), from_table, "--groups-in-memory {budget}");
    }
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folders are removed");

    // What a table cannot say is refused, not guessed.
    let o = run(&["report", "-o", "-", "--format", "markdown", &table_path, "--since", "7d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no per-sign-in times"), "{}", stderr(&o));
    let by_app = dir.path().join("by-app.csv");
    ok(&[
        "activity",
        "-q",
        "--by",
        "app",
        "--format",
        "csv",
        &sample("signins"),
        "-o",
        &by_app.to_string_lossy(),
    ]);
    let o = run(&["report", "-o", "-", "--format", "markdown", &by_app.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--by user"), "{}", stderr(&o));
}

#[test]
fn a_long_audit_trail_lists_its_newest_changes_and_counts_the_rest() {
    // A pipeline's 1,200 changes to a partner's MFA trust, a minute apart,
    // and one that failed: the report lists the newest 1,000 that changed
    // something (`xtenant timeline` lists them all), none of them joined.
    let dir = tempfile::tempdir().unwrap();
    let trust = |mfa: bool| {
        serde_json::json!({"isMfaAccepted": mfa, "isCompliantDeviceAccepted": false,
            "isHybridAzureADJoinedDeviceAccepted": false})
        .to_string()
    };
    let record = |i: u32, result: &str| {
        serde_json::json!({
            "id": format!("Directory_pipeline_{i}"),
            "category": "CrossTenantAccessSettings",
            "result": result,
            "activityDisplayName": "Update a partner cross-tenant access setting",
            "activityDateTime": format!("2026-11-10T{:02}:{:02}:00Z", i / 60, i % 60),
            "initiatedBy": {"user": {"userPrincipalName": "pipeline@contoso.com"}},
            "targetResources": [{
                "displayName": "CrossTenantAccessPolicy for 3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60",
                "type": "Policy",
                "modifiedProperties": [
                    {"displayName": "tenantId", "oldValue": null,
                     "newValue": "\"1eae0b55-c075-489c-b548-7f9c6b206565\""},
                    {"displayName": "inboundTrust", "oldValue": trust(!i.is_multiple_of(2)), "newValue": trust(i.is_multiple_of(2))}
                ]
            }]
        })
    };
    let mut records: Vec<serde_json::Value> = (0..1200).map(|i| record(i, "success")).collect();
    records.push(record(1300, "failure"));
    let audit = dir.path().join("audit.json");
    std::fs::write(&audit, serde_json::json!({ "value": records }).to_string()).unwrap();
    let out = dir.path().join("r.md");
    let (audit, o) = (audit.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    ok(&["report", "-q", &sample("signins"), "--audit", &audit, "-o", &o]);
    let changes = sections(&std::fs::read_to_string(&out).unwrap(), &["Policy changes"]);
    assert!(changes.contains("the newest 1000 of 1200 changes in the period"), "{changes}");
    let rows: Vec<&str> = changes.lines().filter(|l| l.starts_with("| 2026-")).collect();
    assert_eq!(rows.len(), 1000);
    assert!(rows[0].starts_with("| 2026-11-10T03:20:00Z"), "{}", rows[0]);
    assert!(rows[999].starts_with("| 2026-11-10T19:59:00Z"), "{}", rows[999]);
    // A minute apart, each change's window (a day before, thirty hours
    // after) holds hundreds of the others: none is joined with the sign-ins,
    // and each says so rather than showing no flag.
    assert!(rows.iter().all(|r| r.contains("| not joined: too many changes near it |")), "{}", rows[0]);
}
