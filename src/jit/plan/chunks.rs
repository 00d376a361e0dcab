//! Chunks: the units cut into runs of bounded work, one generated function each, so that
//! compile time stays linear in the size of the function.

use super::{unit_values, Groups, Unit, ValueMap};
use crate::ir::{Def, Func, Value};
use std::ops::Range;

/// Consecutive ranges of `units`, each of about `chunk_cost` work (the last may be less); at
/// least one, even for no units.
pub(super) fn cut(
    f: &Func,
    groups: &Groups,
    units: &[Unit],
    loop_roots: &[Value],
    chunk_cost: usize,
) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut cost = 0;
    for (i, u) in units.iter().enumerate() {
        cost += match u {
            Unit::CopyOut(..) => 2,
            Unit::Compute(_) | Unit::Loop { .. } => unit_values(u, loop_roots)
                .iter()
                .map(|&v| value_cost(f, groups, v))
                .sum(),
        };
        if cost >= chunk_cost {
            chunks.push(start..i + 1);
            start = i + 1;
            cost = 0;
        }
    }
    if start < units.len() || chunks.is_empty() {
        chunks.push(start..units.len());
    }
    chunks
}

/// Cost of computing one value, in rough instruction counts.
fn value_cost(f: &Func, groups: &Groups, v: Value) -> usize {
    1 + groups.members(v).len()
        + match f.def(v) {
            Def::Inst(i) => f.insts[i].args.len(),
            Def::Param(_) => 0,
        }
}

/// The chunk that computes each value (`None` for values no unit computes).
pub(super) fn chunk_of_values(
    nv: usize,
    units: &[Unit],
    loop_roots: &[Value],
    chunks: &[Range<usize>],
) -> ValueMap<Option<usize>> {
    let mut chunk_of = ValueMap::filled(nv, None);
    for (c, range) in chunks.iter().enumerate() {
        for u in &units[range.clone()] {
            for &v in unit_values(u, loop_roots) {
                chunk_of[v] = Some(c);
            }
        }
    }
    chunk_of
}
