//! Helpers shared by the test suites: compiled code against the interpreter (`agree`), bless mode, line diffs, float comparison, the canonical
//! (comment-free) form of `.ir` text, functions with scans beside their plain-loop values
//! (`scans`), the per-op examples of the derivative tests (`examples`) and their numerical
//! helpers (`numeric`).
#![allow(dead_code)]

pub mod agree;
#[cfg(feature = "cli")]
pub mod cli;
pub mod examples;
pub mod numeric;
pub mod random_graph;
pub mod scans;

use std::path::PathBuf;

/// True when `ADJIT_BLESS` is set: expectations are rewritten in place instead of compared.
pub fn bless() -> bool {
    std::env::var_os("ADJIT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `.ir` text without comments and trailing whitespace: what the writer prints for it.
pub fn canonical(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let code = match line.find(';') {
            Some(i) => &line[..i],
            None => line,
        };
        let code = code.trim_end();
        if !code.is_empty() {
            out.push_str(code);
            out.push('\n');
        }
    }
    out
}

/// A line diff of `expected` against `actual` (`-` expected only, `+` actual only), with two
/// lines of context around each change.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Trim the common prefix and suffix, then run an LCS on what is left (bounded in size).
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<(char, &str)> = Vec::new();
    if am.len() * bm.len() <= 4_000_000 {
        let (n, m) = (am.len(), bm.len());
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * (m + 1) + j] = if am[i] == bm[j] {
                    t[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
                ops.push(('-', am[i]));
                i += 1;
            } else {
                ops.push(('+', bm[j]));
                j += 1;
            }
        }
    } else {
        ops.extend(am.iter().map(|l| ('-', *l)));
        ops.extend(bm.iter().map(|l| ('+', *l)));
    }
    let mut out = String::new();
    let ctx_before = &a[pre.saturating_sub(2)..pre];
    out.push_str(&format!("@@ line {} @@\n", pre.saturating_sub(2) + 1));
    for l in ctx_before {
        out.push_str(&format!("  {l}\n"));
    }
    for (c, l) in ops {
        out.push_str(&format!("{c} {l}\n"));
    }
    for l in a[a.len() - suf..].iter().take(2) {
        out.push_str(&format!("  {l}\n"));
    }
    out
}

/// Equal as IEEE values up to a relative tolerance; NaN matches NaN, infinities match exactly.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// The largest relative difference between two slices (NaN where NaN-ness differs).
pub fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            if x.is_nan() && y.is_nan() || x == y {
                0.0
            } else {
                (x - y).abs() / x.abs().max(y.abs())
            }
        })
        .fold(0.0, f64::max)
}

/// Elements of every value of `f` together: what running it would need at most, so that
/// fuzzers can skip functions whose mutated shapes ask for gigabytes.
pub fn total_elements(f: &adjit::ir::Func) -> usize {
    f.params
        .iter()
        .map(|p| p.ty.numel())
        .chain(f.insts.iter().map(|i| i.ty.numel()))
        .sum()
}
