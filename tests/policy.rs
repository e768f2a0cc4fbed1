//! End-to-end tests of `xtenant policy`: every input layout, show, check
//! and diff.

mod common;

use common::*;
use serde_json::Value;

fn show_json(path: &str) -> Value {
    serde_json::from_str(&ok(&["policy", "show", "-q", "--format", "json", &fixture(path).to_string_lossy()]))
        .unwrap()
}

#[test]
fn graph_responses_entra_exporter_and_combined_load_the_same_policy() {
    let graph = show_json("policies/graph-responses");
    let exporter = show_json("policies/entra-exporter");
    let combined = show_json("policies/combined.json");
    assert_eq!(graph["effective"], combined["effective"]);
    assert_eq!(exporter, combined);
    assert_eq!(combined["allowedCloudEndpoints"][0], "microsoftonline.us");
    let eff = combined["effective"].as_array().unwrap();
    assert_eq!(eff.len(), 4, "default and three partners");
    let p1 = eff.iter().find(|e| e["partner"] == "3f2b0a1c-5d6e-4f70-8a9b-0c1d2e3f4a5b").unwrap();
    assert_eq!(p1["sections"]["b2bCollaborationInbound"]["applications"]["from"], "partner");
    assert_eq!(p1["sections"]["b2bCollaborationOutbound"]["applications"]["from"], "default");
    assert_eq!(p1["inboundTrust"]["isMfaAccepted"]["value"], true);
}

#[test]
fn graph_powershell_sdk_output_loads_like_the_graph_responses() {
    // PascalCase keys, IsHybridAzureAdJoinedDeviceAccepted, AdditionalProperties bags.
    assert_eq!(
        show_json("policies/powershell")["effective"],
        show_json("policies/graph-responses")["effective"]
    );
    let o = run(&["policy", "show", &fixture("policies/powershell").to_string_lossy()]);
    assert!(stderr(&o).contains("`m365CollaborationInbound` is not known"), "{}", stderr(&o));
}

#[test]
fn unknown_sections_load_with_a_warning() {
    let o = run(&["policy", "show", &fixture("policies/combined.json").to_string_lossy()]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("`m365CollaborationInbound` is not known to this version; kept and ignored"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn policy_default_is_the_service_default_and_round_trips() {
    let text = ok(&["policy", "default"]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["default"]["isServiceDefault"], true);
    assert_eq!(v["default"]["b2bCollaborationInbound"]["usersAndGroups"]["accessType"], "allowed");
    assert_eq!(v["default"]["b2bDirectConnectOutbound"]["applications"]["accessType"], "blocked");
    assert_eq!(v["partners"], serde_json::json!([]));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(&p, text).unwrap();
    let check = ok(&["policy", "check", &p.to_string_lossy()]);
    assert!(check.contains("0 error(s)"), "{check}");
}

#[test]
fn check_reports_structural_errors_and_documented_rules_with_exit_1() {
    let o = run(&["policy", "check", &fixture("policies/bad/rule-violations.json").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    for want in [
        "configured twice",
        "blocking all users and groups requires blocking all applications too",
        "allowing users and groups requires at least one allowed application",
        "default inbound settings cannot target specific users or groups",
        "`not-a-guid` is not an object id",
        "targetType `application` does not belong in usersAndGroups",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let o = run(&[
        "policy",
        "check",
        "--format",
        "json",
        &fixture("policies/bad/rule-violations.json").to_string_lossy(),
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["errors"].as_u64().unwrap() >= 6);
    assert!(v["problems"][0]["at"].as_str().is_some());
}

#[test]
fn check_passes_with_warnings_only() {
    let o = run(&["policy", "check", &fixture("../../samples/policies/proposed.json").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("0 error(s)"));
    assert!(out.contains("does not keep these recommended apps allowed"), "{out}");
    assert!(out.contains("direct connect users cannot do MFA"), "{out}");
}

#[test]
fn bad_values_and_types_name_the_json_path() {
    let cases = [
        (
            "policies/bad/bad-access-type.json",
            "value[0].b2bCollaborationInbound.applications.accessType: unknown variant `allow`",
        ),
        ("policies/bad/wrong-type.json", "[0].inboundTrust.isMfaAccepted: invalid type"),
        ("policies/bad/trailing-comma.json", "trailing comma"),
    ];
    for (f, want) in cases {
        let o = run(&["policy", "show", &fixture(f).to_string_lossy()]);
        assert_eq!(o.status.code(), Some(2), "{f}");
        assert!(stderr(&o).contains(want), "{f}: {}", stderr(&o));
    }
    let o = run(&["policy", "show", &fixture("signins/graph-beta.ndjson").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn diff_is_computed_after_inheritance() {
    let cur = fixture("../../samples/policies/current.json");
    let prop = fixture("../../samples/policies/proposed.json");
    let v: Value = serde_json::from_str(&ok(&[
        "policy",
        "diff",
        "-q",
        "--format",
        "json",
        &cur.to_string_lossy(),
        &prop.to_string_lossy(),
    ]))
    .unwrap();
    let changes = v["changes"].as_array().unwrap();
    // Woodgrove is dropped from the proposal: it now inherits the stricter default.
    let wg: Vec<&Value> =
        changes.iter().filter(|c| c["partner"] == "9da9f880-5085-4cba-9e80-0ead088c2e2a").collect();
    assert!(wg.iter().any(|c| c["setting"] == "b2bCollaborationInbound.usersAndGroups"
        && c["after_origin"] == "default"
        && c["partner_status"] == "removed"));
    assert!(wg.iter().any(|c| c["setting"] == "inboundTrust.isMfaAccepted"
        && c["before"] == "true"
        && c["after"] == "false"));
    // Northwind is new.
    assert!(changes
        .iter()
        .any(|c| c["partner"] == "436efab1-c9d7-4a60-90c9-19342063143d" && c["partner_status"] == "added"));
    let md = ok(&[
        "policy",
        "diff",
        "-q",
        "--format",
        "markdown",
        &cur.to_string_lossy(),
        &prop.to_string_lossy(),
    ]);
    assert!(md.starts_with("### Cross-tenant access policy changes"));
    assert!(md.contains("| partner | setting | before | after |"));
}

#[test]
fn reordering_targets_is_no_change() {
    let src = std::fs::read_to_string(fixture("policies/combined.json")).unwrap();
    let mut v: Value = serde_json::from_str(&src).unwrap();
    let targets =
        v["partners"][0]["b2bCollaborationInbound"]["applications"]["targets"].as_array_mut().unwrap();
    targets.reverse();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("reordered.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    let out = ok(&[
        "policy",
        "diff",
        "-q",
        &fixture("policies/combined.json").to_string_lossy(),
        &p.to_string_lossy(),
    ]);
    assert_eq!(out.trim(), "no changes");
}

#[test]
fn show_one_partner_or_the_default() {
    let f = fixture("policies/combined.json");
    let out = ok(&[
        "policy",
        "show",
        "-q",
        "--partner",
        "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        &f.to_string_lossy(),
    ]);
    assert!(out.contains("isServiceProvider") && out.contains("true"));
    assert!(!out.contains("3f2b0a1c"));
    let out = ok(&["policy", "show", "-q", "--partner", "default", &f.to_string_lossy()]);
    assert!(out.contains("default (any other tenant)"));
}

/// Windows PowerShell 5.1's `ConvertTo-Json ... > policy.json` (and
/// `Out-File`) writes UTF-16 little-endian with a byte order mark.
#[test]
fn a_policy_saved_as_utf16_by_windows_powershell_loads_as_its_utf8_text() {
    let text = std::fs::read_to_string(fixture("policies/combined.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let le = dir.path().join("le.json");
    let le_bytes: Vec<u8> =
        [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(&le, &le_bytes).unwrap();
    let be = dir.path().join("be-without-bom.json");
    std::fs::write(&be, text.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>()).unwrap();
    let expected = show_json("policies/combined.json");
    for f in [&le, &be] {
        let shown = ok(&["policy", "show", "-q", "--format", "json", &f.to_string_lossy()]);
        assert_eq!(serde_json::from_str::<Value>(&shown).unwrap(), expected, "{}", f.display());
    }
    let o = xtenant()
        .args(["policy", "show", "-q", "--format", "json", "-"])
        .write_stdin(le_bytes)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap(), expected, "from standard input");
}
