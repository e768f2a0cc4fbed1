//! Helpers shared by the end-to-end tests: run the built binary on files
//! in tests/fixtures.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

pub fn xtenant() -> Command {
    let mut c = Command::cargo_bin("xtenant").unwrap();
    c.env("NO_COLOR", "1").env_remove("COLUMNS");
    c
}

pub fn run(args: &[&str]) -> Output {
    xtenant().args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and insists on success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "xtenant {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// [`ok`] with `TMPDIR` set to `tmp`: for runs whose temporary folder a
/// test looks into (or takes away) afterwards.
pub fn ok_with_tmpdir<S: AsRef<std::ffi::OsStr>>(tmp: &std::path::Path, args: &[S]) -> String {
    let o = xtenant().env("TMPDIR", tmp).args(args).output().unwrap();
    assert!(o.status.success(), "xtenant failed: {}", stderr(&o));
    stdout(&o)
}

/// Drops the named CSV columns (for comparing exports that lack them).
pub fn without_columns(csv_text: &str, drop: &[&str]) -> String {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let keep: Vec<usize> =
        headers.iter().enumerate().filter(|(_, h)| !drop.contains(h)).map(|(i, _)| i).collect();
    let mut out = String::new();
    let line = |fields: Vec<&str>| fields.join(",") + "\n";
    out += &line(keep.iter().map(|&i| &headers[i]).collect());
    for rec in r.records() {
        let rec = rec.unwrap();
        out += &line(keep.iter().map(|&i| &rec[i]).collect());
    }
    out
}
