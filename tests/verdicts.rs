//! Verdicts on the policy shapes admins write most, each with the rule that
//! decides and Microsoft's documentation behind it (docs/policy-semantics.md
//! names these tests). Fixtures: tests/fixtures/verdicts/make_verdicts.py,
//! one Graph beta sign-in per case.

mod common;

use std::collections::BTreeMap;

use common::*;

const OURS: &str = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";

fn f(name: &str) -> String {
    fixture(&format!("verdicts/{name}")).to_string_lossy().into_owned()
}

/// Replays the fixture sign-ins; rows by the user number of their sign-in.
/// Each row: (current, proposed, impact, reason).
fn replay_with(proposed: &str, extra: &[&str]) -> BTreeMap<u32, (String, String, String, String)> {
    let (p, c, s) = (f(proposed), f("current.json"), f("signins.ndjson"));
    let mut args =
        vec!["replay", "-q", "--tenant", OURS, "--format", "csv", "--proposed", &p, "--current", &c];
    args.extend_from_slice(extra);
    args.push(&s);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut rows = BTreeMap::new();
    for rec in csv::Reader::from_reader(o.stdout.as_slice()).deserialize::<BTreeMap<String, String>>() {
        let x = rec.unwrap();
        let user: u32 = x["user_id"][24..].parse().unwrap();
        rows.insert(
            user,
            (x["current"].clone(), x["proposed"].clone(), x["impact"].clone(), x["reason"].clone()),
        );
    }
    rows
}

fn replay(extra: &[&str]) -> BTreeMap<u32, (String, String, String, String)> {
    replay_with("proposed.json", extra)
}

fn impact(rows: &BTreeMap<u32, (String, String, String, String)>, user: u32) -> (&str, &str) {
    let r = rows.get(&user).unwrap_or_else(|| panic!("no row for user {user}: {rows:#?}"));
    (r.2.as_str(), r.3.as_str())
}

#[test]
fn office365_allow_list_keeps_every_office_app_microsoft_lists() {
    let rows = replay(&[]);
    for user in [1, 2] {
        let (i, why) = impact(&rows, user);
        assert_eq!(i, "unchanged", "{why}");
        assert!(why.contains("Office365 (") && why.contains("microsoft-apps-2026.12"), "{why}");
    }
}

#[test]
fn office365_allow_list_drops_an_app_its_owner_shows_is_not_microsofts() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 3);
    assert_eq!(i, "lost");
    assert!(why.contains("not Microsoft"), "{why}");
}

#[test]
fn office365_membership_of_an_app_the_table_cannot_place_is_unknown_until_an_app_table_says() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 4);
    assert_eq!(i, "unknown");
    assert!(why.contains("is a Microsoft app") && why.contains("--app-table"), "{why}");
    let (i, why) = impact(&rows, 5);
    assert_eq!(i, "unknown");
    assert!(why.contains("owner tenant") && why.contains("appOwnerTenantId"), "{why}");
    let rows = replay(&["--app-table", &f("app-table.csv")]);
    let (i, why) = impact(&rows, 4);
    assert_eq!(i, "unchanged", "{why}");
    assert!(why.contains("--app-table"), "{why}");
}

#[test]
fn office365_deny_list_catches_the_office_365_portal() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 6);
    assert_eq!(i, "lost");
    assert!(
        why.contains("applications blocked [Office365]") && why.contains("Microsoft Office 365 Portal"),
        "{why}"
    );
}

#[test]
fn a_phishing_resistant_strength_is_lost_when_mfa_trust_goes() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 7);
    assert_eq!(i, "lost");
    assert!(why.contains("Phishing-resistant MFA") && why.contains("home tenant"), "{why}");
}

#[test]
fn the_multifactor_strength_only_moves_mfa_into_our_tenant() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 8);
    assert_eq!(i, "degraded");
    assert!(why.contains("must now be met in our tenant"), "{why}");
}

#[test]
fn a_strength_the_log_does_not_name_is_unknown_until_the_policies_say() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 9);
    assert_eq!(i, "unknown");
    assert!(why.contains("--ca-policies"), "{why}");
    let rows = replay(&["--ca-policies", &f("ca-policies-or.json")]);
    let (i, why) = impact(&rows, 9);
    assert_eq!(i, "lost", "{why}");
    assert!(why.contains("Phishing-resistant"), "{why}");
}

#[test]
fn a_grant_of_several_controls_needs_its_operator() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 10);
    assert_eq!(i, "unknown");
    assert!(why.contains("compliantDevice and mfa") && why.contains("--ca-policies"), "{why}");
    let rows = replay(&["--ca-policies", &f("ca-policies-or.json")]);
    let (i, why) = impact(&rows, 10);
    assert_eq!(i, "degraded", "one of: MFA can be done in our tenant: {why}");
    assert!(why.contains("operator OR"), "{why}");
    let rows = replay(&["--ca-policies", &f("ca-policies-and.json")]);
    let (i, why) = impact(&rows, 10);
    assert_eq!(i, "lost", "all of: a compliant device cannot be proven without trust: {why}");
    assert!(why.contains("operator AND") && why.contains("compliant device"), "{why}");
}

#[test]
fn turning_mfa_trust_on_says_where_users_now_do_mfa() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 11);
    assert_eq!(i, "unchanged");
    assert!(why.contains("isMfaAccepted turns on") && why.contains("home tenant"), "{why}");
}

#[test]
fn tenant_restriction_refusals_stay_blocked_whatever_the_proposal() {
    let rows = replay(&[]);
    for user in [12, 13] {
        let (i, why) = impact(&rows, user);
        assert_eq!(i, "unchanged", "{why}");
        assert!(why.contains("tenant restrictions") && why.contains("independently"), "{why}");
    }
    // A proposal that changes tenantRestrictions itself: not evaluated, so not known.
    let rows = replay_with("proposed-tr.json", &[]);
    let (i, why) = impact(&rows, 12);
    assert_eq!(i, "unknown", "{why}");
    assert!(why.contains("changes tenantRestrictions"), "{why}");
}

#[test]
fn a_removed_partner_whose_cloud_is_not_known_is_unknown_not_the_default() {
    let rows = replay(&[]);
    let (i, why) = impact(&rows, 14);
    assert_eq!(i, "unknown");
    assert!(why.contains("x-xtenant-cloud") && why.contains("microsoftonline.us"), "{why}");
    let (i, why) = impact(&rows, 15);
    assert_eq!(i, "lost");
    assert!(why.contains("another Microsoft cloud") && why.contains("no partner entry"), "{why}");
}

#[test]
fn policy_check_accepts_graphs_documented_block_group_from_all_apps() {
    let o = run(&["policy", "check", &f("g1-blocked-from-all-apps.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("0 error(s)"), "{out}");
    assert!(out.contains("blocks all applications for some users only"), "{out}");
    // (How such a section evaluates is the decision table's `blocked`/`blocked`
    // row: src/policy/evaluate_tests.rs.) The flags the fixes need are documented.
    let help = ok(&["replay", "--help"]);
    assert!(help.contains("--ca-policies") && help.contains("--app-table"), "{help}");
}
