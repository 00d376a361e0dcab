//! The op table: every primitive of the IR, its text name, its family and its attributes.
//!
//! `Op` is what an instruction does, attributes included. `Opcode` is the bare name, and
//! `Opcode::ALL` lists every op once: tests iterate it so that no op escapes the shape, gradient
//! and backend checks. Matches over ops are exhaustive everywhere (no `_ =>`), so adding an op
//! here makes the compiler list every rule still missing.

use super::types::{Dims, Type};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Elementwise functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    Neg,
    Abs,
    Sign,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Floor,
}

impl Unary {
    pub const ALL: [Unary; 14] = [
        Unary::Neg,
        Unary::Abs,
        Unary::Sign,
        Unary::Exp,
        Unary::Log,
        Unary::Log1p,
        Unary::Expm1,
        Unary::Sqrt,
        Unary::Sin,
        Unary::Cos,
        Unary::Tan,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Floor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Sign => "sign",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Log1p => "log1p",
            Unary::Expm1 => "expm1",
            Unary::Sqrt => "sqrt",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tan => "tan",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Floor => "floor",
        }
    }
}

/// Elementwise functions of two f64 arguments of equal type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

impl Binary {
    pub const ALL: [Binary; 7] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Pow,
        Binary::Max,
        Binary::Min,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
            Binary::Max => "max",
            Binary::Min => "min",
        }
    }
}

/// Elementwise comparisons of two f64 arguments, giving a bool mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Compare {
    pub const ALL: [Compare; 6] = [
        Compare::Lt,
        Compare::Le,
        Compare::Gt,
        Compare::Ge,
        Compare::Eq,
        Compare::Ne,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compare::Lt => "lt",
            Compare::Le => "le",
            Compare::Gt => "gt",
            Compare::Ge => "ge",
            Compare::Eq => "eq",
            Compare::Ne => "ne",
        }
    }
}

/// The data of a constant: one value repeated over the result's shape, or every element.
/// Bool constants hold `0.0` and `1.0`. Equality and hashing compare bit patterns, so `-0.0` and
/// `0.0` are different constants and a NaN constant equals itself. The Builder keeps only the
/// sign of a NaN (`nan` or `-nan` in the text form), so that constants read back bit for bit.
#[derive(Clone, Debug)]
pub enum Literal {
    Splat(f64),
    Elements(Arc<[f64]>),
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Literal::Splat(a), Literal::Splat(b)) => a.to_bits() == b.to_bits(),
            (Literal::Elements(a), Literal::Elements(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Literal::Splat(_), Literal::Elements(_))
            | (Literal::Elements(_), Literal::Splat(_)) => false,
        }
    }
}

impl Eq for Literal {}

impl Hash for Literal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Literal::Splat(x) => {
                0u8.hash(state);
                x.to_bits().hash(state);
            }
            Literal::Elements(xs) => {
                1u8.hash(state);
                xs.len().hash(state);
                for x in xs.iter() {
                    x.to_bits().hash(state);
                }
            }
        }
    }
}

impl Literal {
    /// Element `i` of a constant of `n` elements.
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Literal::Splat(x) => *x,
            Literal::Elements(xs) => xs[i],
        }
    }

    /// Writes the constant's elements into `dst` (as many as `dst` holds).
    pub fn write_into(&self, dst: &mut [f64]) {
        match self {
            Literal::Splat(x) => dst.fill(*x),
            Literal::Elements(xs) => dst.copy_from_slice(&xs[..dst.len()]),
        }
    }

    /// The single value, if every element is the same bit pattern.
    pub fn as_splat(&self) -> Option<f64> {
        match self {
            Literal::Splat(x) => Some(*x),
            Literal::Elements(xs) => {
                let first = *xs.first()?;
                xs.iter()
                    .all(|x| x.to_bits() == first.to_bits())
                    .then_some(first)
            }
        }
    }
}

/// What an instruction computes, with its attributes.
///
/// Semantics (shape rules live in `crate::ops`):
/// - `ReduceSum`/`ReduceMax` remove the listed axes (sorted, distinct).
/// - `Broadcast` inserts new axes: the result has type `shape`; the operand's shape is `shape`
///   with the `axes` entries removed. It is the exact transpose of `ReduceSum` over those axes.
/// - `Reshape` keeps the row-major element order. `Transpose` permutes axes: result axis `i` is
///   operand axis `perm[i]`.
/// - `Slice` takes `start[i]..stop[i]` on every axis; `Pad` adds `lo[i]` zeros before and `hi[i]`
///   after on every axis (its transpose). `Concat` joins operands along `axis`.
/// - `Matmul` multiplies rank-2 matrices, or rank-3 stacks with equal batch size; `ta`/`tb`
///   transpose the last two axes of an operand first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A constant of type `ty` (stored here because a splat does not determine its shape).
    Const {
        ty: Type,
        value: Literal,
    },
    Unary(Unary),
    Binary(Binary),
    Compare(Compare),
    /// `select c, a, b`: where `c` is true, `a`, else `b`.
    Select,
    ReduceSum {
        axes: Dims,
    },
    ReduceMax {
        axes: Dims,
    },
    Broadcast {
        shape: Dims,
        axes: Dims,
    },
    Reshape {
        shape: Dims,
    },
    Transpose {
        perm: Dims,
    },
    Slice {
        start: Dims,
        stop: Dims,
    },
    Pad {
        lo: Dims,
        hi: Dims,
    },
    Concat {
        axis: u32,
    },
    Matmul {
        ta: bool,
        tb: bool,
    },
}

/// The name of an op without its attributes: one entry per word of the text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    Const,
    Unary(Unary),
    Binary(Binary),
    Compare(Compare),
    Select,
    ReduceSum,
    ReduceMax,
    Broadcast,
    Reshape,
    Transpose,
    Slice,
    Pad,
    Concat,
    Matmul,
}

/// How many operands an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exactly(1) => write!(f, "1 operand"),
            Arity::Exactly(k) => write!(f, "{k} operands"),
            Arity::AtLeast(k) => write!(f, "at least {k} operands"),
        }
    }
}

impl Opcode {
    /// Every op of the IR, once.
    pub const ALL: [Opcode; 38] = [
        Opcode::Const,
        Opcode::Unary(Unary::Neg),
        Opcode::Unary(Unary::Abs),
        Opcode::Unary(Unary::Sign),
        Opcode::Unary(Unary::Exp),
        Opcode::Unary(Unary::Log),
        Opcode::Unary(Unary::Log1p),
        Opcode::Unary(Unary::Expm1),
        Opcode::Unary(Unary::Sqrt),
        Opcode::Unary(Unary::Sin),
        Opcode::Unary(Unary::Cos),
        Opcode::Unary(Unary::Tan),
        Opcode::Unary(Unary::Tanh),
        Opcode::Unary(Unary::Sigmoid),
        Opcode::Unary(Unary::Floor),
        Opcode::Binary(Binary::Add),
        Opcode::Binary(Binary::Sub),
        Opcode::Binary(Binary::Mul),
        Opcode::Binary(Binary::Div),
        Opcode::Binary(Binary::Pow),
        Opcode::Binary(Binary::Max),
        Opcode::Binary(Binary::Min),
        Opcode::Compare(Compare::Lt),
        Opcode::Compare(Compare::Le),
        Opcode::Compare(Compare::Gt),
        Opcode::Compare(Compare::Ge),
        Opcode::Compare(Compare::Eq),
        Opcode::Compare(Compare::Ne),
        Opcode::Select,
        Opcode::ReduceSum,
        Opcode::ReduceMax,
        Opcode::Broadcast,
        Opcode::Reshape,
        Opcode::Transpose,
        Opcode::Slice,
        Opcode::Pad,
        Opcode::Concat,
        Opcode::Matmul,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Opcode::Const => "const",
            Opcode::Unary(u) => u.name(),
            Opcode::Binary(b) => b.name(),
            Opcode::Compare(c) => c.name(),
            Opcode::Select => "select",
            Opcode::ReduceSum => "reduce_sum",
            Opcode::ReduceMax => "reduce_max",
            Opcode::Broadcast => "broadcast",
            Opcode::Reshape => "reshape",
            Opcode::Transpose => "transpose",
            Opcode::Slice => "slice",
            Opcode::Pad => "pad",
            Opcode::Concat => "concat",
            Opcode::Matmul => "matmul",
        }
    }

    pub fn from_name(name: &str) -> Option<Opcode> {
        Opcode::ALL.iter().copied().find(|op| op.name() == name)
    }

    pub fn arity(self) -> Arity {
        match self {
            Opcode::Const => Arity::Exactly(0),
            Opcode::Unary(_)
            | Opcode::ReduceSum
            | Opcode::ReduceMax
            | Opcode::Broadcast
            | Opcode::Reshape
            | Opcode::Transpose
            | Opcode::Slice
            | Opcode::Pad => Arity::Exactly(1),
            Opcode::Binary(_) | Opcode::Compare(_) | Opcode::Matmul => Arity::Exactly(2),
            Opcode::Select => Arity::Exactly(3),
            Opcode::Concat => Arity::AtLeast(1),
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Op {
    pub fn opcode(&self) -> Opcode {
        match self {
            Op::Const { .. } => Opcode::Const,
            Op::Unary(u) => Opcode::Unary(*u),
            Op::Binary(b) => Opcode::Binary(*b),
            Op::Compare(c) => Opcode::Compare(*c),
            Op::Select => Opcode::Select,
            Op::ReduceSum { .. } => Opcode::ReduceSum,
            Op::ReduceMax { .. } => Opcode::ReduceMax,
            Op::Broadcast { .. } => Opcode::Broadcast,
            Op::Reshape { .. } => Opcode::Reshape,
            Op::Transpose { .. } => Opcode::Transpose,
            Op::Slice { .. } => Opcode::Slice,
            Op::Pad { .. } => Opcode::Pad,
            Op::Concat { .. } => Opcode::Concat,
            Op::Matmul { .. } => Opcode::Matmul,
        }
    }

    pub fn name(&self) -> &'static str {
        self.opcode().name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_invertible() {
        let mut seen = std::collections::HashSet::new();
        for op in Opcode::ALL {
            assert!(seen.insert(op.name()), "duplicate name {}", op.name());
            assert_eq!(Opcode::from_name(op.name()), Some(op));
        }
        assert_eq!(Opcode::from_name("frobnicate"), None);
        assert_eq!(
            Opcode::ALL.len(),
            1 + Unary::ALL.len() + Binary::ALL.len() + Compare::ALL.len() + 10
        );
    }

    #[test]
    fn literal_equality_is_bitwise() {
        assert_ne!(Literal::Splat(0.0), Literal::Splat(-0.0));
        assert_eq!(Literal::Splat(f64::NAN), Literal::Splat(f64::NAN));
    }
}
