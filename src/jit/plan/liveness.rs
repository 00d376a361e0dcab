//! Liveness: the last unit that reads each storage owner or scalar (its workspace range is free
//! after it), and the scalars that a later chunk reads (they need a workspace slot, since
//! registers do not outlive a chunk).

use super::{inst, unit_values, Groups, Kind, Load, Unit, ValueMap};
use crate::ir::{Def, Func, Op, Value};
use std::ops::Range;

pub(super) struct Liveness {
    /// The last unit reading each storage owner or scalar (0 if none does).
    pub last_unit: ValueMap<usize>,
    /// Scalars computed in one chunk and read in a later one.
    pub needs_slot: ValueMap<bool>,
}

/// What liveness reads of the plan so far.
pub(super) struct Facts<'a> {
    pub kinds: &'a ValueMap<Kind>,
    pub loads: &'a ValueMap<Option<Load>>,
    pub scalar_source: &'a ValueMap<Value>,
    pub groups: &'a Groups,
    pub units: &'a [Unit],
    pub loop_roots: &'a [Value],
    pub chunks: &'a [Range<usize>],
    pub chunk_of: &'a ValueMap<Option<usize>>,
    pub in_place: &'a ValueMap<bool>,
}

pub(super) fn liveness(f: &Func, facts: &Facts) -> Liveness {
    let nv = f.num_values();
    let mut live = Liveness {
        last_unit: ValueMap::filled(nv, 0),
        needs_slot: ValueMap::filled(nv, false),
    };
    let mut reads = Vec::new();
    for (c, range) in facts.chunks.iter().enumerate() {
        for i in range.clone() {
            reads_of(f, facts, &facts.units[i], &mut reads);
            for &r in &reads {
                let Some(s) = underlying(facts, r) else {
                    continue;
                };
                live.last_unit[s] = live.last_unit[s].max(i);
                if from_earlier_chunk(f, facts, s, c) {
                    live.needs_slot[s] = true;
                }
            }
        }
    }
    live
}

/// The values unit `u` reads directly: its operands (less those already in place inside a
/// concat), the operands of its fused groups, and the value a copy copies.
fn reads_of(f: &Func, facts: &Facts, u: &Unit, out: &mut Vec<Value>) {
    out.clear();
    if let Unit::CopyOut(v, _) = *u {
        out.push(v);
    }
    for &v in unit_values(u, facts.loop_roots) {
        if let Some(inst) = inst(f, v) {
            let args = inst.args.iter().copied();
            out.extend(args.filter(|&a| !facts.in_place[a]));
        }
        for &m in facts.groups.members(v) {
            if let Some(inst) = inst(f, m) {
                out.extend(inst.args.iter().copied());
            }
        }
    }
    // A concat read piecewise is read through its parts.
    let pieces: Vec<Value> = out
        .iter()
        .copied()
        .filter(|&a| facts.kinds[a] == Kind::Pieces)
        .collect();
    for c in pieces {
        if let Some(inst) = inst(f, c) {
            out.extend(inst.args.iter().copied());
        }
    }
}

/// The storage owner or scalar behind a read (a scalar as the value holding its register).
fn underlying(facts: &Facts, v: Value) -> Option<Value> {
    let s = match facts.kinds[v] {
        Kind::Mem(m) => m.storage,
        Kind::Bcast(s) => s,
        Kind::Scalar => v,
        Kind::Splat(_) | Kind::Fused | Kind::Pieces => return None,
    };
    Some(match facts.kinds[s] {
        Kind::Scalar => facts.scalar_source[s],
        Kind::Mem(_) | Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused | Kind::Pieces => s,
    })
}

/// Whether scalar `s`, read in chunk `c`, was computed in an earlier chunk. (Parameters are
/// loaded from their input, constants are immediates, and loads are reloaded, in every chunk
/// that reads them.)
fn from_earlier_chunk(f: &Func, facts: &Facts, s: Value, c: usize) -> bool {
    if facts.kinds[s] != Kind::Scalar || facts.loads[s].is_some() {
        return false;
    }
    match f.def(s) {
        Def::Param(_) => false,
        Def::Inst(k) if matches!(f.insts[k].op, Op::Const { .. }) => false,
        Def::Inst(_) => facts.chunk_of[s].expect("a scalar read is computed first") < c,
    }
}
