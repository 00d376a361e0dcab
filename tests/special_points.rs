//! Second derivatives at the special points of `pow`, where the first-order rule takes a
//! convention (README, "Differentiation"): `d/da = 0` where `b = 0` and `d/db = 0` where
//! `a = 0`. The hvp there must be finite and follow the same conventions, in both executors.

use adjit::call::Executor;
use adjit::ir::Builder;
use adjit::{ad, interp, jit};

/// `(value, grad, hvp)` of `pow(a, b)` at `(a, b)` along `(va, vb)`, interpreted and compiled
/// (which must agree bit for bit).
fn pow_hvp(a: f64, b: f64, va: f64, vb: f64) -> Vec<Vec<f64>> {
    let bld = Builder::new("p");
    let (x, y) = (bld.param("a", &[]), bld.param("b", &[]));
    let f = bld.finish(&[x.pow(y)]).unwrap();
    let h = ad::hvp(&f, None).unwrap();
    let inputs = [vec![a], vec![b], vec![va], vec![vb]];
    let interpreted = interp::eval(&h, &inputs).unwrap();
    let out = jit::compile(&h).unwrap().eval(&inputs).unwrap();
    for (i, (p, q)) in interpreted.iter().zip(&out).enumerate() {
        let same = p.iter().zip(q).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "output {i}: interpreter {p:?}, compiled {q:?}");
    }
    interpreted
}

#[test]
fn pow_hvp_at_a_zero_matches_jax() {
    // f = a^b at (0, 2): grad (0, 0) by the conventions, H = [[2, 0], [0, 0]].
    let out = pow_hvp(0.0, 2.0, 1.0, 0.0);
    assert_eq!(out[1..], [vec![0.0], vec![0.0], vec![2.0], vec![0.0]]);
    let out = pow_hvp(0.0, 2.0, 0.0, 1.0);
    assert_eq!(out[3..], [vec![0.0], vec![0.0]]);
}

#[test]
fn pow_hvp_is_finite_at_every_special_point() {
    // (Negative a has no real log: d/db is NaN there, as at first order.)
    for (a, b) in [(0.0, 0.0), (0.0, 1.0), (0.0, 3.0), (2.0, 0.0)] {
        let out = pow_hvp(a, b, 1.0, 1.0);
        let hv = [out[3][0], out[4][0]];
        assert!(hv.iter().all(|x| x.is_finite()), "a={a}, b={b}: hvp {hv:?}");
    }
    // At b = 0, df/db = log(a) a^b is smooth: d2/da db = 1/a and d2/db2 = log(a)^2. (The
    // other mixed order, d/db of df/da, is 0 there by the convention, as in JAX.)
    let out = pow_hvp(2.0, 0.0, 0.0, 1.0);
    assert!((out[3][0] - 0.5).abs() < 1e-15, "{:?}", out[3]);
    let log2 = 2f64.ln();
    assert!((out[4][0] - log2 * log2).abs() < 1e-15, "{:?}", out[4]);
}
