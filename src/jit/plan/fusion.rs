//! Fusion: the fused values each loop computes along the way (`Groups`), and consecutive loops
//! over one shape merged into one loop nest (`merge_loops`, making `Unit::Loop`s): elementwise
//! loops with reductions of the whole shape, or partial reductions over the same axes.

use super::kinds::{readers, Uses};
use super::{inst, Kind, Unit, ValueMap};
use crate::ir::{Dims, Func, Op, Value};
use crate::ops::vmath;

/// Most values one merged loop computes (bounds the registers a loop body keeps live).
const MAX_LOOP_ROOTS: usize = 256;

/// Most values, fused ones included, a loop takes by merging. Roots of one loop that read the
/// same operands share their loads, and in a loop body of thousands of values each shared load
/// stays live from its first use to its last and is spilled: the unrolled `pendulum`'s hvp had
/// six sums over all 400 steps in one loop, with 5,600 moves to and from the stack per
/// iteration, and compiled in 0.68-0.70 s, against 0.40-0.49 s as six loops, which run as
/// fast. Beyond this size sharing gains nothing, so such roots run as loops of their own.
pub const MAX_LOOP_VALUES: usize = 512;

/// Most partial reductions one loop nest computes: each keeps an accumulator in a register
/// through the inner loop, beside the leaves it loads.
pub const MAX_REDUCTION_ROOTS: usize = 6;

/// What a loop runs over: the shape it walks and, for partial reductions (stored, of fewer
/// axes than all), the axes they reduce inside it. Loops merge only with an equal key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct LoopKey {
    shape: Dims,
    reduced: Option<Dims>,
}

/// Fused groups: every `Kind::Fused` value (as `kinds` gives them, before `loop_locals`) is
/// computed inside the loop of one root (a value that is not fused), which also computes the
/// fused values feeding it.
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    root: ValueMap<Option<Value>>,
    members: ValueMap<Vec<Value>>,
}

impl Groups {
    /// Each fused value's root is its one user's root (or that user, if it is not fused).
    pub(super) fn of(f: &Func, kinds: &ValueMap<Kind>, uses: &Uses) -> Groups {
        let nv = f.num_values();
        let mut root: ValueMap<Option<Value>> = ValueMap::filled(nv, None);
        for k in (0..f.insts.len()).rev() {
            let v = f.inst_value(k);
            if kinds[v] == Kind::Fused {
                let u = uses.user[v].expect("a fused value has one user");
                root[v] = Some(root[u].unwrap_or(u));
            }
        }
        let mut members = ValueMap::filled(nv, Vec::new());
        for k in 0..f.insts.len() {
            let v = f.inst_value(k);
            if let Some(r) = root[v] {
                members[r].push(v);
            }
        }
        Groups { root, members }
    }

    /// The root whose loop computes `v`, if `v` is fused.
    pub fn root(&self, v: Value) -> Option<Value> {
        self.root[v]
    }

    /// The fused values computed in `root`'s loop, in instruction order.
    pub fn members(&self, root: Value) -> &[Value] {
        &self.members[root]
    }

    /// Makes `v` (with its own members) a member of `root`'s group.
    pub(super) fn adopt(&mut self, v: Value, root: Value) {
        let mut moved = std::mem::take(&mut self.members[v]);
        moved.push(v);
        for &m in &moved {
            self.root[m] = Some(root);
        }
        let members = &mut self.members[root];
        members.extend(moved);
        members.sort_unstable();
    }
}

/// `units` with runs of consecutive loops over one shape merged into `Unit::Loop`s, and the
/// values of every such loop (`Unit::Loop` ranges index it). A loop root is a materialized
/// elementwise value, or a reduction of all axes to a scalar (accumulated in the loop, in the
/// loop's element order); a value joins the open loop only if it reads the loop's results at
/// the same index (not through a view) and reads none of its reductions (complete only when
/// the loop ends). Or a loop's roots are partial reductions over the same axes of one operand
/// shape, none reading another.
pub(super) fn merge_loops(
    f: &Func,
    kinds: &ValueMap<Kind>,
    groups: &Groups,
    units: Vec<Unit>,
) -> (Vec<Unit>, Vec<Value>) {
    let mut m = Merger {
        f,
        kinds,
        groups,
        merged: Vec::with_capacity(units.len()),
        loop_roots: Vec::new(),
        open: Vec::new(),
        open_values: 0,
        deferred: Vec::new(),
    };
    for u in units {
        match u {
            Unit::Compute(v) if m.loop_key(v).is_some() => {
                if !m.fits(v) {
                    m.close();
                }
                m.open.push(v);
                m.open_values += 1 + groups.members(v).len();
            }
            // Copies of results the open loop computes wait for it to close, so they do not
            // split it.
            Unit::CopyOut(v, _) if m.open.contains(&v) => m.deferred.push(u),
            Unit::Compute(_) | Unit::Loop { .. } | Unit::CopyOut(..) => {
                m.close();
                m.merged.push(u);
            }
        }
    }
    m.close();
    (m.merged, m.loop_roots)
}

/// The state of `merge_loops`: units so far, and the loop still open.
struct Merger<'a> {
    f: &'a Func,
    kinds: &'a ValueMap<Kind>,
    groups: &'a Groups,
    merged: Vec<Unit>,
    loop_roots: Vec<Value>,
    /// The values of the open loop.
    open: Vec<Value>,
    /// Those values and the fused values they compute.
    open_values: usize,
    /// Copies of the open loop's results, emitted after it.
    deferred: Vec<Unit>,
}

impl Merger<'_> {
    /// Whether loop root `v` may join the open loop.
    fn fits(&self, v: Value) -> bool {
        let Some(&last) = self.open.last() else {
            return false;
        };
        let key = self.loop_key(v);
        if key != self.loop_key(last)
            || self.open_values + 1 + self.groups.members(v).len() > MAX_LOOP_VALUES
        {
            return false;
        }
        match key.and_then(|k| k.reduced) {
            Some(_) => {
                self.open.len() < MAX_REDUCTION_ROOTS
                    && !self.reads_open_loop(v)
                    && self.piece_axis(v).is_none()
            }
            None => {
                self.open.len() < MAX_LOOP_ROOTS && self.reads_same_index(v) && self.pieces_agree(v)
            }
        }
    }

    /// The key of the loop computing `v`, if `v` can be a loop root.
    fn loop_key(&self, v: Value) -> Option<LoopKey> {
        let inst = inst(self.f, v)?;
        if let Op::ReduceSum { axes } | Op::ReduceMax { axes } = &inst.op {
            let input = self.f.value_type(inst.args[0]);
            let stored = matches!(self.kinds[v], Kind::Mem(m) if m.storage == v);
            if stored && !axes.is_empty() && input.numel() > 1 {
                // Its pieces are never merged (a partial reduction reads no concat piecewise).
                return (self.piece_axis(v).is_none()).then_some(LoopKey {
                    shape: input.shape,
                    reduced: Some(*axes),
                });
            }
        }
        self.loop_shape(v).map(|shape| LoopKey {
            shape,
            reduced: None,
        })
    }

    /// Whether `v` or its group reads a value of the open loop (or a view of one).
    fn reads_open_loop(&self, v: Value) -> bool {
        let open = &self.open;
        let computed = self.groups.members(v).iter().chain(std::iter::once(&v));
        computed.filter_map(|&m| inst(self.f, m)).any(|inst| {
            inst.args.iter().any(|&a| match self.kinds[a] {
                Kind::Mem(m) => open.contains(&m.storage),
                Kind::Scalar => open.contains(&a),
                Kind::Bcast(s) => open.contains(&s),
                Kind::Splat(_) | Kind::Fused => false,
                Kind::Pieces => true,
            })
        })
    }

    /// The shape of the elementwise loop computing `v`, if `v` can be the root of one.
    fn loop_shape(&self, v: Value) -> Option<Dims> {
        let inst = inst(self.f, v)?;
        match &inst.op {
            // Computed four elements per call, on its own (`lower::quad`).
            Op::Unary(u) if vmath::is_four_lane(*u) => None,
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => {
                matches!(self.kinds[v], Kind::Mem(m) if m.storage == v).then_some(inst.ty.shape)
            }
            Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
                let input = self.f.value_type(inst.args[0]);
                (self.kinds[v] == Kind::Scalar && axes.len() == input.rank() && input.numel() > 1)
                    .then_some(input.shape)
            }
            Op::Const { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Matmul { .. }
            | Op::Scan { .. } => None,
        }
    }

    /// The axis of the concats `v`'s group reads piecewise, if any (one per group,
    /// `concat::pieces`).
    fn piece_axis(&self, v: Value) -> Option<usize> {
        let computed = self.groups.members(v).iter().chain(std::iter::once(&v));
        computed
            .filter_map(|&m| inst(self.f, m))
            .flat_map(|i| i.args.iter())
            .find(|&&a| self.kinds[a] == Kind::Pieces)
            .map(|&a| super::concat::piece_axis(self.f, a))
    }

    /// Whether `v` may join the open loop as far as pieces go: the loop's nests are cut along
    /// one axis, and if that is not the first axis longer than 1, no root is a reduction (whose
    /// sum runs in row-major order).
    fn pieces_agree(&self, v: Value) -> bool {
        let all = || self.open.iter().chain(std::iter::once(&v));
        let mut axes: Vec<usize> = all().filter_map(|&r| self.piece_axis(r)).collect();
        axes.dedup();
        let Some(shape) = self.loop_shape(v) else {
            return false;
        };
        let first_long = shape.iter().position(|d| d > 1);
        let reduces = all().any(|&r| inst(self.f, r).is_some_and(|i| i.op.reduction().is_some()));
        match axes.as_slice() {
            [] => true,
            [a] => Some(*a) == first_long || !reduces,
            _ => false,
        }
    }

    /// Whether `v` and its group read the open loop's values only at the loop's own index.
    fn reads_same_index(&self, v: Value) -> bool {
        let open = &self.open;
        let computed = self.groups.members(v).iter().chain(std::iter::once(&v));
        let same_index = |a: Value| match self.kinds[a] {
            Kind::Mem(m) => a == m.storage || !open.contains(&m.storage),
            Kind::Scalar => !open.contains(&a),
            Kind::Bcast(s) => !open.contains(&s),
            Kind::Splat(_) | Kind::Fused => true,
            Kind::Pieces => false,
        };
        // A concat read piecewise reads its parts shifted: none may be the loop's.
        let parts_outside = |a: Value| {
            inst(self.f, a).is_some_and(|c| {
                c.args.iter().all(|&p| match self.kinds[p] {
                    Kind::Mem(m) => !open.contains(&m.storage),
                    Kind::Scalar => !open.contains(&p),
                    Kind::Bcast(s) => !open.contains(&s),
                    Kind::Splat(_) | Kind::Fused | Kind::Pieces => true,
                })
            })
        };
        computed.filter_map(|&m| inst(self.f, m)).all(|inst| {
            inst.args.iter().all(|&a| match self.kinds[a] {
                Kind::Pieces => parts_outside(a),
                _ => same_index(a),
            })
        })
    }

    /// Emits the open loop (a plain unit if it has one value), then the copies that waited.
    fn close(&mut self) {
        match self.open.len() {
            0 => {}
            1 => self.merged.push(Unit::Compute(self.open[0])),
            n => {
                self.merged.push(Unit::Loop {
                    first: self.loop_roots.len() as u32,
                    count: n as u32,
                });
                self.loop_roots.append(&mut self.open);
            }
        }
        self.open.clear();
        self.open_values = 0;
        self.merged.append(&mut self.deferred);
    }
}

/// `kinds` with the roots of merged loops that only their own loop reads made `Kind::Fused`:
/// every instruction reading such a root is a later root of the loop or fused into one, so it
/// reads the root's register at the loop's own index, and the root needs no storage (a
/// gradient's intermediate read twice, `x * y` beside `x * v`, is computed and used in one
/// pass instead of stored and reloaded).
pub(super) fn loop_locals(
    f: &Func,
    uses: &Uses,
    groups: &Groups,
    (units, loop_roots): (&[Unit], &[Value]),
    mut kinds: ValueMap<Kind>,
) -> ValueMap<Kind> {
    let readers = readers(f);
    for u in units {
        let Unit::Loop { .. } = u else { continue };
        let roots = super::unit_values(u, loop_roots);
        let in_loop = |x: Value| roots.contains(&groups.root(x).unwrap_or(x));
        for &r in roots {
            // (A partial reduction is stored: its loop finishes each element only at the end.)
            let elementwise = inst(f, r).is_some_and(|i| i.op.reduction().is_none());
            let stored = matches!(kinds[r], Kind::Mem(m) if m.storage == r);
            if elementwise && stored && !uses.returned[r] && readers[r].iter().all(|&x| in_loop(x))
            {
                kinds[r] = Kind::Fused;
            }
        }
    }
    kinds
}
