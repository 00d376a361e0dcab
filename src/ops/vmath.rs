//! Vector math: the transcendental unary ops computed by glibc's libmvec.
//!
//! On x86-64 Linux with glibc, libmvec has functions of two f64 lanes for SSE (`_ZGVbN2v_sin`,
//! ...) and of four lanes for AVX2 (`_ZGVdN4v_sin`, ...); `sin`, `cos`, `exp`, `log` since glibc
//! 2.22, the others since 2.35. Per element the two-lane ones are about 2-3 times faster than
//! scalar libm calls, and the four-lane ones 2-3 times faster again, all within 4 ulp (README.md
//! gives the measured error of each). Each lane's result depends on that lane's input alone
//! (`tests/vmath.rs` checks it, special values included), so an op's value at `x` is defined as
//! lane 0 of its function in use at `[x, x, ...]`, and any grouping of elements into lanes gives
//! the same bits: the interpreter's kernels run groups of lanes (`map`), compiled code runs a
//! whole tensor four elements at a time (`map_raw`, one call per tensor; or one call per pair,
//! in two-lane loops) and splats single elements (`crate::jit`), and both agree bit for bit.
//!
//! The function in use for an op is the four-lane one where the CPU has AVX2 and libmvec has
//! it, else the two-lane one, else none (the op keeps the scalar function of `super::unary`).
//! For `sin`, `cos` and `exp` on a CPU with AVX2 and FMA it is adjit's own four-lane kernel
//! instead (`super::ownmath`, unless `ADJIT_NO_OWN_MATH` is set), whose lanes are independent
//! too.
//! The functions are looked up once per process, at first use, by `dlopen("libmvec.so.1")` and
//! `dlsym`. The environment variable `ADJIT_NO_VMATH` turns vector math off, and
//! `ADJIT_VMATH_LANES=2` keeps it to two lanes; interpreter and JIT ask this module, so they
//! make the same choice. `symbol` names the C symbol in use for each op, for code that links
//! against libmvec itself.
//!
//! The only `unsafe` here is the lookup and the call of these foreign functions.

use super::ownmath;
use crate::ir::Unary;
use std::sync::OnceLock;

/// The libmvec function of `lanes` lanes (2 or 4) that computes `u`, if libmvec has one: its C
/// symbol (the x86-64 vector ABI's name: SSE with 2 lanes or AVX2 with 4, unmasked, one vector
/// argument).
pub fn candidate(u: Unary, lanes: usize) -> Option<&'static str> {
    let name = match u {
        Unary::Exp => "exp",
        Unary::Log => "log",
        Unary::Log1p => "log1p",
        Unary::Expm1 => "expm1",
        Unary::Sin => "sin",
        Unary::Cos => "cos",
        Unary::Tan => "tan",
        Unary::Tanh => "tanh",
        Unary::Asin => "asin",
        Unary::Acos => "acos",
        Unary::Atan => "atan",
        Unary::Sinh => "sinh",
        Unary::Cosh => "cosh",
        // Single instructions, or ours: `erf` (0.51 ulp, and faster than libmvec's),
        // `sigmoid` (a guarded formula).
        Unary::Neg
        | Unary::Abs
        | Unary::Sign
        | Unary::Sqrt
        | Unary::Sigmoid
        | Unary::Floor
        | Unary::Erf => return None,
    };
    let prefix = match lanes {
        2 => "_ZGVbN2v_",
        4 => "_ZGVdN4v_",
        _ => return None,
    };
    // Leaked once per (op, width): the table is built once per process.
    Some(Box::leak(format!("{prefix}{name}").into_boxed_str()))
}

/// A vector function: libmvec's, or one of adjit's own four-lane kernels (`ownmath`).
#[derive(Clone, Copy, Debug)]
pub struct Vector {
    /// Its symbol, such as `_ZGVbN2v_sin` or `_ZGVdN4v_sin`, or `adjit_sin4` for ours.
    pub symbol: &'static str,
    f: imp::Function,
    /// Whether it is adjit's own (`ownmath`), which no C library has.
    pub own: bool,
}

impl Vector {
    /// The function's address: compiled code calls a two-lane function with one `f64x2`
    /// argument and result (in `xmm0`, the System V vector ABI), and a four-lane one through a
    /// trampoline (`crate::jit`: Cranelift has no 256-bit vectors) on registers, and in object
    /// files on tensors (the JIT maps a tensor with `map_raw`).
    pub fn address(self) -> *const u8 {
        imp::address(self.f)
    }

    /// Its number of lanes: 2 or 4.
    pub fn lanes(self) -> usize {
        imp::lanes(self.f)
    }

    /// The function of `x`, four lanes (a two-lane function called on each half).
    #[inline]
    pub fn quad(self, x: [f64; 4]) -> [f64; 4] {
        imp::call(self.f, x)
    }

    /// The function of `[a, b]` (as lanes 0 and 1 of `[a, b, a, b]` for a four-lane one).
    #[inline]
    pub fn pair(self, a: f64, b: f64) -> [f64; 2] {
        let r = self.quad([a, b, a, b]);
        [r[0], r[1]]
    }

    /// The op's value at `x`: lane 0 of the function at `[x, x, ...]`.
    #[inline]
    pub fn one(self, x: f64) -> f64 {
        self.quad([x; 4])[0]
    }
}

/// The functions of libmvec by `Unary as usize`: in use (four lanes where possible), and the
/// two-lane ones.
struct Table {
    in_use: [Option<Vector>; Unary::ALL.len()],
    two: [Option<Vector>; Unary::ALL.len()],
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            in_use: [None; Unary::ALL.len()],
            two: [None; Unary::ALL.len()],
        };
        if std::env::var_os("ADJIT_NO_VMATH").is_some() {
            return t;
        }
        let four =
            imp::has_avx2() && std::env::var("ADJIT_VMATH_LANES").map_or(true, |l| l.trim() != "2");
        let own = std::env::var_os("ADJIT_NO_OWN_MATH").is_none();
        for u in Unary::ALL {
            let find = |lanes| {
                let symbol = candidate(u, lanes)?;
                imp::lookup(symbol, lanes).map(|f| Vector {
                    symbol,
                    f,
                    own: false,
                })
            };
            t.two[u as usize] = find(2);
            t.in_use[u as usize] = four.then(|| find(4)).flatten().or(t.two[u as usize]);
            if four && own && ownmath::Own::of(u).is_some() {
                t.in_use[u as usize] = imp::own(u).or(t.in_use[u as usize]);
            }
        }
        t
    })
}

/// Looks the functions up now (they are otherwise looked up at first use, which allocates):
/// executors call this when they are built, so that no call of theirs is the first use.
pub fn init() {
    table();
}

/// The vector function computing `u`, if one is in use in this process.
#[inline]
pub fn vector(u: Unary) -> Option<Vector> {
    table().in_use[u as usize]
}

/// The two-lane function of `u`, if libmvec has one (in use or not: object files for a
/// target's baseline CPU call it).
pub fn two_lane(u: Unary) -> Option<Vector> {
    table().two[u as usize]
}

/// Whether `u` runs four lanes per call in this process: compiled code then computes it over
/// a whole tensor at once, not inside a fused two-lane loop (`crate::jit::plan`).
#[inline]
pub fn is_four_lane(u: Unary) -> bool {
    vector(u).is_some_and(|v| v.lanes() == 4)
}

/// Whether `u` is computed by adjit's own functions in this process (`ownmath`: four-lane
/// kernels for tensors, and the same recipe inline in compiled code).
#[inline]
pub fn is_own(u: Unary) -> bool {
    vector(u).is_some_and(|v| v.own)
}

/// The C symbol of the vector function computing `u` in this process (`_ZGVdN4v_sin`), or
/// `None` where `u` is computed otherwise.
pub fn symbol(u: Unary) -> Option<&'static str> {
    vector(u).map(|v| v.symbol)
}

/// `u` at `x` through its vector function, or `None` if it has none in use.
#[inline]
pub fn one(u: Unary, x: f64) -> Option<f64> {
    vector(u).map(|v| v.one(x))
}

/// `out[i] = v(x[i])`, four elements per call (a last, partial group padded with its last
/// element, as compiled code pads it).
pub fn map(v: Vector, x: &[f64], out: &mut [f64]) {
    let mut o = out.chunks_exact_mut(4);
    let mut i = x.chunks_exact(4);
    for (o, a) in (&mut o).zip(&mut i) {
        o.copy_from_slice(&v.quad([a[0], a[1], a[2], a[3]]));
    }
    let (o, a) = (o.into_remainder(), i.remainder());
    if let Some(&last) = a.last() {
        let mut group = [last; 4];
        group[..a.len()].copy_from_slice(a);
        let r = v.quad(group);
        o.copy_from_slice(&r[..a.len()]);
    }
}

/// `y[i] = u(x[i])` for `i < n`, where `u as usize == op`, by `u`'s four-lane function in use,
/// grouped and padded as `map` groups them, so the bits are the interpreter's. Compiled code
/// calls this once per tensor (`jit::runtime::Callee::Map`): through `QUAD_CALL` it was one
/// call per four elements, around which Cranelift saves and restores every live vector
/// register. Returns 0, or 1 (leaving `y` as it was) if `op` has no four-lane function in use.
/// Compiled code never asks for that, and ignores the result: it calls this only for ops whose
/// four-lane function it imported, which the same table gives.
///
/// # Safety
/// `x` points to `n` readable f64s and `y` to `n` writable ones; they may be the same.
pub(crate) unsafe extern "C" fn map_raw(op: u64, x: *const f64, y: *mut f64, n: u64) -> u64 {
    let at = op as usize;
    let Some(u) = Unary::ALL.get(at).copied().filter(|&u| u as usize == at) else {
        return 1;
    };
    let Some(v) = vector(u).filter(|v| v.lanes() == 4) else {
        return 1;
    };
    // SAFETY: the caller's promise.
    unsafe { imp::map4(v, u, x, y, n as usize) };
    0
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::Vector;
    use crate::ir::Unary;
    use std::arch::x86_64::{
        __m128d, __m256d, _mm256_loadu_pd, _mm256_storeu_pd, _mm_loadu_pd, _mm_storeu_pd,
    };
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
    type Lanes2 = unsafe extern "C" fn(__m128d) -> __m128d;
    /// A four-lane function: `__m256d` in and out in `ymm0`, as rustc passes it from a function
    /// compiled with AVX enabled (`quad4`).
    #[allow(improper_ctypes_definitions)]
    type Lanes4 = unsafe extern "C" fn(__m256d) -> __m256d;

    #[derive(Clone, Copy, Debug)]
    pub(super) enum Function {
        Two(Lanes2),
        Four(Lanes4),
    }

    pub(super) fn has_avx2() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// adjit's own four-lane kernel of `u`, where the CPU runs it.
    pub(super) fn own(u: Unary) -> Option<Vector> {
        use super::ownmath::{cos4, exp4, has_cpu_features, sin4, Own};
        if !has_cpu_features() {
            return None;
        }
        let (symbol, f): (_, Lanes4) = match Own::of(u)? {
            Own::Sin => ("adjit_sin4", sin4),
            Own::Cos => ("adjit_cos4", cos4),
            Own::Exp => ("adjit_exp4", exp4),
        };
        Some(Vector {
            symbol,
            f: Function::Four(f),
            own: true,
        })
    }

    /// libmvec's function `symbol` of `lanes` lanes, if the library and the symbol are there.
    /// The library stays loaded for the life of the process.
    pub(super) fn lookup(symbol: &str, lanes: usize) -> Option<Function> {
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
        // SAFETY: by the x86-64 vector function ABI, every `_ZGVbN2v_<f>` of libmvec is a
        // function of one `__m128d` returning `__m128d`, and every `_ZGVdN4v_<f>` one of one
        // `__m256d` returning `__m256d` (looked up only where the CPU has AVX2).
        Some(unsafe {
            match lanes {
                2 => Function::Two(std::mem::transmute::<*mut c_void, Lanes2>(f)),
                _ => Function::Four(std::mem::transmute::<*mut c_void, Lanes4>(f)),
            }
        })
    }

    pub(super) fn address(f: Function) -> *const u8 {
        match f {
            Function::Two(f) => f as *const u8,
            Function::Four(f) => f as *const u8,
        }
    }

    pub(super) fn lanes(f: Function) -> usize {
        match f {
            Function::Two(_) => 2,
            Function::Four(_) => 4,
        }
    }

    #[inline]
    pub(super) fn call(f: Function, x: [f64; 4]) -> [f64; 4] {
        let mut out = [0.0; 4];
        // SAFETY: `f` came from `lookup`; libmvec's functions are defined for every input
        // (NaN, infinities and out-of-domain arguments give NaN or a limit) and touch no memory
        // of ours. The SSE2 intrinsics need SSE2, which every x86-64 CPU has; a four-lane
        // function exists only where the CPU has AVX2, which `quad4` needs.
        unsafe {
            match f {
                Function::Two(f) => {
                    _mm_storeu_pd(out.as_mut_ptr(), f(_mm_loadu_pd(x.as_ptr())));
                    _mm_storeu_pd(out.as_mut_ptr().add(2), f(_mm_loadu_pd(x.as_ptr().add(2))));
                }
                Function::Four(f) => quad4(f, &x, &mut out),
            }
        }
        out
    }

    /// `y[i] = v(x[i])` for `i < n`, `v` the four-lane function of `u` in use, four at a
    /// time, a last partial group padded with its last element (`super::map`'s grouping):
    /// adjit's own kernel inline, libmvec's called per group. Nothing for a two-lane `v`,
    /// which `map_raw` never passes.
    ///
    /// # Safety
    /// `x` holds `n` readable f64s, `y` `n` writable ones (they may be the same).
    pub(super) unsafe fn map4(v: Vector, u: Unary, x: *const f64, y: *mut f64, n: usize) {
        let Function::Four(f) = v.f else {
            return;
        };
        match super::ownmath::Own::of(u).filter(|_| v.own) {
            // SAFETY: an own function is in use only where the CPU has its features (`own`);
            // the caller's promise for the pointers.
            Some(own) => unsafe { super::ownmath::map(own, x, y, n) },
            // SAFETY: a four-lane function is looked up only where the CPU has AVX2.
            None => unsafe { map_calls(f, x, y, n) },
        }
    }

    /// `map4` of a function called per group.
    ///
    /// # Safety
    /// As `map4`, and the CPU has AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn map_calls(f: Lanes4, x: *const f64, y: *mut f64, n: usize) {
        // SAFETY: the caller's promise; the group is a local array of four.
        unsafe {
            let mut i = 0;
            while i + 4 <= n {
                _mm256_storeu_pd(y.add(i), f(_mm256_loadu_pd(x.add(i))));
                i += 4;
            }
            if i < n {
                let mut group = [*x.add(n - 1); 4];
                std::ptr::copy_nonoverlapping(x.add(i), group.as_mut_ptr(), n - i);
                let r = f(_mm256_loadu_pd(group.as_ptr()));
                _mm256_storeu_pd(group.as_mut_ptr(), r);
                std::ptr::copy_nonoverlapping(group.as_ptr(), y.add(i), n - i);
            }
        }
    }

    /// Calls a four-lane function: compiled with AVX2 so that `__m256d` travels in `ymm0`.
    #[target_feature(enable = "avx2")]
    unsafe fn quad4(f: Lanes4, x: &[f64; 4], out: &mut [f64; 4]) {
        // SAFETY: as in `call`; the pointers are of four-element arrays.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), f(_mm256_loadu_pd(x.as_ptr()))) }
    }
}

/// Elsewhere there is no libmvec: no op has a vector function.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
mod imp {
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Function {}

    pub(super) fn has_avx2() -> bool {
        false
    }

    pub(super) fn lookup(_symbol: &str, _lanes: usize) -> Option<Function> {
        None
    }

    pub(super) fn own(_u: crate::ir::Unary) -> Option<super::Vector> {
        None
    }

    pub(super) fn address(f: Function) -> *const u8 {
        match f {}
    }

    pub(super) fn lanes(f: Function) -> usize {
        match f {}
    }

    pub(super) fn call(f: Function, _x: [f64; 4]) -> [f64; 4] {
        match f {}
    }

    pub(super) unsafe fn map4(
        v: super::Vector,
        _u: crate::ir::Unary,
        _x: *const f64,
        _y: *mut f64,
        _n: usize,
    ) {
        match v.f {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `map_raw` finds each op at `u as usize` in `Unary::ALL` and gives `map`'s bits, tails
    /// included; an op with no four-lane function in use, or an index past the ops, leaves the
    /// output as it was and returns 1.
    #[test]
    fn map_raw_finds_every_op_and_refuses_the_rest() {
        for (i, u) in Unary::ALL.into_iter().enumerate() {
            assert_eq!(u as usize, i, "{u:?}");
        }
        // Beyond the own kernels' limits too: infinities, NaN, huge and underflowing.
        let specials = [
            f64::INFINITY,
            f64::NAN,
            1e300,
            -745.5,
            -0.0,
            f64::NEG_INFINITY,
        ];
        let x: Vec<f64> = (0..11)
            .map(|i| 0.37 * i as f64 - 1.5)
            .chain(specials)
            .collect();
        for u in Unary::ALL {
            for n in [0, 1, 2, 4, 6, 7, 11, 17] {
                let mut got = vec![-7.0; n];
                // SAFETY: `x` and `got` hold at least `n` elements.
                let code = unsafe { map_raw(u as u64, x.as_ptr(), got.as_mut_ptr(), n as u64) };
                match vector(u).filter(|v| v.lanes() == 4) {
                    Some(v) => {
                        let mut want = vec![0.0; n];
                        map(v, &x[..n], &mut want);
                        assert_eq!(code, 0, "{u:?}");
                        let bits = |a: &[f64]| a.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{u:?} n={n}");
                        // In place, as compiled code calls it on a copy in the result.
                        let mut inplace = x[..n].to_vec();
                        let p = inplace.as_mut_ptr();
                        // SAFETY: `p` holds `n` elements, read and written in place.
                        assert_eq!(unsafe { map_raw(u as u64, p, p, n as u64) }, 0);
                        assert_eq!(bits(&inplace), bits(&want), "{u:?} n={n} in place");
                    }
                    None => {
                        assert_eq!(code, 1, "{u:?}");
                        assert!(got.iter().all(|&y| y == -7.0), "{u:?}");
                    }
                }
            }
        }
        let mut y = [3.0];
        // SAFETY: one element each.
        let code = unsafe { map_raw(u64::MAX, [1.0].as_ptr(), y.as_mut_ptr(), 1) };
        assert_eq!((code, y), (1, [3.0]));
    }
}
