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
