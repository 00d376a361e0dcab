//! The shipped scan models: `pendulum_scan` is `pendulum` (value, gradient and hvp to 1e-13,
//! interpreted and compiled), and the gradients, hvps and dense Jacobians of `pendulum_scan`,
//! `pendulum_long` and `rnn` pass the finite-difference check.

mod common;

use adjit::call::Executor;
use adjit::check::{check, CheckOptions};
use adjit::ir::{parse, Func};
use adjit::{ad, interp, jit, models};
use common::max_rel_diff;

fn model(name: &str) -> Func {
    parse(models::find(name).expect("shipped").text).expect("reads")
}

/// Results of `f` on `inputs`, interpreted and compiled (which agree bit for bit).
fn both(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let a = interp::eval(f, inputs).expect("interprets");
    let b = jit::compile(f)
        .expect("compiles")
        .eval(inputs)
        .expect("runs");
    let bits = |r: &[Vec<f64>]| -> Vec<u64> { r.concat().iter().map(|x| x.to_bits()).collect() };
    assert_eq!(
        bits(&a),
        bits(&b),
        "@{}: JIT and interpreter differ",
        f.name
    );
    a
}

fn assert_close(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let d = max_rel_diff(g, w);
        assert!(d <= 1e-13, "{what}: result {k} differs by {d:e}");
    }
}

#[test]
fn pendulum_scan_is_pendulum_to_second_order() {
    let (scan, unrolled) = (model("pendulum_scan"), model("pendulum"));
    for seed in [0, 1] {
        let x = adjit::inputs::defaults(&unrolled, seed);
        assert_close(&both(&scan, &x), &both(&unrolled, &x), "value");
        let (gs, gu) = (
            ad::grad(&scan, None).unwrap(),
            ad::grad(&unrolled, None).unwrap(),
        );
        assert_close(&both(&gs, &x), &both(&gu, &x), "gradient");
        let (hs, hu) = (
            ad::hvp(&scan, None).unwrap(),
            ad::hvp(&unrolled, None).unwrap(),
        );
        let xv = adjit::inputs::defaults(&hu, seed + 10);
        assert_close(&both(&hs, &xv), &both(&hu, &xv), "hvp");
    }
}

#[test]
fn the_scan_models_pass_the_difference_check() {
    for name in ["pendulum_scan", "pendulum_long", "rnn"] {
        let f = model(name);
        let inputs = adjit::inputs::defaults(&f, 0);
        let opts = CheckOptions {
            coordinates: 2,
            directions: 2,
            seed: 0,
        };
        let r = check(&f, None, &inputs, &opts).expect("checks");
        let parts = [
            (&r.gradient, "gradient"),
            (&r.hvp, "hvp"),
            (&r.jacobian, "jacobian"),
        ];
        for (part, what) in parts {
            assert!(
                part.compared >= 4,
                "{name} {what}: compared {}",
                part.compared
            );
            assert!(
                part.worst.error <= 1e-6,
                "{name} {what}: error {:e} at {}",
                part.worst.error,
                part.worst.at
            );
        }
    }
}
