//! House rules that are checked, not remembered: each test reads the source as text and names
//! every place that breaks its rule.
//!
//! - Only `src/jit/` names Cranelift.
//! - `unsafe` appears only in the files ARCHITECTURE.md names for it; elsewhere, only in the
//!   library, as `unsafe fn` (a promise the caller makes, such as `Executor::call_unchecked`),
//!   because the library denies `unsafe_op_in_unsafe_fn`: such a function does nothing unsafe itself.
//! - A match over ops has no catch-all arm, so adding an op makes the compiler list every
//!   decision to make. (A match over something else, such as a pair of ops or an `Option` of
//!   one, is a pattern query, and may have one; so may `if let` and `matches!`.)
//! - Every module opens with a `//!` doc.
//! - No function in `src/` is longer than `MAX_FUNCTION_LINES`.
//! - Every op of the table runs in a filetest.

use std::path::{Path, PathBuf};

/// The longest function allowed in `src/`, in lines from `fn` to its closing brace. A function
/// that fits in 100 lines can be read on one screen and a half; longer ones in this code base
/// were always several steps that deserved names (the planner's ten phases were one function).
const MAX_FUNCTION_LINES: usize = 100;

/// The files allowed to hold `unsafe` code; ARCHITECTURE.md must name each of them.
const UNSAFE_ALLOWED: [&str; 14] = [
    "src/jit/compiled.rs",
    "src/ops/vmath.rs",
    "src/ops/ownmath.rs",
    "src/ops/contract.rs",
    "src/ops/gemm.rs",
    "src/capi/mod.rs",
    "src/capi/func.rs",
    "src/capi/compiled.rs",
    "tests/no_alloc.rs",
    "tests/vmath_ulp.rs",
    "tests/capi.rs",
    "tests/capi_leak.rs",
    "benches/jit.rs",
    "examples/export_cost.rs",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the repository), sorted, with its text.
fn rust_files(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root()).unwrap();
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The code of a line: without its `//` comment and without string literals' contents (close
/// enough for these rules: a `//` inside a string cuts the line early, which only hides text).
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut prev = ' ';
    for c in line.chars() {
        if in_string {
            if c == '"' && prev != '\\' {
                in_string = false;
                out.push('"');
            }
        } else if c == '"' {
            in_string = true;
            out.push('"');
        } else if c == '/' && prev == '/' {
            out.pop();
            break;
        } else {
            out.push(c);
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    out
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

fn report(rule: &str, bad: Vec<String>) {
    assert!(bad.is_empty(), "{rule}:\n  {}", bad.join("\n  "));
}

#[test]
fn only_the_jit_names_cranelift() {
    let mut bad = Vec::new();
    for (path, text) in rust_files("src") {
        if path.starts_with("src/jit/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if code(line).contains("cranelift") {
                bad.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    report("Cranelift named outside src/jit/", bad);
}

#[test]
fn unsafe_only_where_architecture_says() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for file in UNSAFE_ALLOWED {
        let name = file.trim_start_matches("src/");
        let exists = root().join(file).exists();
        assert!(
            !exists || arch.contains(name),
            "{file} may hold unsafe code, but ARCHITECTURE.md does not say so"
        );
    }
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("#![deny(unsafe_op_in_unsafe_fn)]"),
        "src/lib.rs must deny unsafe_op_in_unsafe_fn, or an `unsafe fn` could hide unsafe code"
    );
    let mut bad = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        for (path, text) in rust_files(dir) {
            if UNSAFE_ALLOWED.contains(&path.as_str()) {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                let mut line_code = code(line);
                let in_library =
                    dir == "src" && path != "src/main.rs" && !path.starts_with("src/cli/");
                if in_library {
                    line_code = line_code.replace("unsafe fn", "");
                }
                if has_word(&line_code, "unsafe") {
                    bad.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    report("unsafe outside the files ARCHITECTURE.md names", bad);
}

#[test]
fn every_module_has_a_doc() {
    let mut bad = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        for (path, text) in rust_files(dir) {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                bad.push(path);
            }
        }
    }
    report("modules without a //! doc", bad);
}

/// The line index of the brace that closes the one opened on `lines[start]` (the first `{` at or
/// after `start`), counting braces in code only.
fn block_end(lines: &[String], start: usize) -> Option<usize> {
    let mut depth = 0i64;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
            if opened && depth == 0 {
                return Some(i);
            }
        }
        if !opened && line.trim_end().ends_with(';') {
            return None;
        }
    }
    None
}

/// `(name, first line, length)` of every function with a body in `text`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<String> = text.lines().map(code).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("fn ") else { continue };
        if at > 0 && !line[..at].ends_with(' ') {
            continue;
        }
        let name: String = line[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        if let Some(end) = block_end(&lines, i) {
            out.push((name, i + 1, end - i + 1));
        }
    }
    out
}

#[test]
fn functions_are_short() {
    let mut bad = Vec::new();
    for (path, text) in rust_files("src") {
        for (name, line, len) in functions(&text) {
            if len > MAX_FUNCTION_LINES {
                bad.push(format!("{path}:{line}: fn {name} has {len} lines"));
            }
        }
    }
    report(
        &format!("functions over {MAX_FUNCTION_LINES} lines (split them into named steps)"),
        bad,
    );
}

/// Whether an arm's pattern catches everything: `_`, or a bare binding (`other`, `op if ...`).
fn is_catch_all(pattern: &str) -> bool {
    let p = pattern.trim();
    let p = p.split(" if ").next().unwrap_or(p).trim();
    p == "_" || (!p.is_empty() && p.chars().all(|c| c.is_lowercase() || c == '_'))
}

const OP_PATHS: [&str; 5] = ["Op::", "Opcode::", "Unary::", "Binary::", "Compare::"];

/// `path:line` of every catch-all arm in a `match` whose other arms are ops (`Op::...`).
fn catch_alls_over_ops(path: &str, text: &str) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(code).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !has_word(line, "match") {
            continue;
        }
        let Some(end) = block_end(&lines, i) else {
            continue;
        };
        // Arms at the match's own depth: `PATTERN =>` at depth 1 inside the block.
        let mut depth = 0i64;
        let (mut names_ops, mut catch_all) = (false, None);
        for (k, l) in lines.iter().enumerate().take(end + 1).skip(i) {
            if depth == 1 {
                if let Some((pattern, _)) = l.split_once("=>") {
                    let p = pattern.trim().trim_start_matches(['|', '&', ' ']);
                    names_ops |= OP_PATHS.iter().any(|op| p.starts_with(op));
                    if is_catch_all(pattern) {
                        catch_all = Some(k + 1);
                    }
                }
            }
            depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
        }
        if let (true, Some(at)) = (names_ops, catch_all) {
            out.push(format!(
                "{path}:{at}: {}",
                text.lines().nth(at - 1).unwrap().trim()
            ));
        }
    }
    out
}

#[test]
fn matches_over_ops_are_exhaustive() {
    let mut bad = Vec::new();
    for (path, text) in rust_files("src") {
        bad.extend(catch_alls_over_ops(&path, &text));
    }
    bad.dedup();
    report(
        "catch-all arms in matches over ops (list the ops instead)",
        bad,
    );
}

#[test]
fn the_catch_all_detector_detects() {
    let text = "fn f(op: Op) -> bool {\n    match op {\n        Op::Select => true,\n        _ => false,\n    }\n}\n";
    assert_eq!(catch_alls_over_ops("x.rs", text).len(), 1);
    let fine = text.replace("_ => false", "Op::Const { .. } => false");
    assert!(catch_alls_over_ops("x.rs", &fine).is_empty());
    let long = format!(
        "fn g() {{\n{}}}\n",
        "    let x = 1;\n".repeat(MAX_FUNCTION_LINES)
    );
    assert_eq!(
        functions(&long),
        [("g".to_string(), 1, MAX_FUNCTION_LINES + 2)]
    );
}

#[test]
fn every_op_runs_in_a_filetest() {
    let dir = root().join("ir/filetests/run");
    let mut text = String::new();
    for entry in std::fs::read_dir(Path::new(&dir)).unwrap() {
        text += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    let missing: Vec<String> = adjit::ir::Opcode::ALL
        .iter()
        .filter(|op| {
            !text.contains(&format!("= {} ", op.name()))
                && !text.contains(&format!("= {}\n", op.name()))
        })
        .map(|op| op.name().to_string())
        .collect();
    report(
        "ops without a `; run:` filetest in ir/filetests/run",
        missing,
    );
}
