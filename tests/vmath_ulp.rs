//! The accuracy of the vector math functions (`adjit::ops::vmath`: libmvec's two-lane
//! `_ZGVbN2v_*`, and the four-lane functions in use where the CPU has AVX2: libmvec's
//! `_ZGVdN4v_*`, or adjit's own `sin`, `cos` and `exp` where it has FMA too) and, for
//! comparison, of the C library's scalar functions, in ulps of the correctly rounded
//! result, over each function's domain: about 200,000 arguments per function, of every
//! magnitude, with its hard regions (near zeros and poles, domain edges, overflow thresholds,
//! huge arguments of periodic functions).
//!
//! The reference is MPFR at 160 bits, called through `dlopen("libmpfr.so.6")` (GCC's own
//! dependency, so present wherever the toolchain's linker is; no crate needed); the error is
//! `|computed - exact| / ulp(exact rounded)`. The test asserts the bound README.md states,
//! and prints the table (`cargo test --release --test vmath_ulp -- --nocapture`).

use adjit::ir::Unary;
use adjit::ops::vmath;
use std::ffi::{c_char, c_int, c_long, c_void, CString};

/// The bound README.md states for every vector function.
const MAX_ULP: f64 = 4.0;
const POINTS: usize = 200_000;
/// Bits of the reference: enough that its own error is far below 0.001 ulp.
const PREC: c_long = 160;

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// MPFR's `__mpfr_struct`.
#[repr(C)]
struct Mpfr {
    prec: c_long,
    sign: c_int,
    exp: c_long,
    d: *mut u64,
}

type Init2 = unsafe extern "C" fn(*mut Mpfr, c_long);
type SetD = unsafe extern "C" fn(*mut Mpfr, f64, c_int) -> c_int;
type GetD = unsafe extern "C" fn(*const Mpfr, c_int) -> f64;
type SubD = unsafe extern "C" fn(*mut Mpfr, *const Mpfr, f64, c_int) -> c_int;
type Fn1 = unsafe extern "C" fn(*mut Mpfr, *const Mpfr, c_int) -> c_int;
const RNDN: c_int = 0;

/// The MPFR functions this test calls, and three numbers of `PREC` bits.
struct Reference {
    set_d: SetD,
    get_d: GetD,
    sub_d: SubD,
    x: Box<Mpfr>,
    y: Box<Mpfr>,
    t: Box<Mpfr>,
}

fn symbol(lib: *mut c_void, name: &str) -> *mut c_void {
    let c = CString::new(name).unwrap();
    // SAFETY: a valid handle and a NUL-terminated name.
    let p = unsafe { dlsym(lib, c.as_ptr()) };
    assert!(!p.is_null(), "libmpfr has no {name}");
    p
}

impl Reference {
    fn load() -> (Reference, *mut c_void) {
        let name = CString::new("libmpfr.so.6").unwrap();
        // SAFETY: a NUL-terminated name; MPFR's initialisers are its own.
        let lib = unsafe { dlopen(name.as_ptr(), 2) };
        assert!(
            !lib.is_null(),
            "libmpfr.so.6 not found (apt-get install libmpfr6)"
        );
        // SAFETY: each symbol has the C signature of its type (mpfr.h, MPFR 4).
        unsafe {
            let init2: Init2 = std::mem::transmute(symbol(lib, "mpfr_init2"));
            let new = || {
                let mut m = Box::new(Mpfr {
                    prec: 0,
                    sign: 0,
                    exp: 0,
                    d: std::ptr::null_mut(),
                });
                init2(&mut *m, PREC);
                m
            };
            let r = Reference {
                set_d: std::mem::transmute::<*mut c_void, SetD>(symbol(lib, "mpfr_set_d")),
                get_d: std::mem::transmute::<*mut c_void, GetD>(symbol(lib, "mpfr_get_d")),
                sub_d: std::mem::transmute::<*mut c_void, SubD>(symbol(lib, "mpfr_sub_d")),
                x: new(),
                y: new(),
                t: new(),
            };
            (r, lib)
        }
    }

    /// `|got - f(a)|` in ulps of `f(a)` rounded to f64 (infinite if `got` is NaN or infinite
    /// and `f(a)` is not the same, 0 if both are NaN).
    fn ulps(&mut self, f: Fn1, a: f64, got: f64) -> f64 {
        // SAFETY: the numbers were initialised by `load`; MPFR functions of this signature
        // read `x` and write `y` and `t`.
        let (exact, diff) = unsafe {
            (self.set_d)(&mut *self.x, a, RNDN);
            f(&mut *self.y, &*self.x, RNDN);
            let exact = (self.get_d)(&*self.y, RNDN);
            (self.sub_d)(&mut *self.t, &*self.y, got, RNDN);
            (exact, (self.get_d)(&*self.t, RNDN))
        };
        if exact.is_nan() || got.is_nan() || exact.is_infinite() || got.is_infinite() {
            return if same_class(exact, got) {
                0.0
            } else {
                f64::INFINITY
            };
        }
        diff.abs() / ulp(exact)
    }
}

fn same_class(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// The spacing of doubles at `x`'s magnitude: from `|x|` to the next double up.
fn ulp(x: f64) -> f64 {
    let a = x.abs();
    if a == f64::MAX {
        return a - f64::from_bits(a.to_bits() - 1);
    }
    f64::from_bits(a.to_bits() + 1) - a
}

/// A fixed xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// `±2^e` with `e` uniform in `[lo, hi)`, random sign if `signed`.
    fn magnitude(&mut self, lo: f64, hi: f64, signed: bool) -> f64 {
        let m = 2f64.powf(self.uniform(lo, hi));
        if signed && self.next() & 1 == 1 {
            -m
        } else {
            m
        }
    }
}

/// The arguments for `u`: a quarter uniform over the main interval, a quarter of every
/// magnitude, half in the function's hard regions.
fn arguments(u: Unary, n: usize) -> Vec<f64> {
    use std::f64::consts::{FRAC_PI_2, PI};
    let mut r = Rng(0x2545_f491_4f6c_dd1d ^ u as u64);
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let part = i % 4;
        let x = match u {
            Unary::Sin | Unary::Cos | Unary::Tan => match part {
                0 => r.uniform(-2.0 * PI, 2.0 * PI),
                1 => r.magnitude(-30.0, 30.0, true),
                // Near the zeros and poles, multiples of pi/2, and huge arguments.
                2 => (r.next() % 200_000) as f64 * FRAC_PI_2 * (1.0 + r.uniform(-1e-15, 1e-15)),
                _ => r.magnitude(30.0, 1023.9, true),
            },
            Unary::Exp | Unary::Expm1 => match part {
                0 => r.uniform(-745.2, 709.8),
                1 => r.magnitude(-60.0, 9.4, true),
                2 => r.uniform(-1.0, 1.0) * r.magnitude(-30.0, 0.0, false),
                _ => r.uniform(700.0, 709.8) * if r.next() & 1 == 0 { 1.0 } else { -1.06 },
            },
            Unary::Log => match part {
                0 => r.uniform(0.0, 10.0),
                1 | 3 => r.magnitude(-1074.0, 1024.0, false),
                _ => 1.0 + r.uniform(-1.0, 1.0) * r.magnitude(-52.0, -1.0, false),
            },
            Unary::Log1p => match part {
                0 => r.uniform(-1.0, 10.0),
                1 => r.magnitude(-60.0, 1024.0, false),
                2 => r.uniform(-1.0, 1.0) * r.magnitude(-40.0, 0.0, false),
                _ => -1.0 + r.magnitude(-52.0, -1.0, false),
            },
            Unary::Tanh | Unary::Sinh | Unary::Cosh => match part {
                0 => r.uniform(-20.0, 20.0),
                1 => r.magnitude(-60.0, 9.5, true),
                2 => r.uniform(-1.0, 1.0) * r.magnitude(-30.0, 0.0, false),
                _ => r.uniform(700.0, 711.0) * if r.next() & 1 == 0 { 1.0 } else { -1.0 },
            },
            Unary::Asin | Unary::Acos => match part {
                0 => r.uniform(-1.0, 1.0),
                1 => r.magnitude(-60.0, 0.0, true),
                2 => (1.0 - r.magnitude(-53.0, -1.0, false)) * if i % 8 < 4 { 1.0 } else { -1.0 },
                _ => r.uniform(-0.6, 0.6),
            },
            Unary::Atan => match part {
                0 => r.uniform(-4.0, 4.0),
                1 | 3 => r.magnitude(-60.0, 1023.9, true),
                _ => r.uniform(-1.0, 1.0) * r.magnitude(-30.0, 0.0, false),
            },
            Unary::Neg
            | Unary::Abs
            | Unary::Sign
            | Unary::Sqrt
            | Unary::Sigmoid
            | Unary::Floor
            | Unary::Erf => 0.0,
        };
        v.push(x);
    }
    v
}

/// The scalar C library function of `u`, for comparison.
fn scalar(u: Unary) -> fn(f64) -> f64 {
    match u {
        Unary::Exp => f64::exp,
        Unary::Log => f64::ln,
        Unary::Log1p => f64::ln_1p,
        Unary::Expm1 => f64::exp_m1,
        Unary::Sin => f64::sin,
        Unary::Cos => f64::cos,
        Unary::Tan => f64::tan,
        Unary::Tanh => f64::tanh,
        Unary::Asin => f64::asin,
        Unary::Acos => f64::acos,
        Unary::Atan => f64::atan,
        Unary::Sinh => f64::sinh,
        Unary::Cosh => f64::cosh,
        Unary::Neg
        | Unary::Abs
        | Unary::Sign
        | Unary::Sqrt
        | Unary::Sigmoid
        | Unary::Floor
        | Unary::Erf => |x| x,
    }
}

/// The largest error of `v` over `xs` (four lanes per call), and an argument where it is.
fn worst(reference: &mut Reference, f: Fn1, v: vmath::Vector, xs: &[f64]) -> (f64, f64) {
    let (mut worst, mut at) = (0.0f64, 0.0);
    for q in xs.chunks_exact(4) {
        let got = v.quad([q[0], q[1], q[2], q[3]]);
        for (k, &a) in q.iter().enumerate() {
            let e = reference.ulps(f, a, got[k]);
            if e > worst {
                (worst, at) = (e, a);
            }
        }
    }
    (worst, at)
}

#[test]
fn vector_functions_are_within_the_stated_ulps() {
    let ops: Vec<Unary> = Unary::ALL
        .into_iter()
        .filter(|&u| vmath::candidate(u, 2).is_some())
        .collect();
    let (mut reference, lib) = Reference::load();
    let mut bad = Vec::new();
    println!(
        "| function | libmvec 2-lane max ulp (at) | 4-lane max ulp (at) | scalar glibc max ulp |"
    );
    println!("|---|---|---|---|");
    for u in ops {
        let f: Fn1 = {
            let p = symbol(lib, &format!("mpfr_{}", u.name()));
            // SAFETY: MPFR's one-argument functions have this signature.
            unsafe { std::mem::transmute::<*mut c_void, Fn1>(p) }
        };
        let xs = arguments(u, POINTS);
        let s = scalar(u);
        let worst_s = xs
            .iter()
            .map(|&a| reference.ulps(f, a, s(a)))
            .fold(0.0f64, f64::max);
        let four = vmath::vector(u).filter(|v| v.lanes() == 4);
        let mut cells = Vec::new();
        for v in [vmath::two_lane(u), four] {
            let Some(v) = v else {
                cells.push("-".to_string());
                continue;
            };
            let (w, at) = worst(&mut reference, f, v, &xs);
            cells.push(format!("{w:.3} ({at:e})"));
            if w > MAX_ULP {
                bad.push(format!("{}: {w} ulp at {at:e}", v.symbol));
            }
        }
        println!(
            "| {} | {} | {} | {worst_s:.3} |",
            u.name(),
            cells[0],
            cells[1]
        );
    }
    assert!(bad.is_empty(), "over {MAX_ULP} ulp: {bad:?}");
}
