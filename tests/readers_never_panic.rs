//! Property tests: no input makes a reader panic. Arbitrary bytes, and
//! valid exports with bytes flipped, cut or spliced, must each end in
//! sign-ins or a clear error.

use std::io::Write;
use std::path::PathBuf;

use proptest::prelude::*;
use xtenant::ingest::{self, Input, Options};

fn read(bytes: &[u8], name: &str, skip_invalid: bool) -> Result<u64, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    let opts = Options { skip_invalid, ..Options::default() };
    let mut n = 0u64;
    ingest::read_signins(&[Input::File(p)], &opts, None, |_| n += 1).map(|_| n).map_err(|e| format!("{e:#}"))
}

/// The audit reader, and the timeline's decoding of what it read.
fn read_audit(bytes: &[u8], name: &str, skip_invalid: bool) -> Result<u64, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    let opts = Options { skip_invalid, ..Options::default() };
    let mut changes = vec![];
    ingest::read_audit(&[Input::File(p)], &opts, None, |e| changes.push(xtenant::policy::change::decode(&e)))
        .map_err(|e| format!("{e:#}"))?;
    let policy = xtenant::policy::Policy::default();
    let _ = xtenant::policy::history::reconstruct(&policy, &changes);
    Ok(changes.len() as u64)
}

fn audit_fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/formats").join(name))
        .unwrap()
}

const AUDIT_SEEDS: &[&str] = &[
    "audit-graph.json",
    "audit-graph.ndjson.gz",
    "audit-diagnostic-ndjson.ndjson",
    "audit-la-csv.csv",
    "audit-la-json.json",
    "audit-purview.csv",
];

/// Flips, cuts or inserts a byte at each edit.
fn mutate(bytes: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for (at, byte, kind) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at.index(bytes.len());
        match kind {
            0 => bytes[i] = *byte,
            1 => bytes.truncate(i),
            _ => bytes.insert(i, *byte),
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signins").join(name))
        .unwrap()
}

const SEEDS: &[&str] = &[
    "graph-beta-pages.json",
    "graph-beta.ndjson",
    "graph-beta.ndjson.gz",
    "diagnostic-records.json",
    "log-analytics.csv",
    "log-analytics-excel-unicode.txt",
    "log-analytics-query-api.json",
    "InteractiveSignIns_2026-11-01_2026-11-04.csv",
    "powershell-Get-MgBetaAuditLogSignIn.json",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), skip in any::<bool>()) {
        let _ = read(&bytes, "x", skip);
    }

    #[test]
    fn json_like_noise_never_panics(s in "[\\[\\]{}\",:a-z0-9 \\n\\\\]{0,400}", skip in any::<bool>()) {
        let _ = read(s.as_bytes(), "x.json", skip);
    }

    #[test]
    fn mutated_exports_never_panic(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        skip in any::<bool>(),
    ) {
        let mut bytes = fixture(SEEDS[seed]);
        mutate(&mut bytes, &edits);
        let _ = read(&bytes, SEEDS[seed], skip);
    }

    #[test]
    fn mutated_audit_exports_never_panic(
        seed in 0..AUDIT_SEEDS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        skip in any::<bool>(),
    ) {
        let mut bytes = audit_fixture(AUDIT_SEEDS[seed]);
        mutate(&mut bytes, &edits);
        let _ = read_audit(&bytes, AUDIT_SEEDS[seed], skip);
    }
}

#[test]
fn unmutated_audit_seeds_read_cleanly() {
    for s in AUDIT_SEEDS {
        assert_eq!(read_audit(&audit_fixture(s), s, false), Ok(5), "{s}");
    }
}

#[test]
fn unmutated_seeds_read_cleanly() {
    for s in SEEDS {
        assert_eq!(read(&fixture(s), s, false), Ok(4), "{s}");
    }
}
