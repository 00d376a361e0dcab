//! The `adjit` binary: commands, input forms, JSON output, and user errors (exit status 1, a
//! positioned message, never a panic).

mod common;

use common::repo_path;
use std::process::{Command, Output};

fn adjit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must fail with status `code` and an error containing `want`.
fn fails(args: &[&str], code: i32, want: &str) {
    let o = adjit(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(want),
        "{args:?}: stderr lacks {want:?}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

#[test]
fn eval_prints_results_and_json() {
    let o = adjit(&["eval", "ir/models/tiny.ir", "--input", "x=0.5,2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = 0.5f64.sin() * 2f64.exp() + 1.0;
    assert_eq!(stdout(&o).trim(), format!("0: f64[] = {want:?}"));
    let j = json(&adjit(&[
        "eval",
        "ir/models/tiny.ir",
        "-i",
        "x=0.5,2",
        "--json",
    ]));
    assert_eq!(j["outputs"][0].as_f64(), Some(want));
}

#[test]
fn inputs_from_json_files_flat_and_nested() {
    let dir = std::env::temp_dir().join(format!("adjit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nested = dir.join("a.json");
    std::fs::write(&nested, "[[1, 2, 3], [4, 5, 6]]").unwrap();
    let all = dir.join("all.json");
    std::fs::write(
        &all,
        r#"{"a": [1, 2, 3, 4, 5, 6], "b": [[1, 0], [0, 1], [1, 1]]}"#,
    )
    .unwrap();
    let file = "ir/filetests/run/matmul.ir";
    let a = format!("a={}", nested.display());
    let j = json(&adjit(&[
        "eval",
        file,
        "-i",
        &a,
        "-i",
        "b=1,0,0,1,1,1",
        "--json",
    ]));
    assert_eq!(
        j["outputs"][0],
        serde_json::json!([[4.0, 5.0], [10.0, 11.0]])
    );
    let j2 = json(&adjit(&[
        "eval",
        file,
        "--inputs",
        all.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(j, j2);
    // An --input given after --inputs wins.
    let j3 = json(&adjit(&[
        "eval",
        file,
        "--inputs",
        all.to_str().unwrap(),
        "-i",
        "b=0,0,0,0,0,0",
        "--json",
    ]));
    assert_eq!(
        j3["outputs"][0],
        serde_json::json!([[0.0, 0.0], [0.0, 0.0]])
    );
    std::fs::write(dir.join("bad.json"), "{\"a\": [1, 2,").unwrap();
    let bad = dir.join("bad.json");
    fails(
        &["eval", file, "--inputs", bad.to_str().unwrap()],
        1,
        "invalid JSON",
    );
    std::fs::write(dir.join("shape.json"), "[[1, 2], [3, 4], [5, 6]]").unwrap();
    let shape = format!("a={}", dir.join("shape.json").display());
    fails(&["eval", file, "-i", &shape], 1, "axis 0 has length 3");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn non_finite_values_travel_as_strings_in_json() {
    let j = json(&adjit(&[
        "eval",
        "ir/filetests/run/elementwise.ir",
        "-i",
        "x=-1,inf,nan,0",
        "--json",
    ]));
    assert_eq!(
        j["outputs"][3],
        serde_json::json!(["NaN", "Infinity", "NaN", 0.0])
    );
}

#[test]
fn show_prints_the_canonical_text() {
    let o = adjit(&["show", "ir/models/neuron.ir"]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(repo_path("ir/models/neuron.ir")).unwrap();
    assert_eq!(stdout(&o), common::canonical(&text));
}

#[test]
fn user_errors_are_positioned_and_clean() {
    fails(
        &["eval", "ir/filetests/errors/parse.ir"],
        1,
        "ir/filetests/errors/parse.ir:4:18: unknown op 'softplus'",
    );
    fails(
        &["eval", "ir/filetests/errors/verify.ir"],
        1,
        "ir/filetests/errors/verify.ir:3:5: add: takes 2 operands",
    );
    fails(
        &["eval", "no/such/file.ir"],
        1,
        "no/such/file.ir: cannot read the file",
    );
    fails(
        &["eval", "ir/models/tiny.ir", "-i", "y=1"],
        1,
        "@tiny has no parameter 'y' (it has: x)",
    );
    fails(
        &["eval", "ir/models/tiny.ir", "-i", "x=1,2,3"],
        1,
        "3 values given, but f64[2] holds 2",
    );
    fails(
        &["eval", "ir/models/tiny.ir", "-i", "x=1,abc"],
        1,
        "'abc' is not a number",
    );
    fails(
        &["eval", "ir/models/tiny.ir", "-i", "novalue"],
        1,
        "not of the form NAME=VALUES",
    );
    fails(
        &["eval", "ir/models/tiny.ir", "--frobnicate"],
        2,
        "unexpected argument '--frobnicate'",
    );
    fails(&["eval"], 2, "required");
    fails(
        &["eval", "ir/models/tiny.ir", "--seed", "minus-one"],
        2,
        "invalid value",
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["eval", "--help"],
        vec!["show", "--help"],
    ] {
        let o = adjit(&cmd);
        assert!(o.status.success(), "{cmd:?}");
        assert!(stdout(&o).contains("Usage"), "{cmd:?}");
    }
}
