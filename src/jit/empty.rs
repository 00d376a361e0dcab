//! Zero-size tensors, removed before planning.
//!
//! A value with no elements needs no code, and an op that reads one either has no elements
//! itself or has a result that does not depend on the empty operand's data: a reduction over an
//! empty axis (`+0.0` for a sum, `-inf` for a max, the interpreter's starting values), a matmul
//! whose contraction is empty (zeros), a pad of an empty operand (zeros), and a concat (which
//! skips empty parts). Rewriting these as constants here means the planner and the lowering
//! never see a loop with zero trips; their loops are do-while loops and may assume at least one.
//!
//! The rewrite keeps every value's number, so the function's signature and results are those
//! of the original.

use crate::ir::{Func, Literal, Op};

/// `f` with every zero-size computation replaced by a constant, or `None` if `f` has none.
pub fn without_empty(f: &Func) -> Option<Func> {
    let is_empty = |v: crate::ir::Value| f.value_type(v).numel() == 0;
    let mut out: Option<Func> = None;
    for (k, inst) in f.insts.iter().enumerate() {
        let constant = |x: f64| Op::Const {
            ty: inst.ty,
            value: Literal::Splat(x),
        };
        let rewrite = if inst.ty.numel() == 0 {
            (!inst.args.is_empty()).then(|| (constant(0.0), Vec::new()))
        } else if !inst.args.iter().any(|&a| is_empty(a)) {
            None
        } else {
            match &inst.op {
                // A scan with an empty operand still runs its body on the others.
                Op::Scan { .. } => None,
                Op::ReduceSum { .. } | Op::Matmul { .. } | Op::Pad { .. } => {
                    Some((constant(0.0), Vec::new()))
                }
                Op::ReduceMax { .. } => Some((constant(f64::NEG_INFINITY), Vec::new())),
                Op::Concat { .. } => {
                    let parts = inst.args.iter().copied().filter(|&a| !is_empty(a));
                    Some((inst.op.clone(), parts.collect()))
                }
                // Each of these has a result with as many elements as an operand, so an empty
                // operand means an empty result, handled above.
                Op::Const { .. }
                | Op::Unary(_)
                | Op::Binary(_)
                | Op::Compare(_)
                | Op::Select
                | Op::Broadcast { .. }
                | Op::Reshape { .. }
                | Op::Transpose { .. }
                | Op::Slice { .. } => None,
            }
        };
        if let Some((op, args)) = rewrite {
            let g = out.get_or_insert_with(|| f.clone());
            g.insts[k].op = op;
            g.insts[k].args = args.into_boxed_slice();
        }
    }
    out
}
