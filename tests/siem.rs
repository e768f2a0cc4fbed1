//! SIEM outputs of `replay`: golden files (tests/fixtures/expected/siem,
//! written by a reviewed run; regenerate them when the schema changes on
//! purpose) and each format checked against its spec's rules.
//!
//! The fixture's app and partner names carry `|`, `=`, `\`, quotes and a
//! newline, which CEF must escape.

mod common;

use common::*;
use serde_json::Value;

const OURS: &str = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";

fn replay(format: &str) -> String {
    let p = |r: &str| fixture(r).to_string_lossy().into_owned();
    ok(&[
        "replay",
        "-q",
        "--tenant",
        OURS,
        "--proposed",
        &p("replay/proposed.json"),
        "--current",
        &p("replay/current.json"),
        "--format",
        format,
        &p("siem/signins.ndjson"),
    ])
}

fn golden(format: &str) -> String {
    std::fs::read_to_string(fixture(&format!("expected/siem/replay.{format}"))).unwrap()
}

#[test]
fn outputs_match_their_golden_files() {
    for f in ["cef", "ecs", "csv", "ndjson"] {
        assert_eq!(replay(f), golden(f), "--format {f} differs from tests/fixtures/expected/siem/replay.{f}");
    }
}

/// Splits a CEF line into its 7 header fields and the extension, honouring
/// `\|` and `\\` escapes.
fn cef_split(line: &str) -> (Vec<String>, String) {
    let mut fields = vec![];
    let mut cur = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, next) = chars.next().expect("a backslash escapes something");
                assert!(
                    next == '\\' || next == '|',
                    "header escapes only \\ and |, found \\{next} in {line}"
                );
                cur.push(next);
            }
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return (fields, line[i + 1..].to_string());
                }
            }
            c => cur.push(c),
        }
    }
    (fields, cur)
}

#[test]
fn cef_lines_follow_the_spec() {
    let out = replay("cef");
    assert!(!out.is_empty());
    for line in out.lines() {
        let (h, ext) = cef_split(line);
        assert_eq!(h.len(), 7, "{line}");
        assert_eq!(h[0], "CEF:0");
        assert_eq!((h[1].as_str(), h[2].as_str()), ("xtenant", "xtenant"));
        let sev: u8 = h[6].parse().expect("numeric severity");
        assert!(sev <= 10);
        // Extension: key=value pairs; a value's `=` and `\` are escaped, and
        // newlines are written as \n.
        assert!(!ext.contains('\n') && !ext.contains('\r'), "{ext}");
        let mut keys = vec![];
        let bytes = ext.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'=' {
                let backslashes = bytes[..i].iter().rev().take_while(|c| **c == b'\\').count();
                if backslashes % 2 == 1 {
                    continue; // escaped
                }
                let start = ext[..i].rfind(' ').map_or(0, |s| s + 1);
                let key = &ext[start..i];
                assert!(
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad key `{key}` in {ext}"
                );
                keys.push(key.to_string());
            }
        }
        for k in ["externalId", "rt", "act", "cnt", "cs1Label", "cs1", "reason"] {
            assert!(keys.iter().any(|x| x == k), "{k} missing in {ext}");
        }
    }
    assert!(out.contains(r"Alpha \| Labs \\ R=D"), "header escaping");
    assert!(
        out.contains(r#"destinationServiceName=Legacy | "Ops" \= tools\\admin\nv2"#),
        "extension escaping"
    );
    assert!(!out.contains(" app="), "CEF's app is the protocol, not the application");
}

#[test]
fn ecs_documents_use_allowed_values() {
    let out = replay("ecs");
    for line in out.lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        assert!(d["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(d["ecs"]["version"], "8.11.0");
        let e = &d["event"];
        assert!(["alert", "event", "signal", "state", "metric", "enrichment", "pipeline_error"]
            .contains(&e["kind"].as_str().unwrap()));
        for c in e["category"].as_array().unwrap() {
            assert!(["iam", "authentication", "configuration", "network", "session"]
                .contains(&c.as_str().unwrap()));
        }
        for t in e["type"].as_array().unwrap() {
            assert!(["info", "change", "denied", "allowed", "access", "user"].contains(&t.as_str().unwrap()));
        }
        assert!(e["severity"].is_u64());
        assert_eq!(e["id"].as_str().unwrap().len(), 16);
        assert!(d["xtenant"]["impact"].is_string());
    }
}

#[test]
fn rows_carry_schema_version_event_time_severity_and_a_stable_id() {
    let rows: Vec<Value> = replay("ndjson").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rank = |v: &Value| v["severity"].as_u64().unwrap();
    for w in rows.windows(2) {
        assert!(rank(&w[0]) >= rank(&w[1]), "rows are worst first");
    }
    for r in &rows {
        assert_eq!(r["schema_version"], 1);
        assert_eq!(r["event_time"], r["last_seen"]);
        let expected = match r["impact"].as_str().unwrap() {
            "lost" => "high",
            "degraded" => "medium",
            "unknown" => "low",
            "gained" => "informational",
            _ => "none",
        };
        assert_eq!(r["severity_label"], expected);
    }
    // Same input, same ids: a SIEM can deduplicate on them.
    assert_eq!(replay("ndjson"), replay("ndjson"));
}
