//! The edge's layers and their direction, read from the source.
//!
//! `src/` has five layers besides `lib.rs` (the entry points) and `fuzz.rs`
//! (fuzz entry points): `http` -> `app` -> `domain` <- `adapters`, and
//! `runtime` under all of them. A layer may use the ones after it in this
//! list, never one before it:
//!
//! - `http` may use `app`, `domain`, `runtime` (not `adapters`: handlers
//!   reach storage through the domain's services and ports);
//! - `app` may use `domain`, `adapters`, `runtime`;
//! - `adapters` may use `domain` (its ports, model and errors) and `runtime`;
//! - `domain` may use `runtime` only, and names neither `worker` nor the
//!   `http` crate nor JavaScript (`js_sys`, `wasm_bindgen`);
//! - `runtime` uses none of them.
//!
//! Inside a layer, no module (a file or folder under the layer's folder)
//! depends, directly or not, on one that depends back on it. Dependencies
//! are every `crate::` path outside comments and outside `#[cfg(test)]`
//! modules (tests may use the memory adapters and the HTTP mapping),
//! `use crate::{a, b::c}` groups included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Which layers each layer may use (besides itself).
const MAY_USE: &[(&str, &[&str])] = &[
    ("lib", &["http", "app", "domain", "adapters", "runtime"]),
    ("fuzz", &["http", "domain", "adapters", "runtime"]),
    ("http", &["app", "domain", "runtime"]),
    ("app", &["domain", "adapters", "runtime"]),
    ("adapters", &["domain", "runtime"]),
    ("domain", &["runtime"]),
    ("runtime", &[]),
];

/// What no file of `domain/` may name: the domain is plain Rust.
const NOT_IN_DOMAIN: &[&str] = &["worker::", "js_sys", "wasm_bindgen", "web_sys", "http::"];

/// The source without its `#[cfg(test)]` module (which comes last);
/// nothing of a file that is all test support (`#![cfg(test)]`).
fn without_tests(source: &str) -> &str {
    if source.contains("#![cfg(test)]") {
        return "";
    }
    source
        .find("#[cfg(test)]\nmod tests")
        .map_or(source, |i| &source[..i])
}

/// The source without comments and tests.
fn code(source: &str) -> String {
    without_tests(source)
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a piece of source names through `crate::`, as its first two
/// segments (`domain::upload`, `app::App`), groups expanded.
fn crate_paths(source: &str) -> BTreeSet<Vec<String>> {
    let code = code(source);
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "crate::".len()..];
        if !preceded_by_ident {
            tree(rest, &[], &mut out);
        }
    }
    out.retain(|p| !p.is_empty() && !p[0].is_empty());
    out
}

/// Reads one path (or `{...}` group of paths) after `prefix`, up to two
/// segments in all.
fn tree(s: &str, prefix: &[String], out: &mut BTreeSet<Vec<String>>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        for item in items(group) {
            tree(item, prefix, out);
        }
        return;
    }
    let name = ident(s);
    let mut path = prefix.to_vec();
    path.push(name.clone());
    match s[name.len()..].strip_prefix("::") {
        Some(more) if path.len() < 2 => tree(more, &path, out),
        _ => {
            out.insert(path);
        }
    }
}

/// The items of a `{...}` group, up to its close.
fn items(group: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let end = group.find('}').map_or(group.len(), |_| {
        let mut d = 0;
        group
            .char_indices()
            .find(|(_, c)| match c {
                '{' => {
                    d += 1;
                    false
                }
                '}' if d == 0 => true,
                '}' => {
                    d -= 1;
                    false
                }
                _ => false,
            })
            .map_or(group.len(), |(i, _)| i)
    });
    if start < end {
        out.push(&group[start..end]);
    }
    out.into_iter().filter(|i| !i.trim().is_empty()).collect()
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The source files of `src`, each with its module: `lib`, `fuzz`, a
/// layer (`domain`: its `mod.rs`) or a module of a layer (`domain::upload`,
/// for `domain/upload.rs` and everything under `domain/upload/`).
fn modules(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let parts: Vec<String> = rel
                .components()
                .map(|c| {
                    c.as_os_str()
                        .to_string_lossy()
                        .trim_end_matches(".rs")
                        .to_string()
                })
                .collect();
            let module = match parts.as_slice() {
                [one] => one.clone(),
                [layer, file] if file == "mod" => layer.clone(),
                [layer, sub, ..] => format!("{layer}::{sub}"),
                [] => continue,
            };
            out.push((module, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The graph of `src`: module -> the modules it names (a path whose second
/// segment is no module, `app::App`, names the layer's own `mod.rs`).
fn graph(src: &Path) -> Graph {
    let files = modules(src);
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut g = Graph::new();
    for (module, source) in &files {
        let deps = g.entry(module.clone()).or_default();
        for path in crate_paths(source) {
            let two = path.join("::");
            let target = if known.contains(&two) {
                two
            } else {
                path[0].clone()
            };
            if known.contains(&target) && &target != module {
                deps.insert(target);
            }
        }
    }
    g
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
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

/// Where each layer's edges may go, and the broken ones.
fn wrong_direction(g: &Graph) -> Vec<String> {
    let rules: BTreeMap<&str, &[&str]> = MAY_USE.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, deps) in g {
        let allowed = rules.get(layer(from)).copied().unwrap_or(&[]);
        for to in deps {
            let (a, b) = (layer(from), layer(to));
            if a != b && !allowed.contains(&b) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    wrong
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_layers_point_one_way() {
    let g = graph(&src());
    // The reader found the real dependencies, so an empty answer below is
    // not just an empty graph.
    for (from, to) in [
        ("domain::upload", "domain::ports"),
        ("domain::sweep", "domain::delete"),
        ("http", "app"),
        ("http::handlers", "domain::upload"),
        ("adapters::dataapi", "domain::ports"),
        ("app", "adapters::s3"),
        ("domain::error", "runtime::budget"),
    ] {
        assert!(g[from].contains(to), "{from} -> {to} not found in {g:?}");
    }
    let wrong = wrong_direction(&g);
    assert!(
        wrong.is_empty(),
        "dependencies against the layers: {wrong:?}"
    );
}

#[test]
fn no_module_depends_on_one_that_depends_back() {
    let g = graph(&src());
    // Within each layer (a layer's edges to others point one way, above).
    for name in ["http", "app", "domain", "adapters", "runtime"] {
        let within: Graph = g
            .iter()
            .filter(|(m, _)| layer(m) == name)
            .map(|(m, deps)| {
                let deps = deps.iter().filter(|d| layer(d) == name).cloned().collect();
                (m.clone(), deps)
            })
            .collect();
        if let Some(cycle) = find_cycle(&within) {
            panic!("module cycle in edge/src/{name}: {}", cycle.join(" -> "));
        }
    }
    let layers: Graph = g.iter().fold(Graph::new(), |mut acc, (m, deps)| {
        let entry = acc.entry(layer(m).to_string()).or_default();
        entry.extend(
            deps.iter()
                .map(|d| layer(d).to_string())
                .filter(|d| d != layer(m)),
        );
        acc
    });
    if let Some(cycle) = find_cycle(&layers) {
        panic!("layer cycle in edge/src: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_domain_names_no_runtime_or_http_crate() {
    let dir = src().join("domain");
    let mut files = vec![dir];
    let mut offending = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let code = code(&source);
        for word in NOT_IN_DOMAIN {
            let named = code.match_indices(word).any(|(i, _)| {
                !code[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                offending.push(format!("{} names {word}", path.display()));
            }
        }
    }
    assert!(offending.is_empty(), "{offending:?}");
}

#[test]
fn reads_groups_nested_paths_and_skips_comments_and_tests() {
    let deps = crate_paths(
        "use crate::{a, b::{c, d}, e::F};\n\
         // crate::commented\n\
         fn f() { crate::g::h(); notcrate::i(); }\n\
         use crate::j::{self, K};\n\
         #[cfg(test)]\nmod tests { use crate::t; }",
    );
    let want: BTreeSet<Vec<String>> = [
        vec!["a"],
        vec!["b", "c"],
        vec!["b", "d"],
        vec!["e", "F"],
        vec!["g", "h"],
        vec!["j", "self"],
        vec!["j", "K"],
    ]
    .into_iter()
    .map(|p| p.into_iter().map(String::from).collect())
    .collect();
    assert_eq!(deps, want);
}

#[test]
fn finds_a_cycle_and_a_wrong_direction_and_only_real_ones() {
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
    let g = edges(&[
        ("http::views", "domain::model"),
        ("domain::upload", "adapters::s3"),
        ("runtime::budget", "domain::error"),
        ("domain::upload", "domain::ports"),
    ]);
    assert_eq!(
        wrong_direction(&g),
        [
            "domain::upload -> adapters::s3",
            "runtime::budget -> domain::error"
        ]
    );
}
