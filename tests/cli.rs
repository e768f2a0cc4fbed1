//! The conventions of a well-made command line: completions, a manual
//! page, environment variables for the flags people repeat, and messages
//! that use the names the user types.

mod common;

use common::*;

#[test]
fn completions_are_written_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = ok(&["completions", shell]);
        assert!(out.contains("replay") && out.contains("proposed"), "{shell}");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_manual_page_is_roff_for_xtenant_and_each_command() {
    let page = ok(&["man"]);
    assert!(page.contains(".TH xtenant 1"), "{page}");
    assert!(page.contains("replay"));
    assert!(page.contains("XTENANT_STORE"), "the environment is in the page");
    let page = ok(&["man", "store", "add"]);
    assert!(page.contains(".TH xtenant-store-add 1"), "{page}");
    assert_eq!(run(&["man", "nope"]).status.code(), Some(2));
}

#[test]
fn the_tenant_and_store_come_from_the_environment_and_paths_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let signins = fixture("signins/graph-beta.ndjson");
    ok(&["store", "add", "-q", "--store", store.to_str().unwrap(), signins.to_str().unwrap()]);
    let ours = "6c3d2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a";
    let with_env = |args: &[&str]| {
        xtenant().env("XTENANT_STORE", &store).env("XTENANT_TENANT", ours).args(args).output().unwrap()
    };
    let from_store = with_env(&["activity", "-q", "--format", "csv"]);
    assert!(from_store.status.success(), "{}", stderr(&from_store));
    let from_paths = with_env(&["activity", "-q", "--format", "csv", signins.to_str().unwrap()]);
    assert!(from_paths.status.success(), "{}", stderr(&from_paths));
    assert_eq!(stdout(&from_store), stdout(&from_paths));
    let both = run(&["activity", "--store", store.to_str().unwrap(), signins.to_str().unwrap()]);
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("not both"));
    let help = ok(&["activity", "--help"]);
    assert!(help.contains("[env: XTENANT_TENANT=]") && help.contains("[env: XTENANT_STORE=]"), "{help}");
}

#[test]
fn messages_name_values_as_the_user_types_them() {
    let o = run(&[
        "activity",
        "--input-format",
        "log-analytics-csv",
        fixture("signins/graph-beta.ndjson").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o =
        run(&["activity", "--input-format", "graph", fixture("signins/log-analytics.csv").to_str().unwrap()]);
    let e = stderr(&o);
    assert!(e.contains("--input-format graph expects JSON"), "{e}");
    assert!(!e.contains("Graph expects"), "{e}");
}
