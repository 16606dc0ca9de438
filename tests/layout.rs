//! The layout DESIGN asks for, checked so it cannot rot: in both planes no
//! two modules import each other (directly or around a longer circle; the
//! crate root, which composes the modules, is left out), store modules
//! import no other store module, and no data-plane source file grows past
//! what a reader takes in at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// `a/b.rs` and `a/b/mod.rs` are module `a::b`; `lib.rs` is the root "".
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The modules a file refers to through `crate::...` paths (in `use`
/// items, braces included, and inline), each resolved to the longest
/// prefix that is a module.
fn imports(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut add = |path: &str| {
        let segs: Vec<&str> = path.split("::").map(str::trim).collect();
        for n in (1..=segs.len()).rev() {
            let candidate = segs[..n].join("::");
            if modules.contains(&candidate) {
                found.insert(candidate);
                return;
            }
        }
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':');
        let after = &rest[path.len()..];
        // `crate::a::{b, c::d}`: each entry of the group.
        if after.trim_start_matches(':').starts_with('{') {
            let group = after.trim_start_matches(':');
            let end = group.find('}').unwrap_or(group.len());
            for entry in group[1..end].split(',') {
                let entry = entry.trim().split(" as ").next().unwrap_or("");
                let entry = entry.trim_start_matches('{');
                if entry == "self" || entry.is_empty() {
                    add(path);
                } else {
                    add(&format!("{path}::{entry}"));
                }
            }
        } else {
            add(path);
        }
    }
    found
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let m = module_of(src, f);
        let text = std::fs::read_to_string(f).unwrap();
        let mut deps = imports(&text, &modules);
        // A module using its own submodules by relative path (`login::login`).
        for line in text.lines() {
            if let Some(name) = line
                .trim()
                .strip_prefix("pub mod ")
                .or_else(|| line.trim().strip_prefix("mod "))
                .and_then(|r| r.strip_suffix(';'))
            {
                let child = if m.is_empty() {
                    name.to_string()
                } else {
                    format!("{m}::{name}")
                };
                if text.contains(&format!("{name}::")) {
                    deps.insert(child);
                }
            }
        }
        deps.remove(&m);
        deps.remove("");
        g.insert(m, deps);
    }
    g.remove("");
    g
}

/// Every circle of imports, as the modules on it.
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in g.keys() {
        // Depth-first search for a path back to `start` through modules
        // that sort after it (each circle reported once).
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in g.get(&node).into_iter().flatten() {
                if next == start {
                    found.push(path.clone());
                } else if next > start && seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

#[test]
fn no_import_circles_and_small_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for plane in ["data-plane", "control-plane"] {
        let g = graph(&root.join(plane).join("src"));
        assert!(g.len() > 5, "{plane}: modules not found: {g:?}");
        let found = circles(&g);
        assert!(found.is_empty(), "{plane}: import circles: {found:?}");
        for (m, deps) in &g {
            if m.starts_with("store::") {
                let others: Vec<_> = deps.iter().filter(|d| d.starts_with("store::")).collect();
                assert!(others.is_empty(), "{m} imports {others:?}");
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root.join("data-plane/src"), &mut files);
    for f in files {
        let n = std::fs::read_to_string(&f).unwrap().lines().count();
        assert!(n <= 450, "{} has {n} lines", f.display());
    }
}

#[test]
fn the_checker_sees_circles() {
    let modules: BTreeSet<String> = ["a", "b", "b::c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        imports(
            "use crate::b::{c::X, self};\nfn f() { crate::a::g() }",
            &modules
        ),
        ["a", "b", "b::c"].iter().map(|s| s.to_string()).collect()
    );
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&g).len(), 1);
}
