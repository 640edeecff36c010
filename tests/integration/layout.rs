//! The source keeps the shape docs/architecture.md describes: data flows one
//! way between the stages of `src/` (no module imports, directly or through
//! others, a module that imports it), and every file says why it exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// For each top-level module of src/, the top-level modules it names as
/// `crate::NAME` outside its tests: in code, and in doc links too (rustdoc
/// follows them).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![root.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in code.lines() {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in the graph, as the path that closes it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, done, path) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = imports();
    assert!(graph.len() > 10, "modules found: {graph:?}");
    assert_eq!(cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    for (edges, want) in [
        (vec![("a", "b"), ("b", "c")], None),
        (vec![("a", "b"), ("b", "a")], Some(vec!["a", "b", "a"])),
        (
            vec![("a", "b"), ("b", "c"), ("c", "b")],
            Some(vec!["b", "c", "b"]),
        ),
    ] {
        let want = want.map(|v: Vec<&str>| v.iter().map(|s| s.to_string()).collect());
        assert_eq!(cycle(&graph(&edges)), want, "{edges:?}");
    }
}

#[test]
fn stages_sit_below_the_pass_and_the_pass_below_the_commands() {
    let graph = imports();
    for (module, deps) in &graph {
        if module != "commands" {
            assert!(!deps.contains("commands"), "{module} imports commands");
        }
        if !["commands", "pass"].contains(&module.as_str()) {
            assert!(!deps.contains("pass"), "{module} imports pass");
        }
    }
}

#[test]
fn every_source_file_opens_with_why_it_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} does not open with a module comment",
                path.display()
            );
        }
    }
}
