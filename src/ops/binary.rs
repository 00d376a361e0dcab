//! Elementwise ops of two or three operands: arithmetic, comparisons and `select`.
//!
//! Semantics, which the JIT reproduces exactly:
//! - Arithmetic is IEEE 754 binary64 with round-to-nearest; NaN and infinities propagate as the
//!   standard says (`0 * inf = NaN`, `inf - inf = NaN`, `1 / 0 = inf`).
//! - `max`/`min` are IEEE 754-2019 `maximum`/`minimum`: NaN if either operand is NaN, and
//!   `-0 < +0`, so `max(-0, +0) = +0` and `min(-0, +0) = -0`. (Rust's `f64::max` differs: it
//!   drops a NaN operand.)
//! - `pow` is the C library's `pow` (Rust's `powf`): `pow(x, 0) = 1` even for NaN `x`.
//! - `azmul a, b` is `a * b`, but `+0` wherever `a` or `b` is `±0`, even where the other is
//!   infinite or NaN.
//! - `atan2 y, x` is the C library's `atan2(y, x)`, in `[-pi, pi]`, with its signed zeros:
//!   `atan2(±0, +0) = ±0`, `atan2(±0, -0) = ±pi`.
//! - Comparisons with a NaN operand are false, except `ne`, which is true.
//! - `select c, a, b` takes `a` where `c` is true (stored as 1.0) and `b` where false (0.0).

use super::{refuse, times_partial, ShapeError};
use crate::ir::{Binary, Compare, DType, Op, Type, Var};

pub(crate) fn binary_shape(op: &Op, a: Type, b: Type) -> Result<Type, ShapeError> {
    if a.dtype != DType::F64 || b.dtype != DType::F64 {
        return Err(refuse(op, &[a, b], "operands must be f64"));
    }
    if a != b {
        return Err(refuse(
            op,
            &[a, b],
            "operands must have equal shapes (the IR does not broadcast implicitly)",
        ));
    }
    Ok(a)
}

pub(crate) fn compare_shape(op: &Op, a: Type, b: Type) -> Result<Type, ShapeError> {
    binary_shape(op, a, b).map(|t| t.with_dtype(DType::Bool))
}

pub(crate) fn select_shape(op: &Op, c: Type, a: Type, b: Type) -> Result<Type, ShapeError> {
    if c.dtype != DType::Bool {
        return Err(refuse(op, &[c, a, b], "the condition must be bool"));
    }
    if a != b {
        return Err(refuse(
            op,
            &[c, a, b],
            "both branches must have the same type",
        ));
    }
    if c.shape != a.shape {
        return Err(refuse(
            op,
            &[c, a, b],
            "the condition must have the branches' shape",
        ));
    }
    Ok(a)
}

pub extern "C" fn adjit_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// `atan2(y, x)`: the C library's (Rust's `f64::atan2`).
pub extern "C" fn adjit_atan2(y: f64, x: f64) -> f64 {
    y.atan2(x)
}

/// IEEE 754-2019 `maximum`: NaN-propagating, and `+0` above `-0`.
pub fn maximum(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else if b > a {
        b
    } else if a == b {
        // Equal, possibly zeros of opposite sign: +0 wins.
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else {
        f64::NAN
    }
}

/// IEEE 754-2019 `minimum`: NaN-propagating, and `-0` below `+0`.
pub fn minimum(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else if b < a {
        b
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else {
        f64::NAN
    }
}

/// The scalar definition of every binary op.
pub fn apply(op: Binary, a: f64, b: f64) -> f64 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Pow => adjit_pow(a, b),
        Binary::Max => maximum(a, b),
        Binary::Min => minimum(a, b),
        Binary::Atan2 => adjit_atan2(a, b),
        Binary::Azmul => azmul(a, b),
    }
}

/// `a b`, but `+0` where either is zero (whatever the other is, infinities and NaN included).
pub fn azmul(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        a * b
    }
}

/// The scalar definition of every comparison, as 1.0 (true) or 0.0 (false).
pub fn compare(op: Compare, a: f64, b: f64) -> f64 {
    let r = match op {
        Compare::Lt => a < b,
        Compare::Le => a <= b,
        Compare::Gt => a > b,
        Compare::Ge => a >= b,
        Compare::Eq => a == b,
        Compare::Ne => a != b,
    };
    if r {
        1.0
    } else {
        0.0
    }
}

fn zip_map(a: &[f64], b: &[f64], out: &mut [f64], f: impl Fn(f64, f64) -> f64) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

/// `out[i] = a[i] op b[i]`.
pub fn kernel(op: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
    match op {
        Binary::Add => zip_map(a, b, out, |x, y| x + y),
        Binary::Sub => zip_map(a, b, out, |x, y| x - y),
        Binary::Mul => zip_map(a, b, out, |x, y| x * y),
        Binary::Div => zip_map(a, b, out, |x, y| x / y),
        Binary::Pow => zip_map(a, b, out, |x, y| adjit_pow(x, y)),
        Binary::Max => zip_map(a, b, out, maximum),
        Binary::Min => zip_map(a, b, out, minimum),
        Binary::Atan2 => zip_map(a, b, out, |x, y| adjit_atan2(x, y)),
        Binary::Azmul => zip_map(a, b, out, azmul),
    }
}

/// `out[i] = (a[i] op b[i]) as 0.0/1.0`.
pub fn compare_kernel(op: Compare, a: &[f64], b: &[f64], out: &mut [f64]) {
    zip_map(a, b, out, |x, y| compare(op, x, y));
}

/// `out[i] = if c[i] != 0 { a[i] } else { b[i] }`.
pub fn select_kernel(c: &[f64], a: &[f64], b: &[f64], out: &mut [f64]) {
    for (((o, &k), &x), &y) in out.iter_mut().zip(c).zip(a).zip(b) {
        *o = if k != 0.0 { x } else { y };
    }
}

/// The VJP of `y = a op b`: cotangents of `a` and `b` (each only if `need_a`/`need_b`).
///
/// Conventions: `max`/`min` give the whole cotangent to `a` at ties (`a >= b` for max,
/// `a <= b` for min), so `max(x, x)` has derivative 1. `pow(a, b)`: `d/da = b a^(b-1)`, taken
/// as 0 where `b = 0` (so `a^0` is flat even at `a = 0`); `d/db = y log(a)`, taken as 0 where
/// `a = 0`; for negative `a` it is NaN (the log is). Higher derivatives keep these conventions:
/// the hvp of `pow` at `a = 0` or `b = 0` is finite where the function is smooth in the other
/// argument. `atan2(a, b)`: `d/da = b / (a^2 + b^2)`, `d/db = -a / (a^2 + b^2)`, which is NaN at
/// the origin, where the angle has no limit (as in JAX, PyTorch and TensorFlow); across the cut
/// (`a = 0`, `b < 0`) the angle jumps by `2 pi`, but its derivative is the same on both sides.
/// `div`, `pow` and `atan2` multiply by their partials with `azmul`, so a zero cotangent (or
/// tangent) gives zero where a partial is infinite or NaN: `atan2` at the origin or `pow` of a
/// negative base leaves the derivatives along other inputs exact, and forward and reverse mode
/// agree. `azmul(a, b)` itself has the product's derivatives, `azmul(ta, b) + azmul(a, tb)`:
/// a zero on either side of each term absorbs the other, at every order (a discarded branch's
/// zero cotangent against an infinite partial's tangent, or a zero tangent against an infinite
/// cotangent).
pub fn vjp<'b>(
    op: Binary,
    a: Var<'b>,
    b: Var<'b>,
    y: Var<'b>,
    g: Var<'b>,
    need_a: bool,
    need_b: bool,
) -> [Option<Var<'b>>; 2] {
    let zero = || g.builder().splat(0.0, &g.shape());
    match op {
        Binary::Add => [Some(g), Some(g)],
        Binary::Sub => [Some(g), need_b.then(|| -g)],
        Binary::Mul => [need_a.then(|| g * b), need_b.then(|| g * a)],
        Binary::Azmul => [need_a.then(|| g.azmul(b)), need_b.then(|| g.azmul(a))],
        Binary::Div if !need_a => {
            // The divisor alone (a data numerator, or one operand's tangent): one product by
            // the partial `y / b` (itself zero-absorbing, for the second order), whose factors
            // are the primal's, so forward over reverse shares it.
            [
                None,
                Some(-times_partial(g, times_partial(y, super::recip(b)))),
            ]
        }
        Binary::Div => {
            let t = times_partial(g, super::recip(b));
            [Some(t), need_b.then(|| -times_partial(t, y))]
        }
        Binary::Pow => {
            // The branch a select discards gets a zero cotangent, which times an infinite
            // derivative would be NaN: so each discarded branch is computed at a harmless
            // point (b = 1, a = 1), and derivatives of this rule follow its conventions.
            let s = g.builder();
            let one = || s.splat(1.0, &g.shape());
            let da = need_a.then(|| {
                let b_zero = b.eq(zero());
                let b_safe = s.select(b_zero, one(), b);
                let partial = times_partial(b_safe, a.pow(b_safe - 1.0));
                times_partial(g, s.select(b_zero, zero(), partial))
            });
            let db = need_b.then(|| {
                let a_zero = a.eq(zero());
                let log_a = s.select(a_zero, one(), a).log();
                times_partial(g, s.select(a_zero, zero(), times_partial(y, log_a)))
            });
            [da, db]
        }
        Binary::Atan2 => {
            let r = a * a + b * b;
            [
                need_a.then(|| times_partial(g, b / r)),
                need_b.then(|| -times_partial(g, a / r)),
            ]
        }
        Binary::Max | Binary::Min => {
            let first = if op == Binary::Max { a.ge(b) } else { a.le(b) };
            let s = g.builder();
            [
                need_a.then(|| s.select(first, g, zero())),
                need_b.then(|| s.select(first, zero(), g)),
            ]
        }
    }
}

/// The VJP of `select c, a, b`: the mask gets nothing; each branch gets `g` where it was taken.
pub fn select_vjp<'b>(c: Var<'b>, g: Var<'b>, need_a: bool, need_b: bool) -> [Option<Var<'b>>; 2] {
    let s = g.builder();
    let zero = || s.splat(0.0, &g.shape());
    [
        need_a.then(|| s.select(c, g, zero())),
        need_b.then(|| s.select(c, zero(), g)),
    ]
}

/// The JVP of `y = a op b` along tangents `ta`, `tb` (`None`: zero). The Jacobian of each
/// operand is diagonal, so its term is that operand's VJP rule applied to its tangent: the
/// conventions (ties of `max`/`min`, `pow` at `a = 0` or `b = 0`) are the VJP's exactly. A
/// quotient with both tangents is `(ta - y tb) / b`, one product by `1 / b` where the two
/// terms take two (forward-over-reverse meets it in every `g / b` of a gradient).
pub fn jvp<'b>(
    op: Binary,
    a: Var<'b>,
    b: Var<'b>,
    y: Var<'b>,
    ta: Option<Var<'b>>,
    tb: Option<Var<'b>>,
) -> Option<Var<'b>> {
    if let (Binary::Div, Some(ta), Some(tb)) = (op, ta, tb) {
        return Some(times_partial(ta - times_partial(tb, y), super::recip(b)));
    }
    let da = ta.and_then(|t| vjp(op, a, b, y, t, true, false)[0]);
    let db = tb.and_then(|t| vjp(op, a, b, y, t, false, true)[1]);
    match (da, db) {
        (Some(da), Some(db)) => Some(da + db),
        (d, None) | (None, d) => d,
    }
}

/// The JVP of `select c, a, b`: the branches' tangents, selected by the mask (which has none).
pub fn select_jvp<'b>(c: Var<'b>, ta: Option<Var<'b>>, tb: Option<Var<'b>>) -> Option<Var<'b>> {
    let s = c.builder();
    let zero = || s.splat(0.0, &c.shape());
    match (ta, tb) {
        (None, None) => None,
        (ta, tb) => Some(s.select(c, ta.unwrap_or_else(zero), tb.unwrap_or_else(zero))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_min_follow_ieee_2019() {
        assert!(maximum(1.0, f64::NAN).is_nan());
        assert!(maximum(f64::NAN, 1.0).is_nan());
        assert!(minimum(f64::NAN, 1.0).is_nan());
        assert!(maximum(-0.0, 0.0).is_sign_positive());
        assert!(maximum(0.0, -0.0).is_sign_positive());
        assert!(minimum(0.0, -0.0).is_sign_negative());
        assert!(minimum(-0.0, 0.0).is_sign_negative());
        assert_eq!(maximum(2.0, 3.0), 3.0);
        assert_eq!(minimum(2.0, 3.0), 2.0);
        assert_eq!(maximum(f64::NEG_INFINITY, -1e308), -1e308);
    }

    #[test]
    fn the_tables_host_functions_are_the_interpreters() {
        let points = [-2.0, -0.0, 0.0, 0.5, 3.0, f64::INFINITY];
        for op in Binary::ALL {
            let Some(h) = op.host() else { continue };
            for a in points {
                for b in points {
                    let (want, got) = (apply(op, a, b), (h.f)(a, b));
                    let same = want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan());
                    assert!(same, "{}({a}, {b}): {want} by apply, {got}", op.name());
                }
            }
        }
    }

    #[test]
    fn ieee_specials() {
        assert!(apply(Binary::Mul, 0.0, f64::INFINITY).is_nan());
        assert_eq!(apply(Binary::Div, 1.0, 0.0), f64::INFINITY);
        assert_eq!(apply(Binary::Pow, f64::NAN, 0.0), 1.0);
        assert_eq!(compare(Compare::Ne, f64::NAN, f64::NAN), 1.0);
        assert_eq!(compare(Compare::Eq, f64::NAN, f64::NAN), 0.0);
    }
}
