//! `adjit vjp`: vector-Jacobian products of functions with several results, checked against the
//! gradient of the weighted sum of the results and against central differences, through both
//! engines; cotangents named by position or by value name; clear errors.

mod common;

use common::cli::{adjit, fails, floats, json, stderr, Scratch, TWO};
use serde_json::Value as Json;

/// `TWO`'s results weighted by the cotangents (1, -2, 0.5) and 3, summed to one scalar.
const WEIGHTED: &str = "\
func @weighted(x: f64[3], w: f64[2], data s: f64[]) -> (f64[]) {
    e: f64[3] = exp x
    sb: f64[3] = broadcast s [axes=[0], shape=[3]]
    y: f64[3] = mul e, sb
    q: f64[3] = mul x, x
    z0: f64[] = reduce_sum q [axes=[0]]
    ww: f64[2] = mul w, w
    z1: f64[] = reduce_sum ww [axes=[0]]
    z2: f64[] = sin z1
    z: f64[] = mul z0, z2
    c: f64[3] = const [1.0, -2.0, 0.5]
    cy: f64[3] = mul c, y
    sy: f64[] = reduce_sum cy [axes=[0]]
    k: f64[] = const 3.0
    kz: f64[] = mul k, z
    t: f64[] = add sy, kz
    return t
}
";

const INPUTS: [&str; 6] = ["-i", "x=0.3,-0.7,1.1", "-i", "w=0.4,-0.9", "-i", "s=1.5"];

/// `text` as the file `name` in a scratch directory of its own (removed when dropped).
fn write(test: &str, name: &str, text: &str) -> (Scratch, String) {
    let dir = Scratch::new(&format!("vjp-{test}"));
    let path = dir.file(name, text);
    (dir, path)
}

fn vjp_json(file: &str, extra: &[&str]) -> Json {
    let mut args = vec!["vjp", file];
    args.extend_from_slice(&INPUTS);
    args.extend_from_slice(extra);
    args.push("--json");
    json(&adjit(&args))
}

#[test]
fn vjp_equals_the_gradient_of_the_weighted_sum_on_both_engines() {
    let (dir, two) = write("sum", "two.ir", TWO);
    let weighted = dir.0.join("weighted.ir");
    std::fs::write(&weighted, WEIGHTED).unwrap();
    let cts = ["--ct", "0=1,-2,0.5", "--ct", "1=3"];
    let jit = vjp_json(&two, &cts);
    let mut with_interp = cts.to_vec();
    with_interp.push("--interp");
    let interp = vjp_json(&two, &with_interp);
    assert_eq!(jit, interp, "compiled code and interpreter differ");
    let mut args = vec!["grad", weighted.to_str().unwrap()];
    args.extend_from_slice(&INPUTS);
    args.push("--json");
    let g = json(&adjit(&args));
    for name in ["x", "w"] {
        let (got, want) = (floats(&jit["grad"][name]), floats(&g["grad"][name]));
        assert_eq!(got.len(), want.len(), "{name}");
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-13 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
    // The data input is not differentiated unless named.
    assert!(jit["grad"].get("s").is_none(), "{jit}");
    // The outputs are the function's results.
    let x: [f64; 3] = [0.3, -0.7, 1.1];
    let y = floats(&jit["outputs"][0]);
    for (yi, xi) in y.iter().zip(x) {
        assert!((yi - xi.exp() * 1.5).abs() <= 1e-15 * yi.abs(), "{yi}");
    }
    assert_eq!(jit["outputs"].as_array().unwrap().len(), 2);
}

#[test]
fn vjp_matches_central_differences() {
    let (_dir, two) = write("diff", "two.ir", TWO);
    let ct_y = [0.25, 1.0, -1.5];
    let ct_z = -0.75;
    let got = vjp_json(&two, &["--ct", "y=0.25,1,-1.5", "--ct", "z=-0.75"]);
    let base_x = [0.3, -0.7, 1.1];
    let h = 1e-5;
    for i in 0..3 {
        let eval_at = |t: f64| -> (Vec<f64>, f64) {
            let mut x = base_x;
            x[i] += t;
            let xs = format!("x={},{},{}", x[0], x[1], x[2]);
            let j = json(&adjit(&[
                "eval",
                &two,
                "-i",
                &xs,
                "-i",
                "w=0.4,-0.9",
                "-i",
                "s=1.5",
                "--json",
            ]));
            (floats(&j["outputs"][0]), j["outputs"][1].as_f64().unwrap())
        };
        let ((yp, zp), (ym, zm)) = (eval_at(h), eval_at(-h));
        let mut d = ct_z * (zp - zm) / (2.0 * h);
        for k in 0..3 {
            d += ct_y[k] * (yp[k] - ym[k]) / (2.0 * h);
        }
        let computed = floats(&got["grad"]["x"])[i];
        assert!(
            (computed - d).abs() <= 1e-7 * d.abs().max(1.0),
            "x[{i}]: vjp {computed} vs differences {d}"
        );
    }
}

#[test]
fn default_cotangents_are_ones_and_names_equal_positions() {
    let (dir, two) = write("ones", "two.ir", TWO);
    let ones = vjp_json(&two, &[]);
    let explicit = vjp_json(&two, &["--ct", "0=1,1,1", "--ct", "z=1"]);
    assert_eq!(ones, explicit);
    let by_name = vjp_json(&two, &["--ct", "y=2,0,-1", "--wrt", "x,s"]);
    let by_index = vjp_json(&two, &["--ct", "0=2,0,-1", "--wrt", "x,s"]);
    assert_eq!(by_name, by_index);
    let ct_file = dir.0.join("ct.json");
    std::fs::write(&ct_file, "[2, 0, -1]").unwrap();
    let from_file = format!("y={}", ct_file.display());
    assert_eq!(
        by_name,
        vjp_json(&two, &["--ct", &from_file, "--wrt", "x,s"])
    );
    // d/ds of sum(ct_y * exp(x) * s) = sum(ct_y * exp(x)).
    let x: [f64; 3] = [0.3, -0.7, 1.1];
    let want = 2.0 * x[0].exp() - x[2].exp();
    let ds = by_name["grad"]["s"].as_f64().unwrap();
    assert!((ds - want).abs() < 1e-14, "{ds} vs {want}");
    // The text form lists the results, then the input cotangents.
    let o = adjit(&["vjp", &two, "-i", "x=0,0,0", "-i", "s=2", "--wrt", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.starts_with("0: f64[3] = [2.0, 2.0, 2.0]\n1: f64[] = "),
        "{text}"
    );
    assert!(text.contains("grad x: f64[3] = [2.0, 2.0, 2.0]"), "{text}");
}

#[test]
fn vjp_errors_are_clear() {
    let (dir, two) = write("errors", "two.ir", TWO);
    fails(
        &["vjp", &two, "--ct", "q=1"],
        1,
        "cotangent 'q=1': @two has no result 'q' (results: 0 (y), 1 (z))",
    );
    fails(&["vjp", &two, "--ct", "2=1"], 1, "@two has no result '2'");
    fails(
        &["vjp", &two, "--ct", "y=1,2"],
        1,
        "cotangent '0 (y)': 2 values given, but f64[3] holds 3",
    );
    fails(
        &["vjp", &two, "--ct", "y"],
        1,
        "cotangent 'y' is not of the form RESULT=VALUES",
    );
    fails(
        &["vjp", &two, "--wrt", "nope"],
        1,
        "@two has no input 'nope'",
    );
    let twice = dir.0.join("twice.ir");
    std::fs::write(
        &twice,
        "func @t(x: f64[]) -> (f64[], f64[]) {\n    y: f64[] = exp x\n    return y, y\n}\n",
    )
    .unwrap();
    let t = twice.to_str().unwrap();
    fails(&["vjp", t, "--ct", "y=1"], 1, "returns 'y' more than once");
    // Both results are the same value: their cotangents add.
    let j = json(&adjit(&[
        "vjp", t, "-i", "x=0", "--ct", "0=2", "--ct", "1=3", "--json",
    ]));
    assert_eq!(j["grad"]["x"].as_f64(), Some(5.0));
    // grad on several results names the command to use.
    fails(&["grad", &two], 1, "`adjit vjp ");
    let o = adjit(&["vjp", "--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--ct <RESULT=VALUES>"));
}

#[test]
fn a_cotangent_given_twice_is_refused() {
    let (_dir, two) = write("ct-twice", "two.ir", TWO);
    for cts in [["0=1,1,1", "y=2,2,2"], ["1=1", "1=2"], ["z=1", "z=2"]] {
        let args = ["vjp", &two, "--ct", cts[0], "--ct", cts[1]];
        let want = format!("is given twice (in '{}' and '{}')", cts[0], cts[1]);
        fails(&args, 1, &want);
    }
    fails(
        &["vjp", &two, "--ct", "0=1,1,1", "--ct", "y=2,2,2"],
        1,
        "the cotangent of result 0 (y) is given twice",
    );
}

#[test]
fn a_bool_result_takes_no_cotangent() {
    let (_dir, b) = write(
        "bool-ct",
        "b.ir",
        "func @b(x: f64[3], y: f64[3]) -> (f64[], bool[3]) {\n    s: f64[] = reduce_sum x [axes=[0]]\n    p: bool[3] = gt x, y\n    return s, p\n}\n",
    );
    for ct in ["1=5,5,5", "1=true,false,true", "p=1,0,1"] {
        fails(
            &["vjp", &b, "--ct", ct],
            1,
            &format!("cotangent '{ct}': result 1 (p) of @b is bool[3], which has no cotangent"),
        );
    }
    // The f64 result still takes one.
    let j = json(&adjit(&["vjp", &b, "--wrt", "x", "--ct", "0=2", "--json"]));
    assert_eq!(j["grad"]["x"], serde_json::json!([2.0, 2.0, 2.0]), "{j}");
}
