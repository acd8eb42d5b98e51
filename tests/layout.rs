//! The layout's rules, checked over the source tree: the top-level modules of the library
//! form no import cycle (data flows one way), no file holds more than 600 lines of code
//! besides its tests, every file says what it owns in a module doc, and the library never
//! prints (only the binaries do: `src/main.rs` and `src/cli/`, where `vislaw_bench.rs` is the
//! root of the second binary).
//!
//! An import is any `crate::<module>` path in a file's text before its `#[cfg(test)]`
//! (doc comments included: a doc that points at another module is a dependency too).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every other may use: the error type, atomic writes, the crate root.
const LEAVES: [&str; 4] = ["error", "io", "lib", "main"];
/// Where the command line lives: it may print and may import anything.
const FRONT_ENDS: [&str; 2] = ["cli", "main"];
const MAX_CODE_LINES: usize = 600;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

struct Source {
    path: PathBuf,
    /// The top-level module the file belongs to (`fit` for src/fit/law.rs).
    module: String,
    /// The file's text before its tests.
    code: String,
}

fn read_sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            Source { path, module, code }
        })
        .collect()
}

/// `crate::name` paths in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        // `$crate::` and `vislaw_crate::` are not this crate's module paths.
        if before.is_some_and(|c| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn import_graph(files: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !FRONT_ENDS.contains(&f.module.as_str())) {
        for dep in crate_paths(&f.code) {
            if dep != f.module && !LEAVES.contains(&dep.as_str()) {
                graph.entry(f.module.clone()).or_default().insert(dep);
            }
        }
    }
    graph
}

/// A cycle through `start`, as the modules on it, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_string()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let graph = import_graph(&read_sources());
    let cycles: Vec<String> = graph.keys().filter_map(|m| cycle_through(&graph, m)).map(|c| c.join(" → ")).collect();
    assert!(cycles.is_empty(), "import cycles between top-level modules:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let files = [("a", "use crate::b::X;"), ("b", "/// see crate::c"), ("c", "fn f() { crate::a::g() }"), ("d", "use crate::error::Error;")];
    let files: Vec<Source> = files.iter().map(|(m, code)| Source { path: PathBuf::from(m), module: m.to_string(), code: code.to_string() }).collect();
    let graph = import_graph(&files);
    assert_eq!(cycle_through(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert!(cycle_through(&graph, "d").is_none(), "leaves are not edges");
}

#[test]
fn files_are_of_one_concept_and_say_which() {
    let mut problems = Vec::new();
    for f in read_sources() {
        let code_lines = f.code.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).count();
        if code_lines > MAX_CODE_LINES {
            problems.push(format!("{}: {code_lines} lines of code (tests aside), over {MAX_CODE_LINES}", f.path.display()));
        }
        if !f.code.trim_start().starts_with("//!") {
            problems.push(format!("{}: no module doc (`//!`) saying what it owns", f.path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_library_never_prints() {
    let loud: Vec<String> = read_sources()
        .into_iter()
        .filter(|f| !FRONT_ENDS.contains(&f.module.as_str()))
        .filter(|f| ["println!", "eprintln!", "print!(", "eprint!(", "indicatif"].iter().any(|p| f.code.contains(p)))
        .map(|f| f.path.display().to_string())
        .collect();
    assert!(loud.is_empty(), "library files that print or draw bars: {loud:?}");
}
