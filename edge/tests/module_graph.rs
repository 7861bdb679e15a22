//! No module of the worker depends, directly or not, on a module that
//! depends back on it: each can be read (and tested) after the ones it
//! uses. Dependencies are read from the source: every `crate::` path
//! outside comments, `use crate::{a, b::c}` groups included. Files under
//! `src/<m>/` count as part of `m`; `lib.rs` is the root and uses them all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules a piece of source names through `crate::`.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            out.extend(group_heads(group));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// The first identifier of each item in a `{...}` group (up to its close).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = vec![ident(group.trim_start())];
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(ident(group[i + 1..].trim_start())),
            _ => {}
        }
    }
    heads
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The graph of `src`: module -> the modules it names.
fn graph(src: &Path) -> Graph {
    let mut g = Graph::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let deps = crate_paths(&std::fs::read_to_string(&path).unwrap());
        g.entry(module).or_default().extend(deps);
    }
    let modules: BTreeSet<String> = g.keys().cloned().collect();
    for (m, deps) in g.iter_mut() {
        deps.retain(|d| d != m && modules.contains(d));
    }
    g
}

/// One cycle (its modules in order, the first repeated at the end), if any.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == m) {
            let mut cycle = path[start..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

#[test]
fn edge_src_has_no_module_cycle() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The reader found the real dependencies, so an empty answer below
    // is not just an empty graph.
    for (from, to) in [
        ("upload", "ports"),
        ("sweep", "delete"),
        ("api", "delete"),
        ("db", "ports"),
    ] {
        assert!(g[from].contains(to), "{from} -> {to} not found in {g:?}");
    }
    if let Some(cycle) = find_cycle(&g) {
        panic!("module cycle in edge/src: {}", cycle.join(" -> "));
    }
}

#[test]
fn reads_groups_nested_paths_and_skips_comments() {
    let deps = crate_paths(
        "use crate::{a, b::{c, d}, e::F};\n\
         // crate::commented\n\
         fn f() { crate::g::h(); notcrate::i(); }\n\
         use crate::j::{self, K};",
    );
    let want: BTreeSet<String> = ["a", "b", "e", "g", "j"].map(String::from).into();
    assert_eq!(deps, want);
}

#[test]
fn finds_a_cycle_and_only_a_real_one() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let cycle = find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]));
    assert_eq!(cycle.map(|c| c.len()), Some(4));
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("a", "c"), ("b", "c"), ("d", "a")])),
        None
    );
}
