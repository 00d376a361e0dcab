//! The `adjit` binary: usage checks made before any work (`check` that would check nothing or
//! with a tolerance that is not a positive finite number, `bench --plot` to a path that cannot
//! be written), `check` at points where the function is not smooth or not finite (where none
//! could be compared it fails), `check` of a function whose Jacobian passes the rank limit (that
//! part alone is skipped), messages that name the argument they refuse, and output to a reader
//! that went away or to a full disk.

mod common;

use common::cli::{adjit, assert_fails, stderr, stdout, Scratch};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn check_refuses_to_check_nothing() {
    let o = adjit(&[
        "check",
        "ir/models/tiny.ir",
        "--coordinates",
        "0",
        "--directions",
        "0",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("would check nothing"), "{err}");
    assert!(!stdout(&o).contains("ok"), "{}", stdout(&o));
    // Either one alone is a real check.
    for args in [["--coordinates", "0"], ["--directions", "0"]] {
        let o = adjit(&["check", "ir/models/tiny.ir", args[0], args[1]]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn bench_plot_to_an_unwritable_path_fails_before_measuring() {
    let bad = format!("/nonexistent-adjit-{}/dir/x.svg", std::process::id());
    let start = Instant::now();
    let o = adjit(&["bench", "--quick", "--plot", &bad]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&bad) && err.contains("cannot draw the plot"),
        "{err}"
    );
    // No model was measured: the progress lines never appeared.
    assert!(!err.contains("[1/"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // A directory is not a writable file either.
    let dir = Scratch::new("plotdir");
    let o = adjit(&["bench", "--quick", "--plot", dir.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("[1/"), "{}", stderr(&o));
}

/// `abs`, `max`, `floor`, a comparison with `select`, and `reduce_max`, all on one vector.
const KINKS: &str = "\
func @kinks(x: f64[4]) -> (f64[]) {
    a: f64[4] = abs x
    z: f64[4] = const 0.0
    m: f64[4] = max x, z
    fl: f64[4] = floor x
    c: bool[4] = gt x, z
    e: f64[4] = exp x
    sel: f64[4] = select c, e, x
    top: f64[] = reduce_max x [axes=[0]]
    tb: f64[4] = broadcast top [axes=[0], shape=[4]]
    t0: f64[4] = add a, m
    t1: f64[4] = add t0, fl
    t2: f64[4] = add t1, sel
    t3: f64[4] = add t2, tb
    t4: f64[4] = mul t3, x
    s: f64[] = reduce_sum t4 [axes=[0]]
    return s
}
";

#[test]
fn check_passes_near_kinks_and_names_directions_that_are_not_smooth() {
    let dir = Scratch::new("kinks");
    let file = &dir.file("kinks.ir", KINKS);
    // Each element within the default step (1e-3 * 1.0002) of a kink.
    let o = adjit(&["check", file, "-i", "x=0.0005,0.7,-0.0003,1.0002"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        !out.contains("FAILED") && !out.contains("not smooth"),
        "{out}"
    );
    // Exactly on a kink (a tie of max at 0): those directions are named, not failed.
    let o = adjit(&["check", file, "-i", "x=0.0005,0,-0.0003,1.0002"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(!out.contains("FAILED"), "{out}");
    assert!(
        out.contains("not smooth here along x[1], random direction 1"),
        "{out}"
    );
    // What is compared is still judged.
    let o = adjit(&[
        "check",
        file,
        "-i",
        "x=0.0005,0.7,-0.0003,1.0002",
        "--grad-tol",
        "1e-30",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));
}

/// Issue 8, defect 1: every command on functions of zero-size tensors, compiled and
/// interpreted, succeeds (compiled code used to panic).
#[test]
fn every_command_takes_zero_size_tensors() {
    let dir = Scratch::new("empty");
    let files = [
        (
            "a",
            "func @a(x: f64[0,4,5], y: f64[0,5,3]) -> (f64[]) {
    z: f64[0,4,3] = matmul x, y
    s: f64[] = reduce_sum z [axes=[0,1,2]]
    return s
}
",
        ),
        (
            "zmax",
            "func @zmax(x: f64[0]) -> (f64[]) {
    m: f64[] = reduce_max x [axes=[0]]
    return m
}
",
        ),
    ];
    for (name, text) in files {
        let p = &dir.file(&format!("{name}.ir"), text);
        for args in [
            &["eval", p][..],
            &["eval", p, "--interp"],
            &["grad", p],
            &["hvp", p],
            &["check", p],
            &["bench", p, "--quick"],
        ] {
            let o = adjit(args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
        let want = if name == "a" { "0.0" } else { "-Infinity" };
        let out = stdout(&adjit(&["grad", p, "--json"]));
        assert!(
            out.contains(&format!("\"value\":{want}"))
                || out.contains(&format!("\"value\":\"{want}\"")),
            "{out}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_program_quietly() {
    // 2.4 MB of IR: far more than a pipe holds, so the writes meet the closed pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(["show", "ir/models/pendulum.ir", "--hvp"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("the binary ends");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_full_output_is_an_error_with_a_message() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    for args in [
        &["eval", "ir/models/mlp.ir"][..],
        &["grad", "ir/models/tiny.ir", "--json"],
        &["check", "ir/models/tiny.ir"],
    ] {
        let full = File::options().write(true).open("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_adjit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(full)
            .output()
            .expect("the binary runs");
        assert_fails(
            &o,
            args,
            1,
            "cannot write the output: No space left on device",
        );
    }
}

#[test]
fn a_tolerance_must_be_positive_and_finite() {
    for flag in ["--grad-tol", "--hvp-tol"] {
        for bad in ["nan", "NaN", "inf", "-inf", "0", "-0", "-1e-6"] {
            // FLAG=VALUE, as a value starting with '-' needs.
            let given = format!("{flag}={bad}");
            let args = ["check", "ir/models/tiny.ir", &given];
            assert_fails(&adjit(&args), &args, 2, &format!("for '{flag} <"));
            let err = stderr(&adjit(&args));
            assert!(
                err.contains("must be a positive finite number"),
                "{args:?}: {err}"
            );
        }
        let args = ["check", "ir/models/tiny.ir", flag, "tight"];
        assert_fails(&adjit(&args), &args, 2, "'tight' is not a number");
        let args = ["check", "ir/models/tiny.ir", flag, "1e-3"];
        let o = adjit(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

/// A difference that is not finite (a step past a domain edge, a NaN input) is set aside and
/// named, not reported as a wrong derivative.
#[test]
fn check_sets_aside_directions_where_the_function_is_not_finite() {
    let dir = Scratch::new("not-finite");
    let p = &dir.file(
        "pw.ir",
        "func @p(a: f64[3], b: f64[3]) -> (f64[]) {\n    p: f64[3] = pow a, b\n    s: f64[] = reduce_sum p [axes=[0]]\n    return s\n}\n",
    );
    // Some directions are compared: it passes.
    let o = adjit(&["check", p, "-i", "a=0,0,2", "-i", "b=2,0,0"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("not finite here along"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
    // A NaN input leaves no difference finite: every direction is named, and as nothing was
    // verified, the check fails (though no derivative was found wrong).
    let args = ["check", p.as_str(), "-i", "a=nan,1,2", "-i", "b=1,1,1"];
    let o = adjit(&args);
    let out = stdout(&o);
    assert!(
        out.contains("not finite here along a[0], a[1], a[2]"),
        "{out}"
    );
    assert!(!out.contains("tolerance 1e-6: FAILED"), "{out}");
    assert_fails(&o, &args, 1, "no derivative could be compared");
}

/// Every command runs a file with scans (a nested one included), compiled and interpreted
/// alike, and `show` prints the scans' bodies, which read back as the same function.
#[test]
fn every_command_takes_scans() {
    let dir = Scratch::new("scans");
    let nested = dir.file(
        "nested.ir",
        "func @inner(k: f64[], acc: f64[], x: f64[]) -> (f64[], f64[]) {
    kx: f64[] = mul k, x
    s: f64[] = sin kx
    acc2: f64[] = add acc, s
    return acc2, s
}

func @outer(k: f64[], tot: f64[], row: f64[3]) -> (f64[]) {
    zero: f64[] = const 0.0
    r: f64[4] = scan k, zero, row [body=@inner, carries=1, consts=1, length=3, checkpoint=binomial(1)]
    head: f64[1] = slice r [start=[0], stop=[1]]
    rs: f64[] = reshape head [shape=[]]
    t: f64[] = mul tot, rs
    tot2: f64[] = add t, rs
    return tot2
}

func @main(k: f64[], m: f64[2,3]) -> (f64[]) {
    one: f64[] = const 1.0
    n: f64[1] = scan k, one, m [body=@outer, carries=1, consts=1, length=2, reverse=true]
    y: f64[] = reshape n [shape=[]]
    return y
}
",
    );
    let rnn = common::repo_path("ir/models/rnn.ir");
    let rnn = rnn.to_str().expect("utf-8 path");
    for p in [nested.as_str(), rnn] {
        for args in [
            &["eval", p][..],
            &["eval", p, "--interp"],
            &["grad", p],
            &["grad", p, "--interp"],
            &["hvp", p],
            &["check", p],
            &["bench", p, "--quick", "--json"],
        ] {
            let o = adjit(args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
        let compiled = common::cli::json(&adjit(&["hvp", p, "--json"]));
        let interpreted = common::cli::json(&adjit(&["hvp", p, "--json", "--interp"]));
        assert_eq!(
            compiled, interpreted,
            "{p}: the JIT and the interpreter differ"
        );
        for flag in ["--grad", "--hvp"] {
            let shown = stdout(&adjit(&["show", p, flag]));
            assert!(shown.matches("func @").count() >= 3, "{flag}: {shown}");
            assert!(
                shown.contains("reverse=true"),
                "{flag}: no adjoint scan in {shown}"
            );
            let back = adjit::ir::parse(&shown).expect("show's output reads back");
            assert_eq!(
                back.to_string(),
                shown.trim_end_matches('\n').to_string() + "\n"
            );
        }
    }
}

/// `sqrt(x) + x^2` summed: not finite beside `x = 0` (the differences step outside the domain).
const SQRT: &str = "\
func @sq(x: f64[2]) -> (f64[]) {
    s: f64[2] = sqrt x
    q: f64[2] = mul x, x
    a: f64[2] = add s, q
    r: f64[] = reduce_sum a [axes=[0]]
    return r
}
";

#[test]
fn check_fails_where_no_direction_could_be_compared() {
    let dir = Scratch::new("check-nothing-compared");
    let file = dir.file("sq.ir", SQRT);
    // At a NaN input nothing is finite: nothing was verified, which does not pass.
    let args = ["check", file.as_str(), "-i", "x=nan,1"];
    assert_fails(&adjit(&args), &args, 1, "no derivative could be compared");
    let args = ["check", file.as_str(), "-i", "x=nan,1", "--json"];
    let o = adjit(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&j["passed"], &j["compared_any"]),
        (&false.into(), &false.into()),
        "{j}"
    );
    // The value is NaN, written as the string the README promises, not null.
    assert_eq!(j["value"], "NaN", "{j}");
    // At a kink along every direction the jvp still meets the vjp, but no difference was
    // compared: that does not pass either.
    let abs = dir.file(
        "abs.ir",
        "func @a(x: f64[2]) -> (f64[]) {
    b: f64[2] = abs x
    s: f64[] = reduce_sum b [axes=[0]]
    return s
}
",
    );
    let args = ["check", abs.as_str(), "-i", "x=0,0"];
    assert_fails(&adjit(&args), &args, 1, "no derivative could be compared");
    // At x = (0, 1) the direction along x[1] is compared, and the derivatives along x[1] are
    // exact although sqrt'(0) is infinite: it passes.
    let o = adjit(&["check", &file, "-i", "x=0,1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for part in ["gradient", "jvp", "jacobian"] {
        assert_eq!(j[part]["compared"], 1, "{part}: {j}");
        assert_eq!(j[part]["passed"], true, "{part}: {j}");
    }
}

#[test]
fn check_skips_a_jacobian_beyond_the_rank_limit_and_checks_the_rest() {
    // A value of rank 8: with a directions axis in front the dense Jacobian would need rank 9.
    let dir = Scratch::new("check-rank8");
    let file = dir.file(
        "mid8.ir",
        "func @mid8(x: f64[2]) -> (f64[]) {
    r: f64[2,1,1,1,1,1,1,1] = reshape x [shape=[2,1,1,1,1,1,1,1]]
    s: f64[2,1,1,1,1,1,1,1] = sin r
    t: f64[] = reduce_sum s [axes=[0,1,2,3,4,5,6,7]]
    return t
}
",
    );
    let o = adjit(&["check", &file]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(out.contains("Jacobian (forward and reverse mode) vs central differences: not checked: @mid8: the derivative needs value 'r' (f64[2,1,1,1,1,1,1,1])"), "{out}");
    assert!(
        out.contains("gradient vs central differences: largest"),
        "{out}"
    );
    let o = adjit(&["check", &file, "--json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        j["jacobian"]["skipped"]
            .as_str()
            .unwrap()
            .contains("rank 9 (at most 8)"),
        "{j}"
    );
    assert_eq!(j["hvp"]["passed"], true, "{j}");
    // jac itself names the value and the limit.
    let args = ["jac", file.as_str()];
    assert_fails(&adjit(&args), &args, 1, "value 'r' (f64[2,1,1,1,1,1,1,1]) with an axis of 1 direction in front, of rank 9 (at most 8)");
}

#[test]
fn value_arguments_name_what_they_give() {
    let dir = Scratch::new("value-arguments");
    let file = dir.file(
        "multi.ir",
        "func @multi(x: f64[2], y: f64[], data d: f64[3]) -> (f64[2], f64[]) {
    s: f64[2] = sin x
    r: f64[] = mul y, y
    return s, r
}
",
    );
    let f = file.as_str();
    for (args, want) in [
        (vec!["jvp", f, "--t", "x"], "tangent 'x' is not of the form NAME=VALUES"),
        (vec!["vjp", f, "--ct", "0"], "cotangent '0' is not of the form RESULT=VALUES"),
        (vec!["eval", f, "-i", "x"], "input 'x' is not of the form NAME=VALUES"),
        (
            vec!["jvp", f, "--t", "d=1,2,3"],
            "'d' is an input that is not differentiated (data, or left out of --wrt): name it in --wrt to give it a tangent",
        ),
        (
            vec!["eval", f, "-i", "x=no-such-file"],
            "input 'x': 'no-such-file' is neither a value (a number, NaN, inf, -inf, true, false) nor an existing file",
        ),
        (vec!["check", f], "for other results use vjp, jvp or the Jacobian (jac)"),
    ] {
        assert_fails(&adjit(&args), &args, 1, want);
    }
    let args = ["jvp", f, "--wrt", "x,y,x"];
    assert_fails(&adjit(&args), &args, 1, "--wrt names 'x' twice");
    // Spaces around --wrt's names are dropped, as around -i's values.
    let o = adjit(&["jvp", f, "--wrt", "x, y", "--t", "y=2"]);
    assert!(stdout(&o).contains("tangent 1: f64[] = "), "{}", stderr(&o));
    let empty = dir.file("empty.json", "");
    let args = ["eval", f, "--inputs", empty.as_str()];
    assert_fails(&adjit(&args), &args, 1, "empty.json:1:1: invalid JSON");
}
