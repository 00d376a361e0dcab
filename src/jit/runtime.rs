//! Host functions that generated code calls: the scalar functions of `crate::ops`, the very
//! functions the interpreter uses. `symbols` lists every one, so that each imported name is
//! registered with the JIT (an unregistered name would abort linking).

use crate::ops::binary::adjit_pow;
use crate::ops::unary::{
    adjit_cos, adjit_exp, adjit_expm1, adjit_log, adjit_log1p, adjit_sigmoid, adjit_sin, adjit_tan,
    adjit_tanh,
};

/// A host function: its name, address and number of f64 arguments (it returns one f64).
pub struct Symbol {
    pub name: &'static str,
    pub address: *const u8,
    pub arity: usize,
}

pub fn symbols() -> Vec<Symbol> {
    let unary: [(&'static str, extern "C" fn(f64) -> f64); 9] = [
        ("adjit_exp", adjit_exp),
        ("adjit_log", adjit_log),
        ("adjit_log1p", adjit_log1p),
        ("adjit_expm1", adjit_expm1),
        ("adjit_sin", adjit_sin),
        ("adjit_cos", adjit_cos),
        ("adjit_tan", adjit_tan),
        ("adjit_tanh", adjit_tanh),
        ("adjit_sigmoid", adjit_sigmoid),
    ];
    let mut out: Vec<Symbol> = unary
        .iter()
        .map(|&(name, f)| Symbol {
            name,
            address: f as *const u8,
            arity: 1,
        })
        .collect();
    out.push(Symbol {
        name: "adjit_pow",
        address: adjit_pow as *const u8,
        arity: 2,
    });
    out
}
