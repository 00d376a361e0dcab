//! `adjit hvp --mode`: forward over reverse and reverse over reverse give the same result to
//! 1e-13, compiled code equals the interpreter bit for bit in each mode, no `--mode` is the
//! default mode, and a bad mode is a usage error.

mod common;

use adjit::ad::HvpMode;
use common::cli::{adjit, fails, json, stdout};
use serde_json::Value as Json;

/// Every number of a JSON value (nested arrays, objects in key order), flattened.
fn numbers(j: &Json, out: &mut Vec<f64>) {
    match j {
        Json::Number(n) => out.push(n.as_f64().expect("a number")),
        Json::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Json::Object(o) => o.values().for_each(|x| numbers(x, out)),
        other => panic!("not a number: {other}"),
    }
}

fn flat(j: &Json) -> Vec<f64> {
    let mut out = Vec::new();
    numbers(j, &mut out);
    out
}

#[test]
fn both_modes_agree_and_compile_bit_for_bit() {
    for m in [
        "tiny",
        "rosenbrock",
        "logistic",
        "mlp",
        "pendulum_scan",
        "rnn",
    ] {
        let file = format!("ir/models/{m}.ir");
        let run = |mode: Option<&str>, interp: bool| {
            let mut args = vec!["hvp", file.as_str(), "--json"];
            if let Some(mode) = mode {
                args.extend(["--mode", mode]);
            }
            if interp {
                args.push("--interp");
            }
            let o = adjit(&args);
            json(&o);
            stdout(&o)
        };
        let mut printed = Vec::new();
        for mode in ["fwdrev", "revrev"] {
            let compiled = run(Some(mode), false);
            // Printed in the shortest form that reads back to the same bits.
            assert_eq!(compiled, run(Some(mode), true), "{m} ({mode})");
            printed.push(compiled);
        }
        let default = run(None, false);
        assert_eq!(default, run(Some(HvpMode::DEFAULT.name()), false), "{m}");
        let [fr, rr] = [&printed[0], &printed[1]].map(|p| serde_json::from_str::<Json>(p).unwrap());
        assert_eq!(fr["value"], rr["value"], "{m}");
        assert_eq!(fr["grad"], rr["grad"], "{m}");
        let (a, b) = (flat(&fr["hvp"]), flat(&rr["hvp"]));
        let scale = a.iter().chain(&b).fold(0.0f64, |s, x| s.max(x.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |s, (x, y)| s.max((x - y).abs()));
        assert!(
            a.len() == b.len() && diff <= 1e-13 * scale,
            "{m}: {diff:e} of {scale:e}"
        );
    }
}

#[test]
fn a_bad_mode_is_a_usage_error() {
    for bad in ["fast", "FwdRev", ""] {
        let given = format!("--mode={bad}");
        fails(
            &["hvp", "ir/models/tiny.ir", &given],
            2,
            &format!("'{bad}' is not a mode (fwdrev, revrev)"),
        );
    }
    fails(
        &["hvp", "ir/models/tiny.ir", "--mode"],
        2,
        "a value is required",
    );
}
