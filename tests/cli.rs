//! The `adjit` binary: commands, input forms, JSON output, and user errors (exit status 1, a
//! positioned message, never a panic).

mod common;

use adjit::ops::unary::{adjit_cos as cos, adjit_exp as exp, adjit_sin as sin};
use common::cli::{adjit, assert_fails, fails, json, stderr, stdout, Scratch};
use common::repo_path;

#[test]
fn eval_prints_results_and_json() {
    let o = adjit(&["eval", "ir/models/tiny.ir", "--input", "x=0.5,2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = sin(0.5) * exp(2.0) + 1.0;
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
    let scratch = Scratch::new("cli");
    let dir = &scratch.0;
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
    // An --input of a value the --inputs file also gives is refused, not last-wins.
    fails(
        &[
            "eval",
            file,
            "--inputs",
            all.to_str().unwrap(),
            "-i",
            "b=0,0,0,0,0,0",
        ],
        1,
        "input 'b' is given twice",
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
        "@tiny has no input 'y' (it has: x)",
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
fn grad_and_hvp_print_keyed_json() {
    let (a, b) = (0.5f64, 2.0f64);
    let j = json(&adjit(&[
        "grad",
        "ir/models/tiny.ir",
        "-i",
        "x=0.5,2",
        "--json",
    ]));
    assert_eq!(j["value"].as_f64(), Some(sin(a) * exp(b) + a * b));
    let g = &j["grad"]["x"];
    assert_eq!(g[0].as_f64(), Some(cos(a) * exp(b) + b));
    assert_eq!(g[1].as_f64(), Some(sin(a) * exp(b) + a));
    let j = json(&adjit(&[
        "hvp",
        "ir/models/tiny.ir",
        "-i",
        "x=0.5,2",
        "--v",
        "x=0,1",
        "--json",
    ]));
    let hv = &j["hvp"]["x"];
    assert!((hv[0].as_f64().unwrap() - (a.cos() * b.exp() + 1.0)).abs() < 1e-14);
    assert!((hv[1].as_f64().unwrap() - a.sin() * b.exp()).abs() < 1e-14);
    assert_eq!(
        j["grad"],
        json(&adjit(&[
            "grad",
            "ir/models/tiny.ir",
            "-i",
            "x=0.5,2",
            "--json"
        ]))["grad"]
    );
    // --wrt narrows the gradient; data inputs can be named explicitly.
    let j = json(&adjit(&[
        "grad",
        "ir/models/neuron.ir",
        "--wrt",
        "x",
        "--json",
    ]));
    assert_eq!(
        j["grad"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["x"]
    );
    let j = json(&adjit(&["grad", "ir/models/mlp.ir", "--json"]));
    assert_eq!(j["grad"]["W1"].as_array().unwrap().len(), 64);
    assert_eq!(j["grad"]["W1"][0].as_array().unwrap().len(), 128);
    assert!(j["grad"]["b3"].is_number());
}

#[test]
fn show_prints_transformed_ir() {
    let o = adjit(&["show", "ir/ad/square.ir", "--grad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("func @square.grad(x: f64[]) -> (f64[], f64[]) {"),
        "{}",
        stdout(&o)
    );
    let o = adjit(&["show", "ir/ad/square.ir", "--hvp"]);
    assert!(stdout(&o).contains("data v_x: f64[]"), "{}", stdout(&o));
    fails(
        &["show", "ir/ad/square.ir", "--grad", "--hvp"],
        2,
        "cannot be used with",
    );
}

#[test]
fn check_passes_on_models_and_fails_on_a_wrong_tolerance() {
    for m in ["tiny", "rosenbrock", "softmax"] {
        let file = format!("ir/models/{m}.ir");
        let o = adjit(&["check", &file]);
        assert!(o.status.success(), "{m}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("gradient vs central differences"),
            "{}",
            stdout(&o)
        );
    }
    let o = adjit(&["check", "ir/models/pendulum.ir"]);
    assert!(
        stdout(&o).contains(
            "compiled code vs interpreter (f, grad, hvp, jvp, jacobian): identical, bit for bit: ok"
        ),
        "{}",
        stdout(&o)
    );
    let o = adjit(&["check", "ir/models/tiny.ir", "--grad-tol", "1e-20"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));
}

#[test]
fn check_checks_the_jvp_and_prints_json() {
    let o = adjit(&["check", "ir/models/pendulum_scan.ir"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for part in [
        "jvp vs central differences",
        "jvp vs vjp (<w, J u> = <J^T w, u>)",
    ] {
        assert!(stdout(&o).contains(part), "{}", stdout(&o));
    }
    let j = json(&adjit(&["check", "ir/models/rnn.ir", "--json"]));
    assert_eq!(j["passed"], true, "{j}");
    assert_eq!(j["jit_vs_interp"]["differing"], 0, "{j}");
    for part in ["gradient", "hvp", "jvp", "jvp_vjp"] {
        assert_eq!(j[part]["passed"], true, "{part}: {j}");
        assert!(j[part]["compared"].as_u64().unwrap() > 0, "{part}: {j}");
    }
    assert!(
        j["jvp_vjp"]["worst"]["error"].as_f64().unwrap() < 1e-12,
        "{j}"
    );
    // A failing check prints its report and exits with status 1.
    let o = adjit(&[
        "check",
        "ir/models/tiny.ir",
        "--json",
        "--grad-tol",
        "1e-20",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&j["passed"], &j["jvp"]["passed"]),
        (&false.into(), &false.into())
    );
}

/// The dense Jacobian in both modes against differences: whole on `tiny` (two input elements,
/// five directions), restricted to the directions on `rosenbrock` (a hundred elements).
#[test]
fn check_checks_the_jacobian_in_both_modes() {
    for (m, restricted) in [("tiny", false), ("rosenbrock", true)] {
        let file = format!("ir/models/{m}.ir");
        let j = json(&adjit(&["check", &file, "--json"]));
        let part = &j["jacobian"];
        assert_eq!(
            (&j["passed"], &part["passed"]),
            (&true.into(), &true.into()),
            "{m}: {j}"
        );
        assert_eq!(part["forward_restricted"], restricted, "{m}: {j}");
        assert_eq!(part["compared"], j["checks"], "{m}: {j}");
        assert_eq!(part["tolerance"], 1e-6, "{m}: {j}");
        assert!(part["worst"]["error"].as_f64().unwrap() < 1e-8, "{m}: {j}");
        let at = part["worst"]["at"].as_str().unwrap();
        assert!(at.ends_with(" mode"), "{m}: {j}");
        assert_eq!(j["jit_vs_interp"]["differing"], 0, "{m}: {j}");
        let o = adjit(&["check", &file]);
        assert!(
            stdout(&o).contains("Jacobian (forward and reverse mode) vs central differences"),
            "{}",
            stdout(&o)
        );
        assert_eq!(
            stdout(&o).contains("restricted to the directions"),
            restricted
        );
    }
    // --grad-tol is the Jacobian's tolerance: too tight, it fails with a report and status 1.
    let args = [
        "check",
        "ir/models/tiny.ir",
        "--json",
        "--grad-tol",
        "1e-20",
    ];
    let o = adjit(&args);
    assert_fails(&o, &args, 1, "derivatives differ from finite differences");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["jacobian"]["passed"], false, "{j}");
    assert_eq!(j["jacobian"]["tolerance"], 1e-20, "{j}");
    assert_eq!(j["hvp"]["passed"], true, "{j}");
}

#[test]
fn derivative_errors_are_clear() {
    fails(
        &["grad", "ir/models/tiny.ir", "--wrt", "y"],
        1,
        "ir/models/tiny.ir: @tiny has no input 'y' (its inputs: x)",
    );
    fails(
        &["grad", "ir/filetests/run/layout.ir"],
        1,
        "one scalar f64 result",
    );
    fails(
        &["hvp", "ir/models/tiny.ir", "--v", "x=1,2,3"],
        1,
        "direction 'x': 3 values given, but f64[2] holds 2",
    );
    fails(
        &["hvp", "ir/models/neuron.ir", "--v", "x=1"],
        1,
        "@neuron has no direction 'x' (it has: w, b)",
    );
    fails(
        &["check", "ir/models/tiny.ir", "--grad-tol", "small"],
        2,
        "invalid value",
    );
}

#[test]
fn every_command_has_help() {
    for cmd in ["eval", "grad", "hvp", "show", "check", "bench"] {
        let o = adjit(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}");
        assert!(stdout(&o).contains("Usage"), "{cmd}");
    }
    assert!(stdout(&adjit(&["--help"])).contains("Usage"));
}

#[test]
fn bench_reports_json_table_and_plot() {
    let scratch = Scratch::new("bench");
    let dir = &scratch.0;
    let svg = dir.join("bench.svg");
    let o = adjit(&[
        "bench",
        "--quick",
        "--json",
        "ir/models/tiny.ir",
        "ir/ad/square.ir",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let j = json(&o);
    let rows = j.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["model"], "tiny");
    assert_eq!(rows[1]["model"], "square");
    for key in [
        "instructions_f",
        "instructions_grad",
        "instructions_hvp",
        "compile_s",
        "interp_f_s",
        "interp_grad_s",
        "interp_hvp_s",
        "jit_f_s",
        "jit_grad_s",
        "jit_hvp_s",
        "jit_hvp_fwdrev_s",
        "jit_hvp_revrev_s",
        "jit_hvp_with_grad_s",
    ] {
        let v = rows[0][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(v > 0.0, "{key} = {v}");
    }
    assert_eq!(rows[0]["instructions_f"], 9);
    // The hvp timed is the product alone, as the peers compute it.
    let tiny = adjit::ir::parse(&std::fs::read_to_string(repo_path("ir/models/tiny.ir")).unwrap());
    let mode = adjit::ad::HvpMode::DEFAULT;
    let tiny = tiny.unwrap();
    let only = adjit::ad::hvp_only(&tiny, None, mode).unwrap();
    let full = adjit::ad::hvp_with(&tiny, None, mode).unwrap();
    assert_ne!(only.insts.len(), full.insts.len());
    assert_eq!(rows[0]["instructions_hvp"], only.insts.len());
    assert_eq!(rows[0]["hvp_results"], "product");
    // jit_hvp_s is the default mode's time.
    let mode = rows[0]["hvp_mode"].as_str().unwrap();
    assert_eq!(rows[0]["jit_hvp_s"], rows[0][format!("jit_hvp_{mode}_s")]);
    for row in rows {
        workspace_bytes(row);
    }
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg")
            && picture.contains("tiny")
            && picture.contains("compiled f+grad")
            && picture.contains("compiled hvp fwdrev (default)")
            && picture.contains("compiled hvp revrev"),
        "{picture}"
    );
    let o = adjit(&["bench", "--quick", "ir/models/neuron.ir"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("speed-up")
            && table.contains("fwdrev/grad")
            && table.lines().any(|l| l.starts_with("neuron")),
        "{table}"
    );
}

/// The compiled workspaces of f, f+grad and hvp in bytes, checked to be whole numbers and
/// f+grad's no smaller than f's (f+grad computes f too).
fn workspace_bytes(row: &serde_json::Value) -> [u64; 3] {
    let bytes = ["f", "grad", "hvp"].map(|k| {
        let key = format!("workspace_bytes_{k}");
        row[&key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: {key} is {}", row["model"], row[&key]))
    });
    assert!(
        bytes.iter().all(|b| b % 8 == 0),
        "{}: {bytes:?}",
        row["model"]
    );
    assert!(
        bytes[1] >= bytes[0],
        "{}: grad < f: {bytes:?}",
        row["model"]
    );
    bytes
}

#[test]
fn bench_reports_the_workspace_of_every_model() {
    let j = json(&adjit(&["bench", "--quick", "--json"]));
    let rows = j.as_array().unwrap();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["model"].as_str()).collect();
    let shipped: Vec<&str> = adjit::models::ALL
        .iter()
        .filter(|m| m.scalar())
        .map(|m| m.name)
        .collect();
    assert_eq!(names, shipped);
    for row in rows {
        let bytes = workspace_bytes(row);
        let model = row["model"].as_str().unwrap();
        // tiny and neuron are a few scalars, all kept in registers; rosenbrock's f is one loop
        // summing squares of values computed in it; the others have tensors.
        if model == "tiny" || model == "neuron" {
            assert_eq!(bytes, [0, 0, 0], "{model}");
        } else if model.starts_with("rosenbrock") {
            assert_eq!(bytes[0], 0, "{model}: {bytes:?}");
            assert!(bytes[1] > 0 && bytes[2] > 0, "{model}: {bytes:?}");
        } else {
            assert!(bytes.iter().all(|&b| b > 0), "{model}: {bytes:?}");
        }
    }
    let o = adjit(&["bench", "--quick", "ir/models/rosenbrock.ir"]);
    let table = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = table
        .lines()
        .filter(|l| l.starts_with("rosenbrock"))
        .nth(1)
        .unwrap_or_else(|| panic!("no workspace line:\n{table}"));
    assert!(
        line.contains(" KiB") && table.contains("workspace grad"),
        "{table}"
    );
}

#[test]
fn bench_batch_times_each_thread_count() {
    let args = [
        "bench",
        "--batch",
        "6",
        "--threads",
        "1,3",
        "--quick",
        "--json",
    ];
    let j = json(&adjit(&[&args[..], &["ir/models/tiny.ir"]].concat()));
    let row = &j.as_array().unwrap()[0];
    assert_eq!(
        (row["model"].as_str(), row["sets"].as_u64()),
        (Some("tiny"), Some(6))
    );
    let threads: Vec<u64> = row["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert!(b["median_s"].as_f64().unwrap() > 0.0);
            b["threads"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(threads, [1, 3]);
    assert!(row["sequential_s"].as_f64().unwrap() > 0.0);
    // The default model is pendulum; the table names each thread count.
    let o = adjit(&["bench", "--batch", "4", "--quick"]);
    let table = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(table.starts_with("pendulum: 4 f+grad sets"), "{table}");
    assert!(table.contains("batch, 2 threads"), "{table}");
    fails(
        &["bench", "--batch", "0"],
        1,
        "--batch and --threads need counts of at least 1",
    );
    fails(&["bench", "--threads", "2"], 2, "--batch");
    fails(
        &["bench", "--batch", "2", "--plot", "a.svg"],
        2,
        "cannot be used with",
    );
}

#[test]
fn bench_argument_errors_are_clear() {
    fails(
        &["bench", "no/such.ir"],
        1,
        "no/such.ir: cannot read the file",
    );
    fails(
        &["bench", "ir/filetests/errors/parse.ir"],
        1,
        "ir/filetests/errors/parse.ir:4:18: unknown op 'softplus'",
    );
    fails(
        &["bench", "ir/filetests/run/layout.ir"],
        1,
        "bench needs a function with one scalar f64 result",
    );
    fails(&["bench", "--fast"], 2, "unexpected argument '--fast'");
    let dir = std::env::temp_dir();
    let bad = dir.join(format!("adjit-no-dir-{}/x.svg", std::process::id()));
    fails(
        &[
            "bench",
            "--quick",
            "ir/ad/square.ir",
            "--plot",
            bad.to_str().unwrap(),
        ],
        1,
        "cannot draw the plot",
    );
}
