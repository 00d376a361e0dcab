//! Host functions that generated code calls: the scalar functions of `crate::ops`, the very
//! functions the interpreter uses. Which op calls which function is a column of the op table
//! (`Unary::host`, `Binary::host`); this module only turns those into symbols to register and
//! declare, looked up by op (`Callee`), never by a name written here.

use crate::ir::{Binary, Unary};

/// An op computed by a host call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    Unary(Unary),
    Binary(Binary),
}

/// A host function: its name, address and number of f64 arguments (it returns one f64).
pub struct Symbol {
    pub callee: Callee,
    pub name: &'static str,
    pub address: *const u8,
    pub arity: usize,
}

/// The host function of `callee`, if the op table gives it one.
pub fn symbol(callee: Callee) -> Option<Symbol> {
    match callee {
        Callee::Unary(u) => u.host().map(|h| Symbol {
            callee,
            name: h.symbol,
            address: h.f as *const u8,
            arity: 1,
        }),
        Callee::Binary(b) => b.host().map(|h| Symbol {
            callee,
            name: h.symbol,
            address: h.f as *const u8,
            arity: 2,
        }),
    }
}

/// Every host function of the op table, so that each is registered with the JIT (an
/// unregistered name would abort linking).
pub fn symbols() -> Vec<Symbol> {
    let unary = Unary::ALL.into_iter().map(Callee::Unary);
    let binary = Binary::ALL.into_iter().map(Callee::Binary);
    unary.chain(binary).filter_map(symbol).collect()
}

/// What an object file calls for a host function (`jit::export`): a function of the C math
/// library, which the op's Rust function calls itself, or `sigmoid`, which is ours and is
/// defined in the object.
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
            Binary::Add | Binary::Sub | Binary::Mul | Binary::Div | Binary::Max | Binary::Min => {
                None
            }
        },
    }
}
