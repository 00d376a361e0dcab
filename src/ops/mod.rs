//! The math of every op, by family: shape rules (here and in the family files), the reference
//! kernels (`kernel` dispatches to the family files) that the interpreter runs and the
//! simplifier folds constants with, and the VJP rules, in the same files.
//!
//! Knows nothing of Cranelift. Scalar functions that generated code calls (`exp`, `sigmoid`,
//! `pow`, ...) are defined once in `unary` and `binary` as `extern "C"` functions, so the
//! interpreter and the JIT compute them with the same code.

pub mod binary;
pub mod contract;
pub mod erf;
pub mod gemm;
pub mod kernel;
pub mod layout;
pub mod ownmath;
pub mod reduce;
pub mod scan;
pub mod unary;
pub mod vmath;

use crate::ir::{DType, Dims, Literal, Op, Type, Var, MAX_ELEMENTS};
use std::fmt;

/// A shape rule's refusal: names the op and shows its operand types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub message: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ShapeError {}

/// Builds a `ShapeError` that starts with the op's name and ends with its operand types.
pub(crate) fn refuse(op: &Op, args: &[Type], why: impl fmt::Display) -> ShapeError {
    let types: Vec<String> = args.iter().map(|t| t.to_string()).collect();
    let operands = if types.is_empty() {
        String::new()
    } else {
        format!(" (operand types: {})", types.join(", "))
    };
    ShapeError {
        message: format!("{}: {why}{operands}", op.name()),
    }
}

/// The type of `op` applied to operands of types `args`, or why that is not well typed.
pub fn result_type(op: &Op, args: &[Type]) -> Result<Type, ShapeError> {
    let arity = op.opcode().arity();
    if !arity.accepts(args.len()) {
        return Err(refuse(
            op,
            args,
            format!("takes {arity}, got {}", args.len()),
        ));
    }
    let ty = match op {
        Op::Const { ty, value } => const_type(op, *ty, value)?,
        Op::Unary(_) => unary::shape(op, args[0])?,
        Op::Binary(_) => binary::binary_shape(op, args[0], args[1])?,
        Op::Compare(_) => binary::compare_shape(op, args[0], args[1])?,
        Op::Select => binary::select_shape(op, args[0], args[1], args[2])?,
        Op::ReduceSum { axes } | Op::ReduceMax { axes } => reduce::shape(op, args[0], *axes)?,
        Op::Broadcast { shape, axes } => layout::broadcast_shape(op, args[0], *shape, *axes)?,
        Op::Reshape { shape } => layout::reshape_shape(op, args[0], *shape)?,
        Op::Transpose { perm } => layout::transpose_shape(op, args[0], *perm)?,
        Op::Slice { start, stop } => layout::slice_shape(op, args[0], *start, *stop)?,
        Op::Pad { lo, hi } => layout::pad_shape(op, args[0], *lo, *hi)?,
        Op::Concat { axis } => layout::concat_shape(op, args, *axis)?,
        Op::Matmul { ta, tb } => contract::matmul_shape(op, args[0], args[1], *ta, *tb)?,
        Op::Scan { .. } => scan::shape(op, args)?,
    };
    if ty.shape.product() > MAX_ELEMENTS {
        return Err(refuse(
            op,
            args,
            format!("result {ty} has more than {MAX_ELEMENTS} elements"),
        ));
    }
    Ok(ty)
}

fn const_type(op: &Op, ty: Type, value: &Literal) -> Result<Type, ShapeError> {
    if ty.shape.product() > MAX_ELEMENTS {
        return Err(refuse(
            op,
            &[],
            format!("{ty} has more than {MAX_ELEMENTS} elements"),
        ));
    }
    if let Literal::Elements(xs) = value {
        if xs.len() as u64 != ty.shape.product() {
            return Err(refuse(
                op,
                &[],
                format!(
                    "{} elements given for type {ty}, which holds {}",
                    xs.len(),
                    ty.numel()
                ),
            ));
        }
    }
    if ty.dtype == DType::Bool {
        let ok = match value {
            Literal::Splat(x) => *x == 0.0 || *x == 1.0,
            Literal::Elements(xs) => xs.iter().all(|&x| x == 0.0 || x == 1.0),
        };
        if !ok {
            return Err(refuse(op, &[], "a bool constant holds only true and false"));
        }
    }
    Ok(ty)
}

/// A cotangent contribution to one operand: a tensor of the operand's type, or (from `slice`)
/// a smaller tensor placed at `start` in zeros of the operand's shape. Placing is left to the
/// transform, which sums all placed pieces of a value at once (`layout::assemble`): padding
/// each slice's cotangent to the full shape would make code that reads a vector element by
/// element quadratic in size.
#[derive(Clone, Copy, Debug)]
pub enum Cotangent<'b> {
    Dense(Var<'b>),
    Placed { start: Dims, value: Var<'b> },
}

/// The vector-Jacobian product of one instruction: given the cotangent `g` of its result `y`,
/// the cotangent of each operand (`None` is a symbolic zero). `needs[i]` says whether operand
/// `i` wants one at all; rules may skip work for the others. Rules emit IR with the Builder,
/// and every op they emit has a rule here, so the transform applies to its own output.
pub fn vjp<'b>(
    op: &Op,
    args: &[Var<'b>],
    y: Var<'b>,
    g: Var<'b>,
    needs: &[bool],
) -> Vec<Option<Cotangent<'b>>> {
    let one = |ct: Var<'b>| vec![Some(Cotangent::Dense(ct))];
    let each = |cts: &[Option<Var<'b>>]| cts.iter().map(|c| c.map(Cotangent::Dense)).collect();
    match op {
        Op::Const { .. } => vec![],
        Op::Unary(u) => each(&[unary::vjp(*u, args[0], y, g)]),
        Op::Binary(b) => each(&binary::vjp(*b, args[0], args[1], y, g, needs[0], needs[1])),
        // Comparisons are piecewise constant, and masks carry no cotangent.
        Op::Compare(_) => vec![None, None],
        Op::Select => {
            let [a, b] = binary::select_vjp(args[0], g, needs[1], needs[2]);
            each(&[None, a, b])
        }
        Op::ReduceSum { axes } => one(reduce::sum_vjp(args[0], *axes, g)),
        Op::ReduceMax { axes } => one(reduce::max_vjp(args[0], y, *axes, g)),
        Op::Broadcast { axes, .. } => one(layout::broadcast_vjp(*axes, g)),
        Op::Reshape { .. } => one(layout::reshape_vjp(args[0], g)),
        Op::Transpose { perm } => one(layout::transpose_vjp(*perm, g)),
        Op::Slice { start, .. } => vec![Some(layout::slice_vjp(*start, g))],
        Op::Pad { lo, .. } => one(layout::pad_vjp(args[0], *lo, g)),
        Op::Concat { axis } => each(&layout::concat_vjp(args, *axis, g, needs)),
        Op::Matmul { ta, tb } => each(&contract::vjp(
            args[0], args[1], *ta, *tb, g, needs[0], needs[1],
        )),
        // A scan's adjoint is another scan, built by the transform, which also changes what
        // the forward scan stores (`crate::ad::scan`).
        Op::Scan { .. } => panic!("internal: a scan's VJP is built by crate::ad"),
    }
}

/// An op whose JVP is not a local rule of `jvp` (a `scan`'s is another scan, built by
/// `crate::ad`): names the op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoRule {
    pub op: &'static str,
}

impl fmt::Display for NoRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} has no JVP rule here", self.op)
    }
}

impl std::error::Error for NoRule {}

/// The Jacobian-vector product of one instruction: given the tangents of its operands
/// (`None` is a symbolic zero), the tangent of its result `y` (`None` if zero). Rules emit IR
/// with the Builder and every op they emit has a rule here, so forward mode applies to its own
/// output. Each rule is the transpose of the op's VJP rule with the same conventions at
/// special points, so `<u, J t> = <J^T u, t>` holds. Rules read shapes from their operands
/// rather than assuming ranks.
///
/// Vector mode: tangents may carry leading axes of directions (`[k] + shape`, the same for
/// every operand). Elementwise rules broadcast the primal partials along them (numpy-style,
/// from the right); layout ops, reductions and matmuls shift their axes past them.
pub fn jvp<'b>(
    op: &Op,
    args: &[Var<'b>],
    y: Var<'b>,
    ts: &[Option<Var<'b>>],
) -> Result<Option<Var<'b>>, NoRule> {
    let lead: Vec<usize> = args
        .iter()
        .zip(ts)
        .find_map(|(a, t)| t.map(|t| t.shape()[..t.rank() - a.rank()].to_vec()))
        .unwrap_or_default();
    let n = lead.len();
    Ok(match op {
        Op::Const { .. } => None,
        Op::Unary(u) => ts[0].and_then(|t| unary::jvp(*u, args[0], y, t)),
        Op::Binary(b) => binary::jvp(*b, args[0], args[1], y, ts[0], ts[1]),
        // Comparisons are piecewise constant; masks carry no tangent.
        Op::Compare(_) => None,
        Op::Select => binary::select_jvp(args[0], ts[1], ts[2]),
        Op::ReduceSum { axes } => ts[0].map(|t| reduce::sum_jvp(*axes, t, n)),
        Op::ReduceMax { axes } => ts[0].map(|t| reduce::max_jvp(args[0], y, *axes, t, n)),
        Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => layout::jvp(op, args, ts, &lead),
        Op::Matmul { ta, tb } => contract::jvp(args[0], args[1], *ta, *tb, ts[0], ts[1], n),
        Op::Scan { .. } => return Err(NoRule { op: op.name() }),
    })
}

/// Checks that `axes` is strictly increasing and below `rank`.
pub(crate) fn check_axes(axes: Dims, rank: usize) -> Result<(), String> {
    let mut prev: Option<usize> = None;
    for a in axes.iter() {
        if a >= rank {
            return Err(format!("axis {a} is out of range for rank {rank}"));
        }
        if prev.is_some_and(|p| p >= a) {
            return Err(format!("axes {axes} must be strictly increasing"));
        }
        prev = Some(a);
    }
    Ok(())
}

/// `1 / x`, for rules that divide by a primal value: one division that CSE shares between the
/// rules dividing by the same value (a quotient's and a square root's, as in `c / sqrt(u)`), and
/// in vector mode between every direction, where dividing each tangent would take one per
/// direction. (A product by it rounds once more than the quotient would.)
/// A tangent or cotangent `g` times a partial derivative `p` that may be infinite or NaN:
/// `azmul`, so that a zero on either side gives zero; a plain product where either is a
/// constant that is finite and nonzero, as the two then differ at most in the sign of a zero.
pub(crate) fn times_partial<'b>(g: Var<'b>, p: Var<'b>) -> Var<'b> {
    let b = g.builder();
    let plain = |v: Var<'b>| {
        b.literal(v.value())
            .and_then(|l| l.as_splat())
            .is_some_and(|c| c.is_finite() && c != 0.0)
    };
    if plain(g) || plain(p) {
        g * p
    } else {
        g.azmul(p)
    }
}

pub(crate) fn recip(x: Var<'_>) -> Var<'_> {
    x.builder().splat(1.0, &x.shape()) / x
}

/// `axes` shifted past `n` leading axes (of directions, in vector mode).
pub(crate) fn shift_axes(axes: Dims, n: usize) -> Vec<usize> {
    axes.iter().map(|a| a + n).collect()
}

/// `shape` without the entries at `axes` (which must be valid, see `check_axes`).
pub(crate) fn remove_axes(shape: Dims, axes: Dims) -> Dims {
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(*i))
        .map(|(_, d)| d)
        .collect();
    Dims::new(&kept)
}
