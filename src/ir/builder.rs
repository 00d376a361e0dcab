//! The Builder: the way Rust code (users and the AD rules alike) writes IR.
//!
//! `Var` is a copyable handle on a value with arithmetic operators and methods (`a * b + c`,
//! `x.exp()`, `2.0 * x`). Binary operators broadcast numpy-style by inserting explicit `reshape`
//! and `broadcast` instructions: the IR itself never broadcasts implicitly. Every instruction is
//! hash-consed, so the same op on the same operands returns the existing value.
//!
//! Misuse from Rust (mismatched shapes, bad axes) panics with a `#[track_caller]` message naming
//! the op and its operand types; `Builder::try_op` is the fallible twin for generated code. A
//! shape beyond the limits (`Type::try_new`) panics with the very message the reader gives for
//! it, so the Builder accepts no type that the text form would refuse.

use super::func::{Func, Init, Inst, Param, Role, Value};
use super::hash::{FastBuild, FastHasher};
use super::op::{Binary, Compare, Literal, Op, Unary};
use super::types::{DType, Dims, Type, TypeError};
use super::verify::{verify, VerifyError};
use crate::ops::{self, ShapeError};
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::Arc;

mod var;

/// Builds one function. Methods take `&self` so that many `Var` handles can be alive at once.
pub struct Builder {
    state: RefCell<State>,
    rewrite: Option<Rewrite>,
}

/// A rewrite hook: given an op about to be emitted, returns a value that already computes it
/// (possibly emitting simpler instructions), or `None` to emit it as is. `crate::simplify` provides
/// the simplifier's rules; a hook emits through `Builder::try_op_plain` to avoid re-entering.
pub type Rewrite = fn(&Builder, &Op, &[Value]) -> Option<Value>;

struct State {
    func: Func,
    /// Hash of (op, operands) to the values with that hash (almost always one).
    cse: HashMap<u64, Bucket, FastBuild>,
}

enum Bucket {
    One(Value),
    Many(Vec<Value>),
}

fn key_hash(op: &Op, args: &[Value]) -> u64 {
    let mut h = FastHasher::default();
    op.hash(&mut h);
    args.hash(&mut h);
    h.finish()
}

/// A value under construction, tied to its builder.
#[derive(Clone, Copy)]
pub struct Var<'b> {
    b: &'b Builder,
    v: Value,
}

impl std::fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.v, self.ty())
    }
}

impl Builder {
    pub fn new(name: impl Into<String>) -> Builder {
        Builder::with_capacity(name, 0)
    }

    /// A builder with room for about `insts` instructions before it reallocates.
    pub fn with_capacity(name: impl Into<String>, insts: usize) -> Builder {
        let mut func = Func::new(name);
        func.insts.reserve(insts);
        Builder {
            state: RefCell::new(State {
                func,
                cse: HashMap::with_capacity_and_hasher(insts, FastBuild::default()),
            }),
            rewrite: None,
        }
    }

    /// A builder that passes every instruction through `rewrite` before emitting it.
    pub fn with_rewrite(name: impl Into<String>, insts: usize, rewrite: Rewrite) -> Builder {
        Builder {
            rewrite: Some(rewrite),
            ..Builder::with_capacity(name, insts)
        }
    }

    /// Adds a parameter with an explicit role and default-input distribution. Parameters must
    /// all be declared before the first instruction.
    #[track_caller]
    pub fn param_with(&self, name: &str, ty: Type, role: Role, init: Option<Init>) -> Var<'_> {
        let mut st = self.state.borrow_mut();
        assert!(
            st.func.insts.is_empty(),
            "parameter '{name}' declared after the first instruction; declare parameters first"
        );
        assert!(
            st.func.param_index(name).is_none(),
            "parameter '{name}' is declared twice"
        );
        let ty = limited(ty.checked());
        st.func.params.push(Param {
            name: name.to_string(),
            ty,
            role,
            init,
        });
        let v = Value(st.func.params.len() as u32 - 1);
        Var { b: self, v }
    }

    /// Adds a parameter that is differentiated by default.
    #[track_caller]
    pub fn param(&self, name: &str, shape: &[usize]) -> Var<'_> {
        self.param_with(
            name,
            limited(Type::try_new(DType::F64, shape)),
            Role::Wrt,
            None,
        )
    }

    /// Adds a data parameter (not differentiated unless asked for).
    #[track_caller]
    pub fn data(&self, name: &str, shape: &[usize]) -> Var<'_> {
        self.param_with(
            name,
            limited(Type::try_new(DType::F64, shape)),
            Role::Data,
            None,
        )
    }

    /// The handle of an existing value.
    pub fn var(&self, v: Value) -> Var<'_> {
        Var { b: self, v }
    }

    /// Type of a value built so far.
    pub fn type_of(&self, v: Value) -> Type {
        self.state.borrow().func.value_type(v)
    }

    /// The op that defines `v` and its first operand, or `None` for a parameter.
    pub fn definition(&self, v: Value) -> Option<(Op, Option<Value>)> {
        let st = self.state.borrow();
        let i = v.index().checked_sub(st.func.params.len())?;
        let inst = &st.func.insts[i];
        Some((inst.op.clone(), inst.args.first().copied()))
    }

    /// The operands of the instruction defining `v` (none for a parameter).
    pub fn operands(&self, v: Value) -> Vec<Value> {
        let st = self.state.borrow();
        match v.index().checked_sub(st.func.params.len()) {
            Some(i) => st.func.insts[i].args.to_vec(),
            None => Vec::new(),
        }
    }

    /// The literal of `v` if it is a constant.
    pub fn literal(&self, v: Value) -> Option<Literal> {
        let st = self.state.borrow();
        let i = v.index().checked_sub(st.func.params.len())?;
        if let Op::Const { value, .. } = &st.func.insts[i].op {
            Some(value.clone())
        } else {
            None
        }
    }

    /// Names `v` if it is an instruction without a name and `name` is not taken by a parameter.
    /// A name `v<n>` is skipped: it is the printed name of unnamed value n, and transforms
    /// renumber values, so it would no longer read back.
    pub fn name_if_unnamed(&self, v: Value, name: &str) {
        let mut st = self.state.borrow_mut();
        if st.func.param_index(name).is_some() || Value::from_default_name(name).is_some() {
            return;
        }
        let np = st.func.params.len();
        if let Some(i) = v.index().checked_sub(np) {
            let inst = &mut st.func.insts[i];
            if inst.name.is_none() {
                inst.name = Some(name.into());
            }
        }
    }

    /// Number of instructions emitted so far.
    pub fn len(&self) -> usize {
        self.state.borrow().func.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses operands this builder does not hold: values of the function an earlier `finish`
    /// took away (the builder starts a new, empty one).
    fn check_operands(&self, args: &[Value]) -> Result<(), ShapeError> {
        let n = self.state.borrow().func.num_values();
        match args.iter().find(|a| a.index() >= n) {
            Some(a) => Err(ShapeError {
                message: format!(
                    "operand {a} is not a value of this builder (values made before `finish` \
                     belong to the function it returned)"
                ),
            }),
            None => Ok(()),
        }
    }

    /// Emits `op` on `args` (or returns the identical instruction already emitted), through the
    /// rewrite hook if the builder has one.
    pub fn try_op(&self, op: Op, args: &[Value]) -> Result<Var<'_>, ShapeError> {
        self.check_operands(args)?;
        if let Some(rewrite) = self.rewrite {
            if let Some(v) = rewrite(self, &op, args) {
                return Ok(Var { b: self, v });
            }
        }
        self.try_op_plain(op, args)
    }

    /// Emits `op` on `args` without the rewrite hook (hash-consing still applies).
    pub fn try_op_plain(&self, op: Op, args: &[Value]) -> Result<Var<'_>, ShapeError> {
        self.check_operands(args)?;
        let op = quiet_nans(op);
        let mut st = self.state.borrow_mut();
        let hash = key_hash(&op, args);
        let same = |f: &Func, v: Value| {
            let inst = &f.insts[v.index() - f.params.len()];
            inst.op == op && *inst.args == *args
        };
        match st.cse.get(&hash) {
            Some(Bucket::One(v)) if same(&st.func, *v) => return Ok(Var { b: self, v: *v }),
            Some(Bucket::Many(vs)) => {
                if let Some(&v) = vs.iter().find(|&&v| same(&st.func, v)) {
                    return Ok(Var { b: self, v });
                }
            }
            _ => {}
        }
        let ty = {
            let mut small = [Type::scalar(); 3];
            let mut large = Vec::new();
            let types: &[Type] = if args.len() <= small.len() {
                for (t, &a) in small.iter_mut().zip(args) {
                    *t = st.func.value_type(a);
                }
                &small[..args.len()]
            } else {
                large.extend(args.iter().map(|&a| st.func.value_type(a)));
                &large
            };
            ops::result_type(&op, types)?
        };
        let v = st.func.inst_value(st.func.insts.len());
        st.func.insts.push(Inst {
            op,
            args: args.into(),
            ty,
            name: None,
        });
        match st.cse.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(Bucket::One(v));
            }
            Entry::Occupied(mut e) => {
                let bucket = e.get_mut();
                match bucket {
                    Bucket::One(first) => *bucket = Bucket::Many(vec![*first, v]),
                    Bucket::Many(vs) => vs.push(v),
                }
            }
        }
        Ok(Var { b: self, v })
    }

    /// `try_op_plain` for ops known to be well typed.
    #[track_caller]
    pub fn op_plain(&self, op: Op, args: &[Value]) -> Value {
        match self.try_op_plain(op, args) {
            Ok(v) => v.v,
            Err(e) => panic!("adjit builder: {e}"),
        }
    }

    /// Emits `op` on `args`, panicking with the shape rule's message on misuse.
    #[track_caller]
    pub fn op(&self, op: Op, args: &[Value]) -> Var<'_> {
        match self.try_op(op, args) {
            Ok(v) => v,
            Err(e) => panic!("adjit builder: {e}"),
        }
    }

    /// A scalar f64 constant.
    pub fn scalar(&self, x: f64) -> Var<'_> {
        self.splat(x, &[])
    }

    /// An f64 constant of the given shape with every element `x`.
    #[track_caller]
    pub fn splat(&self, x: f64, shape: &[usize]) -> Var<'_> {
        let ty = limited(Type::try_new(DType::F64, shape));
        self.op(
            Op::Const {
                ty,
                value: Literal::Splat(x),
            },
            &[],
        )
    }

    /// A bool constant of the given shape with every element `x`.
    #[track_caller]
    pub fn splat_bool(&self, x: bool, shape: &[usize]) -> Var<'_> {
        let ty = limited(Type::try_new(DType::Bool, shape));
        self.op(
            Op::Const {
                ty,
                value: Literal::Splat(if x { 1.0 } else { 0.0 }),
            },
            &[],
        )
    }

    /// An f64 constant tensor, elements in row-major order.
    #[track_caller]
    pub fn tensor(&self, shape: &[usize], data: &[f64]) -> Var<'_> {
        let ty = limited(Type::try_new(DType::F64, shape));
        self.op(
            Op::Const {
                ty,
                value: Literal::Elements(Arc::from(data)),
            },
            &[],
        )
    }

    /// `select c, a, b`: `a` where `c` is true, else `b` (all three broadcast numpy-style to
    /// their common shape).
    #[track_caller]
    pub fn select<'b>(&'b self, c: Var<'b>, a: Var<'b>, b: Var<'b>) -> Var<'b> {
        let common = |x: &[usize], y: &[usize]| {
            broadcast_shapes(x, y).unwrap_or_else(|e| panic!("adjit builder: {e}"))
        };
        let shape = common(&common(&c.shape(), &a.shape()), &b.shape());
        let c = c.broadcast_to(&shape);
        let a = a.broadcast_to(&shape);
        let b = b.broadcast_to(&shape);
        self.op(Op::Select, &[c.v, a.v, b.v])
    }

    /// Joins values along `axis`.
    #[track_caller]
    pub fn concat<'b>(&'b self, parts: &[Var<'b>], axis: usize) -> Var<'b> {
        let args: Vec<Value> = parts.iter().map(|p| p.v).collect();
        self.op(Op::Concat { axis: axis as u32 }, &args)
    }

    /// Finishes the function with the given results and verifies it. The builder is left
    /// empty (a function with no parameters), and its handles refer to nothing useful.
    pub fn finish(&self, results: &[Var<'_>]) -> Result<Func, VerifyError> {
        let results: Vec<Value> = results.iter().map(|r| r.v).collect();
        let func = self.finish_unverified(&results);
        verify(&func)?;
        Ok(func)
    }

    /// Finishes without verifying (for passes that verify in bulk, and for tests of the verifier).
    pub fn finish_unverified(&self, results: &[Value]) -> Func {
        let mut st = self.state.borrow_mut();
        let name = st.func.name.clone();
        st.cse.clear();
        let mut func = std::mem::replace(&mut st.func, Func::new(name));
        func.results = results.to_vec();
        func
    }
}

/// The op, with every NaN of a constant made the quiet NaN of its sign: the two NaNs the text
/// form spells (`nan`, `-nan`), so that every constant prints and reads back bit for bit.
fn quiet_nans(op: Op) -> Op {
    let quiet = |x: f64| {
        if x.is_nan() {
            f64::NAN.copysign(x)
        } else {
            x
        }
    };
    let noisy = |x: &f64| x.is_nan() && quiet(*x).to_bits() != x.to_bits();
    match op {
        Op::Const {
            ty,
            value: Literal::Splat(x),
        } => Op::Const {
            ty,
            value: Literal::Splat(quiet(x)),
        },
        Op::Const {
            ty,
            value: Literal::Elements(xs),
        } if xs.iter().any(noisy) => Op::Const {
            ty,
            value: Literal::Elements(xs.iter().map(|&x| quiet(x)).collect()),
        },
        other => other,
    }
}

/// A type within the limits, or the Builder's panic with the shared message of `TypeError`.
#[track_caller]
fn limited(ty: Result<Type, TypeError>) -> Type {
    match ty {
        Ok(t) => t,
        Err(e) => panic!("adjit builder: {e}"),
    }
}

/// The numpy broadcast of two shapes, or why they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!("shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_consing_and_broadcasting() {
        let b = Builder::new("f");
        let x = b.param("x", &[3]);
        let m = b.param("m", &[2, 1]);
        let y = x.exp() + x.exp();
        let n = b.len();
        let _ = x.exp();
        assert_eq!(b.len(), n, "x.exp() was emitted twice");
        let z = m * y; // [2,1] * [3] -> [2,3]
        assert_eq!(z.shape(), vec![2, 3]);
        let s = (2.0 * z).sum();
        let f = b.finish(&[s]).unwrap();
        let text = f.to_string();
        assert!(text.contains("broadcast"), "{text}");
        assert!(text.contains("reshape"), "{text}");
    }

    #[test]
    fn mismatched_shapes_panic_clearly() {
        let caught = std::panic::catch_unwind(|| {
            let b = Builder::new("f");
            let x = b.param("x", &[3]);
            let y = b.param("y", &[4]);
            let _ = x + y;
        });
        let payload = caught.expect_err("adding f64[3] and f64[4] must panic");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(msg.contains("do not broadcast"), "{msg}");
    }

    #[test]
    fn try_op_reports_the_shape_rule() {
        let b = Builder::new("f");
        let x = b.param("x", &[3]);
        let y = b.param("y", &[4]);
        let e = b
            .try_op(Op::Binary(Binary::Add), &[x.value(), y.value()])
            .unwrap_err();
        assert!(e.message.starts_with("add:"), "{e}");
        assert!(e.message.contains("f64[3], f64[4]"), "{e}");
    }
}
