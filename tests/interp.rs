//! The tape interpreter: IEEE special values, workspace planning, and a function of one million
//! instructions (no recursion over the graph anywhere on the way). Call checking, the same for
//! both executors, is tested through `call::Executor` in `jit.rs`.

use adjit::interp::{eval, Program};
use adjit::ir::{self, Builder};
use adjit::ops::binary::{maximum, minimum};

#[test]
fn ieee_specials_propagate_as_documented() {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -2.5,
    ];
    let n = specials.len();
    let b = Builder::new("specials");
    let x = b.param("x", &[n * n]);
    let y = b.param("y", &[n * n]);
    let f = b
        .finish(&[x * y, x.max(y), x.min(y), x / y, x - y, x.pow(y), x.lt(y)])
        .unwrap();
    let xs: Vec<f64> = (0..n * n).map(|i| specials[i / n]).collect();
    let ys: Vec<f64> = (0..n * n).map(|i| specials[i % n]).collect();
    let out = eval(&f, &[xs.clone(), ys.clone()]).unwrap();
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    for i in 0..n * n {
        let (a, b) = (xs[i], ys[i]);
        assert!(same(out[0][i], a * b), "{a} * {b}");
        assert!(same(out[1][i], maximum(a, b)), "max({a}, {b})");
        assert!(same(out[2][i], minimum(a, b)), "min({a}, {b})");
        assert!(same(out[3][i], a / b), "{a} / {b}");
        assert!(same(out[4][i], a - b), "{a} - {b}");
        assert!(same(out[5][i], a.powf(b)), "pow({a}, {b})");
        assert_eq!(out[6][i], if a < b { 1.0 } else { 0.0 }, "{a} < {b}");
    }
    // The documented cases, spelled out.
    let at = |a: usize, b: usize| a * n + b;
    assert!(out[0][at(3, 1)].is_nan(), "0 * inf is NaN");
    assert!(
        out[1][at(0, 5)].is_nan() && out[1][at(5, 0)].is_nan(),
        "max propagates NaN"
    );
    assert!(out[1][at(4, 3)].is_sign_positive(), "max(-0, +0) = +0");
    assert!(out[2][at(3, 4)].is_sign_negative(), "min(+0, -0) = -0");
}

#[test]
fn workspace_reuses_dead_buffers() {
    let b = Builder::new("chain");
    let mut x = b.param("x", &[100]);
    for _ in 0..1000 {
        x = x.sin().exp();
    }
    let f = b.finish(&[x.sum()]).unwrap();
    let p = Program::new(&f).unwrap();
    assert!(
        p.workspace().len() <= 4 * 100,
        "workspace of {} elements for a chain",
        p.workspace().len()
    );
}

#[test]
fn reshape_shares_storage_and_results_survive() {
    let b = Builder::new("r");
    let x = b.param("x", &[2, 3]);
    let r = x.reshape(&[6]);
    let s = r.exp();
    let f = b.finish(&[r, s, x.t()]).unwrap();
    let xs = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    let out = eval(&f, std::slice::from_ref(&xs)).unwrap();
    assert_eq!(out[0], xs);
    let exp = adjit::ops::unary::adjit_exp;
    assert_eq!(out[1], xs.iter().map(|&v| exp(v)).collect::<Vec<_>>());
    assert_eq!(out[2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}

#[test]
fn a_million_instructions_parse_verify_print_and_run() {
    const N: usize = 1_000_000;
    let mut text = String::with_capacity(N * 32);
    text.push_str("func @big(x: f64[]) -> (f64[]) {\n    v1: f64[] = sin x\n");
    for k in 2..=N {
        let line = if k % 2 == 0 {
            format!("    v{k}: f64[] = add v{}, x\n", k - 1)
        } else {
            format!("    v{k}: f64[] = sin v{}\n", k - 1)
        };
        text.push_str(&line);
    }
    text.push_str(&format!("    return v{N}\n}}\n"));
    let f = ir::parse(&text).unwrap();
    assert_eq!(f.insts.len(), N);
    ir::verify(&f).unwrap();
    assert_eq!(f.to_string(), text);
    let x = 0.3f64;
    // The op's definition (libmvec's sin where the process has it, else the C library's).
    let sin = adjit::ops::unary::adjit_sin;
    let mut want = sin(x);
    for k in 2..=N {
        want = if k % 2 == 0 { want + x } else { sin(want) };
    }
    let got = eval(&f, &[vec![x]]).unwrap()[0][0];
    assert_eq!(got.to_bits(), want.to_bits());
}
