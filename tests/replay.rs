//! End-to-end replay scenarios: tests/fixtures/replay/make_replay.py
//! writes one sign-in per case, with the expected outcome beside it.

mod common;

use std::collections::BTreeMap;

use common::*;

const OURS: &str = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";

fn f(name: &str) -> String {
    fixture(&format!("replay/{name}")).to_string_lossy().into_owned()
}

/// (partner prefix, direction, user suffix, app prefix) -> (current, proposed, impact, reason, calibration)
type Rows = BTreeMap<(String, String, String, String), (String, String, String, String, String)>;

fn replay(extra: &[&str]) -> (Rows, std::process::Output) {
    let mut args = vec!["replay", "-q", "--tenant", OURS, "--format", "csv"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let mut rows = Rows::new();
    let mut r = csv::Reader::from_reader(o.stdout.as_slice());
    for rec in r.deserialize::<BTreeMap<String, String>>() {
        let x = rec.unwrap();
        rows.insert(
            (
                x["partner_tenant_id"][..8].to_string(),
                x["direction"].clone(),
                x["user_id"][34..].to_string(),
                x["app_id"][..8].to_string(),
            ),
            (
                x["current"].clone(),
                x["proposed"].clone(),
                x["impact"].clone(),
                x["reason"].clone(),
                x["calibration"].clone(),
            ),
        );
    }
    (rows, o)
}

fn impact<'a>(
    rows: &'a Rows,
    partner: &str,
    dir: &str,
    user: &str,
    app: &str,
) -> &'a (String, String, String, String, String) {
    rows.get(&(partner.into(), dir.into(), user.into(), app.into()))
        .unwrap_or_else(|| panic!("no row {partner} {dir} {user} {app} in {rows:#?}"))
}

fn with_policies() -> (Rows, std::process::Output) {
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    replay(&["--proposed", &p, "--current", &c, &s])
}

#[test]
fn block_by_default_with_an_allow_listed_partner() {
    let (rows, o) = with_policies();
    assert!(o.status.success(), "{}", stderr(&o));
    // Alpha is allow-listed for Office 365: SharePoint stays, the LOB app is lost.
    assert_eq!(impact(&rows, "a1a1a1a1", "inbound", "01", "00000003").2, "unchanged");
    let lob = impact(&rows, "a1a1a1a1", "inbound", "01", "5d3e1a7b");
    assert_eq!(lob.2, "lost");
    assert!(
        lob.3.contains("b2bCollaborationInbound")
            && lob.3.contains("[Office365]")
            && lob.3.contains("not Microsoft"),
        "{}",
        lob.3
    );
}

#[test]
fn a_partner_that_restricts_apps() {
    let (rows, _) = with_policies();
    assert_eq!(impact(&rows, "b2b2b2b2", "inbound", "02", "5d3e1a7b").2, "unchanged");
    let portal = impact(&rows, "b2b2b2b2", "inbound", "02", "c44b4083");
    assert_eq!(portal.2, "lost");
    assert!(portal.3.contains("no target matches the app"), "{}", portal.3);
}

#[test]
fn an_unlisted_partner_follows_the_changed_default_both_ways() {
    let (rows, _) = with_policies();
    let inbound = impact(&rows, "c3c3c3c3", "inbound", "03", "00000003");
    assert_eq!(inbound.2, "lost");
    assert!(inbound.3.contains("(default)"), "{}", inbound.3);
    // Outbound: the default stays open.
    assert_eq!(impact(&rows, "c3c3c3c3", "outbound", "04", "9e8d7c6b").2, "unchanged");
}

#[test]
fn group_targets_are_unknown_without_a_groups_file_and_decided_with_one() {
    let (rows, _) = with_policies();
    for user in ["04", "05"] {
        let r = impact(&rows, "b2b2b2b2", "outbound", user, "9e8d7c6b");
        assert_eq!(r.2, "unknown");
        assert!(r.3.contains("--groups"), "{}", r.3);
    }
    let (p, c, s, g) = (f("proposed.json"), f("current.json"), f("signins.ndjson"), f("groups.csv"));
    let (rows, _) = replay(&["--proposed", &p, "--current", &c, "--groups", &g, &s]);
    assert_eq!(impact(&rows, "b2b2b2b2", "outbound", "04", "9e8d7c6b").2, "unchanged");
    let out = impact(&rows, "b2b2b2b2", "outbound", "05", "9e8d7c6b");
    assert_eq!(out.2, "lost");
    assert!(out.3.contains("usersAndGroups allowed"), "{}", out.3);
}

#[test]
fn removing_mfa_trust_blocks_direct_connect_and_degrades_collaboration() {
    let (rows, _) = with_policies();
    let dc = impact(&rows, "d4d4d4d4", "inbound", "06", "1fec8e78");
    assert_eq!(dc.2, "lost");
    assert!(dc.3.contains("isMfaAccepted false"), "{}", dc.3);
    let collab = impact(&rows, "e5e5e5e5", "inbound", "07", "00000003");
    assert_eq!((collab.1.as_str(), collab.2.as_str()), ("allowed", "degraded"));
    assert!(collab.3.contains("must do MFA in our tenant"), "{}", collab.3);
}

#[test]
fn service_providers_and_ungoverned_access_types_are_unchanged() {
    let (rows, _) = with_policies();
    for (p, u) in [("f6f6f6f6", "08"), ("a7a7a7a7", "09")] {
        let r = impact(&rows, p, "inbound", u, "c44b4083");
        assert_eq!(
            (r.0.as_str(), r.1.as_str(), r.2.as_str()),
            ("not_governed", "not_governed", "unchanged"),
            "{p}"
        );
    }
}

#[test]
fn partner_refusals_stay_blocked_and_our_own_blocks_can_be_gained() {
    let (rows, _) = with_policies();
    let refused = impact(&rows, "c9c9c9c9", "outbound", "04", "9e8d7c6b");
    assert_eq!(refused.2, "unchanged");
    assert!(refused.3.contains("refused 1 sign-in(s) itself"), "{}", refused.3);
    let gained = impact(&rows, "a1a1a1a1", "outbound", "11", "9e8d7c6b");
    assert_eq!((gained.0.as_str(), gained.1.as_str(), gained.2.as_str()), ("blocked", "allowed", "gained"));
}

#[test]
fn calibration_flags_logs_that_contradict_the_current_policy() {
    let (rows, _) = with_policies();
    let phi = impact(&rows, "b8b8b8b8", "inbound", "10", "00000003");
    assert!(
        phi.4.contains("failed with our cross-tenant policy error but the current policy allows them"),
        "{}",
        phi.4
    );
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let o = run(&["replay", "-q", "--tenant", OURS, "--proposed", &p, "--current", &c, &s]);
    assert!(stdout(&o).contains("calibration: 1 group(s)"), "{}", stdout(&o));
}

#[test]
fn without_current_the_logs_decide_the_current_verdict() {
    let (p, s) = (f("proposed.json"), f("signins.ndjson"));
    let (rows, _) = replay(&["--proposed", &p, &s]);
    // Our 500213 block is seen in the logs: blocked now, blocked under the proposal.
    let phi = impact(&rows, "b8b8b8b8", "inbound", "10", "00000003");
    assert_eq!((phi.0.as_str(), phi.2.as_str()), ("blocked", "unchanged"));
    assert!(phi.4.is_empty(), "no calibration without --current");
    assert_eq!(impact(&rows, "a1a1a1a1", "inbound", "01", "5d3e1a7b").2, "lost");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let base = ["replay", "-q", "--tenant", OURS, "--proposed", p.as_str(), "--current", c.as_str()];
    let code = |fail: &str| {
        let mut a = base.to_vec();
        a.extend(["--fail-on", fail, s.as_str()]);
        run(&a).status.code()
    };
    assert_eq!(code("lost"), Some(1));
    assert_eq!(code("degraded,unknown"), Some(1));
    let o = run(&[
        "replay",
        "-q",
        "--tenant",
        OURS,
        "--proposed",
        &c,
        "--current",
        &c,
        "--fail-on",
        "lost,degraded,gained",
        &s,
    ]);
    assert_eq!(o.status.code(), Some(0), "a policy replayed against itself changes nothing");
    let o = run(&["replay", "--proposed", &p, "--fail-on", "sometimes", &s]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn activity_tables_replay_like_the_raw_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let (raw, _) = replay(&["--proposed", &p, "--current", &c, &s]);
    for fmt in ["csv", "ndjson"] {
        let t = dir.path().join(format!("activity.{fmt}"));
        ok(&["activity", "-q", "--tenant", OURS, "--format", fmt, "-o", &t.to_string_lossy(), &s]);
        let (from_table, o) = replay(&["--proposed", &p, "--current", &c, &t.to_string_lossy()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(from_table, raw, "{fmt}");
    }
}

#[test]
fn json_and_markdown_carry_the_summary() {
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "replay",
        "-q",
        "--tenant",
        OURS,
        "--proposed",
        &p,
        "--current",
        &c,
        "--format",
        "json",
        &s,
    ]))
    .unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["run"]["current_from"], "policy");
    assert_eq!(v["summary"]["impacts"]["lost"]["rows"], 5);
    assert_eq!(v["summary"]["impacts"]["gained"]["rows"], 1);
    assert!(v["summary"]["coverage_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("non-interactive")));
    let partners = v["summary"]["partners"].as_array().unwrap();
    assert!(
        partners
            .iter()
            .any(|p| p["partner_tenant_id"] == "a1a1a1a1-0000-4000-8000-000000000000"
                && p["lost_sign_ins"] == 1)
    );
    let md = ok(&[
        "replay",
        "-q",
        "--tenant",
        OURS,
        "--proposed",
        &p,
        "--current",
        &c,
        "--format",
        "markdown",
        &s,
    ]);
    assert!(md.starts_with("### Impact of the proposed cross-tenant access policy"));
    assert!(md.contains("| lost | inbound |"));
}

#[test]
fn since_and_until_select_the_window() {
    let (p, s) = (f("proposed.json"), f("signins.ndjson"));
    let o = run(&["replay", "--tenant", OURS, "--proposed", &p, "--since", "2026-11-11", &s]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("no access changes"), "{}", stdout(&o));
    let o = run(&["replay", "--tenant", OURS, "--proposed", &p, "--since", "yesterday-ish", &s]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn table_view_fits_120_columns() {
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let out = ok(&["replay", "-q", "--all", "--tenant", OURS, "--proposed", &p, "--current", &c, &s]);
    assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
    assert!(out.contains("LOST") && out.contains("allowed -> blocked"));
}

#[test]
fn rejected_audit_records_are_written_out_with_the_skipped_sign_ins() {
    // --rejects once took effect for sign-ins only: audit inputs skipped
    // their bad records and wrote none of them.
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let audit = fixture("audit/bad");
    let o = run(&[
        "replay",
        "-q",
        "--current",
        &f("current.json"),
        "--proposed",
        &f("proposed.json"),
        "--audit",
        audit.to_str().unwrap(),
        "--skip-invalid",
        "--rejects",
        rejects.to_str().unwrap(),
        "--format",
        "csv",
        &f("signins.ndjson"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&rejects).unwrap();
    let from_audit: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["file"].as_str().unwrap_or("").contains("audit-bad"))
        .collect();
    assert!(!from_audit.is_empty(), "no audit record among the rejects:\n{written}");
    assert!(from_audit.iter().all(|r| r["line"].is_u64() && r["field"].is_string()));
}

#[test]
fn an_activity_table_computed_by_an_engine_replays_like_our_own() {
    // What `xtenant query` results come back as: a JSON array of rows
    // (az monitor log-analytics query -o json) and a Spark folder of parts.
    let dir = tempfile::tempdir().unwrap();
    let table = ok(&["activity", "-q", "--tenant", OURS, "--format", "csv", &f("signins.ndjson")]);
    let ours = dir.path().join("activity.csv");
    std::fs::write(&ours, &table).unwrap();
    let mut r = csv::Reader::from_reader(table.as_bytes());
    let headers = r.headers().unwrap().clone();
    let rows: Vec<serde_json::Value> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            let m: serde_json::Map<String, serde_json::Value> =
                headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.into())).collect();
            serde_json::Value::Object(m)
        })
        .collect();
    let az = dir.path().join("result.json");
    std::fs::write(&az, serde_json::Value::Array(rows).to_string()).unwrap();
    let spark = dir.path().join("spark-out");
    std::fs::create_dir(&spark).unwrap();
    std::fs::write(spark.join("_SUCCESS"), "").unwrap();
    std::fs::write(spark.join("part-00000-1.csv"), &table).unwrap();
    let replay = |input: &std::path::Path| {
        ok(&[
            "replay",
            "-q",
            "--proposed",
            &f("proposed.json"),
            "--current",
            &f("current.json"),
            "--format",
            "csv",
            input.to_str().unwrap(),
        ])
    };
    let want = replay(&ours);
    assert!(want.lines().count() > 2);
    assert_eq!(replay(&az), want, "az json");
    assert_eq!(replay(&spark), want, "spark folder");
}

#[test]
fn a_deep_chain_of_nested_groups_with_a_cycle_decides_membership() {
    // The target group holds g1, g1 holds g2, ... g8000 holds user 04 and,
    // closing a cycle, the target group again. Closed per asked group, in
    // one linear walk (the old closure per member took gigabytes here).
    let dir = tempfile::tempdir().unwrap();
    let target = "0a0b0c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
    let g = |i: usize| format!("99999999-0000-4000-8000-{i:012}");
    let mut csv = format!("group_id,member_id\n{target},{}\n", g(1));
    for i in 1..8000 {
        csv += &format!("{},{}\n", g(i), g(i + 1));
    }
    csv += &format!("{},00000000-0000-4000-8000-000000000004\n{},{target}\n", g(8000), g(8000));
    let groups = dir.path().join("groups.csv");
    std::fs::write(&groups, csv).unwrap();
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let (rows, _) = replay(&["--proposed", &p, "--current", &c, "--groups", groups.to_str().unwrap(), &s]);
    assert_eq!(impact(&rows, "b2b2b2b2", "outbound", "04", "9e8d7c6b").2, "unchanged");
    assert_eq!(impact(&rows, "b2b2b2b2", "outbound", "05", "9e8d7c6b").2, "lost");
}

/// `replay`'s output in `format` of `signins` against `proposed` and
/// `current`, for our tenant, at a budget, with `tmp` as the temporary
/// folder; it must succeed.
fn replay_at(
    tmp: &std::path::Path,
    format: &str,
    budget: &str,
    [proposed, current, signins]: [&str; 3],
) -> String {
    let o = xtenant()
        .env("TMPDIR", tmp)
        .args(["replay", "-q", "--tenant", OURS, "--format", format, "--groups-in-memory", budget])
        .args(["--proposed", proposed, "--current", current, signins])
        .output()
        .unwrap();
    assert!(o.status.success(), "--format {format} --groups-in-memory {budget}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn calibration_mismatches_are_listed_the_same_when_they_go_through_the_disk() {
    // The policies swapped: the "current" one disagrees with many logged sign-ins.
    let (p, c, s) = (f("current.json"), f("proposed.json"), f("signins.ndjson"));
    let tmp = tempfile::tempdir().unwrap();
    for format in ["json", "markdown", "table"] {
        let replay = |budget: &str| replay_at(tmp.path(), format, budget, [&p, &c, &s]);
        let memory = replay("0");
        assert!(memory.contains("alibration"), "{memory}");
        for budget in ["1", "4"] {
            assert_eq!(replay(budget), memory, "--format {format} --groups-in-memory {budget}");
        }
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    }
    let o =
        run(&["replay", "-q", "--tenant", OURS, "--format", "json", "--proposed", &p, "--current", &c, &s]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = doc["summary"]["calibration_mismatches"].as_array().unwrap().len();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(listed, rows.iter().filter(|r| !r["calibration"].is_null()).count());
    assert!(listed > 1, "more mismatches than the budget of 1: {listed}");
}

#[test]
fn groups_held_in_memory_past_half_the_budget_are_replayed_where_they_are_into_the_same_output() {
    // Grouped in memory (fewer groups than the budget) but more than half
    // the budget: replayed in place, not through a sorter on disk, which
    // would fail here (a temporary folder that cannot be made is an error).
    // Documents (`json`, `markdown`, the table) still keep the replayed
    // rows on disk between their two readings: they get a folder.
    let (p, c, s) = (f("proposed.json"), f("current.json"), f("signins.ndjson"));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let replay =
        |format: &str, budget: &str, tmp: &std::path::Path| replay_at(tmp, format, budget, [&p, &c, &s]);
    // Every group is a row: as many groups as rows.
    let rows = replay("csv", "0", &missing).lines().count() - 1;
    assert!(rows > 4, "{rows} rows");
    let own = dir.path().to_path_buf();
    let formats = [("csv", &missing), ("ndjson", &missing), ("ecs", &missing), ("cef", &missing)];
    for (format, tmp) in formats.into_iter().chain(["json", "markdown", "table"].map(|f| (f, &own))) {
        let memory = replay(format, "0", tmp);
        for budget in [rows + 1, rows * 2 - 1, rows * 2] {
            let budget = budget.to_string();
            assert_eq!(replay(format, &budget, tmp), memory, "--format {format} --groups-in-memory {budget}");
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the temporary folders are removed");
}

#[test]
fn rows_beyond_the_memory_budget_are_sorted_on_disk_and_a_folder_that_cannot_be_made_is_an_error() {
    // An activity table: no grouping; the table's rows and replay's sorting
    // outgrow the budget.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("activity.csv");
    std::fs::write(
        &table,
        ok(&["activity", "-q", "--tenant", OURS, "--format", "csv", &f("signins.ndjson")]),
    )
    .unwrap();
    let (p, table) = (f("proposed.json"), table.to_str().unwrap());
    let replay = |budget: &str, tmp: &std::path::Path, out: &std::path::Path| {
        xtenant()
            .env("TMPDIR", tmp)
            .args(["replay", "-q", "--format", "csv", "--groups-in-memory", budget, "--proposed", &p, "-o"])
            .args([out.to_str().unwrap(), table])
            .output()
            .unwrap()
    };
    let (memory, disk) = (dir.path().join("memory.csv"), dir.path().join("disk.csv"));
    let tmp = tempfile::tempdir().unwrap();
    assert!(replay("0", tmp.path(), &memory).status.success());
    assert!(replay("2", tmp.path(), &disk).status.success());
    assert_eq!(std::fs::read(&disk).unwrap(), std::fs::read(&memory).unwrap());
    assert!(std::fs::read(&memory).unwrap().split(|b| *b == b'\n').count() > 5);
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    let failed = dir.path().join("failed.csv");
    let o = replay("2", &dir.path().join("missing"), &failed);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TMPDIR") && stderr(&o).contains("temporary folder"), "{}", stderr(&o));
    assert!(!failed.exists());
}

#[test]
fn the_table_states_the_window_once_and_other_formats_note_it() {
    let (p, s) = (f("proposed.json"), f("signins.ndjson"));
    for (format, in_notes, in_output) in [("table", 0, 1), ("csv", 1, 0)] {
        let o = run(&["replay", "--tenant", OURS, "--proposed", &p, "--format", format, &s]);
        assert!(o.status.success(), "{}", stderr(&o));
        let count = |text: &str| text.lines().filter(|l| l.starts_with("window: ")).count();
        assert_eq!((count(&stderr(&o)), count(&stdout(&o))), (in_notes, in_output), "{format}");
    }
}
