//! Two-lane vector math: the transcendental unary ops computed by glibc's libmvec.
//!
//! On x86-64 Linux with glibc, libmvec has SSE2 functions of two f64 lanes (`_ZGVbN2v_sin`,
//! ...; `sin`, `cos`, `exp`, `log` since glibc 2.22, the others since 2.35) that are about 2-3
//! times faster per element than scalar libm calls, within 4 ulp (README.md gives the measured
//! error of each). Each lane's result depends on that lane's input alone (`tests/vmath.rs`
//! checks it, special values included), so an op's value at `x` is defined as lane 0 of the
//! function at `[x, x]`, and any grouping of elements into pairs gives the same bits: the
//! interpreter's kernels run pairs (`map`), compiled code runs its two-lane loops with one call
//! per pair and splats single elements (`crate::jit`), and both agree bit for bit.
//!
//! The functions are looked up once per process, at first use, by `dlopen("libmvec.so.1")`
//! and `dlsym`. Where one is absent (another OS or architecture, an older glibc) or when the
//! environment variable `ADJIT_NO_VMATH` is set, its op keeps the scalar function of
//! `super::unary`; interpreter and JIT ask this module, so they make the same choice. `symbol`
//! names the C symbol in use for each op, for code that links against libmvec itself.
//!
//! The only `unsafe` here is the lookup and the call of these foreign functions.

use crate::ir::Unary;
use std::sync::OnceLock;

/// The libmvec function that computes `u`, if libmvec has one: its C symbol (the x86-64 vector
/// ABI's name: SSE, unmasked, 2 lanes, one vector argument).
pub fn candidate(u: Unary) -> Option<&'static str> {
    Some(match u {
        Unary::Exp => "_ZGVbN2v_exp",
        Unary::Log => "_ZGVbN2v_log",
        Unary::Log1p => "_ZGVbN2v_log1p",
        Unary::Expm1 => "_ZGVbN2v_expm1",
        Unary::Sin => "_ZGVbN2v_sin",
        Unary::Cos => "_ZGVbN2v_cos",
        Unary::Tan => "_ZGVbN2v_tan",
        Unary::Tanh => "_ZGVbN2v_tanh",
        Unary::Asin => "_ZGVbN2v_asin",
        Unary::Acos => "_ZGVbN2v_acos",
        Unary::Atan => "_ZGVbN2v_atan",
        Unary::Sinh => "_ZGVbN2v_sinh",
        Unary::Cosh => "_ZGVbN2v_cosh",
        // Single instructions, or ours: `erf` (0.51 ulp, and faster than libmvec's),
        // `sigmoid` (a guarded formula).
        Unary::Neg
        | Unary::Abs
        | Unary::Sign
        | Unary::Sqrt
        | Unary::Sigmoid
        | Unary::Floor
        | Unary::Erf => return None,
    })
}

/// A two-lane function of libmvec in use.
#[derive(Clone, Copy, Debug)]
pub struct Vector {
    /// Its C symbol, such as `_ZGVbN2v_sin`.
    pub symbol: &'static str,
    f: imp::Lanes,
}

impl Vector {
    /// The function's address, for compiled code to call with one `f64x2` argument and result
    /// (in `xmm0`, the System V vector ABI).
    pub fn address(self) -> *const u8 {
        imp::address(self.f)
    }

    /// The function of `[a, b]`.
    #[inline]
    pub fn pair(self, a: f64, b: f64) -> [f64; 2] {
        imp::call(self.f, a, b)
    }

    /// The op's value at `x`: lane 0 of the function at `[x, x]`.
    #[inline]
    pub fn one(self, x: f64) -> f64 {
        imp::call(self.f, x, x)[0]
    }
}

/// The functions in use, by `Unary as usize`.
fn table() -> &'static [Option<Vector>; Unary::ALL.len()] {
    static TABLE: OnceLock<[Option<Vector>; Unary::ALL.len()]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [None; Unary::ALL.len()];
        if std::env::var_os("ADJIT_NO_VMATH").is_some() {
            return t;
        }
        for u in Unary::ALL {
            t[u as usize] =
                candidate(u).and_then(|symbol| imp::lookup(symbol).map(|f| Vector { symbol, f }));
        }
        t
    })
}

/// Looks the functions up now (they are otherwise looked up at first use, which allocates):
/// executors call this when they are built, so that no call of theirs is the first use.
pub fn init() {
    table();
}

/// The two-lane function computing `u`, if one is in use in this process.
#[inline]
pub fn vector(u: Unary) -> Option<Vector> {
    table()[u as usize]
}

/// The C symbol of the two-lane function computing `u` in this process (`_ZGVbN2v_sin`), or
/// `None` where `u` is computed otherwise.
pub fn symbol(u: Unary) -> Option<&'static str> {
    vector(u).map(|v| v.symbol)
}

/// `u` at `x` through its two-lane function, or `None` if it has none in use.
#[inline]
pub fn one(u: Unary, x: f64) -> Option<f64> {
    vector(u).map(|v| v.one(x))
}

/// `out[i] = v(x[i])`, a pair of elements per call (the last alone if the count is odd).
pub fn map(v: Vector, x: &[f64], out: &mut [f64]) {
    let mut o = out.chunks_exact_mut(2);
    let mut i = x.chunks_exact(2);
    for (o, a) in (&mut o).zip(&mut i) {
        o.copy_from_slice(&v.pair(a[0], a[1]));
    }
    for (o, &a) in o.into_remainder().iter_mut().zip(i.remainder()) {
        *o = v.one(a);
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::arch::x86_64::{__m128d, _mm_cvtsd_f64, _mm_set_pd, _mm_unpackhi_pd};
    use std::ffi::{c_char, c_int, c_void, CString};

    extern "C" {
        fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
    const RTLD_NOW: c_int = 2;

    /// A two-lane function: `__m128d` in and out in `xmm0`, as rustc passes it on x86-64 (SSE2
    /// is part of the target). The lint warns that the layout of SIMD types is not a C type in
    /// general; on this target it is the vector ABI's.
    #[allow(improper_ctypes_definitions)]
    pub(super) type Lanes = unsafe extern "C" fn(__m128d) -> __m128d;

    /// libmvec's function `symbol`, if the library and the symbol are there. The library stays
    /// loaded for the life of the process.
    pub(super) fn lookup(symbol: &str) -> Option<Lanes> {
        let lib = CString::new("libmvec.so.1").expect("no NUL");
        let name = CString::new(symbol).expect("no NUL");
        // SAFETY: dlopen and dlsym take NUL-terminated strings, which these are. Loading
        // libmvec runs no code of ours (its initialisers are glibc's).
        let f = unsafe {
            let handle = dlopen(lib.as_ptr(), RTLD_NOW);
            if handle.is_null() {
                return None;
            }
            dlsym(handle, name.as_ptr())
        };
        if f.is_null() {
            return None;
        }
        // SAFETY: every `_ZGVbN2v_<f>` of libmvec is, by the x86-64 vector function ABI, a
        // function of one `__m128d` returning `__m128d`, which is `Lanes`.
        Some(unsafe { std::mem::transmute::<*mut c_void, Lanes>(f) })
    }

    pub(super) fn address(f: Lanes) -> *const u8 {
        f as *const u8
    }

    #[inline]
    pub(super) fn call(f: Lanes, a: f64, b: f64) -> [f64; 2] {
        // SAFETY: `f` came from `lookup`; libmvec's functions are defined for every input
        // (NaN, infinities and out-of-domain arguments give NaN or a limit) and touch no memory
        // of ours. The SSE2 intrinsics need SSE2, which every x86-64 CPU has.
        unsafe {
            let r = f(_mm_set_pd(b, a));
            [_mm_cvtsd_f64(r), _mm_cvtsd_f64(_mm_unpackhi_pd(r, r))]
        }
    }
}

/// Elsewhere there is no libmvec: no op has a two-lane function.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
mod imp {
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Never {}
    pub(super) type Lanes = Never;

    pub(super) fn lookup(_symbol: &str) -> Option<Lanes> {
        None
    }

    pub(super) fn address(f: Lanes) -> *const u8 {
        match f {}
    }

    pub(super) fn call(f: Lanes, _a: f64, _b: f64) -> [f64; 2] {
        match f {}
    }
}
