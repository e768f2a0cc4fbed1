//! End-to-end history store: overlapping daily adds keep one copy of each
//! sign-in, a run killed at any point leaves the store readable and
//! without duplicates, concurrent writers are refused, newer schemas are
//! refused, and `--store` reads like the raw exports.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn info(store: &str) -> Value {
    serde_json::from_str(&ok(&["store", "info", "--store", store, "--format", "json"])).unwrap()
}

fn rows(store: &str) -> u64 {
    info(store)["info"]["sign_in_rows"].as_u64().unwrap()
}

/// (dir, store path, generated sign-ins, cross-tenant count among them)
fn setup(count: &str) -> (tempfile::TempDir, String, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("signins.ndjson");
    ok(&["generate", "--count", count, "--seed", "9", "-o", input.to_str().unwrap()]);
    let doc: Value =
        serde_json::from_str(&ok(&["activity", "-q", "--format", "json", input.to_str().unwrap()])).unwrap();
    let cross = doc["summary"]["cross_tenant_sign_ins"].as_u64().unwrap();
    let store = dir.path().join("store").to_string_lossy().into_owned();
    (dir, store, input.to_string_lossy().into_owned(), cross)
}

#[test]
fn overlapping_adds_keep_one_copy_and_store_reads_like_the_exports() {
    let (dir, store, input, cross) = setup("3000");
    // Two "daily" exports that overlap: the first 2000 and the last 2000 lines.
    let lines: Vec<&str> = std::fs::read_to_string(&input).unwrap().leak().lines().collect();
    let (a, b) = (dir.path().join("day1.ndjson"), dir.path().join("day2.ndjson"));
    std::fs::write(&a, lines[..2000].join("\n")).unwrap();
    std::fs::write(&b, lines[1000..].join("\n")).unwrap();
    let audit = fixture("audit/formats/audit-graph.json").to_string_lossy().into_owned();
    ok(&["store", "add", "--store", &store, a.to_str().unwrap(), "--audit", &audit]);
    ok(&["store", "add", "--store", &store, b.to_str().unwrap(), "--audit", &audit]);
    let i = info(&store);
    assert_eq!(i["info"]["sign_in_rows"].as_u64().unwrap(), cross);
    assert_eq!(i["info"]["audit_rows"], 5);
    let raw = ok(&["activity", "-q", "--format", "csv", &input]);
    let stored = ok(&["activity", "-q", "--format", "csv", "--store", &store]);
    assert_eq!(stored, raw);
    let since = ok(&["activity", "-q", "--format", "csv", "--store", &store, "--since", "2026-11-15"]);
    assert!(since.lines().count() < raw.lines().count());
    let t = ok(&["timeline", "-q", "--format", "ndjson", "--store", &store]);
    assert_eq!(t.lines().count(), 4);
    assert!(t.contains("\"before_sign_ins\""));
}

#[test]
fn a_run_killed_before_publishing_leaves_the_store_as_it_was() {
    let (_dir, store, input, cross) = setup("1500");
    let audit = fixture("audit/formats/audit-graph.json").to_string_lossy().into_owned();
    ok(&["store", "add", "--store", &store, "--audit", &audit]);
    // Dies with every part file written and the manifest not replaced.
    let o = xtenant()
        .env("XTENANT_TEST_DIE_BEFORE_MANIFEST", "1")
        .args(["store", "add", "--store", &store, &input])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(rows(&store), 0, "files of the killed run are invisible");
    assert_eq!(ok(&["activity", "-q", "--format", "csv", "--store", &store]).lines().count(), 1);
    // The next run cleans up and adds everything once.
    let o = run(&["store", "add", "--store", &store, &input]);
    assert!(stderr(&o).contains("an interrupted run left behind"), "{}", stderr(&o));
    assert_eq!(rows(&store), cross);
}

#[test]
fn a_run_killed_mid_write_leaves_a_readable_store_without_duplicates() {
    let (_dir, store, input, cross) = setup("20000");
    ok(&[
        "store",
        "add",
        "--store",
        &store,
        "--audit",
        &fixture("audit/formats/audit-graph.json").to_string_lossy(),
    ]);
    for delay in [50, 250, 600] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtenant"))
            .args(["store", "add", "--store", &store, &input])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let n = rows(&store);
        assert!(n == 0 || n == cross, "after a kill at {delay} ms the store holds {n} rows: all or nothing");
    }
    ok(&["store", "add", "--store", &store, &input]);
    ok(&["store", "add", "--store", &store, &input]);
    assert_eq!(rows(&store), cross);
}

#[test]
fn a_second_writer_waits_its_turn_with_a_message() {
    let (_dir, store, input, _) = setup("200");
    ok(&["store", "add", "--store", &store, &input]);
    let held = xtenant::store::Store::open(std::path::Path::new(&store)).unwrap();
    let _lock = held.lock().unwrap();
    let o = run(&["store", "add", "--store", &store, &input]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("another xtenant run is writing to this store"), "{}", stderr(&o));
}

#[test]
fn newer_or_foreign_stores_are_refused_clearly() {
    let (dir, store, input, _) = setup("100");
    ok(&["store", "add", "--store", &store, &input]);
    let manifest = std::path::Path::new(&store).join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["schema_version"] = 99.into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    let o = run(&["activity", "--store", &store]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("newer than this xtenant reads"), "{}", stderr(&o));
    let o = run(&["store", "info", "--store", dir.path().to_str().unwrap()]);
    assert!(stderr(&o).contains("not an xtenant store"), "{}", stderr(&o));
}

#[test]
fn new_only_feeds_each_finding_once() {
    let (_dir, store, input, _) = setup("1500");
    ok(&["store", "add", "--store", &store, &input]);
    let p = |r: &str| fixture(r).to_string_lossy().into_owned();
    let (prop, cur) = (p("../../samples/policies/proposed.json"), p("../../samples/policies/current.json"));
    let args = [
        "replay",
        "-q",
        "--store",
        &store,
        "--proposed",
        &prop,
        "--current",
        &cur,
        "--new-only",
        "--format",
        "cef",
    ];
    let first = ok(&args);
    assert!(first.lines().count() > 0);
    assert_eq!(ok(&args), "", "a second run emits nothing new");
}
