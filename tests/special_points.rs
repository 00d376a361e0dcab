//! Second derivatives at the special points of `pow`, where the first-order rule takes a
//! convention (README, "Differentiation"): `d/da = 0` where `b = 0` and `d/db = 0` where
//! `a = 0`. The hvp there must be finite and follow the same conventions, in both executors.

use adjit::call::Executor;
use adjit::ir::Builder;
use adjit::{ad, interp, jit};

/// `(value, grad, hvp)` of `pow(a, b)` at `(a, b)` along `(va, vb)`, interpreted and compiled
/// (which must agree bit for bit).
fn pow_hvp(a: f64, b: f64, va: f64, vb: f64) -> Vec<Vec<f64>> {
    pow_hvp_in(ad::HvpMode::DEFAULT, a, b, va, vb)
}

/// `pow_hvp` in the given hvp mode.
fn pow_hvp_in(mode: ad::HvpMode, a: f64, b: f64, va: f64, vb: f64) -> Vec<Vec<f64>> {
    let bld = Builder::new("p");
    let (x, y) = (bld.param("a", &[]), bld.param("b", &[]));
    let f = bld.finish(&[x.pow(y)]).unwrap();
    let h = ad::hvp_with(&f, None, mode).unwrap();
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
    for mode in ad::HvpMode::ALL {
        for (a, b) in [(0.0, 0.0), (0.0, 1.0), (0.0, 3.0), (2.0, 0.0)] {
            let out = pow_hvp_in(mode, a, b, 1.0, 1.0);
            let hv = [out[3][0], out[4][0]];
            assert!(hv.iter().all(|x| x.is_finite()), "a={a}, b={b}: hvp {hv:?}");
        }
    }
    // At b = 0, df/db = log(a) a^b is smooth: d/da of it is 1/a, and d2/db2 = log(a)^2. The
    // other mixed order, d/db of df/da, is 0 there by the convention, as in JAX. So the
    // Hessian is not symmetric here: reverse over reverse gives (H v)_a = d/da (df/db) v_b,
    // forward over reverse (as JAX's jvp of grad) d/db (df/da) v_b.
    let log2 = 2f64.ln();
    for (mode, mixed) in [(ad::HvpMode::RevRev, 0.5), (ad::HvpMode::FwdRev, 0.0)] {
        let out = pow_hvp_in(mode, 2.0, 0.0, 0.0, 1.0);
        assert!((out[3][0] - mixed).abs() < 1e-15, "{mode}: {:?}", out[3]);
        assert!(
            (out[4][0] - log2 * log2).abs() < 1e-15,
            "{mode}: {:?}",
            out[4]
        );
    }
}
