//! `adjit` on `.ir` files with megabyte lines: the error quotes a window around the column, with
//! the caret under the offending character, for parse and verify errors alike.

use std::path::PathBuf;
use std::process::Command;

/// Writes `text` to a file of its own and runs `adjit eval` on it; returns (status, stderr).
fn eval(name: &str, text: &str) -> (Option<i32>, String) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("adjit-long-{}-{name}.ir", std::process::id()));
    std::fs::write(&path, text).expect("write the test file");
    let out = Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(["eval", path.to_str().unwrap(), "-i", "x=1"])
        .output()
        .expect("the binary runs");
    let _ = std::fs::remove_file(&path);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A function whose constant `v1` has `n` elements, declared of type `f64[declared]`, with `bad`
/// in place of element `at`: one line of several megabytes.
fn long_const(n: usize, declared: usize, at: usize, bad: &str) -> String {
    let elems: Vec<&str> = (0..n).map(|i| if i == at { bad } else { "0.25" }).collect();
    format!(
        "func @f(x: f64[]) -> (f64[{declared}]) {{\n    v1: f64[{declared}] = const [{}]\n    return v1\n}}\n",
        elems.join(", ")
    )
}

#[test]
fn a_parse_error_on_a_long_line_is_short() {
    let n = 300_000;
    let (code, err) = eval("parse", &long_const(n, n, n / 2, "#"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.len() < 1024, "{} bytes of stderr", err.len());
    assert!(err.contains("unexpected character '#'"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let (quoted, caret) = (lines[1], lines[2]);
    assert!(quoted.contains('…'), "{err}");
    let at = caret.chars().count() - 1;
    assert_eq!(quoted.chars().nth(at), Some('#'), "caret misplaced:\n{err}");
}

#[test]
fn a_verify_error_on_a_long_line_is_short() {
    let (code, err) = eval("verify", &long_const(300_000, 3, 0, "0.25"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.len() < 1024, "{} bytes of stderr", err.len());
    assert!(err.contains(":2:5: const: 300000 elements given"), "{err}");
    assert!(err.contains("v1: f64[3] = const [0.25, 0.25"), "{err}");
}
