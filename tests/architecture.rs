//! The map in `src/lib.rs` is enforced here, not just drawn: every `crate::x`
//! path in a module's non-test code must be an arrow this table allows.
//!
//! Data flows one way: `main -> cli -> pipeline -> {ingest, store, analysis,
//! policy} -> model`, and `cli -> render`. Nothing imports `cli`; readers and
//! analysis never import `render`. Unit tests (`#[cfg(test)]` onwards) may
//! reach anywhere, and doc comments are links, not arrows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which top-level modules each top-level module may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("main", &["cli"]),
    ("lib", &[]),
    ("cli", &["pipeline", "render", "ingest", "analysis", "policy", "model", "synth", "files"]),
    ("pipeline", &["ingest", "store", "analysis", "policy", "model", "synth", "files"]),
    // The output layer draws what the engine computed; it reads, never runs, it.
    ("render", &["analysis", "policy", "model", "ingest", "store", "files"]),
    ("ingest", &["model", "files"]),
    ("store", &["model", "files"]),
    // Grouping and replay beyond memory keep temporary folders (`files`
    // says which a killed run left behind).
    ("analysis", &["policy", "model", "files"]),
    ("policy", &["model", "files"]),
    ("synth", &["policy", "model"]),
    ("model", &[]),
    ("files", &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests and comments.
fn code_of(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    before_tests
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level modules a piece of code names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c};`: the first segment of each item.
            let inner = &group[..group.find("};").unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        named.insert(ident(&inner[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            named.insert(ident(rest));
        }
    }
    named.retain(|m| !m.is_empty());
    named
}

#[test]
fn every_import_follows_an_arrow_of_the_map() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == top) else {
            wrong.push(format!(
                "{}: module `{top}` is not on the map in tests/architecture.rs",
                rel.display()
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        for named in named_modules(&code) {
            if named != top && !allowed.contains(&named.as_str()) {
                wrong.push(format!("{}: `{top}` may not use crate::{named}", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the map:\n{}", wrong.join("\n"));
}

#[test]
fn the_map_itself_has_no_cycle() {
    fn reaches(from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        let next = ALLOWED.iter().find(|(m, _)| *m == from).map_or(&[][..], |(_, a)| *a);
        next.iter().any(|n| *n == to || (seen.insert(n.to_string()) && reaches(n, to, seen)))
    }
    for (module, _) in ALLOWED {
        assert!(!reaches(module, module, &mut BTreeSet::new()), "{module} reaches itself");
    }
}

#[test]
fn each_command_run_is_a_short_dispatch() {
    // args -> plan -> one pipeline call -> sink; anything longer belongs in pipeline/ or render/.
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    for entry in std::fs::read_dir(cli).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("pub(crate) fn run(")
                || t.starts_with("pub fn run(")
                || t.starts_with("fn run("))
            {
                continue;
            }
            let mut depth = 0i32;
            let mut opened = false;
            let mut end = i;
            for (j, l) in lines.iter().enumerate().skip(i) {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if opened && depth == 0 {
                    end = j;
                    break;
                }
            }
            let len = end - i + 1;
            assert!(len <= 60, "{}: run is {len} lines", path.display());
        }
    }
}

#[test]
fn the_import_reader_sees_groups_and_paths() {
    let named = named_modules("use crate::{model::{Guid, X}, policy};\nlet x = crate::store::open();");
    assert_eq!(named.into_iter().collect::<Vec<_>>(), ["model", "policy", "store"]);
}
