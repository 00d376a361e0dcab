//! Concats: read piecewise by the loops that read them (`pieces`: the concat is never
//! stored), or else materialized with their parts computed in place: a value read only by a
//! concat, as a contiguous part of it, is computed directly inside the concat's storage (a
//! scalar is stored there), and the concat then skips that operand.

use super::fusion::Groups;
use super::kinds::{own, readers, Uses};
use super::{inst, row_major, Kind, ValueMap};
use crate::ir::{Func, Op, Value, MAX_RANK};
use crate::ops::vmath;

/// Most parts a concat read piecewise may have (each part boundary splits every loop reading
/// it, which repeats the loop's code).
const MAX_PIECES: usize = 4;

/// Fewest elements a concat read piecewise may have. Each part repeats the code of every loop
/// reading it, while storing the concat costs one copy of its elements, so short concats are
/// stored: the pendulum's 20-element ones read piecewise doubled its hvp's machine code (1.7
/// to 3.0 MiB unrolled, 15 to 24 KiB as a scan) and slowed it by 10-50%.
pub const MIN_PIECEWISE_ELEMENTS: usize = 64;

/// `kinds` with the concats that are read piecewise made `Kind::Pieces`: a concat of at most
/// `MAX_PIECES` parts and at least `MIN_PIECEWISE_ELEMENTS` elements, whose parts are views,
/// splats or scalars (no storage of its own needed), read only by elementwise ops computed in
/// elementwise loops (not by a reduction's nest or a four-lane op, which read memory), and not
/// a result. A loop reading it runs one nest per piece along its axis; the concats one loop
/// reads piecewise share their axis (`one_axis_per_loop`), and a loop whose axis is not its
/// first longer than 1 takes no reduction (`fusion::merge_loops`), whose sum must run in
/// row-major order.
pub(super) fn pieces(
    f: &Func,
    uses: &Uses,
    groups: &Groups,
    mut kinds: ValueMap<Kind>,
) -> ValueMap<Kind> {
    let readers = readers(f);
    for (k, inst) in f.insts.iter().enumerate() {
        let c = f.inst_value(k);
        let Op::Concat { .. } = inst.op else {
            continue;
        };
        let parts_ok = inst.args.len() <= MAX_PIECES
            && inst.ty.numel() >= MIN_PIECEWISE_ELEMENTS
            && inst.args.iter().all(|&a| {
                matches!(
                    kinds[a],
                    Kind::Mem(_) | Kind::Splat(_) | Kind::Bcast(_) | Kind::Scalar
                )
            });
        let read_in_loops = !uses.returned[c]
            && !readers[c].is_empty()
            && readers[c]
                .iter()
                .all(|&r| in_elementwise_loop(f, groups, r));
        if matches!(kinds[c], Kind::Mem(_)) && parts_ok && read_in_loops {
            kinds[c] = Kind::Pieces;
        }
    }
    one_axis_per_loop(f, groups, kinds)
}

/// The axis along which loops read concat `c` piecewise.
pub(super) fn piece_axis(f: &Func, c: Value) -> usize {
    match inst(f, c).map(|i| &i.op) {
        Some(Op::Concat { axis }) => *axis as usize,
        _ => panic!("internal: {c} is not a concat"),
    }
}

/// `kinds` with the piecewise concats of each fused group along one axis: those along another
/// axis than the group's first one (in instruction order) are stored.
fn one_axis_per_loop(f: &Func, groups: &Groups, mut kinds: ValueMap<Kind>) -> ValueMap<Kind> {
    let mut axis_of_root: ValueMap<Option<usize>> = ValueMap::filled(f.num_values(), None);
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        let root = groups.root(v).unwrap_or(v);
        for &a in inst.args.iter() {
            if kinds[a] != Kind::Pieces {
                continue;
            }
            let axis = piece_axis(f, a);
            match axis_of_root[root] {
                None => axis_of_root[root] = Some(axis),
                Some(first) if first != axis => kinds[a] = own(a, f.value_type(a)),
                Some(_) => {}
            }
        }
    }
    kinds
}

/// Whether `r` is an elementwise op (not a four-lane one) whose loop is an elementwise loop:
/// `r` itself or the root it is fused into is elementwise.
fn in_elementwise_loop(f: &Func, groups: &Groups, r: Value) -> bool {
    let elementwise = |v: Value| {
        inst(f, v).is_some_and(|i| {
            i.op.is_elementwise() && !matches!(i.op, Op::Unary(u) if vmath::is_four_lane(u))
        })
    };
    elementwise(r) && elementwise(groups.root(r).unwrap_or(r))
}

/// The parts of a `Kind::Pieces` concat `c` along its axis: each operand with its first index
/// along the axis and its length there.
pub fn piece_parts(f: &Func, c: Value) -> (usize, Vec<(Value, usize, usize)>) {
    let inst = inst(f, c).expect("a concat is an instruction");
    let Op::Concat { axis } = inst.op else {
        panic!("internal: {c} is not a concat");
    };
    let axis = axis as usize;
    let mut at = 0;
    let mut parts = Vec::with_capacity(inst.args.len());
    for &a in inst.args.iter() {
        let len = f.value_type(a).shape.get(axis);
        if len > 0 {
            parts.push((a, at, len));
        }
        at += len;
    }
    (axis, parts)
}

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
    /// The parts computed inside a concat along a later axis, and the concat's strides, which
    /// they store with.
    pub strided: Vec<(Value, [i64; MAX_RANK])>,
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

/// The concat parts of `f` computed in place: any part where the parts are contiguous in
/// row-major order (every axis before the concat axis has size 1); else (along a later axis,
/// as a Hessian's blocks) the parts an elementwise loop computes, stored with the concat's
/// strides.
pub(super) fn in_concat(f: &Func, facts: &Facts) -> InConcat {
    let nv = f.num_values();
    let mut out = InConcat {
        inside: ValueMap::filled(nv, None),
        in_place: ValueMap::filled(nv, false),
        strided: Vec::new(),
    };
    for (k, inst) in f.insts.iter().enumerate() {
        let c = f.inst_value(k);
        let Op::Concat { axis } = inst.op else {
            continue;
        };
        let axis = axis as usize;
        let shape = inst.ty.shape.to_vec();
        let owns = matches!(facts.kinds[c], Kind::Mem(m) if m.storage == c);
        if !owns {
            continue;
        }
        let contiguous = shape[..axis].iter().all(|&d| d == 1);
        let strides = row_major(&shape);
        let mut at = 0;
        for &a in inst.args.iter() {
            let src = part_source(f, facts, a)
                .filter(|&src| contiguous || (src == a && in_elementwise_loop_root(f, facts, a)));
            if let Some(src) = src {
                out.inside[src] = Some(Inside {
                    concat: c,
                    offset: at * strides[axis] as usize,
                });
                out.in_place[a] = true;
                if !contiguous {
                    out.strided.push((src, strides));
                }
            }
            at += f.value_type(a).shape.get(axis);
        }
    }
    out
}

/// Whether `a` is stored by an elementwise loop (`lower::fused`, which stores with its
/// storage's strides): a materialized elementwise op, not a four-lane one.
fn in_elementwise_loop_root(f: &Func, facts: &Facts, a: Value) -> bool {
    let elementwise = inst(f, a).is_some_and(|i| {
        i.op.is_elementwise() && !matches!(i.op, Op::Unary(u) if vmath::is_four_lane(u))
    });
    elementwise && matches!(facts.kinds[a], Kind::Mem(m) if m.storage == a)
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
            Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused | Kind::Pieces => false,
        };
    (single && computed && (src == source[a] || src == a)).then_some(src)
}
