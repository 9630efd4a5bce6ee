//! The house rules of DESIGN.md, checked on the source: the domain and the layers below it
//! import nothing from the HTTP side, and no two sibling modules import each other (directly or
//! round a longer loop).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_domain_knows_nothing_of_http() {
    let forbidden = [
        "crate::api",
        "crate::server",
        "crate::cli",
        "crate::connect",
        "axum",
        "hyper",
    ];
    let mut found = Vec::new();
    for layer in ["core", "db", "crypto", "artifact"] {
        for f in rust_files(&src().join(layer)) {
            let text = fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for word in forbidden {
                    if code.contains(word) {
                        found.push(format!("{}:{}: {word}", f.display(), n + 1));
                    }
                }
            }
        }
    }
    let error = fs::read_to_string(src().join("error.rs")).unwrap();
    if error.contains("axum") {
        found.push("src/error.rs: axum".into());
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The module a file is (`a/b.rs` and `a/b/mod.rs` are both `b` in `a`).
fn module_of(f: &Path) -> (PathBuf, String) {
    let stem = f.file_stem().unwrap().to_string_lossy().to_string();
    if stem == "mod" {
        let dir = f.parent().unwrap();
        (
            dir.parent().unwrap().to_path_buf(),
            dir.file_name().unwrap().to_string_lossy().to_string(),
        )
    } else {
        (f.parent().unwrap().to_path_buf(), stem)
    }
}

/// Which sibling modules each module names through `super::` (tests excluded: a test module
/// may reach anything).
fn sibling_edges() -> BTreeMap<(PathBuf, String), BTreeSet<String>> {
    let files = rust_files(&src());
    let mut modules: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let (dir, name) = module_of(f);
        modules.entry(dir).or_default().insert(name);
    }
    let mut edges: BTreeMap<(PathBuf, String), BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "main.rs" || name == "lib.rs" || name.contains("tests") {
            continue;
        }
        let (dir, module) = module_of(f);
        let text = fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let siblings = &modules[&dir];
        let mut to = BTreeSet::new();
        // `super::` from `a/b.rs` names a sibling of `b`; from `a/b/mod.rs` it names one of `b`.
        for (i, _) in code.match_indices("super::") {
            let rest = &code[i + "super::".len()..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let mut names = vec![word.clone()];
            if word.is_empty() && rest.starts_with('{') {
                let inside = rest[1..].split('}').next().unwrap_or_default();
                names = inside
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or_default().to_string())
                    .collect();
            }
            for n in names {
                if n != module && siblings.contains(&n) {
                    to.insert(n);
                }
            }
        }
        edges.insert((dir, module), to);
    }
    edges
}

#[test]
fn no_two_modules_import_each_other() {
    let edges = sibling_edges();
    let mut loops = Vec::new();
    for ((dir, from), tos) in &edges {
        // A path back from any module `from` names leads round a loop.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = tos
            .iter()
            .map(|t| (t.clone(), vec![from.clone(), t.clone()]))
            .collect();
        while let Some((m, path)) = stack.pop() {
            if m == *from {
                loops.push(format!("{}: {}", dir.display(), path.join(" -> ")));
                break;
            }
            if !seen.insert(m.clone()) {
                continue;
            }
            for next in edges.get(&(dir.clone(), m)).into_iter().flatten() {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    assert!(loops.is_empty(), "{}", loops.join("\n"));
}
