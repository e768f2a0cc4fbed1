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

/// Runs `activity` on `input` (of `whole` records) with `--rejects`: it
/// succeeds with one record skipped, which is returned as the rejects
/// file writes it.
fn the_one_reject(input: &Path, whole: u64) -> serde_json::Value {
    let r = input.with_file_name("rejects.ndjson");
    let o = activity_skipping(input, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&o), (whole - 1, 1));
    let mut rejected = rejects(&r);
    assert_eq!(rejected.len(), 1);
    rejected.remove(0)
}

#[test]
fn a_syntax_error_in_one_ndjson_line_costs_that_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = lines_of("signins/graph-beta.ndjson");
    let whole = lines.len() as u64;
    lines[1] = lines[1][..lines[1].len() / 2].to_string(); // cut mid-string
    let input = write(dir.path(), "cut.ndjson", lines.join("\n") + "\n");
    let rejected = the_one_reject(&input, whole);
    assert_eq!(rejected["line"], 2);
    assert_eq!(rejected["raw"], lines[1].as_str());
}

#[test]
fn a_forged_megabyte_long_app_id_costs_its_record_only_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = lines_of("signins/graph-beta.ndjson");
    let whole = lines.len() as u64;
    let forged = lines
        .iter()
        .position(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["homeTenantId"] != v["resourceTenantId"]
        })
        .expect("a cross-tenant sign-in in the fixture");
    let mut v: serde_json::Value = serde_json::from_str(&lines[forged]).unwrap();
    v["appId"] = "a".repeat(1 << 20).into();
    lines[forged] = v.to_string();
    let input = write(dir.path(), "forged.ndjson", lines.join("\n") + "\n");
    let rejected = the_one_reject(&input, whole);
    assert_eq!(rejected["line"], forged + 1);
    let told = rejected.to_string();
    assert!(
        told.contains("appId") && told.contains("1048576 bytes long"),
        "{}",
        &told[..told.len().min(400)]
    );
}

/// Excel for Mac's "CSV (Macintosh)" ends rows with CR alone. Such a file
/// past 1 MiB was refused ("the header line is longer than 1 MiB"), and a
/// bad row in a smaller one was said to be on line 1.
#[test]
fn a_csv_with_rows_ended_by_cr_alone_is_read_whole_and_its_lines_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let lf = dir.path().join("lf.csv");
    ok(&["generate", "--count", "3000", "--seed", "5", "--format", "la-csv", "-o", lf.to_str().unwrap()]);
    let mut rows: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(&lf)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    let home = rows[0].iter().position(|c| c == "HomeTenantId").unwrap();
    let mut bad: Vec<String> = rows[3].iter().map(str::to_string).collect();
    assert_eq!(bad[home].len(), 36, "{}", bad[home]);
    bad[home] = "not-a-tenant".into();
    rows[3] = csv::StringRecord::from(bad);
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\r')).from_writer(vec![]);
    for row in &rows {
        w.write_record(row).unwrap();
    }
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    assert!(!text.contains('\n'));
    let cr = write(dir.path(), "mac.csv", text);
    assert!(std::fs::metadata(&cr).unwrap().len() > 1 << 20);
    let r = dir.path().join("rejects.ndjson");
    let o = activity_skipping(&cr, &r);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&o), (2999, 1));
    assert_eq!(rejects(&r)[0]["line"], 4);
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

/// Names another tenant could write: terminal escapes, a bell, NUL, a
/// carriage return, a right-to-left override, Markdown and HTML.
const EVIL_NAME: &str = "Evil\u{1b}]0;pwned\u{7}\u{1b}[31m\u{0}\r\n## Heading | cell <img src=x onerror=alert(1)> ![i](https://e.example/i.png) \u{202e}fdp.exe";
const EVIL_UPN: &str = "=HYPERLINK(\"https://e.example\",\"x\")@evil.example";
const EVIL_APP: &str = "+cmd|' /C calc'!A0 \u{1b}[2J";

fn hostile_logs(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("siem/signins.ndjson")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["homeTenantName"] = EVIL_NAME.into();
            v["userPrincipalName"] = EVIL_UPN.into();
            v["appDisplayName"] = EVIL_APP.into();
            v.to_string()
        })
        .collect();
    write(dir, "hostile.ndjson", lines.join("\n") + "\n")
}

fn replay_hostile(dir: &Path, extra: &[&str]) -> std::process::Output {
    let logs = hostile_logs(dir);
    let mut args = vec![
        "replay",
        "--tenant",
        OURS,
        "--proposed",
        "tests/fixtures/replay/proposed.json",
        "--current",
        "tests/fixtures/replay/current.json",
        "--all",
    ];
    args.extend_from_slice(extra);
    args.push(logs.to_str().unwrap());
    let mut cmd = xtenant();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.args(&args).output().unwrap()
}

/// Nothing that moves the cursor, rings, recolours or reorders text.
fn assert_inert(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\u{0}', '\r', '\u{202e}'] {
        assert!(!text.contains(bad), "{what} carries {:?}:\n{text}", bad);
    }
}

#[test]
fn hostile_names_reach_the_terminal_as_visible_escapes() {
    let dir = tempfile::tempdir().unwrap();
    for color in ["never", "always"] {
        let o = replay_hostile(dir.path(), &["--color", color]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        // Our own colours are the only escapes left when asked for colour.
        let ours_removed = out.replace("\u{1b}[0m", "").replace("\u{1b}[31m", "").replace("\u{1b}[33m", "");
        let ours_removed =
            ours_removed.replace("\u{1b}[32m", "").replace("\u{1b}[36m", "").replace("\u{1b}[1m", "");
        let ours_removed = ours_removed.replace("\u{1b}[90m", "").replace("\u{1b}[35m", "");
        assert_inert("table", if color == "never" { &out } else { &ours_removed });
        assert!(out.contains("\\u{1b}"), "the escape is shown, not dropped:\n{out}");
        assert_inert("stderr", &stderr(&o));
    }
}

#[test]
fn hostile_names_cannot_inject_markdown_or_html() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay_hostile(dir.path(), &["--format", "markdown"]);
    let md = stdout(&o);
    assert_inert("markdown", &md);
    assert!(!md.contains("\n## Heading"), "a name started a heading:\n{md}");
    assert!(!md.replace("\\<", "").contains("<img"), "raw HTML passed:\n{md}");
    assert!(!md.contains("![i]("), "a remote image passed:\n{md}");
    // Every table row still has its 8 cells: `|` in a name did not add one.
    for row in md.lines().filter(|l| l.starts_with("| lost") || l.starts_with("| unchanged")) {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 9, "{row}");
    }
    for (name, ext) in [("r.html", "html"), ("r.md", "md")] {
        let out = dir.path().join(name);
        let logs = hostile_logs(dir.path());
        ok(&["report", "-q", "--tenant", OURS, "-o", out.to_str().unwrap(), logs.to_str().unwrap()]);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_inert(ext, &text);
        assert!(!text.replace("\\<", "").contains("<img"), "{ext}: raw HTML passed");
        if ext == "md" {
            assert!(!text.contains("![i]("), "a remote image passed");
        }
    }
}

#[test]
fn csv_safe_defuses_formulas_and_plain_csv_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let read = |o: std::process::Output| -> Vec<csv::StringRecord> {
        assert!(o.status.success(), "{}", stderr(&o));
        csv::Reader::from_reader(o.stdout.as_slice()).records().map(Result::unwrap).collect()
    };
    let exact = read(replay_hostile(dir.path(), &["--format", "csv"]));
    assert!(exact.iter().any(|r| r.iter().any(|c| c == EVIL_UPN)), "machine CSV keeps values exact");
    let safe = read(replay_hostile(dir.path(), &["--format", "csv", "--csv-safe"]));
    for r in &safe {
        for c in r {
            assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']), "a formula cell: {c}");
        }
    }
    assert!(safe.iter().any(|r| r.iter().any(|c| c == format!("'{EVIL_UPN}"))));
}

#[test]
fn cef_lines_carry_no_raw_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay_hostile(dir.path(), &["--format", "cef"]);
    let cef = stdout(&o);
    assert!(!cef.is_empty());
    for line in cef.lines() {
        assert!(line.starts_with("CEF:0|"), "a name broke a line in two: {line}");
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert!(line.contains("destinationServiceName="));
    }
}

#[test]
fn durations_and_periods_are_checked_in_every_command() {
    // A multi-byte character at the end once panicked the slicing parser.
    let cases: [&[&str]; 6] = [
        &["activity", "--since", "5é", "samples/signins"],
        &["replay", "--proposed", "samples/policies/proposed.json", "--until", "7日", "samples/signins"],
        &["timeline", "samples/audit", "--window", "5é"],
        &["timeline", "samples/audit", "--grace", "é"],
        &["report", "-o", "x.html", "--window", "2ü", "samples/signins"],
        &["activity", "--since=-3d", "samples/signins"],
    ];
    for args in cases {
        let o = xtenant().current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
    let o = xtenant()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["activity", "--since", "2026-11-10", "--until", "2026-11-01", "samples/signins"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not before --until"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn a_directory_with_a_fifo_a_loop_and_a_device_is_read_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(fixture("signins/graph-beta.ndjson"), logs.join("a.ndjson")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(logs.join("pipe")).status().unwrap().success());
    std::os::unix::fs::symlink(&logs, logs.join("again")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", logs.join("zero")).unwrap();
    let o = xtenant()
        .args(["activity", "--tenant", OURS, logs.to_str().unwrap()])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    for told in ["pipe: skipped", "zero: skipped", "symbolic link loop"] {
        assert!(e.contains(told), "{told} in {e}");
    }
}

#[test]
fn a_huge_line_is_refused_quickly_and_quoted_briefly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in
        [("one-line.csv", "a,".repeat(15 << 20)), ("quote.csv", format!("\"{}", "x".repeat(30 << 20)))]
    {
        let p = write(dir.path(), name, body);
        let o = run(&["activity", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).len() < 2000, "{name}: {} bytes of error", stderr(&o).len());
    }
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("x.ndjson");
    std::fs::copy(fixture("signins/graph-beta.ndjson"), &export).unwrap();
    let before = std::fs::read(&export).unwrap();
    let store = dir.path().join("store");
    let runs: [Vec<&str>; 3] = [
        vec![
            "store",
            "add",
            "--store",
            store.to_str().unwrap(),
            "--rejects",
            export.to_str().unwrap(),
            export.to_str().unwrap(),
        ],
        vec!["activity", "-o", export.to_str().unwrap(), export.to_str().unwrap()],
        vec!["activity", "-o", "x.csv", dir.path().to_str().unwrap()],
    ];
    for args in runs {
        let o = xtenant().current_dir(dir.path()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("write somewhere else"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&export).unwrap(), before, "the export is untouched");
}

#[test]
fn a_manifest_pointing_outside_the_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(&[
        "store",
        "add",
        "-q",
        "--store",
        store.to_str().unwrap(),
        fixture("signins/graph-beta.ndjson").to_str().unwrap(),
    ]);
    let manifest = store.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["signins"][0]["path"] = "../../../etc/passwd".into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    let o = run(&["activity", "--store", store.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a part file inside the store"), "{}", stderr(&o));
}

#[test]
fn the_report_of_a_sign_in_in_year_1_and_one_in_9999_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let lines = lines_of("signins/graph-beta.ndjson");
    let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let mut last = first.clone();
    first["createdDateTime"] = "0001-01-01T00:00:00Z".into();
    last["createdDateTime"] = "9999-12-31T00:00:00Z".into();
    last["id"] = "00000000-0000-4000-8000-00000000ffff".into();
    let input = write(dir.path(), "far.ndjson", format!("{first}\n{last}\n"));
    for name in ["r.md", "r.html"] {
        let out = dir.path().join(name);
        ok(&["report", "-q", "--tenant", OURS, "-o", out.to_str().unwrap(), input.to_str().unwrap()]);
        let size = std::fs::metadata(&out).unwrap().len();
        assert!(size < 200_000, "{name} is {size} bytes");
    }
}

#[test]
fn log_analytics_rows_with_both_policy_columns_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("signins/log-analytics.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let ca = headers.iter().position(|h| h == "ConditionalAccessPolicies").unwrap();
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(headers.iter().chain(["AppliedConditionalAccessPolicies"])).unwrap();
    let mut rows = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        let copy = rec[ca].to_string();
        w.write_record(rec.iter().chain([copy.as_str()])).unwrap();
        rows += 1;
    }
    let both = write(dir.path(), "both.csv", w.into_inner().unwrap());
    let o = run(&["activity", "--tenant", OURS, "--format", "csv", both.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = ok(&[
        "activity",
        "--tenant",
        OURS,
        "--format",
        "csv",
        fixture("signins/log-analytics.csv").to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o), plain, "the second column changes nothing ({rows} rows)");
}

#[test]
fn csv_errors_name_the_line_the_record_is_on_and_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("signins/log-analytics.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let at = headers.iter().position(|h| h == "ResultType").unwrap();
    let mut rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let mut bad: Vec<String> = rows[1].iter().map(str::to_string).collect();
    bad[at] = "oops".into();
    rows[1] = csv::StringRecord::from(bad);
    let line = |rec: &csv::StringRecord| {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
        w.write_record(rec).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    };
    // A blank line before the bad row: the csv crate's own positions miss it.
    let mut lines = vec![line(&headers), line(&rows[0]), "\n".to_string()];
    lines.extend(rows[1..].iter().map(line));
    assert!(!lines[1].trim_end().contains('\n'), "one line per record in this fixture");
    let p = write(dir.path(), "bad.csv", lines.concat());
    let o = run(&["activity", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.csv: line 4 (record 2): field `ResultType`"), "{}", stderr(&o));
}

#[test]
fn utf16_without_a_bom_and_zstd_are_read_like_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("signins/log-analytics.csv")).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let want = ok(&[
        "activity",
        "-q",
        "--tenant",
        OURS,
        "--format",
        "csv",
        fixture("signins/log-analytics.csv").to_str().unwrap(),
    ]);
    let le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let zst = ruzstd::encoding::compress_to_vec(text.as_bytes(), ruzstd::encoding::CompressionLevel::Fastest);
    for (name, bytes) in [("le.csv", le), ("be.csv", be), ("x.csv.zst", zst)] {
        let p = write(dir.path(), name, bytes);
        assert_eq!(
            ok(&["activity", "-q", "--tenant", OURS, "--format", "csv", p.to_str().unwrap()]),
            want,
            "{name}"
        );
    }
}

#[test]
fn two_runs_creating_one_new_store_never_see_a_foreign_directory() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("new-store");
        let input = fixture("signins/graph-beta.ndjson");
        let spawn = || {
            xtenant()
                .args(["store", "add", "-q", "--store", store.to_str().unwrap(), input.to_str().unwrap()])
                .output()
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        for o in [&a, &b] {
            let e = stderr(o);
            assert!(!e.contains("not empty"), "the loser was told the directory is foreign: {e}");
            assert!(o.status.success() || e.contains("another xtenant run is writing"), "{e}");
        }
        assert!(a.status.success() || b.status.success());
    }
}

#[test]
fn rows_read_before_a_line_past_the_limit_are_kept_and_the_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let la = fixture("signins/log-analytics.csv");
    let want = ok(&["activity", "-q", "--tenant", OURS, "--format", "csv", la.to_str().unwrap()]);
    let mut bytes = std::fs::read(&la).unwrap();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    bytes.extend(std::iter::repeat_n(b'x', 17 << 20));
    let p = write(dir.path(), "long.csv", bytes);
    let o = run(&["activity", "--skip-invalid", "--tenant", OURS, "--format", "csv", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), want, "every row before the long line is read");
    let told = format!("long.csv: line {}: read failed: a line is longer than 16 MiB", lines + 1);
    assert!(stderr(&o).contains(&told), "{}", stderr(&o));
}

#[test]
fn a_record_past_16_mib_is_left_out_alone_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let la = std::fs::read(fixture("signins/log-analytics.csv")).unwrap();
    let rows = la.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() - 1;
    let data = &la[la.iter().position(|&b| b == b'\n').unwrap() + 1..];
    // Short lines, so no line is too long: only the record is.
    let mut value = b"\"a value opened, ".to_vec();
    for _ in 0..(18 << 20) / 15 {
        value.extend(b"short line, on\n");
    }
    for (name, closes) in [("open.csv", false), ("closed.csv", true)] {
        let mut bytes = la.clone();
        bytes.extend(&value);
        if closes {
            bytes.extend(b"\",x\n");
            bytes.extend(data);
        }
        let p = write(dir.path(), name, bytes);
        let rejects = dir.path().join(format!("{name}.rejects"));
        let o =
            run(&["activity", "--skip-invalid", "--rejects", rejects.to_str().unwrap(), p.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let read = if closes { 2 * rows } else { rows };
        assert!(stderr(&o).contains(&format!("read {read} sign-ins")), "{name}: {}", stderr(&o));
        let rejected = std::fs::read_to_string(&rejects).unwrap();
        assert_eq!(rejected.lines().count(), 1, "{name}: {rejected}");
        assert!(rejected.contains(&format!("\"line\":{}", rows + 2)), "{name}: {rejected}");
        assert!(rejected.contains("the record runs past 16 MiB"), "{name}: {rejected}");
    }
}

/// `count` copies of a cross-tenant inbound sign-in of the fixture, each
/// its own sign-in applying a policy of its own (MFA and a compliant
/// device), in a scrambled order: one group with `count` policies kept
/// whole.
fn signins_applying_policies(count: u64) -> String {
    let line = lines_of("signins/graph-beta.ndjson")
        .into_iter()
        .find(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["resourceTenantId"] == OURS
                && v["homeTenantId"] != OURS
                && v["crossTenantAccessType"] == "b2bCollaboration"
                && v["status"]["errorCode"] == 0
        })
        .expect("an inbound collaboration sign-in in the fixture");
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut out = String::new();
    for i in 0..count {
        let n = (i * 7919) % count;
        let mut v = record.clone();
        v["id"] = format!("5e1f0000-0000-4000-8000-{n:012x}").into();
        v["appliedConditionalAccessPolicies"] = serde_json::json!([{
            "id": format!("c0a00000-0000-4000-8000-{n:012x}"),
            "displayName": "MFA or a compliant device",
            "enforcedGrantControls": ["Mfa", "RequireCompliantDevice"],
            "result": "success"
        }]);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn a_forged_export_naming_more_policies_than_a_tenant_can_have_is_replayed_unknown_not_allowed() {
    // A proposal trusting every claim: each policy kept is met. Up to the
    // 1,024 policies xtenant keeps for a group, allowed; past them (a
    // tenant may have 195), those dropped may decide.
    let dir = tempfile::tempdir().unwrap();
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("verdicts/current.json")).unwrap()).unwrap();
    policy["default"]["inboundTrust"] = serde_json::json!({
        "isMfaAccepted": true, "isCompliantDeviceAccepted": true, "isHybridAzureADJoinedDeviceAccepted": true
    });
    let policy = write(dir.path(), "trusting.json", policy.to_string());
    for (count, verdict) in [(1024, "allowed"), (3000, "unknown")] {
        let input = write(dir.path(), &format!("policies-{count}.ndjson"), signins_applying_policies(count));
        let o = run(&[
            "replay",
            "--tenant",
            OURS,
            "--proposed",
            policy.to_str().unwrap(),
            "--format",
            "json",
            "--all",
            input.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let rows = out["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{count}");
        let row = &rows[0];
        assert_eq!(row["proposed"], verdict, "{count}: {}", row["reason"]);
        let kept = row["grant_clauses"].as_str().unwrap().split(';').count();
        assert_eq!(kept, (count as usize).min(1025), "{count}");
        if verdict == "unknown" {
            assert!(row["reason"].as_str().unwrap().contains("forged or garbled"), "{}", row["reason"]);
        }
    }
}
