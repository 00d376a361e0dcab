//! `adjit jvp`: Jacobian-vector products of functions with several results, checked against a
//! closed form and against `adjit vjp` by the dot-product test, through both engines; default
//! tangents (ones), tangents from JSON objects, `show --jvp`, and clear errors.

mod common;

use common::cli::{adjit, fails, floats, json, stdout, Scratch};
use serde_json::Value as Json;

/// Two results of different shapes, a data input, and a bool result.
const TWO: &str = "\
func @two(x: f64[3], w: f64[2], data s: f64[]) -> (f64[3], f64[], bool[3]) {
    e: f64[3] = exp x
    sb: f64[3] = broadcast s [axes=[0], shape=[3]]
    y: f64[3] = mul e, sb
    q: f64[3] = mul x, x
    z0: f64[] = reduce_sum q [axes=[0]]
    ww: f64[2] = mul w, w
    z1: f64[] = reduce_sum ww [axes=[0]]
    z2: f64[] = sin z1
    z: f64[] = mul z0, z2
    m: bool[3] = gt x, sb
    return y, z, m
}
";

const INPUTS: [&str; 6] = ["-i", "x=0.3,-0.7,1.1", "-i", "w=0.4,-0.9", "-i", "s=1.5"];
const X: [f64; 3] = [0.3, -0.7, 1.1];
const W: [f64; 2] = [0.4, -0.9];

fn write(test: &str, text: &str) -> (Scratch, String) {
    let dir = Scratch::new(&format!("jvp-{test}"));
    let path = dir.file("two.ir", text);
    (dir, path)
}

fn run_json(command: &str, file: &str, extra: &[&str]) -> Json {
    let mut args = vec![command, file];
    args.extend_from_slice(&INPUTS);
    args.extend_from_slice(extra);
    args.push("--json");
    json(&adjit(&args))
}

/// The tangents of `TWO`'s f64 results along (tx, tw), by hand.
fn closed_form(tx: &[f64], tw: &[f64]) -> (Vec<f64>, f64) {
    let s = 1.5;
    let dy = X.iter().zip(tx).map(|(x, t)| x.exp() * s * t).collect();
    let (sx2, sw2): (f64, f64) = (X.iter().map(|x| x * x).sum(), W.iter().map(|w| w * w).sum());
    let dx: f64 = X.iter().zip(tx).map(|(x, t)| 2.0 * x * t).sum();
    let dw: f64 = W.iter().zip(tw).map(|(w, t)| 2.0 * w * t).sum();
    (dy, dx * sw2.sin() + sx2 * sw2.cos() * dw)
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-14 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn jvp_matches_the_closed_form_on_both_engines() {
    let (_dir, two) = write("closed", TWO);
    let ts = ["--t", "x=1,-2,0.5", "--t", "w=0.25,3"];
    let jit = run_json("jvp", &two, &ts);
    let mut with_interp = ts.to_vec();
    with_interp.push("--interp");
    let interp = run_json("jvp", &two, &with_interp);
    assert_eq!(jit, interp, "the engines agree bit for bit");
    let (dy, dz) = closed_form(&[1.0, -2.0, 0.5], &[0.25, 3.0]);
    let tangents = jit["tangents"].as_array().unwrap();
    assert_eq!(tangents.len(), 3, "one tangent per result");
    assert_close(&floats(&tangents[0]), &dy);
    assert_close(&floats(&tangents[1]), &[dz]);
    assert_eq!(
        floats(&tangents[2]),
        [0.0; 3],
        "a bool result's tangent is zeros"
    );
    let outputs = jit["outputs"].as_array().unwrap();
    let eval = run_json("eval", &two, &[]);
    assert_eq!(outputs, eval["outputs"].as_array().unwrap());
}

#[test]
fn jvp_and_vjp_pass_the_dot_product_test() {
    let (_dir, two) = write("dot", TWO);
    let (tx, tw) = ([0.7, -0.1, 0.4], [-1.2, 0.6]);
    let j = run_json("jvp", &two, &["--t", "x=0.7,-0.1,0.4", "--t", "w=-1.2,0.6"]);
    let v = run_json("vjp", &two, &["--ct", "0=1,-2,0.5", "--ct", "1=3"]);
    let t = &j["tangents"];
    let ujt: f64 = floats(&t[0])
        .iter()
        .zip([1.0, -2.0, 0.5])
        .map(|(a, b)| a * b)
        .sum::<f64>()
        + 3.0 * floats(&t[1])[0];
    let g = &v["grad"];
    let jtu_t: f64 = floats(&g["x"])
        .iter()
        .zip(tx)
        .map(|(a, b)| a * b)
        .sum::<f64>()
        + floats(&g["w"])
            .iter()
            .zip(tw)
            .map(|(a, b)| a * b)
            .sum::<f64>();
    assert!((ujt - jtu_t).abs() <= 1e-13 * ujt.abs(), "{ujt} vs {jtu_t}");
}

#[test]
fn tangents_default_to_ones_and_come_from_json_objects() {
    let (dir, two) = write("defaults", TWO);
    let ones = run_json("jvp", &two, &[]);
    let given = run_json("jvp", &two, &["--t", "x=1,1,1", "--t", "w=1,1"]);
    assert_eq!(ones, given);
    // Only x given: w keeps ones.
    let half = run_json("jvp", &two, &["--t", "x=0,0,0"]);
    let (_, dz) = closed_form(&[0.0; 3], &[1.0, 1.0]);
    assert_close(&floats(&half["tangents"][1]), &[dz]);
    let obj = dir.file("t.json", r#"{"x": [0, 0, 0], "w": [1, 1]}"#);
    let from_file = run_json("jvp", &two, &["--ts", &obj]);
    assert_eq!(from_file, half);
    // --wrt moves only the inputs named, a data input among them.
    let only_s = run_json("jvp", &two, &["--wrt", "s", "--t", "s=2"]);
    let want: Vec<f64> = X.iter().map(|x| x.exp() * 2.0).collect();
    assert_close(&floats(&only_s["tangents"][0]), &want);
    assert_eq!(floats(&only_s["tangents"][1]), [0.0]);
}

#[test]
fn text_output_and_show() {
    let (_dir, two) = write("text", TWO);
    let mut args = vec!["jvp", two.as_str()];
    args.extend_from_slice(&INPUTS);
    let o = adjit(&args);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.contains("0: f64[3] = "), "{text}");
    assert!(text.contains("tangent 1: f64[] = "), "{text}");
    assert!(
        text.contains("tangent 2: f64[3] = [0.0, 0.0, 0.0]"),
        "{text}"
    );
    let o = adjit(&["show", &two, "--jvp"]);
    let shown = stdout(&o);
    assert!(o.status.success());
    assert!(shown.contains("func @two.jvp(x: f64[3], w: f64[2], data s: f64[], data t_x: f64[3], data t_w: f64[2])"), "{shown}");
}

#[test]
fn bad_tangents_are_clear_errors() {
    let (_dir, two) = write("errors", TWO);
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["jvp".into(), two.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: [(&[&str], &str); 5] = [
        (
            &["--t", "nope=1"],
            "@two has no tangent 'nope' (it has: x, w)",
        ),
        (&["--t", "s=1"], "@two has no tangent 's'"),
        (&["--t", "x=1,2"], "tangent 'x'"),
        (
            &["--t", "x=1,1,1", "--t", "x=2,2,2"],
            "tangent 'x' is given twice",
        ),
        (&["--wrt", "m"], "has no input 'm'"),
    ];
    for (extra, want) in cases {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, 1, want);
    }
}
