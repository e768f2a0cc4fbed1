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

/// Waits up to half a minute for `dir` to hold an entry whose name
/// satisfies `is`.
#[cfg(unix)]
fn appears(dir: &std::path::Path, is: impl Fn(&str) -> bool) -> bool {
    for _ in 0..600 {
        let found = std::fs::read_dir(dir).unwrap().flatten().any(|e| is(&e.file_name().to_string_lossy()));
        if found {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// The binary as a process to start and signal.
#[cfg(unix)]
fn process() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("xtenant"));
    c.env("NO_COLOR", "1");
    c
}

#[cfg(unix)]
fn interrupt(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) with the id of a child we started and have not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_removes_its_temporary_folder_and_its_half_written_output() {
    use std::io::Write;
    use std::process::Stdio;
    let (tmp, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Grouping past its budget, its input still open: interrupted mid-way.
    let mut child = process()
        .env("TMPDIR", tmp.path())
        .args(["activity", "-q", "--groups-in-memory", "1", "--format", "csv", "-o"])
        .arg(out.path().join("activity.csv"))
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // Enough sign-ins of distinct guests to fill the reader's batches.
    let signins: String = (0..40_000u32)
        .map(|i| {
            format!(
                "{{\"id\":\"00000000-0000-0000-0000-{i:012}\",\"createdDateTime\":\"2026-11-01T00:00:00Z\",\
                 \"userId\":\"00000000-0000-0001-0000-{i:012}\",\"userType\":\"guest\",\
                 \"homeTenantId\":\"00000000-0000-0000-0000-000000001000\",\
                 \"resourceTenantId\":\"3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60\",\
                 \"crossTenantAccessType\":\"b2bCollaboration\",\"appId\":\"app\",\"status\":{{\"errorCode\":0}}}}\n"
            )
        })
        .collect();
    input.write_all(signins.as_bytes()).unwrap();
    input.flush().unwrap();
    assert!(appears(tmp.path(), |n| n.starts_with("xtenant-groups-")), "the grouping moved to disk");
    interrupt(&child, libc::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130), "128 + SIGINT, as a shell reports it");
    drop(input);
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "the temporary folder is removed");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "no output");

    // A long write, stopped by `kill` halfway: no partial file beside the target.
    let target = out.path().join("big.ndjson");
    let mut child = process()
        .args(["generate", "-q", "--count", "100000000", "-o"])
        .arg(&target)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(appears(out.path(), |n| n.ends_with(".partial")), "the output is being written");
    interrupt(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143), "128 + SIGTERM");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "the half-written output is removed");
}
