//! The op table: every primitive of the IR, its text name, its family, its attributes and, for
//! elementwise functions computed by a host call, that function.
//!
//! The table below is the one list of ops: `op_table!` (in `table.rs`) derives from it the
//! enums `Unary`, `Binary`, `Compare`, `Opcode` and `Op`, every `ALL` list, the text names both
//! ways, the operand counts, the attribute spellings the reader and the writer use, and the host
//! functions the JIT registers and calls. `Opcode::ALL` lists every op once: tests iterate it so
//! that no op escapes the shape, gradient and backend checks. Matches over ops are exhaustive
//! everywhere (no `_ =>`), so adding an op here makes the compiler list every rule still
//! missing (ARCHITECTURE.md, "Adding an op").
//!
//! Also here: the category questions the planner asks of an op (`is_elementwise`, `reduction`,
//! `is_register_view`), each an exhaustive match.

use super::scan::{Body, Checkpoint};
use super::table::op_table;
use super::types::{Dims, Type};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

// One line per op: `Variant = "text name"`, then for elementwise functions computed by a call
// `host <the function in crate::ops::<family>>`, and for the other ops the operand count and
// the attribute fields (each field's name is its attribute's spelling in the text form).
op_table! {
    unary {
        Neg = "neg";
        Abs = "abs";
        Sign = "sign";
        Exp = "exp", host adjit_exp;
        Log = "log", host adjit_log;
        Log1p = "log1p", host adjit_log1p;
        Expm1 = "expm1", host adjit_expm1;
        Sqrt = "sqrt";
        Sin = "sin", host adjit_sin;
        Cos = "cos", host adjit_cos;
        Tan = "tan", host adjit_tan;
        Tanh = "tanh", host adjit_tanh;
        Sigmoid = "sigmoid", host adjit_sigmoid;
        Floor = "floor";
        Asin = "asin", host adjit_asin;
        Acos = "acos", host adjit_acos;
        Atan = "atan", host adjit_atan;
        Sinh = "sinh", host adjit_sinh;
        Cosh = "cosh", host adjit_cosh;
        Erf = "erf", host adjit_erf;
    }
    binary {
        Add = "add";
        Sub = "sub";
        Mul = "mul";
        Div = "div";
        Pow = "pow", host adjit_pow;
        Max = "max";
        Min = "min";
        /// `atan2 y, x`: the angle of the point `(x, y)`, in `[-pi, pi]` (C's `atan2(y, x)`).
        Atan2 = "atan2", host adjit_atan2;
        /// `azmul a, b`: `a b`, but `+0` wherever either operand is zero, even where the other
        /// is infinite or NaN (an "absolute zero" product). Derivative rules multiply a tangent
        /// or cotangent by a partial derivative that may not be finite with it, so that a zero
        /// on either side contributes zero.
        Azmul = "azmul";
    }
    compare {
        Lt = "lt";
        Le = "le";
        Gt = "gt";
        Ge = "ge";
        Eq = "eq";
        Ne = "ne";
    }
    /// What an instruction computes, with its attributes: `Op`, whose variants are the families
    /// above and the ops below.
    ///
    /// Semantics (shape rules live in `crate::ops`):
    /// - `ReduceSum`/`ReduceMax` remove the listed axes (sorted, distinct).
    /// - `Broadcast` inserts new axes: the result has type `shape`; the operand's shape is
    ///   `shape` with the `axes` entries removed. It is the exact transpose of `ReduceSum` over
    ///   those axes.
    /// - `Reshape` keeps the row-major element order. `Transpose` permutes axes: result axis `i`
    ///   is operand axis `perm[i]`.
    /// - `Slice` takes `start[i]..stop[i]` on every axis; `Pad` adds `lo[i]` zeros before and
    ///   `hi[i]` after on every axis (its transpose). `Concat` joins operands along `axis`.
    /// - `Matmul` multiplies rank-2 matrices, or rank-3 stacks with equal batch size; `ta`/`tb`
    ///   transpose the last two axes of an operand first.
    other {
        /// `select c, a, b`: where `c` is true, `a`, else `b`.
        Select = "select", Arity::Exactly(3);
        ReduceSum = "reduce_sum", Arity::Exactly(1), { axes: Dims };
        ReduceMax = "reduce_max", Arity::Exactly(1), { axes: Dims };
        Broadcast = "broadcast", Arity::Exactly(1), { shape: Dims, axes: Dims };
        Reshape = "reshape", Arity::Exactly(1), { shape: Dims };
        Transpose = "transpose", Arity::Exactly(1), { perm: Dims };
        Slice = "slice", Arity::Exactly(1), { start: Dims, stop: Dims };
        Pad = "pad", Arity::Exactly(1), { lo: Dims, hi: Dims };
        Concat = "concat", Arity::AtLeast(1), { axis: u32 };
        Matmul = "matmul", Arity::Exactly(2), { ta: bool, tb: bool };
        /// A loop: see `crate::ir::scan` for the operand groups and the packed result.
        Scan = "scan", Arity::AtLeast(0), {
            body: Body, replay: Option<Body>, consts: u32, carries: u32, length: u32,
            reverse: bool, checkpoint: Checkpoint
        };
    }
}

/// A scalar function of one f64, as compiled code calls it.
pub type UnaryFn = extern "C" fn(f64) -> f64;
/// A scalar function of two f64s, as compiled code calls it.
pub type BinaryFn = extern "C" fn(f64, f64) -> f64;

/// A host function of `crate::ops` that compiled code calls: its symbol (the Rust name) and
/// the function, the very one the interpreter calls.
#[derive(Clone, Copy, Debug)]
pub struct HostFn<F> {
    pub symbol: &'static str,
    pub f: F,
}

/// An attribute's value as the text form writes it: `[0, 1]`, `2`, `true`, a function `@step`
/// or a checkpointing policy `binomial(50)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    List(Dims),
    Int(u32),
    Flag(bool),
    Func(Body),
    Policy(Checkpoint),
}

/// Why `Op::from_attributes` refused: the attribute, and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrError {
    Missing(&'static str),
    /// Given, but not of its kind; the second field says what it takes ("an integer").
    WrongKind(&'static str, &'static str),
}

/// The Rust types of attribute fields, and how each reads from and writes to an `Attr`.
pub trait AttrType: Sized {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError>;
    /// The attribute to print, or `None` to print nothing (a `false` flag).
    fn to_attr(&self) -> Option<Attr>;
}

impl AttrType for Dims {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        match a {
            Some(Attr::List(d)) => Ok(*d),
            Some(Attr::Int(_) | Attr::Flag(_) | Attr::Func(_) | Attr::Policy(_)) => {
                Err(AttrError::WrongKind(name, "a list such as [0, 1]"))
            }
            None => Err(AttrError::Missing(name)),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::List(*self))
    }
}

impl AttrType for u32 {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        match a {
            Some(Attr::Int(k)) => Ok(*k),
            Some(Attr::List(_) | Attr::Flag(_) | Attr::Func(_) | Attr::Policy(_)) => {
                Err(AttrError::WrongKind(name, "an integer"))
            }
            None => Err(AttrError::Missing(name)),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Int(*self))
    }
}

/// A flag: absent means `false`, and only `true` is printed.
impl AttrType for bool {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        match a {
            Some(Attr::Flag(b)) => Ok(*b),
            Some(Attr::List(_) | Attr::Int(_) | Attr::Func(_) | Attr::Policy(_)) => {
                Err(AttrError::WrongKind(name, "true or false"))
            }
            None => Ok(false),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        self.then_some(Attr::Flag(true))
    }
}

impl AttrType for Body {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        match a {
            Some(Attr::Func(b)) => Ok(b.clone()),
            Some(Attr::List(_) | Attr::Int(_) | Attr::Flag(_) | Attr::Policy(_)) => {
                Err(AttrError::WrongKind(name, "a function such as @step"))
            }
            None => Err(AttrError::Missing(name)),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Func(self.clone()))
    }
}

/// An optional function: absent means none.
impl AttrType for Option<Body> {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        a.map(|a| Body::from_attr(name, Some(a))).transpose()
    }
    fn to_attr(&self) -> Option<Attr> {
        self.as_ref().and_then(Body::to_attr)
    }
}

/// A policy: absent means `auto`, which is not printed.
impl AttrType for Checkpoint {
    fn from_attr(name: &'static str, a: Option<&Attr>) -> Result<Self, AttrError> {
        match a {
            Some(Attr::Policy(p)) => Ok(*p),
            Some(Attr::List(_) | Attr::Int(_) | Attr::Flag(_) | Attr::Func(_)) => Err(
                AttrError::WrongKind(name, "all, carry, binomial(<snapshots>) or auto"),
            ),
            None => Ok(Checkpoint::Auto),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        (*self != Checkpoint::Auto).then_some(Attr::Policy(*self))
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::List(d) => write!(f, "{d}"),
            Attr::Int(k) => write!(f, "{k}"),
            Attr::Flag(b) => write!(f, "{b}"),
            Attr::Func(b) => write!(f, "@{}", b.func().name),
            Attr::Policy(p) => write!(f, "{p}"),
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
    /// The op named `name` in the text form.
    pub fn from_name(name: &str) -> Option<Opcode> {
        Opcode::ALL.iter().copied().find(|op| op.name() == name)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Max,
}

/// The category questions the planner asks, one exhaustive match each: a new op must answer
/// every one.
impl Opcode {
    /// Elementwise ops: one result element from the operands' elements at the same index.
    pub fn is_elementwise(self) -> bool {
        match self {
            Opcode::Unary(_) | Opcode::Binary(_) | Opcode::Compare(_) | Opcode::Select => true,
            Opcode::Const
            | Opcode::ReduceSum
            | Opcode::ReduceMax
            | Opcode::Broadcast
            | Opcode::Reshape
            | Opcode::Transpose
            | Opcode::Slice
            | Opcode::Pad
            | Opcode::Concat
            | Opcode::Matmul
            | Opcode::Scan => false,
        }
    }

    /// Which reduction the op is, if it is one.
    pub fn reduction(self) -> Option<Reduction> {
        match self {
            Opcode::ReduceSum => Some(Reduction::Sum),
            Opcode::ReduceMax => Some(Reduction::Max),
            Opcode::Const
            | Opcode::Unary(_)
            | Opcode::Binary(_)
            | Opcode::Compare(_)
            | Opcode::Select
            | Opcode::Broadcast
            | Opcode::Reshape
            | Opcode::Transpose
            | Opcode::Slice
            | Opcode::Pad
            | Opcode::Concat
            | Opcode::Matmul
            | Opcode::Scan => None,
        }
    }

    /// Layout ops that, applied to a one-element value, leave its one element where it was
    /// (in the same register, for the JIT).
    pub fn is_register_view(self) -> bool {
        match self {
            Opcode::Reshape | Opcode::Broadcast | Opcode::Transpose => true,
            Opcode::Const
            | Opcode::Unary(_)
            | Opcode::Binary(_)
            | Opcode::Compare(_)
            | Opcode::Select
            | Opcode::ReduceSum
            | Opcode::ReduceMax
            | Opcode::Slice
            | Opcode::Pad
            | Opcode::Concat
            | Opcode::Matmul
            | Opcode::Scan => false,
        }
    }
}

impl Op {
    pub fn name(&self) -> &'static str {
        self.opcode().name()
    }

    /// See `Opcode::is_elementwise`.
    pub fn is_elementwise(&self) -> bool {
        self.opcode().is_elementwise()
    }

    /// See `Opcode::reduction`.
    pub fn reduction(&self) -> Option<Reduction> {
        self.opcode().reduction()
    }

    /// See `Opcode::is_register_view`.
    pub fn is_register_view(&self) -> bool {
        self.opcode().is_register_view()
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
            1 + Unary::ALL.len() + Binary::ALL.len() + Compare::ALL.len() + 11
        );
    }

    #[test]
    fn attributes_round_trip_through_the_table() {
        let ops = [
            Op::Broadcast {
                shape: Dims::new(&[2, 3]),
                axes: Dims::new(&[1]),
            },
            Op::Concat { axis: 2 },
            Op::Matmul {
                ta: true,
                tb: false,
            },
            Op::Select,
            Op::Unary(Unary::Exp),
        ];
        for op in ops {
            let attrs = op.attributes();
            let names = op.opcode().attribute_names();
            assert!(attrs.iter().all(|(k, _)| names.contains(k)), "{op:?}");
            let get = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|(_, a)| a);
            assert_eq!(Op::from_attributes(op.opcode(), get), Ok(Some(op.clone())));
        }
        let none = |_: &str| None;
        assert_eq!(
            Op::from_attributes(Opcode::Concat, none),
            Err(AttrError::Missing("axis"))
        );
        assert_eq!(Op::from_attributes(Opcode::Const, none), Ok(None));
    }

    #[test]
    fn host_functions_have_distinct_symbols() {
        let mut seen = std::collections::HashSet::new();
        let unary = Unary::ALL.iter().filter_map(|u| u.host()).map(|h| h.symbol);
        let binary = Binary::ALL
            .iter()
            .filter_map(|b| b.host())
            .map(|h| h.symbol);
        for s in unary.chain(binary) {
            assert!(s.starts_with("adjit_") && seen.insert(s), "{s}");
        }
        assert_eq!(Unary::Exp.host().map(|h| (h.f)(0.0)), Some(1.0));
        assert!(Unary::Neg.host().is_none());
    }

    #[test]
    fn literal_equality_is_bitwise() {
        assert_ne!(Literal::Splat(0.0), Literal::Splat(-0.0));
        assert_eq!(Literal::Splat(f64::NAN), Literal::Splat(f64::NAN));
    }
}
