//! Host functions that generated code calls: the scalar functions of `crate::ops`, the very
//! functions the interpreter uses. Which op calls which function is a column of the op table
//! (`Unary::host`, `Binary::host`); this module only turns those into symbols to register and
//! declare, looked up by op (`Callee`), never by a name written here. Where the process has a
//! vector function for a unary op (`crate::ops::vmath`: libmvec's `_ZGVbN2v_sin` or
//! `_ZGVdN4v_sin`, ...), that is a symbol too (`Callee::Vector`, `Callee::Quad`), and compiled
//! code calls it for every element of the op, as the interpreter does. A four-lane function is
//! called on registers through `QUAD_CALL`, machine code of ours that each module defines, and
//! on a whole tensor through `vmath::map_raw` in the JIT (`Callee::Map`), or through
//! `QUAD_CALL` per four elements in object files.

use crate::ir::{Binary, Unary};
use crate::ops::{gemm, vmath};
use cranelift_codegen::ir::{types, Type};

/// An op computed by a host call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    Unary(Unary),
    Binary(Binary),
    /// The two-lane function of a unary op (an `f64x2` in and out), where libmvec has one.
    Vector(Unary),
    /// The four-lane function of a unary op, where it is the one in use: only its address is
    /// taken, for `QuadCall`.
    Quad(Unary),
    /// `QUAD_CALL`, defined in each module that calls a four-lane function.
    QuadCall,
    /// The slow path of adjit's own function of a unary op, inline elsewhere: its host
    /// function behind a `preserve_all` trampoline defined in each module that needs one
    /// (`define::define_slow_paths`).
    Slow(Unary),
    /// The AVX2 matmul kernel (`ops::gemm`), where the CPU runs it: one pointer argument.
    Gemm,
    /// `vmath::map_raw`: a unary op's four-lane function over a whole tensor in one call,
    /// `(op, x, y, n)`. The JIT's only: an object file calls the function through `QuadCall`.
    Map,
}

/// `quad_call(f, lo, hi) -> (lo', hi')`: a four-lane libmvec function `f` on the lanes
/// `[lo, hi]` (two `f64x2`). `f` takes and returns a 256-bit vector in `ymm0`, something
/// Cranelift cannot emit (its x64 backend stops at 128 bits), so this joins the halves, calls
/// `f` with the stack 16-byte aligned, splits the result into `xmm0` and `xmm1` (the System V
/// registers of two vector results) and leaves the upper halves clean (`vzeroupper`) for the
/// caller's SSE code. Registers only: a 256-bit load of data just written by two 128-bit
/// stores would miss store forwarding, which measured 4x slower. Assembled from:
/// `vinsertf128 ymm0, ymm0, xmm1, 1; sub rsp, 8; call rdi; add rsp, 8;
/// vextractf128 xmm1, ymm0, 1; vzeroupper; ret`.
pub const QUAD_CALL: [u8; 26] = [
    0xc4, 0xe3, 0x7d, 0x18, 0xc1, 0x01, 0x48, 0x83, 0xec, 0x08, 0xff, 0xd7, 0x48, 0x83, 0xc4, 0x08,
    0xc4, 0xe3, 0x7d, 0x19, 0xc1, 0x01, 0xc5, 0xf8, 0x77, 0xc3,
];

/// A host function: its name (the C symbol: `adjit_sin`, or `_ZGVbN2v_sin` for a two-lane
/// function), address, number of arguments, and the type of each argument and of its one
/// result (`f64`, or `f64x2` for a two-lane function).
pub struct Symbol {
    pub callee: Callee,
    pub name: &'static str,
    pub address: *const u8,
    pub arity: usize,
    pub ty: Type,
}

/// The host function of `callee`, if the op table gives it one.
pub fn symbol(callee: Callee) -> Option<Symbol> {
    match callee {
        Callee::Unary(u) => u.host().map(|h| Symbol {
            callee,
            name: h.symbol,
            address: h.f as *const u8,
            arity: 1,
            ty: types::F64,
        }),
        Callee::Binary(b) => b.host().map(|h| Symbol {
            callee,
            name: h.symbol,
            address: h.f as *const u8,
            arity: 2,
            ty: types::F64,
        }),
        Callee::Vector(u) => vmath::two_lane(u).map(|v| Symbol {
            callee,
            name: v.symbol,
            address: v.address(),
            arity: 1,
            ty: types::F64X2,
        }),
        Callee::Quad(u) => vmath::vector(u).filter(|v| v.lanes() == 4).map(|v| Symbol {
            callee,
            name: v.symbol,
            address: v.address(),
            arity: 0,
            ty: types::F64X2,
        }),
        Callee::QuadCall | Callee::Slow(_) => None,
        Callee::Gemm => gemm::address().map(|address| Symbol {
            callee,
            name: gemm::SYMBOL,
            address,
            arity: 1,
            ty: types::I64,
        }),
        Callee::Map => Some(Symbol {
            callee,
            name: "adjit_vmath_map",
            address: vmath::map_raw as *const u8,
            arity: 4,
            ty: types::I64,
        }),
    }
}

/// Every host function of the op table, so that each is registered with the JIT (an
/// unregistered name would abort linking).
pub fn symbols() -> Vec<Symbol> {
    let unary = Unary::ALL.into_iter().map(Callee::Unary);
    let binary = Binary::ALL.into_iter().map(Callee::Binary);
    let vector = Unary::ALL.into_iter().map(Callee::Vector);
    let quad = Unary::ALL.into_iter().map(Callee::Quad);
    unary
        .chain(binary)
        .chain(vector)
        .chain(quad)
        .chain([Callee::Gemm, Callee::Map])
        .filter_map(symbol)
        .collect()
}

/// What an object file calls for a host function (`jit::export`): a function of the C math
/// library (libmvec's two-lane ones included), which the op's Rust function calls itself, or
/// `sigmoid`, which is ours and is defined in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CFunction {
    Libm(&'static str),
    Sigmoid,
}

/// The C library function behind `callee`'s host function; `None` for an op with no host
/// function, or with one no C library has (`erf`, ours).
pub fn c_function(callee: Callee) -> Option<CFunction> {
    use CFunction::{Libm, Sigmoid};
    match callee {
        Callee::Vector(u) => vmath::two_lane(u).map(|v| Libm(v.symbol)),
        Callee::Quad(_) => symbol(callee).map(|s| Libm(s.name)),
        Callee::QuadCall | Callee::Slow(_) | Callee::Gemm | Callee::Map => None,
        Callee::Unary(u) => match u {
            Unary::Exp => Some(Libm("exp")),
            Unary::Log => Some(Libm("log")),
            Unary::Log1p => Some(Libm("log1p")),
            Unary::Expm1 => Some(Libm("expm1")),
            Unary::Sin => Some(Libm("sin")),
            Unary::Cos => Some(Libm("cos")),
            Unary::Tan => Some(Libm("tan")),
            Unary::Tanh => Some(Libm("tanh")),
            Unary::Asin => Some(Libm("asin")),
            Unary::Acos => Some(Libm("acos")),
            Unary::Atan => Some(Libm("atan")),
            Unary::Sinh => Some(Libm("sinh")),
            Unary::Cosh => Some(Libm("cosh")),
            Unary::Sigmoid => Some(Sigmoid),
            Unary::Erf => None,
            Unary::Neg | Unary::Abs | Unary::Sign | Unary::Sqrt | Unary::Floor => None,
        },
        Callee::Binary(b) => match b {
            Binary::Pow => Some(Libm("pow")),
            Binary::Atan2 => Some(Libm("atan2")),
            Binary::Add
            | Binary::Sub
            | Binary::Mul
            | Binary::Div
            | Binary::Max
            | Binary::Min
            | Binary::Azmul => None,
        },
    }
}
