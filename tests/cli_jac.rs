//! `adjit jac` and `adjit hessian`: dense Jacobians of a function with several results (both
//! modes, both engines) against a closed form, the Hessian against its closed form, the JSON
//! and text layouts, and clean errors (bad mode, unknown input, non-scalar hessian).

mod common;

use common::cli::{adjit, fails, floats, json, stdout, Scratch, TWO};

const INPUTS: [&str; 6] = ["-i", "x=0.3,-0.7,1.1", "-i", "w=0.4,-0.9", "-i", "s=1.5"];
const X: [f64; 3] = [0.3, -0.7, 1.1];
const W: [f64; 2] = [0.4, -0.9];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-13 * a.abs().max(b.abs()).max(1.0)
}

fn expected() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = 1.5;
    let z0: f64 = X.iter().map(|x| x * x).sum();
    let z1: f64 = W.iter().map(|w| w * w).sum();
    // J_yx: diag(exp(x) s); J_yw: zeros; J_zx: 2 x sin(z1); J_zw: z0 cos(z1) 2 w.
    let mut yx = vec![0.0; 9];
    for i in 0..3 {
        yx[i * 3 + i] = X[i].exp() * s;
    }
    let zx = X.iter().map(|x| 2.0 * x * z1.sin()).collect();
    let zw = W.iter().map(|w| z0 * z1.cos() * 2.0 * w).collect();
    (yx, vec![0.0; 6], zx, zw)
}

#[test]
fn jacobian_in_every_mode_and_engine() {
    let dir = Scratch::new("jac-modes");
    let path = dir.file("two.ir", TWO);
    let (yx, yw, zx, zw) = expected();
    for mode in ["fwd", "rev", "auto"] {
        for interp in [false, true] {
            let mut args = vec!["jac", &path, "--mode", mode, "--json"];
            args.extend_from_slice(&INPUTS);
            if interp {
                args.push("--interp");
            }
            let j = json(&adjit(&args));
            assert_eq!(j["outputs"].as_array().unwrap().len(), 2);
            let jac = j["jacobian"].as_array().unwrap();
            assert_eq!(jac.len(), 2, "one object per result");
            // Shapes: [3] + [3], [3] + [2], [] + [3], [] + [2].
            assert_eq!(jac[0]["x"].as_array().unwrap().len(), 3);
            assert_eq!(jac[0]["w"][0].as_array().unwrap().len(), 2);
            for (got, want) in [
                (&jac[0]["x"], &yx),
                (&jac[0]["w"], &yw),
                (&jac[1]["x"], &zx),
                (&jac[1]["w"], &zw),
            ] {
                let got = floats(got);
                assert_eq!(got.len(), want.len());
                assert!(
                    got.iter().zip(want).all(|(a, b)| close(*a, *b)),
                    "{mode}: {got:?}"
                );
            }
        }
    }
}

#[test]
fn jacobian_text_and_wrt() {
    let dir = Scratch::new("jac-text");
    let path = dir.file("two.ir", TWO);
    let mut args = vec!["jac", &path, "--wrt", "w"];
    args.extend_from_slice(&INPUTS);
    let out = stdout(&adjit(&args));
    assert!(
        out.contains("jacobian 0 w: f64[3,2] = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]"),
        "{out}"
    );
    assert!(out.contains("jacobian 1 w: f64[2] = "), "{out}");
    assert!(!out.contains(" x:"), "{out}");
}

#[test]
fn hessian_of_a_scalar_function() {
    let dir = Scratch::new("jac-hessian");
    let path = dir.file(
        "z.ir",
        &TWO.replace("return y, z", "return z")
            .replace("(f64[3], f64[])", "(f64[])"),
    );
    let mut args = vec!["hessian", path.as_str(), "--json"];
    args.extend_from_slice(&INPUTS);
    let j = json(&adjit(&args));
    let (s1, c1) = {
        let z1: f64 = W.iter().map(|w| w * w).sum();
        (z1.sin(), z1.cos())
    };
    let z0: f64 = X.iter().map(|x| x * x).sum();
    // H_xx = 2 sin(z1) I; H_xw[i][j] = 4 x_i w_j cos(z1).
    let hxx = floats(&j["hessian"]["x"]["x"]);
    let hxw = floats(&j["hessian"]["x"]["w"]);
    let hwx = floats(&j["hessian"]["w"]["x"]);
    for i in 0..3 {
        for k in 0..3 {
            let want = if i == k { 2.0 * s1 } else { 0.0 };
            assert!(close(hxx[i * 3 + k], want));
        }
        for k in 0..2 {
            let want = 4.0 * X[i] * W[k] * c1;
            assert!(close(hxw[i * 2 + k], want), "{} vs {want}", hxw[i * 2 + k]);
            assert!(close(hwx[k * 3 + i], want));
        }
    }
    assert!(close(j["value"].as_f64().unwrap(), z0 * s1));
    assert_eq!(floats(&j["grad"]["w"]).len(), 2);
    let hww = floats(&j["hessian"]["w"]["w"]);
    assert_eq!(hww.len(), 4);
    let mut args = vec!["hessian", path.as_str(), "--interp"];
    args.extend_from_slice(&INPUTS);
    let out = stdout(&adjit(&args));
    assert!(out.contains("hessian x w: f64[3,2] = "), "{out}");
    assert!(out.starts_with("value: f64[] = "), "{out}");
}

#[test]
fn clean_errors() {
    let dir = Scratch::new("jac-errors");
    let path = dir.file("two.ir", TWO);
    fails(
        &["jac", &path, "--mode", "sideways"],
        2,
        "invalid value 'sideways'",
    );
    fails(&["jac", &path, "--wrt", "nope"], 1, "has no input 'nope'");
    fails(
        &["hessian", &path],
        1,
        "hessian needs one scalar f64 result",
    );
    fails(
        &["hessian", &path, "--wrt", "s"],
        1,
        "hessian needs one scalar f64 result",
    );
    fails(
        &["jac", "ir/models/bratu.ir", "--wrt", "lam,u,zz"],
        1,
        "has no input 'zz'",
    );
}
