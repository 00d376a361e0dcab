//! adjit's own `sin`, `cos` and `exp`, in use where the CPU has AVX2 and FMA (`super::vmath`).
//!
//! Each function is one recipe of IEEE operations (fused multiply-adds included, each rounded
//! once) written against `Arith`, which three back ends implement: scalar Rust (the
//! reference), four AVX2 lanes (`sin4`, ..., which the interpreter runs and compiled code calls
//! for tensors) and Cranelift code (`crate::jit`, inline for single values and in object
//! files). The same operations in the same order give the same bits, lane by lane.
//!
//! - `sin`: `k = nearest(x / pi)` by the magic-constant rounding, `r = x - k pi` with pi in
//!   three parts (the first product is exact, so `r` is right near multiples of pi), then
//!   `(-1)^k sin(r)` with a polynomial of degree 17 fitted to `sin` on `[-pi/2, pi/2]`.
//! - `cos`: `q = nearest(x / pi + 1/2)`, `x = (q - 1/2) pi + r`, `cos(x) = (-1)^q sin(r)`.
//! - `exp`: `k = nearest(x / ln 2)`, `r = x - k ln 2` in two parts, a polynomial of
//!   degree 11 fitted on `|r| <= ln(2)/2`, and `2^k` added to the exponent bits.
//!
//! Arguments outside `|x| <= SIN_LIMIT` (or `EXP_LIMIT`), NaN and infinities included, take
//! the C library's function instead, lane by lane, so every lane's result depends on its own
//! argument alone. The accuracy is measured against MPFR in `tests/vmath_ulp.rs` (README.md).
//!
//! The only `unsafe` here is the AVX2 back end: intrinsics, an empty `asm!` that hides the
//! constants' address from the compiler, and the kernels that need the CPU features they are
//! compiled for.

use crate::ir::Unary;

/// `sin` and `cos` reduce arguments up to this magnitude themselves.
pub const SIN_LIMIT: f64 = 1048576.0;
/// `exp` computes arguments up to this magnitude itself (its results stay normal numbers).
pub const EXP_LIMIT: f64 = 708.0;

/// `fma(x, c, ROUND)` rounds `x c` to an integer held in the low bits of its mantissa
/// (`1.5 * 2^52`: one unit in the last place).
const ROUND: f64 = 6755399441055744.0;
const INV_PI: f64 = std::f64::consts::FRAC_1_PI;
/// pi = PI_1 + PI_2 + PI_3 to about 160 bits.
const PI_1: f64 = std::f64::consts::PI;
const PI_2: f64 = 1.2246467991473532e-16;
const PI_3: f64 = -2.9947698097183397e-33;
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// ln 2 = LN2_1 + LN2_2 to about 106 bits.
const LN2_1: f64 = std::f64::consts::LN_2;
const LN2_2: f64 = 2.3190468138462996e-17;
/// `sin(r) = r + r^3 P(r^2)` on `|r| <= pi/2`: `P`'s coefficients, highest degree first, a
/// Chebyshev fit of `(sin(r) - r) / r^3` (mpmath's `chebyfit`, 40 digits) rounded to doubles.
/// With these doubles the polynomial is within 3.6e-17 of `sin` relative (0.32 ulp).
const SIN_FIT: [f64; 8] = [
    2.7314368769379893e-15,
    -7.643969663988074e-13,
    1.6058977292642743e-10,
    -2.505210761669045e-08,
    2.7557319219160833e-06,
    -0.00019841269841254966,
    0.008333333333333316,
    -0.16666666666666666,
];
/// `exp(r)` on `|r| <= ln(2)/2` as a polynomial of degree 11, highest degree first: a
/// Chebyshev fit rounded to doubles, within 1.7e-17 relative (0.15 ulp).
const EXP_FIT: [f64; 12] = [
    2.5110049204818658e-08,
    2.763265472252779e-07,
    2.755724088722987e-06,
    2.4801485441561313e-05,
    0.00019841269890076403,
    0.0013888888952352863,
    0.008333333333319589,
    0.04166666666648795,
    0.1666666666666668,
    0.5000000000000019,
    1.0,
    1.0,
];

/// A constant of the recipes: its index in `CONSTANTS`, from which each back end takes it
/// (the AVX2 one from a table of four-lane rows, as memory operands).
#[derive(Clone, Copy, Debug)]
pub struct Const(usize);

impl Const {
    pub fn value(self) -> f64 {
        CONSTANTS[self.0]
    }
}

const C_ROUND: Const = Const(0);
const C_INV_PI: Const = Const(1);
/// `-pi` in three parts.
const C_MINUS_PI: usize = 2;
const C_INV_LN2: Const = Const(5);
const C_MINUS_LN2_1: Const = Const(6);
const C_MINUS_LN2_2: Const = Const(7);
const C_HALF: Const = Const(8);
const C_SIN_FIT: usize = 9;
const C_EXP_FIT: usize = C_SIN_FIT + SIN_FIT.len();
const N_CONSTANTS: usize = C_EXP_FIT + EXP_FIT.len();

/// Every constant of the recipes, at the indices above.
const CONSTANTS: [f64; N_CONSTANTS] = {
    let head = [
        ROUND, INV_PI, -PI_1, -PI_2, -PI_3, INV_LN2, -LN2_1, -LN2_2, 0.5,
    ];
    let mut all = [0.0; N_CONSTANTS];
    let mut i = 0;
    while i < N_CONSTANTS {
        all[i] = if i < C_SIN_FIT {
            head[i]
        } else if i < C_EXP_FIT {
            SIN_FIT[i - C_SIN_FIT]
        } else {
            EXP_FIT[i - C_EXP_FIT]
        };
        i += 1;
    }
    all
};

/// The operations the recipes are written with, on one lane or several.
pub trait Arith {
    type V: Copy;
    fn constant(&mut self, c: Const) -> Self::V;
    /// `a b + c`, rounded once.
    fn fma(&mut self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `y` with its sign flipped where the lowest bit of `t`'s bits is set (`t` a rounded
    /// integer, `ROUND + k`: where `k` is odd).
    fn flip_if_odd(&mut self, y: Self::V, t: Self::V) -> Self::V;
    /// `p 2^k` for `t = ROUND + k`: `k` added to `p`'s exponent bits (the result must be a
    /// normal number).
    fn scale(&mut self, p: Self::V, t: Self::V) -> Self::V;
}

/// The functions here, each standing for its unary op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Own {
    Sin,
    Cos,
    Exp,
}

impl Own {
    /// The function computing `u`, if it is one of these.
    pub fn of(u: Unary) -> Option<Own> {
        match u {
            Unary::Sin => Some(Own::Sin),
            Unary::Cos => Some(Own::Cos),
            Unary::Exp => Some(Own::Exp),
            Unary::Neg
            | Unary::Abs
            | Unary::Sign
            | Unary::Sqrt
            | Unary::Log
            | Unary::Log1p
            | Unary::Expm1
            | Unary::Tan
            | Unary::Tanh
            | Unary::Asin
            | Unary::Acos
            | Unary::Atan
            | Unary::Sinh
            | Unary::Cosh
            | Unary::Sigmoid
            | Unary::Floor
            | Unary::Erf => None,
        }
    }

    /// The argument limit: beyond it, the C library's function.
    #[inline(always)]
    pub fn limit(self) -> f64 {
        match self {
            Own::Sin | Own::Cos => SIN_LIMIT,
            Own::Exp => EXP_LIMIT,
        }
    }

    /// Whether the recipe computes `x` (false for NaN and infinities).
    #[inline(always)]
    pub fn within(self, x: f64) -> bool {
        x.abs() <= self.limit()
    }

    /// The C library's function: what arguments beyond the limit get.
    pub fn c_library(self, x: f64) -> f64 {
        match self {
            Own::Sin => x.sin(),
            Own::Cos => x.cos(),
            Own::Exp => x.exp(),
        }
    }

    /// The function at `x` in scalar Rust: the reference.
    pub fn one(self, x: f64) -> f64 {
        if self.within(x) {
            recipe(&mut Scalar, self, x)
        } else {
            self.c_library(x)
        }
    }
}

/// The recipe of `f`, for arguments within its limit.
#[inline(always)]
pub fn recipe<A: Arith>(a: &mut A, f: Own, x: A::V) -> A::V {
    match f {
        Own::Sin => sin(a, x),
        Own::Cos => cos(a, x),
        Own::Exp => exp(a, x),
    }
}

/// A polynomial with coefficients `c` (highest degree first, a multiple of four of them) at
/// `z`: each four neighbouring terms by Horner's rule in `z`, independent of each other, then
/// those groups by Horner's rule in `z^4`. A single value waits for a chain of 3 fused
/// multiply-adds plus one per group, not one per coefficient, for two multiplies more; and the
/// groups, unlike Estrin's scheme, need few registers at once.
#[inline(always)]
fn poly_by_fours<A: Arith>(a: &mut A, first: usize, len: usize, z: A::V) -> A::V {
    debug_assert!(len > 0 && len.is_multiple_of(4));
    let z2 = a.mul(z, z);
    let z4 = a.mul(z2, z2);
    let group = |a: &mut A, at: usize| {
        let mut g = a.constant(Const(at));
        for k in at + 1..at + 4 {
            let k = a.constant(Const(k));
            g = a.fma(g, z, k);
        }
        g
    };
    let mut p = group(a, first);
    for at in (first + 4..first + len).step_by(4) {
        let g = group(a, at);
        p = a.fma(p, z4, g);
    }
    p
}

/// `sin(r)` for `|r| <= pi/2` (a little beyond, for rounded reductions).
#[inline(always)]
fn sin_poly<A: Arith>(a: &mut A, r: A::V) -> A::V {
    let r2 = a.mul(r, r);
    let p = poly_by_fours(a, C_SIN_FIT, SIN_FIT.len(), r2);
    let r3 = a.mul(r2, r);
    a.fma(r3, p, r)
}

/// `x - m pi` for an integer or half-integer `m`.
#[inline(always)]
fn reduce<A: Arith>(a: &mut A, x: A::V, m: A::V) -> A::V {
    let mut r = x;
    for part in C_MINUS_PI..C_MINUS_PI + 3 {
        let p = a.constant(Const(part));
        r = a.fma(m, p, r);
    }
    r
}

/// `sin(x) = (-1)^k sin(x - k pi)` with `k` the integer nearest `x / pi`. The steps are
/// `sin_cos`'s at phase 0 (`fma(x, 1/pi, 0)` is `x / pi` rounded, but for the sign of a zero,
/// which no later step sees; `q - 0` is `q`), so a lane of `sin_cos` gives these bits.
#[inline(always)]
fn sin<A: Arith>(a: &mut A, x: A::V) -> A::V {
    let (inv_pi, round) = (a.constant(C_INV_PI), a.constant(C_ROUND));
    let y = a.mul(x, inv_pi);
    let t = a.add(y, round);
    let k = a.sub(t, round);
    let r = reduce(a, x, k);
    let s = sin_poly(a, r);
    a.flip_if_odd(s, t)
}

/// `cos(x) = (-1)^q sin(x - (q - 1/2) pi)` with `q` the integer nearest `x / pi + 1/2`:
/// `sin_cos` at phase 1/2.
#[inline(always)]
fn cos<A: Arith>(a: &mut A, x: A::V) -> A::V {
    let half = a.constant(C_HALF);
    sin_cos(a, x, half)
}

/// The phase at which `sin_cos` gives `sin`, and the one at which it gives `cos`.
pub const PHASE_SIN: f64 = 0.0;
pub const PHASE_COS: f64 = 0.5;

/// `sin(x)` in the lanes where `phase` is 0 and `cos(x)` where it is 1/2, with the bits of
/// `sin`'s and `cos`'s recipes: compiled code computes both of one argument in one two-lane
/// register (`crate::jit`).
#[inline(always)]
pub fn sin_cos<A: Arith>(a: &mut A, x: A::V, phase: A::V) -> A::V {
    let inv_pi = a.constant(C_INV_PI);
    let y = a.fma(x, inv_pi, phase);
    let round = a.constant(C_ROUND);
    let t = a.add(y, round);
    let q = a.sub(t, round);
    let m = a.sub(q, phase);
    let r = reduce(a, x, m);
    let s = sin_poly(a, r);
    a.flip_if_odd(s, t)
}

#[inline(always)]
fn exp<A: Arith>(a: &mut A, x: A::V) -> A::V {
    let (inv_ln2, round) = (a.constant(C_INV_LN2), a.constant(C_ROUND));
    let t = a.fma(x, inv_ln2, round);
    let k = a.sub(t, round);
    let l1 = a.constant(C_MINUS_LN2_1);
    let r = a.fma(k, l1, x);
    let l2 = a.constant(C_MINUS_LN2_2);
    let r = a.fma(k, l2, r);
    let p = poly_by_fours(a, C_EXP_FIT, EXP_FIT.len(), r);
    a.scale(p, t)
}

/// Scalar Rust: the reference the other back ends must match.
pub struct Scalar;

impl Arith for Scalar {
    type V = f64;
    fn constant(&mut self, c: Const) -> f64 {
        c.value()
    }
    fn fma(&mut self, a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
    fn mul(&mut self, a: f64, b: f64) -> f64 {
        a * b
    }
    fn add(&mut self, a: f64, b: f64) -> f64 {
        a + b
    }
    fn sub(&mut self, a: f64, b: f64) -> f64 {
        a - b
    }
    fn flip_if_odd(&mut self, y: f64, t: f64) -> f64 {
        f64::from_bits(y.to_bits() ^ (t.to_bits() << 63))
    }
    fn scale(&mut self, p: f64, t: f64) -> f64 {
        f64::from_bits(p.to_bits().wrapping_add(t.to_bits() << 52))
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx2::{cos4, exp4, has_cpu_features, map, sin4};

/// The kernels take and return `__m256d` in `ymm0`, as libmvec's do; the lint warns that SIMD
/// types are not C types in general, but on x86-64 this is the vector ABI.
#[cfg(target_arch = "x86_64")]
#[allow(improper_ctypes_definitions)]
mod avx2 {
    use super::{recipe, Arith, Const, Own, CONSTANTS, N_CONSTANTS};
    use std::arch::x86_64::*;

    /// Four lanes in a 256-bit register. Only built inside the kernels below, which are
    /// compiled for AVX2 and FMA and run only where the CPU has both.
    struct Avx {
        /// `SPLATS`, through an opaque register: constants read from memory the compiler does
        /// not see into, so they stay memory operands of the arithmetic instead of broadcasts
        /// of their own (which cost about a third more time).
        splats: *const [f64; 4],
    }

    /// `CONSTANTS`, each four times.
    #[repr(C, align(32))]
    struct Splats([[f64; 4]; N_CONSTANTS]);

    static SPLATS: Splats = Splats({
        let mut rows = [[0.0; 4]; N_CONSTANTS];
        let mut i = 0;
        while i < N_CONSTANTS {
            rows[i] = [CONSTANTS[i]; 4];
            i += 1;
        }
        rows
    });

    impl Avx {
        #[inline(always)]
        fn new() -> Avx {
            let mut address = SPLATS.0.as_ptr().expose_provenance();
            // SAFETY: an empty instruction that claims to rewrite the address in its register:
            // the compiler no longer knows what it points to (see `splats`), at no cost.
            unsafe {
                std::arch::asm!("/* {0} */", inout(reg) address, options(pure, nomem, nostack))
            };
            Avx {
                splats: std::ptr::with_exposed_provenance(address),
            }
        }
    }

    impl Arith for Avx {
        type V = __m256d;
        #[inline(always)]
        fn constant(&mut self, c: Const) -> __m256d {
            // SAFETY: `Avx` exists only inside the kernels, on a CPU with AVX2 and FMA;
            // `c.0 < N_CONSTANTS`, the rows of `SPLATS`, 32-byte aligned.
            unsafe { _mm256_load_pd(self.splats.add(c.0).cast()) }
        }
        #[inline(always)]
        fn fma(&mut self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe { _mm256_fmadd_pd(a, b, c) }
        }
        #[inline(always)]
        fn mul(&mut self, a: __m256d, b: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe { _mm256_mul_pd(a, b) }
        }
        #[inline(always)]
        fn add(&mut self, a: __m256d, b: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe { _mm256_add_pd(a, b) }
        }
        #[inline(always)]
        fn sub(&mut self, a: __m256d, b: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe { _mm256_sub_pd(a, b) }
        }
        #[inline(always)]
        fn flip_if_odd(&mut self, y: __m256d, t: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe {
                let sign = _mm256_slli_epi64::<63>(_mm256_castpd_si256(t));
                _mm256_xor_pd(y, _mm256_castsi256_pd(sign))
            }
        }
        #[inline(always)]
        fn scale(&mut self, p: __m256d, t: __m256d) -> __m256d {
            // SAFETY: as in `constant`.
            unsafe {
                let k = _mm256_slli_epi64::<52>(_mm256_castpd_si256(t));
                _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(p), k))
            }
        }
    }

    /// Whether this CPU runs the four-lane kernels.
    pub fn has_cpu_features() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// `u` on four lanes: the recipe, and the C library for lanes beyond the limit.
    #[inline(always)]
    unsafe fn lanes(f: Own, x: __m256d) -> __m256d {
        // SAFETY: called only from the kernels below, compiled for AVX2 and FMA.
        unsafe {
            let abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
            let inside = _mm256_cmp_pd::<_CMP_LE_OQ>(abs, _mm256_set1_pd(f.limit()));
            if _mm256_movemask_pd(inside) == 0b1111 {
                recipe(&mut Avx::new(), f, x)
            } else {
                beyond(f, x)
            }
        }
    }

    /// `lanes` where some lane is beyond the limit: out of line, so that the common case
    /// keeps everything in registers.
    #[cold]
    #[inline(never)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn beyond(f: Own, x: __m256d) -> __m256d {
        // SAFETY: the caller's features, which this function is compiled for.
        unsafe {
            let y = recipe(&mut Avx::new(), f, x);
            let (mut xs, mut ys) = ([0.0; 4], [0.0; 4]);
            _mm256_storeu_pd(xs.as_mut_ptr(), x);
            _mm256_storeu_pd(ys.as_mut_ptr(), y);
            for (x, y) in xs.iter().zip(&mut ys) {
                if !f.within(*x) {
                    *y = f.c_library(*x);
                }
            }
            _mm256_loadu_pd(ys.as_ptr())
        }
    }

    /// `y[i] = u(x[i])` for `i < n`, four lanes at a time, a last partial group padded with
    /// its last element (as `vmath::map` pads).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `x` and `y` hold `n` elements (they may be the same).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn map(f: Own, x: *const f64, y: *mut f64, n: usize) {
        // SAFETY: the caller's promise: the features, and `n` elements at `x` and `y`.
        unsafe {
            let mut i = 0;
            while i + 4 <= n {
                let v = lanes(f, _mm256_loadu_pd(x.add(i)));
                _mm256_storeu_pd(y.add(i), v);
                i += 4;
            }
            if i < n {
                let mut group = [*x.add(n - 1); 4];
                std::ptr::copy_nonoverlapping(x.add(i), group.as_mut_ptr(), n - i);
                let v = lanes(f, _mm256_loadu_pd(group.as_ptr()));
                _mm256_storeu_pd(group.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(group.as_ptr(), y.add(i), n - i);
            }
        }
    }

    /// Four-lane `sin`, called as libmvec's `_ZGVdN4v_sin` is (`ymm0` in and out).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA (`has_cpu_features`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe extern "C" fn sin4(x: __m256d) -> __m256d {
        // SAFETY: this function's features are the CPU's (the caller's promise).
        unsafe { lanes(Own::Sin, x) }
    }

    /// Four-lane `cos`; see `sin4`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA (`has_cpu_features`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe extern "C" fn cos4(x: __m256d) -> __m256d {
        // SAFETY: as in `sin4`.
        unsafe { lanes(Own::Cos, x) }
    }

    /// Four-lane `exp`; see `sin4`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA (`has_cpu_features`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe extern "C" fn exp4(x: __m256d) -> __m256d {
        // SAFETY: as in `sin4`.
        unsafe { lanes(Own::Exp, x) }
    }
}
