//! Hostile and broken input, end to end: nothing valid is lost, nothing
//! hangs or panics, and every string a log carries is escaped for where it
//! goes. Inputs are built here from the fixtures, then damaged on purpose.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const OURS: &str = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn lines_of(rel: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(rel)).unwrap().lines().map(str::to_string).collect()
}

/// `read N sign-ins ... M invalid skipped` from a run's summary.
fn counts(o: &std::process::Output) -> (u64, u64) {
    let e = stderr(o);
    let number_before = |what: &str| -> u64 {
        let at = e.find(what).unwrap_or_else(|| panic!("no `{what}` in: {e}"));
        e[..at].split_whitespace().last().unwrap().parse().unwrap()
    };
    (number_before(" sign-ins from"), number_before(" invalid skipped"))
}

fn rejects(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn activity_skipping(input: &Path, rejects: &Path) -> std::process::Output {
    run(&["activity", "--tenant", OURS, "--rejects", rejects.to_str().unwrap(), input.to_str().unwrap()])
}

#[test]
fn a_syntax_error_in_one_ndjson_line_costs_that_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = lines_of("signins/graph-beta.ndjson");
    let whole = lines.len() as u64;
    lines[1] = lines[1][..lines[1].len() / 2].to_string(); // cut mid-string
    let input = write(dir.path(), "cut.ndjson", lines.join("\n") + "\n");
    let r = dir.path().join("rejects.ndjson");
    let o = activity_skipping(&input, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&o), (whole - 1, 1));
    let rejected = rejects(&r);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 2);
    assert_eq!(rejected[0]["raw"], lines[1].as_str());
}

#[test]
fn a_broken_record_in_a_pretty_array_costs_that_record_only() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("signins/graph-beta-array.json")).unwrap();
    let whole = text.matches("\"createdDateTime\"").count() as u64;
    // Lose the closing quote of the second record's display name.
    let second = text.match_indices("\"userDisplayName\": \"").nth(1).unwrap().0;
    let close = second + text[second + 20..].find('"').unwrap() + 20;
    let broken = format!("{}{}", &text[..close], &text[close + 1..]);
    let input = write(dir.path(), "array.json", broken);
    let r = dir.path().join("rejects.ndjson");
    let o = activity_skipping(&input, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&o), (whole - 1, 1));
    let rejected = rejects(&r);
    assert!(rejected[0]["error"].as_str().unwrap().contains("line break inside a string"), "{}", rejected[0]);
    assert!(rejected[0]["raw"].as_str().unwrap().starts_with('{'));
}

#[test]
fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let lines = lines_of("signins/graph-beta.ndjson");
    let mut many = String::new();
    for _ in 0..50 {
        many += &(lines.join("\n") + "\n");
    }
    let mut gz = flate2_encode(many.as_bytes());
    gz.truncate(gz.len() * 2 / 3);
    let input = write(dir.path(), "cut.ndjson.gz", gz);
    let r = dir.path().join("rejects.ndjson");
    let o = activity_skipping(&input, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    let (read, skipped) = counts(&o);
    assert!(read > 50, "the records before the cut are read: {}", stderr(&o));
    assert!(skipped >= 1);
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}

#[test]
fn a_bad_row_of_a_query_api_response_costs_that_row_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("signins/log-analytics-query-api.json")).unwrap(),
    )
    .unwrap();
    let columns: Vec<String> = doc["tables"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().into())
        .collect();
    let rows = doc["tables"][0]["rows"].as_array_mut().unwrap();
    let whole = rows.len() as u64;
    for at in columns.iter().enumerate().filter(|(_, c)| c.contains("Time")).map(|(i, _)| i) {
        rows[1][at] = serde_json::json!("not a time");
    }
    let input = write(dir.path(), "query.json", doc.to_string());
    let r = dir.path().join("rejects.ndjson");
    let o = activity_skipping(&input, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&o), (whole - 1, 1));
    let rejected = rejects(&r);
    assert!(rejected[0]["field"].as_str().unwrap().starts_with("tables[0].rows[1]"), "{}", rejected[0]);
    assert!(rejected[0]["raw"].as_str().unwrap().contains("not a time"));
}

fn flate2_encode(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
