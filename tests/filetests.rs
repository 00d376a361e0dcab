//! Filetests: every `.ir` file under `ir/` is a test case (one generated `#[test]` per file).
//!
//! Directives live in comments:
//! - `; error: TEXT` at the end of a line marks the line as bad: the file must then fail to
//!   parse or verify, with errors on exactly the marked lines, each containing its TEXT. Errors
//!   read `line:col: message` (a verifier error at its instruction's first column), so TEXT may
//!   start with the position.
//! - Otherwise the file must parse, verify, and print back as its own text without comments
//!   and blank lines (a file may hold several functions: the entry and those its scans call).
//! - `; run: [NAME=VALUE ...] -> OUT, ...` runs the interpreter (unnamed inputs take their
//!   seeded defaults, seed 0) and compares the outputs to OUT within 1e-12 relative; compiled
//!   code must then give the interpreter's outputs bit for bit. VALUE and OUT are numbers or
//!   flat lists `[1.0, 2.0]`.
//!
//! - `; expect grad:` (or `hvp`, `vjp`) followed by lines `;   ...` holds the transformed,
//!   simplified IR of the file's function (the golden files of `ir/ad/`).
//!
//! `ADJIT_BLESS=1 cargo test --release --test filetests` rewrites the outputs of `run` lines and
//! the `expect` blocks.

mod common;

use adjit::call::Executor;
use adjit::ir::{self, Func};
use common::{bless, canonical, close, diff, repo_path};

include!(concat!(env!("OUT_DIR"), "/filetests.rs"));

/// Relative tolerance of `run` lines.
const RUN_TOLERANCE: f64 = 1e-12;

fn check_file(rel: &str) {
    let path = repo_path(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel}: cannot read: {e}"));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let marks = error_marks(&text);
    if !marks.is_empty() {
        return check_errors(rel, &bytes, &marks);
    }
    let f = match ir::parse(&text) {
        Ok(f) => f,
        Err(e) => panic!("{rel}:{e}"),
    };
    if let Err(e) = ir::verify(&f) {
        panic!("{rel}: {e}");
    }
    let printed = f.to_string();
    let expected = canonical(&text);
    // Blank lines aside: the writer puts one between functions, a file may put any.
    if canonical(&printed) != expected {
        panic!(
            "{rel}: the writer does not print the file back (- file, + printed):\n{}",
            diff(&expected, &canonical(&printed))
        );
    }
    let again =
        ir::parse(&printed).unwrap_or_else(|e| panic!("{rel}: printed text does not parse: {e}"));
    assert!(again == f, "{rel}: parse(print(f)) differs from f");
    let mut failures = Vec::new();
    let after_runs = check_runs(rel, &text, &f, &mut failures);
    let after_expects = check_expects(&after_runs, &f, &mut failures);
    if failures.is_empty() {
        return;
    }
    if bless() {
        std::fs::write(repo_path(rel), after_expects).expect("write blessed file");
        return;
    }
    panic!(
        "{rel}: {}\nADJIT_BLESS=1 rewrites the expectations.",
        failures.join("\n")
    );
}

/// The `expect` blocks: transformed IR, one `;   ` line per line of text. Returns the text
/// with every block replaced by what the transform produces now.
fn check_expects(text: &str, f: &Func, failures: &mut Vec<String>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        out.push_str(lines[i]);
        out.push('\n');
        let Some(kind) = lines[i]
            .strip_prefix("; expect ")
            .and_then(|k| k.strip_suffix(':'))
        else {
            i += 1;
            continue;
        };
        i += 1;
        let start = i;
        while i < lines.len() && lines[i].starts_with(";   ") {
            i += 1;
        }
        let expected: String = lines[start..i]
            .iter()
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        let actual = match kind {
            "grad" => adjit::ad::grad(f, None),
            "hvp" => adjit::ad::hvp(f, None),
            "vjp" => adjit::ad::vjp(f, None),
            other => panic!("unknown expectation '{other}' (expected grad, hvp or vjp)"),
        }
        .map(|g| g.to_string())
        .unwrap_or_else(|e| format!("error: {e}\n"));
        if actual != expected {
            failures.push(format!(
                "{kind} differs (- expected, + actual):\n{}",
                diff(&expected, &actual)
            ));
        }
        for l in actual.lines() {
            out.push_str(";   ");
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// `(line, text)` of every `; error:` mark.
fn error_marks(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            l.find("; error:")
                .map(|p| (i + 1, l[p + 8..].trim().to_string()))
        })
        .collect()
}

fn check_errors(rel: &str, bytes: &[u8], marks: &[(usize, String)]) {
    let found: Vec<(usize, String)> = match ir::parse_bytes(bytes) {
        Err(e) => vec![(e.line, format!("{}:{}: {}", e.line, e.col, e.message))],
        Ok((f, lines)) => match ir::verify(&f) {
            Ok(()) => panic!(
                "{rel}: expected errors on lines {:?}, but the file verifies",
                marks.iter().map(|m| m.0).collect::<Vec<_>>()
            ),
            Err(e) => {
                // As the command line places them: the instruction's line and first column.
                let text = String::from_utf8_lossy(bytes);
                let source: Vec<&str> = text.lines().collect();
                e.issues
                    .iter()
                    .map(|i| {
                        let line = i.inst.map_or(1, |k| lines[k] as usize);
                        let l = source.get(line - 1).copied().unwrap_or("");
                        let col = l.len() - l.trim_start().len() + 1;
                        (line, format!("{line}:{col}: {}", i.message))
                    })
                    .collect()
            }
        },
    };
    let mut problems = Vec::new();
    for (line, want) in marks {
        if !found
            .iter()
            .any(|(l, msg)| l == line && msg.contains(want.as_str()))
        {
            problems.push(format!(
                "line {line}: expected an error containing {want:?}"
            ));
        }
    }
    for (line, msg) in &found {
        if !marks.iter().any(|(l, _)| l == line) {
            problems.push(format!("line {line}: unexpected error: {msg}"));
        }
    }
    if !problems.is_empty() {
        let all: Vec<String> = found
            .iter()
            .map(|(l, m)| format!("  line {l}: {m}"))
            .collect();
        panic!(
            "{rel}:\n{}\nerrors reported:\n{}",
            problems.join("\n"),
            all.join("\n")
        );
    }
}

/// A value of a `run` line: a scalar or a flat list.
fn parse_values(s: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (item, tail) = if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed '['")?;
            let items: Result<Vec<f64>, String> = r[..end]
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| x.parse::<f64>().map_err(|_| format!("bad number {x:?}")))
                .collect();
            (items?, &r[end + 1..])
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let x = rest[..end].trim();
            (
                vec![x.parse::<f64>().map_err(|_| format!("bad number {x:?}"))?],
                &rest[end..],
            )
        };
        out.push(item);
        rest = tail.trim_start().strip_prefix(',').unwrap_or(tail).trim();
    }
    Ok(out)
}

fn format_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x:?}")
    }
}

fn format_values(ys: &[Vec<f64>], f: &Func) -> String {
    ys.iter()
        .zip(f.result_types())
        .map(|(y, t)| {
            if t.is_scalar() {
                format_float(y[0])
            } else {
                format!(
                    "[{}]",
                    y.iter()
                        .map(|&x| format_float(x))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the inputs of a run line: `NAME=VALUE` pairs, defaults for the rest.
fn run_inputs(f: &Func, spec: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut inputs = adjit::inputs::defaults(f, 0);
    let mut rest = spec.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected NAME=VALUE in {rest:?}"))?;
        let name = rest[..eq].trim();
        let idx = f
            .param_index(name)
            .ok_or_else(|| format!("no parameter '{name}'"))?;
        let after = rest[eq + 1..].trim_start();
        let end = if after.starts_with('[') {
            after.find(']').map(|i| i + 1).ok_or("unclosed '['")?
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        let vals = parse_values(&after[..end])?;
        inputs[idx] = vals.into_iter().next().unwrap_or_default();
        rest = after[end..].trim_start();
    }
    Ok(inputs)
}

/// Equal bits, NaN matching NaN (payloads aside).
fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        })
}

/// Checks the `run` lines, in the interpreter against the expected outputs and in compiled
/// code against the interpreter; returns the text with the outputs the interpreter gives.
fn check_runs(rel: &str, text: &str, f: &Func, failures: &mut Vec<String>) -> String {
    let mut new_text = String::new();
    let mut mismatches = Vec::new();
    let mut compiled = None;
    for (i, line) in text.lines().enumerate() {
        let Some(pos) = line.find("; run:") else {
            new_text.push_str(line);
            new_text.push('\n');
            continue;
        };
        let body = &line[pos + 6..];
        let (spec, want) = body.split_once("->").unwrap_or((body, ""));
        let inputs =
            run_inputs(f, spec).unwrap_or_else(|e| panic!("{rel}:{}: bad run line: {e}", i + 1));
        let got =
            adjit::interp::eval(f, &inputs).unwrap_or_else(|e| panic!("{rel}:{}: {e}", i + 1));
        let compiled = compiled.get_or_insert_with(|| {
            adjit::jit::compile(f).unwrap_or_else(|e| panic!("{rel}: does not compile: {e}"))
        });
        let jit = compiled
            .eval(&inputs)
            .unwrap_or_else(|e| panic!("{rel}:{}: compiled: {e}", i + 1));
        if !same_bits(&got, &jit) {
            failures.push(format!(
                "line {}: compiled code gives {} where the interpreter gives {}",
                i + 1,
                format_values(&jit, f),
                format_values(&got, f)
            ));
        }
        let got_text = format_values(&got, f);
        let ok = match parse_values(want) {
            Ok(exp) => {
                exp.len() == got.len()
                    && exp.iter().zip(&got).all(|(e, g)| {
                        e.len() == g.len()
                            && e.iter().zip(g).all(|(&a, &b)| close(a, b, RUN_TOLERANCE))
                    })
            }
            Err(_) => false,
        };
        let new_line = format!("{}; run:{} -> {}", &line[..pos], spec.trim_end(), got_text);
        if !ok {
            mismatches.push((line.to_string(), new_line.clone()));
        }
        new_text.push_str(if ok { line } else { &new_line });
        new_text.push('\n');
    }
    if !mismatches.is_empty() {
        let (exp, act): (Vec<String>, Vec<String>) = mismatches.into_iter().unzip();
        failures.push(format!(
            "run results differ (- expected, + interpreter):\n{}",
            diff(&exp.join("\n"), &act.join("\n"))
        ));
    }
    new_text
}
