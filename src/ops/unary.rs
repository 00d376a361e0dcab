//! Elementwise functions of one f64 argument: shape rule, scalar definitions and the
//! interpreter's kernel.
//!
//! The scalar functions are `extern "C"` so that the JIT calls exactly these (it registers them
//! as host symbols); the interpreter calls them too. Conventions: `sign(±0) = ±0` and
//! `sign(NaN) = NaN`; `sigmoid` is evaluated in the form that cannot overflow; `erf` is ours
//! (`super::erf`, within 0.51 ulp). The other transcendental functions (`exp`, `sin`, `tanh`,
//! ...) are the vector functions in use where the process has them (`super::vmath`: libmvec's,
//! or adjit's own `sin`, `cos` and `exp`; a single `x` is lane 0 of the function at
//! `[x, x, ...]`, and the kernels run groups of lanes), else the C library's scalar ones
//! (Rust's `f64` methods).

use super::{refuse, vmath};
use crate::ir::{DType, Op, Type, Unary, Var};

pub(crate) fn shape(op: &Op, x: Type) -> Result<Type, super::ShapeError> {
    if x.dtype != DType::F64 {
        return Err(refuse(op, &[x], "operand must be f64"));
    }
    Ok(x)
}

/// `u` at `x`: lane 0 of its two-lane function at `[x, x]` where one is in use
/// (`super::vmath`), else the C library's scalar function `scalar`.
#[inline]
fn lane(u: Unary, x: f64, scalar: impl Fn(f64) -> f64) -> f64 {
    match vmath::vector(u) {
        Some(v) => v.one(x),
        None => scalar(x),
    }
}

pub extern "C" fn adjit_exp(x: f64) -> f64 {
    lane(Unary::Exp, x, |x| x.exp())
}
pub extern "C" fn adjit_log(x: f64) -> f64 {
    lane(Unary::Log, x, |x| x.ln())
}
pub extern "C" fn adjit_log1p(x: f64) -> f64 {
    lane(Unary::Log1p, x, |x| x.ln_1p())
}
pub extern "C" fn adjit_expm1(x: f64) -> f64 {
    lane(Unary::Expm1, x, |x| x.exp_m1())
}
pub extern "C" fn adjit_sin(x: f64) -> f64 {
    lane(Unary::Sin, x, |x| x.sin())
}
pub extern "C" fn adjit_cos(x: f64) -> f64 {
    lane(Unary::Cos, x, |x| x.cos())
}
pub extern "C" fn adjit_tan(x: f64) -> f64 {
    lane(Unary::Tan, x, |x| x.tan())
}
pub extern "C" fn adjit_tanh(x: f64) -> f64 {
    lane(Unary::Tanh, x, |x| x.tanh())
}
pub extern "C" fn adjit_asin(x: f64) -> f64 {
    lane(Unary::Asin, x, |x| x.asin())
}
pub extern "C" fn adjit_acos(x: f64) -> f64 {
    lane(Unary::Acos, x, |x| x.acos())
}
pub extern "C" fn adjit_atan(x: f64) -> f64 {
    lane(Unary::Atan, x, |x| x.atan())
}
pub extern "C" fn adjit_sinh(x: f64) -> f64 {
    lane(Unary::Sinh, x, |x| x.sinh())
}
pub extern "C" fn adjit_cosh(x: f64) -> f64 {
    lane(Unary::Cosh, x, |x| x.cosh())
}
/// The error function (`super::erf`: Rust's standard library has none).
pub extern "C" fn adjit_erf(x: f64) -> f64 {
    super::erf::erf(x)
}
/// `1 / (1 + exp(-x))`, computed as `e / (1 + e)` with `e = exp(x)` for negative `x`.
pub extern "C" fn adjit_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `+1` above zero, `-1` below, the argument itself for `±0` and NaN.
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// The scalar definition of every unary op.
pub fn apply(u: Unary, x: f64) -> f64 {
    match u {
        Unary::Neg => -x,
        Unary::Abs => x.abs(),
        Unary::Sign => sign(x),
        Unary::Exp => adjit_exp(x),
        Unary::Log => adjit_log(x),
        Unary::Log1p => adjit_log1p(x),
        Unary::Expm1 => adjit_expm1(x),
        Unary::Sqrt => x.sqrt(),
        Unary::Sin => adjit_sin(x),
        Unary::Cos => adjit_cos(x),
        Unary::Tan => adjit_tan(x),
        Unary::Tanh => adjit_tanh(x),
        Unary::Sigmoid => adjit_sigmoid(x),
        Unary::Floor => x.floor(),
        Unary::Asin => adjit_asin(x),
        Unary::Acos => adjit_acos(x),
        Unary::Atan => adjit_atan(x),
        Unary::Sinh => adjit_sinh(x),
        Unary::Cosh => adjit_cosh(x),
        Unary::Erf => adjit_erf(x),
    }
}

/// `out[i] = u(x[i])`. One match per call, so the loop body is the scalar function alone.
pub fn kernel(u: Unary, x: &[f64], out: &mut [f64]) {
    fn map(x: &[f64], out: &mut [f64], f: impl Fn(f64) -> f64) {
        for (o, &a) in out.iter_mut().zip(x) {
            *o = f(a);
        }
    }
    // A pair of elements per call of the op's two-lane function, if it has one in use.
    fn vmap(u: Unary, x: &[f64], out: &mut [f64], f: impl Fn(f64) -> f64) {
        match vmath::vector(u) {
            Some(v) => vmath::map(v, x, out),
            None => map(x, out, f),
        }
    }
    match u {
        Unary::Neg => map(x, out, |a| -a),
        Unary::Abs => map(x, out, f64::abs),
        Unary::Sign => map(x, out, sign),
        Unary::Exp => vmap(u, x, out, |a| adjit_exp(a)),
        Unary::Log => vmap(u, x, out, |a| adjit_log(a)),
        Unary::Log1p => vmap(u, x, out, |a| adjit_log1p(a)),
        Unary::Expm1 => vmap(u, x, out, |a| adjit_expm1(a)),
        Unary::Sqrt => map(x, out, f64::sqrt),
        Unary::Sin => vmap(u, x, out, |a| adjit_sin(a)),
        Unary::Cos => vmap(u, x, out, |a| adjit_cos(a)),
        Unary::Tan => vmap(u, x, out, |a| adjit_tan(a)),
        Unary::Tanh => vmap(u, x, out, |a| adjit_tanh(a)),
        Unary::Sigmoid => map(x, out, |a| adjit_sigmoid(a)),
        Unary::Floor => map(x, out, f64::floor),
        Unary::Asin => vmap(u, x, out, |a| adjit_asin(a)),
        Unary::Acos => vmap(u, x, out, |a| adjit_acos(a)),
        Unary::Atan => vmap(u, x, out, |a| adjit_atan(a)),
        Unary::Sinh => vmap(u, x, out, |a| adjit_sinh(a)),
        Unary::Cosh => vmap(u, x, out, |a| adjit_cosh(a)),
        Unary::Erf => map(x, out, |a| adjit_erf(a)),
    }
}

/// The VJP of `y = u(x)` for cotangent `g`, written with the Builder so that it can itself be
/// differentiated. `None` is a symbolic zero.
///
/// Conventions at kinks and domain edges: `abs'(0) = 0` (through `sign`); `sign`, `floor` have
/// zero derivative everywhere (they are not differentiable where they jump); `sqrt'(0) = inf`;
/// `log'(0) = inf`; at the ends of their domain `asin'(±1) = inf` and `acos'(±1) = -inf` (like
/// `sqrt'(0)`: the one-sided limit), and outside it (`|x| > 1`) the derivative is NaN, as the
/// value is. Where a partial can be infinite (`sqrt`, `log`, `log1p`, `asin`, `acos`), the rule
/// multiplies by it with `azmul`, so a zero cotangent or tangent gives zero, not NaN: a
/// Jacobian's column for another input, or a branch a `select` discarded, stays exact. Rules
/// reuse the forward result where it is cheaper (`exp`, `tanh`, ...).
pub fn vjp<'b>(u: Unary, x: Var<'b>, y: Var<'b>, g: Var<'b>) -> Option<Var<'b>> {
    Some(match u {
        Unary::Neg => -g,
        Unary::Abs => g * x.sign(),
        Unary::Sign | Unary::Floor => return None,
        Unary::Exp => g * y,
        Unary::Log => super::times_partial(g, super::recip(x)),
        Unary::Log1p => super::times_partial(g, super::recip(1.0 + x)),
        Unary::Expm1 => g * (y + 1.0),
        Unary::Sqrt => super::times_partial(g, super::recip(y) * 0.5),
        Unary::Sin => g * x.cos(),
        Unary::Cos => -(g * x.sin()),
        Unary::Tan => g * (1.0 + y * y),
        Unary::Tanh => g * (1.0 - y * y),
        Unary::Sigmoid => g * (y * (1.0 - y)),
        Unary::Asin => super::times_partial(g, super::recip((1.0 - x * x).sqrt())),
        Unary::Acos => -super::times_partial(g, super::recip((1.0 - x * x).sqrt())),
        Unary::Atan => g / (1.0 + x * x),
        Unary::Sinh => g * x.cosh(),
        Unary::Cosh => g * x.sinh(),
        // erf'(x) = 2/sqrt(pi) exp(-x^2).
        Unary::Erf => g * ((-(x * x)).exp() * std::f64::consts::FRAC_2_SQRT_PI),
    })
}

/// The JVP of `y = u(x)` along the tangent `t`: the derivative is diagonal (elementwise), so
/// `J t` is the VJP rule applied to `t`, with the same conventions at kinks and domain edges.
pub fn jvp<'b>(u: Unary, x: Var<'b>, y: Var<'b>, t: Var<'b>) -> Option<Var<'b>> {
    vjp(u, x, y, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        assert_eq!(adjit_sigmoid(0.0), 0.5);
        assert_eq!(adjit_sigmoid(-1000.0), 0.0);
        assert_eq!(adjit_sigmoid(1000.0), 1.0);
        let x = 0.731;
        assert!((adjit_sigmoid(x) + adjit_sigmoid(-x) - 1.0).abs() < 1e-15);
        assert!(adjit_sigmoid(f64::NAN).is_nan());
    }

    #[test]
    fn the_tables_host_functions_are_the_interpreters() {
        let points = [
            -3.0,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.25,
            0.9,
            1.0,
            2.5,
            40.0,
            f64::INFINITY,
        ];
        for u in Unary::ALL {
            let Some(h) = u.host() else { continue };
            for x in points {
                let (want, got) = (apply(u, x), (h.f)(x));
                let same = want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan());
                assert!(
                    same,
                    "{}({x}): {want} by apply, {got} by {}",
                    u.name(),
                    h.symbol
                );
            }
        }
    }

    #[test]
    fn sign_keeps_zero_and_nan() {
        assert_eq!(sign(-3.0), -1.0);
        assert_eq!(sign(2.0), 1.0);
        assert!(sign(-0.0).is_sign_negative() && sign(-0.0) == 0.0);
        assert!(sign(f64::NAN).is_nan());
    }
}
