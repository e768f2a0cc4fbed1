//! End-to-end `timeline` and `replay --audit`: audit exports in every
//! format (tests/fixtures/audit, written by `xtenant generate --audit` and
//! by hand), a mid-window narrowing joined with the sign-ins around it,
//! reconstruction, and malformed records.

mod common;

use common::*;
use serde_json::Value;

const TAILSPIN: &str = "1b3c602b-1ae1-459a-99af-0df4c32355e7";
const FABRIKAM: &str = "1eae0b55-c075-489c-b548-7f9c6b206565";

fn f(rel: &str) -> String {
    fixture(&format!("audit/{rel}")).to_string_lossy().into_owned()
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_audit_format_gives_the_same_timeline() {
    let reference = ok(&["timeline", "-q", "--format", "ndjson", &f("formats/audit-graph.json")]);
    let rows = ndjson(&reference);
    assert_eq!(rows.len(), 4, "{reference}");
    for name in [
        "audit-graph-array.json",
        "audit-graph.ndjson.gz",
        "audit-diagnostic-ndjson.ndjson",
        "audit-diagnostic-records.json",
        "audit-la-json.json",
        "audit-la-csv.csv",
        "audit-purview.csv",
    ] {
        let out = ok(&["timeline", "-q", "--format", "ndjson", &f(&format!("formats/{name}"))]);
        assert_eq!(out, reference, "{name}");
    }
    let narrowing = &rows[3];
    assert_eq!(narrowing["time"], "2026-11-10T14:00:00Z");
    assert_eq!(narrowing["change"], "partner updated");
    assert_eq!(narrowing["partner_tenant_id"], TAILSPIN);
    assert_eq!(narrowing["actor"], "it-admin@contoso.com");
    assert_eq!(
        narrowing["changes"][0],
        "b2bCollaborationInbound.applications: allowed AllApplications -> blocked [1 app]"
    );
    assert_eq!(rows[2]["partner_tenant_id"], FABRIKAM);
    assert_eq!(rows[2]["changes"][0], "inboundTrust.isMfaAccepted: false -> true");
}

#[test]
fn other_categories_failures_and_sign_ins_are_counted_not_silently_dropped() {
    let o = run(&["timeline", "--format", "json", &f("formats/audit-graph.json")]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("not read: 1 audit events of category `UserManagement`"), "{}", stderr(&o));
    let all = ndjson(&ok(&["timeline", "-q", "--all", "--format", "ndjson", &f("formats/audit-graph.json")]));
    let failed: Vec<&Value> = all.iter().filter(|r| r["succeeded"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["actor"], "app: Terraform Cloud");
    // A Log Analytics query response, PascalCase values with string enums,
    // a default change filed under the identity-sync category, a delete.
    let o = run(&["timeline", "--format", "ndjson", &f("hand-written/la-query-response.json")]);
    let rows = ndjson(&stdout(&o));
    assert_eq!(rows[0]["scope"], "default");
    assert_eq!(
        rows[0]["changes"][0],
        "b2bDirectConnectInbound.usersAndGroups: blocked AllUsers -> allowed [1 group]"
    );
    assert_eq!(rows[1]["change"], "partner deleted");
    assert_eq!(rows[1]["actor"], "app: Graph Explorer");
    assert!(stderr(&o).contains("category `GroupManagement`"), "{}", stderr(&o));
    // A sign-in CSV given as audit is named for what it is.
    let o = run(&[
        "timeline",
        &fixture("signins/InteractiveSignIns_2026-11-01_2026-11-04.csv").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("this is a sign-in export, not audit events"), "{}", stderr(&o));
}

#[test]
fn malformed_records_name_file_line_and_field() {
    let bad = f("bad/audit-bad.ndjson");
    let o = run(&["timeline", &bad]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("audit-bad.ndjson: line 3"), "{e}");
    assert!(e.contains("targetResources[0].modifiedProperties"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let o = run(&["timeline", "--format", "ndjson", "--rejects", rejects.to_str().unwrap(), &bad]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = ndjson(&stdout(&o));
    // The unreadable new value is kept as a note, not a failure.
    assert_eq!(rows.len(), 2);
    assert!(rows[1]["notes"][0].as_str().unwrap().contains("the new value cannot be read"), "{:?}", rows[1]);
    let rejected = ndjson(&std::fs::read_to_string(&rejects).unwrap());
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 3);
    assert_eq!(rejected[1]["field"], "activityDateTime");
}

/// Generated sign-ins and the scenario's audit trail: Tailspin's inbound
/// apps are narrowed on 2026-11-10 and its guests' Azure portal sign-ins
/// fail from shortly after.
fn scenario() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let signins = dir.path().join("signins.ndjson");
    let audit = dir.path().join("audit.json");
    ok(&["generate", "--count", "4000", "--seed", "5", "-o", signins.to_str().unwrap()]);
    ok(&["generate", "--audit", "graph", "-o", audit.to_str().unwrap()]);
    let (s, a) = (signins.to_string_lossy().into_owned(), audit.to_string_lossy().into_owned());
    (dir, s, a)
}

#[test]
fn the_narrowing_is_flagged_with_the_users_it_blocked() {
    let (_dir, signins, audit) = scenario();
    let rows = ndjson(&ok(&[
        "timeline",
        "-q",
        "--format",
        "ndjson",
        "--window",
        "3d",
        &audit,
        "--signins",
        &signins,
    ]));
    let narrowing = rows.iter().find(|r| r["time"] == "2026-11-10T14:00:00Z").unwrap();
    assert_eq!(narrowing["flagged"], true, "{narrowing}");
    assert_eq!(narrowing["before_policy_blocks"], 0);
    assert!(narrowing["after_policy_blocks"].as_u64().unwrap() > 0);
    assert!(narrowing["newly_blocked_users"][0].as_str().unwrap().ends_with("@tailspintoys.example"));
    for r in rows.iter().filter(|r| r["time"] != "2026-11-10T14:00:00Z") {
        assert_eq!(r["flagged"], false, "{r}");
    }
    let text = ok(&["timeline", "-q", "--window", "3d", &audit, "--signins", &signins]);
    assert!(text.contains("LIKELY CAUSED BLOCKS"), "{text}");
    let md = ok(&["timeline", "-q", "--format", "markdown", &audit, "--signins", &signins]);
    assert!(md.starts_with("## Cross-tenant access policy changes"), "{md}");
}

#[test]
fn reconstruction_and_replay_calibration_across_the_change() {
    let (_dir, signins, audit) = scenario();
    let current = fixture("../../samples/policies/current.json").to_string_lossy().into_owned();
    let proposed = fixture("../../samples/policies/proposed.json").to_string_lossy().into_owned();
    let rows = ndjson(&ok(&["timeline", "-q", "--format", "ndjson", "--policy", &current, &audit]));
    assert!(
        rows.iter().all(|r| r["policy_rebuilt"] == true && r["policy_notes"].as_array().unwrap().is_empty()),
        "{rows:?}"
    );
    // A policy that lacks the partner the changes configured is called out.
    let empty = fixture("policies/graph-responses").to_string_lossy().into_owned();
    let rows = ndjson(&ok(&["timeline", "-q", "--format", "ndjson", "--policy", &empty, &audit]));
    assert!(rows.iter().any(|r| !r["policy_notes"].as_array().unwrap().is_empty()), "{rows:?}");

    let mismatches = |extra: &[&str]| -> Vec<String> {
        let mut args =
            vec!["replay", "-q", "--format", "json", "--proposed", &proposed, "--current", &current];
        args.extend_from_slice(extra);
        args.push(&signins);
        let doc: Value = serde_json::from_str(&ok(&args)).unwrap();
        doc["summary"]["calibration_mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .filter(|m| m.contains(TAILSPIN) && m.contains("Azure Portal"))
            .collect()
    };
    let without = mismatches(&[]);
    assert!(
        !without.is_empty(),
        "Tailspin's portal sign-ins before the change succeeded while the current policy blocks them"
    );
    let with = mismatches(&["--audit", &audit]);
    assert!(with.is_empty(), "{with:?}");

    // Grouping per policy epoch moves to disk past its budget like any other.
    let tmp = tempfile::tempdir().unwrap();
    for format in ["json", "csv"] {
        let replay = |budget: &str| {
            let args = [
                "replay",
                "-q",
                "--format",
                format,
                "--groups-in-memory",
                budget,
                "--proposed",
                &proposed,
                "--current",
                &current,
                "--audit",
                &audit,
                &signins,
            ];
            ok_with_tmpdir(tmp.path(), &args)
        };
        assert_eq!(replay("1"), replay("0"), "{format}");
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    }
}

/// An audit trail of `n` changes written as Graph's JSON, 40 minutes apart
/// from 2026-11-01: Tailspin's, Fabrikam's and the default's inbound trust
/// switched in turn, one change in five failed, one in seven a migration
/// that alters nothing, and one in fifty to a partner its deletion without
/// its settings (what the partner's entry was before it is unknown).
fn long_trail(dir: &std::path::Path, n: usize) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
    let trust = |mfa: bool| serde_json::json!({ "isMfaAccepted": mfa }).to_string();
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let (tenant, activity) = match i % 3 {
                0 => (Some(TAILSPIN), "Update a partner cross-tenant access setting"),
                1 => (Some(FABRIKAM), "Update a partner cross-tenant access setting"),
                _ => (None, "Update the company default cross-tenant access setting"),
            };
            let deleted = i % 50 == 25 && tenant.is_some();
            let activity = match (i % 7 == 3, deleted) {
                (true, _) => "Migrated partner cross-tenant access settings to the scalable model",
                (false, true) => "Delete partner specific cross-tenant access setting",
                (false, false) => activity,
            };
            let on = (i / 3) % 2 == 0;
            let mut modified = vec![serde_json::json!({
                "displayName": "inboundTrust", "oldValue": trust(!on), "newValue": trust(on)
            })];
            if deleted {
                modified.clear();
            }
            if let Some(t) = tenant {
                modified.insert(
                    0,
                    serde_json::json!({ "displayName": "tenantId", "newValue": format!("\"{t}\"") }),
                );
            }
            serde_json::json!({
                "id": format!("Directory_long_{i}"),
                "category": "CrossTenantAccessSettings",
                "result": if i % 5 == 1 { "failure" } else { "success" },
                "activityDisplayName": activity,
                "activityDateTime": (start + chrono::Duration::minutes(40 * i as i64)).to_rfc3339(),
                "initiatedBy": { "user": { "userPrincipalName": format!("admin-{}@contoso.com", i % 4) } },
                "targetResources": [{
                    "displayName": "CrossTenantAccessPolicy for 3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60",
                    "modifiedProperties": modified,
                }],
            })
        })
        .collect();
    let path = dir.join("long-trail.json");
    std::fs::write(&path, serde_json::json!({ "value": records }).to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_long_audit_trail_sorted_and_kept_through_the_temporary_folder_lists_what_it_lists_in_memory() {
    // 700 changes given twice (overlapping exports) against a budget of
    // 40: sorted in runs, the changes listed kept in a file, the users
    // near each change and what the sign-ins say of each through the disk.
    let (dir, signins, _) = scenario();
    let trail = long_trail(dir.path(), 700);
    let current = fixture("../../samples/policies/current.json").to_string_lossy().into_owned();
    let tmp = tempfile::tempdir().unwrap();
    let periods = [&[][..], &["--all"], &["--since", "2026-11-05", "--until", "2026-11-12"]];
    for format in ["ndjson", "csv", "json", "markdown", "table"] {
        // Every period in one format, every format in one.
        for period in if format == "ndjson" { &periods[..] } else { &periods[..1] } {
            let run = |budget: &str| {
                let mut args = vec!["timeline", "-q", "--format", format, "--groups-in-memory", budget];
                args.extend(["--window", "3d", "--policy", &current, "--signins", &signins, &trail, &trail]);
                args.extend_from_slice(period);
                ok_with_tmpdir(tmp.path(), &args)
            };
            let memory = run("0");
            assert_eq!(run("40"), memory, "{format} {period:?}");
            if format == "ndjson" {
                let rows = ndjson(&memory);
                // Each change i is at 40 i minutes; 2026-11-05 is minute 5,760,
                // 2026-11-12 minute 15,840.
                let alters = |i: &usize| i % 5 != 1 && i % 7 != 3;
                let expected = match period.len() {
                    0 => (0..700).filter(alters).count(),
                    1 => 700,
                    _ => (144..396).filter(alters).count(),
                };
                assert_eq!(rows.len(), expected, "{period:?}");
                assert!(rows.iter().any(|r| r["before_sign_ins"].as_u64() > Some(0)), "{period:?}");
                // Rebuilt back to the newest deletion (2026-11-18), not before.
                let rebuilt = |r: &Value| r["policy_rebuilt"] == true;
                assert_eq!(rows.iter().any(rebuilt), period.len() < 2, "{period:?}");
                assert!(!rows.iter().all(rebuilt), "{period:?}");
            }
        }
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "temporary folders left behind");
}
