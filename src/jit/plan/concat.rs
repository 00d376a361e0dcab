//! Concat parts computed in place: a value read only by a concat, as a contiguous part of it,
//! is computed directly inside the concat's storage (a scalar is stored there), and the concat
//! then skips that operand.

use super::kinds::Uses;
use super::{inst, row_major, Kind, ValueMap};
use crate::ir::{Func, Op, Value};

/// A place inside a concat's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Inside {
    pub concat: Value,
    /// In elements from the start of the concat.
    pub offset: usize,
}

pub(super) struct InConcat {
    /// Where each value computed inside a concat goes.
    pub inside: ValueMap<Option<Inside>>,
    /// The concat operands whose data is already in place (the concat skips them).
    pub in_place: ValueMap<bool>,
}

/// What the planner knows when it looks for parts to compute in place.
pub(super) struct Facts<'a> {
    pub kinds: &'a ValueMap<Kind>,
    pub uses: &'a Uses,
    pub scalar_source: &'a ValueMap<Value>,
    /// The output a value is computed straight into (such a value stays there).
    pub output: &'a ValueMap<Option<usize>>,
    /// The chunk computing each value (`None` if no unit computes it).
    pub chunk_of: &'a ValueMap<Option<usize>>,
}

/// The concat parts of `f` computed in place. Only concats whose parts are contiguous in
/// row-major order qualify (every axis before the concat axis has size 1).
pub(super) fn in_concat(f: &Func, facts: &Facts) -> InConcat {
    let nv = f.num_values();
    let mut out = InConcat {
        inside: ValueMap::filled(nv, None),
        in_place: ValueMap::filled(nv, false),
    };
    for (k, inst) in f.insts.iter().enumerate() {
        let c = f.inst_value(k);
        let Op::Concat { axis } = inst.op else {
            continue;
        };
        let axis = axis as usize;
        let shape = inst.ty.shape.to_vec();
        let owns = matches!(facts.kinds[c], Kind::Mem(m) if m.storage == c);
        if !owns || shape[..axis].iter().any(|&d| d != 1) {
            continue;
        }
        let stride = row_major(&shape)[axis] as usize;
        let mut at = 0;
        for &a in inst.args.iter() {
            if let Some(src) = part_source(f, facts, a) {
                out.inside[src] = Some(Inside {
                    concat: c,
                    offset: at * stride,
                });
                out.in_place[a] = true;
            }
            at += f.value_type(a).shape.get(axis);
        }
    }
    out
}

/// The value that computes concat operand `a` if it can compute it in place: `a` itself, or
/// the scalar that `a` is a register view of, if every step on the way has this one use.
fn part_source(f: &Func, facts: &Facts, a: Value) -> Option<Value> {
    let (uses, source) = (facts.uses, facts.scalar_source);
    let mut src = a;
    while src != source[src] && uses.single(src) {
        src = inst(f, src)?.args[0];
    }
    let single = uses.single(src) && uses.single(a);
    let computed = facts.chunk_of[src].is_some()
        && match facts.kinds[src] {
            Kind::Mem(m) => m.storage == src && facts.output[src].is_none(),
            Kind::Scalar => true,
            Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused => false,
        };
    (single && computed && (src == source[a] || src == a)).then_some(src)
}
