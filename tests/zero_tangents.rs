//! A zero tangent or cotangent contributes zero through every rule whose partial derivative
//! can be infinite or NaN (`sqrt`, `log`, `log1p`, `asin`, `acos`, `div`, `pow`, `atan2`): they
//! multiply by the partial with `azmul`. So a dense Jacobian's entries along other inputs stay
//! exact where one partial is not finite, forward and reverse mode agree, and a branch that a
//! `select` discards passes no NaN back. `azmul` has the product's derivatives, so the second
//! order stays right where a cotangent is zero but its tangent is not, and a discarded branch
//! stays zero at second order in both hvp modes.

mod common;

use adjit::ir::{Binary, Builder, Func, Op, Var};
use adjit::ops::binary::azmul;
use adjit::{ad, interp};
use common::agree::{check_agrees, difference};

/// `f` on `inputs` by the interpreter, after checking that compiled code, in both tiers,
/// agrees bit for bit.
fn run(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    check_agrees(&f.name, f, inputs);
    interp::eval(f, inputs).unwrap()
}

/// Bit for bit, NaN matching NaN.
fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    difference(a, b) == 0.0
}

#[test]
fn azmul_is_a_product_with_an_absolute_zero() {
    let inf = f64::INFINITY;
    #[rustfmt::skip]
    let pairs = [
        (0.0, inf, 0.0), (-0.0, f64::NAN, 0.0), (0.0, -3.0, 0.0), (-0.0, -inf, 0.0),
        (f64::NAN, 0.0, 0.0), (inf, -0.0, 0.0), (2.0, inf, inf), (-3.0, 2.0, -6.0),
        (f64::NAN, 2.0, f64::NAN),
    ];
    // Nine elements: pairs of lanes and a scalar tail in compiled code.
    let b = Builder::new("az");
    let (x, y) = (b.param("a", &[9]), b.param("b", &[9]));
    let f = b.finish(&[x.azmul(y)]).unwrap();
    let a: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let c: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let out = run(&f, &[a, c]);
    for (k, &(a, c, want)) in pairs.iter().enumerate() {
        let got = out[0][k];
        // NaN payloads aside (as everywhere): the reference may be folded at compile time.
        let reference = azmul(a, c);
        let same = got.to_bits() == reference.to_bits() || (got.is_nan() && reference.is_nan());
        assert!(same, "azmul({a}, {c}) = {got}, the reference {reference}");
        let ok = got.to_bits() == want.to_bits() || (want.is_nan() && got.is_nan());
        assert!(ok, "azmul({a}, {c}) = {got}, expected {want}");
    }
    // One element: the scalar path alone.
    let b = Builder::new("az1");
    let (x, y) = (b.param("a", &[]), b.param("b", &[]));
    let f = b.finish(&[x.azmul(y)]).unwrap();
    assert_eq!(run(&f, &[vec![-0.0], vec![inf]])[0][0].to_bits(), 0);
}

#[test]
fn azmul_by_a_zero_constant_simplifies_exactly() {
    // azmul(0, x) and azmul(x, 0) are +0 whatever x is; azmul(2, x) stays (x = -0 gives +0).
    let b = adjit::simplify::simplifying_builder("s", 4);
    let x = b.param("x", &[3]);
    let left = b.splat(0.0, &[3]).azmul(x);
    let right = x.azmul(b.splat(-0.0, &[3]));
    let twice = b.splat(2.0, &[3]).azmul(x);
    let f = b.finish(&[left, right, twice]).unwrap();
    let azmuls = f
        .insts
        .iter()
        .filter(|i| matches!(i.op, Op::Binary(Binary::Azmul)))
        .count();
    assert_eq!(azmuls, 1, "{f}");
    let out = run(&f, &[vec![f64::INFINITY, f64::NAN, -0.0]]);
    for zeros in &out[..2] {
        assert!(zeros.iter().all(|z| z.to_bits() == 0), "{zeros:?}");
    }
    assert_eq!(out[2][0], f64::INFINITY);
    assert!(out[2][1].is_nan());
    assert_eq!(out[2][2].to_bits(), 0);
}

/// The dense Jacobian of `f` at `inputs` in forward and in reverse mode.
fn jacobians(f: &Func, inputs: &[Vec<f64>]) -> [Vec<Vec<f64>>; 2] {
    let fwd = ad::jacobian(f, None, ad::JacobianMode::Forward).unwrap();
    let rev = ad::jacobian(f, None, ad::JacobianMode::Reverse).unwrap();
    [run(&fwd, inputs), run(&rev, inputs)]
}

/// A function of `p: f64[2]` and `z: f64[]`: `g(p0, p1) + z^2` (one scalar result) where `g` is
/// evaluated at a point where one of its partials is not finite.
fn with_square(name: &str, g: impl for<'b> Fn(Var<'b>, Var<'b>) -> Var<'b>) -> Func {
    let b = Builder::new(name);
    let (p, z) = (b.param("p", &[2]), b.param("z", &[]));
    let p0 = p.slice(&[0], &[1]).reshape(&[]);
    let p1 = p.slice(&[1], &[2]).reshape(&[]);
    b.finish(&[g(p0, p1) + z * z]).unwrap()
}

#[test]
fn jacobians_along_other_inputs_stay_exact_where_a_partial_is_not_finite() {
    // (function, p, the Jacobian by p expected from its definition, NaN where undefined).
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let cases: Vec<(Func, [f64; 2], [f64; 2])> = vec![
        // atan2 has no derivative at the origin (NaN by convention).
        (
            with_square("atan2", |a, b| a.atan2(b)),
            [0.0, 0.0],
            [nan, nan],
        ),
        // sqrt'(0) = inf.
        (
            with_square("sqrt", |a, b| a.sqrt() + b),
            [0.0, 1.0],
            [inf, 1.0],
        ),
        // pow of a negative base: d/da = b a^(b-1) = -4, d/db = a^b log(a) = NaN.
        (
            with_square("pow", |a, b| a.pow(b)),
            [-2.0, 2.0],
            [-4.0, nan],
        ),
        // asin'(1) = inf, acos'(-1) = -inf.
        (
            with_square("asin", |a, b| a.asin() + b.acos()),
            [1.0, -1.0],
            [inf, -inf],
        ),
        // log'(0) = inf.
        (
            with_square("log", |a, b| a.log() + b),
            [0.0, 3.0],
            [inf, 1.0],
        ),
    ];
    for (f, p, dp) in cases {
        let inputs = [p.to_vec(), vec![3.0]];
        let [fwd, rev] = jacobians(&f, &inputs);
        assert!(
            same_bits(&fwd, &rev),
            "{}: forward {fwd:?}, reverse {rev:?}",
            f.name
        );
        // Outputs: the value, J by p, J by z.
        assert_eq!(fwd[2], vec![6.0], "{}: d/dz", f.name);
        for (k, (&got, &want)) in fwd[1].iter().zip(&dp).enumerate() {
            let ok = got == want || (got.is_nan() && want.is_nan());
            assert!(ok, "{}: d/dp{k} = {got}, expected {want}", f.name);
        }
    }
}

#[test]
fn results_with_a_non_finite_partial_leave_the_other_results_rows_exact() {
    // (sqrt(x), sum(x^2)) at x = (0, 1): reverse mode seeds both results at once, so the
    // second result's row met sqrt's infinite partial times a zero cotangent.
    let b = Builder::new("two");
    let x = b.param("x", &[2]);
    let f = b.finish(&[x.sqrt(), (x * x).sum()]).unwrap();
    let [fwd, rev] = jacobians(&f, &[vec![0.0, 1.0]]);
    assert!(same_bits(&fwd, &rev), "forward {fwd:?}, reverse {rev:?}");
    assert_eq!(fwd[3], vec![0.0, 2.0]);
    assert_eq!(fwd[2], vec![f64::INFINITY, 0.0, 0.0, 0.5]);
}

#[test]
fn branches_a_select_discards_pass_back_zero() {
    // where(x > 0, log(x), 0) and where(b != 0, a / b, 0) at the masked points.
    let b = Builder::new("masked");
    let (x, a, d) = (b.param("x", &[2]), b.param("a", &[2]), b.param("d", &[2]));
    let zero = b.splat(0.0, &[2]);
    let safe_log = b.select(x.gt(zero), x.log(), zero);
    let safe_div = b.select(d.ne(zero), a / d, zero);
    let f = b.finish(&[(safe_log + safe_div).sum()]).unwrap();
    let g = ad::grad(&f, None).unwrap();
    let out = run(&g, &[vec![0.0, 2.0], vec![1.0, 3.0], vec![0.0, 4.0]]);
    assert_eq!(out[1], vec![0.0, 0.5], "d/dx");
    assert_eq!(out[2], vec![0.0, 0.25], "d/da");
    assert_eq!(out[3], vec![0.0, -3.0 / 16.0], "d/dd");
}

/// The expression squared in the second-order cases.
type Inner = dyn for<'b> Fn(Var<'b>) -> Var<'b>;

#[test]
fn a_zero_cotangent_keeps_its_tangent_at_second_order() {
    // f(x) = (sqrt(x) - 1)^2 at x = 1: the cotangent reaching sqrt is 2 (sqrt(x) - 1) = 0, but
    // its tangent is not, so f''(1) = 1/2 comes through azmul's product rule. Likewise
    // (log x)^2, (1/x - 1)^2 and (atan2(x, 1) - pi/4)^2 at 1; and in the Hessian, which is
    // forward over reverse in vector mode.
    let cases: Vec<(&str, Box<Inner>, f64)> = vec![
        ("sqrt", Box::new(|x| x.sqrt() - 1.0), 0.5),
        ("log", Box::new(|x| x.log()), 2.0),
        ("div", Box::new(|x| (x * 0.0 + 1.0) / x - 1.0), 2.0),
        (
            "atan2",
            Box::new(|x| x.atan2(x * 0.0 + 1.0) - std::f64::consts::FRAC_PI_4),
            0.5,
        ),
    ];
    for (name, inner, want) in cases {
        let b = Builder::new(name);
        let x = b.param("x", &[]);
        let u = inner(x);
        let f = b.finish(&[u * u]).unwrap();
        for mode in ad::HvpMode::ALL {
            let h = ad::hvp_with(&f, None, mode).unwrap();
            let out = run(&h, &[vec![1.0], vec![1.0]]);
            assert!(
                (out[2][0] - want).abs() < 1e-15,
                "{name}, {mode}: hvp {:?}, expected {want}",
                out[2]
            );
        }
        let hess = ad::hessian(&f, None).unwrap();
        let out = run(&hess, &[vec![1.0]]);
        assert!((out[2][0] - want).abs() < 1e-15, "{name}: Hessian {out:?}");
    }
}

#[test]
fn branches_a_select_discards_pass_back_zero_at_second_order() {
    // where(x > 0, u(x), 0) at x = 0, where u's first and second partials are infinite: the
    // hvp in both modes and the Hessian are zero, as the gradient is.
    let cases: Vec<(&str, Box<Inner>)> = vec![
        ("log", Box::new(|x| x.log())),
        ("sqrt", Box::new(|x| x.sqrt())),
        ("div", Box::new(|x| (x * 0.0 + 1.0) / x)),
        // A constant numerator: the divisor's rule alone.
        ("recip", Box::new(|x| x.builder().splat(1.0, &[]) / x)),
        ("asin", Box::new(|x| (x + 1.0).asin())),
        ("pow", Box::new(|x| x.pow(x + 0.5))),
    ];
    for (name, inner) in cases {
        let b = Builder::new(name);
        let x = b.param("x", &[]);
        let zero = b.splat(0.0, &[]);
        let f = b.finish(&[b.select(x.gt(zero), inner(x), zero)]).unwrap();
        for mode in ad::HvpMode::ALL {
            let h = ad::hvp_with(&f, None, mode).unwrap();
            let out = run(&h, &[vec![0.0], vec![1.0]]);
            assert_eq!(
                (out[1][0], out[2][0]),
                (0.0, 0.0),
                "{name}, {mode}: {out:?}"
            );
        }
        let out = run(&ad::hessian(&f, None).unwrap(), &[vec![0.0]]);
        assert_eq!(out[2], vec![0.0], "{name}: Hessian {out:?}");
    }
}
