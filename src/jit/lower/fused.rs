//! Fused loops: elementwise values with the fused values feeding them, several roots per loop,
//! and reductions of the whole shape inside such loops (partial ones are `reduce`'s).

use super::loops::{Inner, Pairing, Walker};
use super::{Emitter, Read};
use crate::ir::{Def, Func, Reduction, Value};
use crate::jit::plan::{piece_parts, row_major, Kind};
use cranelift_codegen::ir::{types, InstBuilder, Value as CV};
use cranelift_frontend::Variable;
use std::collections::HashMap;

/// Where a root of a merged loop goes.
#[derive(Clone, Copy)]
enum LoopOutput {
    /// Kept in its register only, for later roots of the loop (`plan::fusion::loop_locals`).
    Keep,
    /// Stored through walker `w`.
    Store(usize),
    /// Accumulated in a variable: the reduction's operand, and whether it is a max.
    Acc(Variable, Value, bool),
}

/// One root's part of a merged loop body: the values it computes in order, and the leaves it
/// reads.
struct LoopGroup {
    order: Vec<Value>,
    reads: Vec<(Value, Read)>,
}

/// For a loop root that is a reduction (of the whole loop shape): its operand and whether it
/// is a max. `None` for every other value.
fn loop_reduction(f: &Func, v: Value) -> Option<(Value, bool)> {
    let Def::Inst(k) = f.def(v) else {
        return None;
    };
    let inst = &f.insts[k];
    let reduction = inst.op.reduction()?;
    Some((inst.args[0], reduction == Reduction::Max))
}

impl Emitter<'_, '_> {
    /// `acc = acc + x` (or `max(acc, x)`), one element.
    pub(super) fn accumulate(&mut self, acc: Variable, x: CV, is_max: bool) {
        let a = self.fb.use_var(acc);
        let s = if is_max {
            self.fb.ins().fmax(a, x)
        } else {
            self.fb.ins().fadd(a, x)
        };
        self.fb.def_var(acc, s);
    }

    /// The values a group computes in order (its fused members, then the root if elementwise)
    /// and the values it reads (its leaves), skipping values in `produced`.
    pub(super) fn group_parts(
        &self,
        root: Value,
        with_root: bool,
        produced: &[Value],
    ) -> (Vec<Value>, Vec<Value>) {
        let f = self.f;
        let mut order: Vec<Value> = self.plan.groups.members(root).to_vec();
        if with_root {
            order.push(root);
        }
        let mut leaves: Vec<Value> = Vec::new();
        let is_member = |v: Value| self.plan.groups.root(v) == Some(root);
        let mut consider = |v: Value| {
            if !is_member(v) && !produced.contains(&v) && !leaves.contains(&v) {
                leaves.push(v);
            }
        };
        for &m in &order {
            if let Def::Inst(k) = f.def(m) {
                for &a in f.insts[k].args.iter() {
                    consider(a);
                }
            }
        }
        if !with_root {
            if let Def::Inst(k) = f.def(root) {
                consider(f.insts[k].args[0]);
            }
        }
        (order, leaves)
    }

    /// Loads every leaf, then computes `order` into `vals`, `inner.lanes` elements at a time.
    pub(super) fn evaluate(
        &mut self,
        order: &[Value],
        reads: &[(Value, Read)],
        ptrs: &[CV],
        inner: &Inner,
        vals: &mut HashMap<Value, CV>,
    ) {
        let f = self.f;
        for &(l, r) in reads {
            let dtype = f.value_type(l).dtype;
            let x = match r {
                Read::Reg(x) if inner.lanes == 1 => x,
                Read::Reg(x) => self.widen(x, dtype),
                Read::Ptr(w) => self.load_lanes(ptrs[w], dtype, inner.lanes, inner.stride(w)),
            };
            vals.insert(l, x);
        }
        for &m in order {
            let Def::Inst(k) = f.def(m) else { continue };
            let args: Vec<CV> = f.insts[k].args.iter().map(|a| vals[a]).collect();
            let r = self.op(&f.insts[k].op, &args, inner.lanes);
            vals.insert(m, r);
        }
    }

    /// Values over one loop shape in one loop nest: elementwise values (with their fused
    /// members), each stored to its storage, and reductions of the whole shape to a scalar,
    /// each accumulated in the loop's element order. Later values read earlier ones from
    /// registers. A loop reading a concat piecewise runs as one nest per piece (`segments`),
    /// in order along the concat's axis.
    pub(super) fn elementwise(&mut self, roots: &[Value]) {
        let f = self.f;
        let shape = match loop_reduction(f, roots[0]) {
            Some((input, _)) => f.value_type(input).shape.to_vec(),
            None => f.value_type(roots[0]).shape.to_vec(),
        };
        let axes: Vec<usize> = (0..shape.len()).collect();
        let accs = self.loop_accumulators(roots);
        for (axis, lo, hi) in self.segments(roots, &shape) {
            let mut part = shape.clone();
            part[axis] = hi - lo;
            let mut walkers = Vec::new();
            let outs = self.loop_outputs(roots, &shape, &accs, (axis, lo), &mut walkers);
            let groups = self.loop_groups(roots, &axes, (axis, lo), &mut walkers);
            self.nest_lanes(&part, &walkers, Pairing::Contiguous, &mut |e, p, inner| {
                let mut vals: HashMap<Value, CV> = HashMap::new();
                for (n, g) in groups.iter().enumerate() {
                    e.evaluate(&g.order, &g.reads, p, inner, &mut vals);
                    match outs[n] {
                        LoopOutput::Acc(acc, input, is_max) => {
                            // Lane by lane, in element order.
                            let x = vals[&input];
                            for k in 0..inner.lanes as u8 {
                                let xk = if inner.lanes == 1 {
                                    x
                                } else {
                                    e.fb.ins().extractlane(x, k)
                                };
                                e.accumulate(acc, xk, is_max);
                            }
                        }
                        LoopOutput::Store(w) => {
                            let x = vals[&roots[n]];
                            e.store_lanes(p[w], x, f.value_type(roots[n]).dtype, inner.lanes);
                        }
                        LoopOutput::Keep => {}
                    }
                }
            });
        }
        for (n, acc) in accs.iter().enumerate() {
            if let Some(LoopOutput::Acc(acc, ..)) = *acc {
                let total = self.fb.use_var(acc);
                self.computed(roots[n], total);
            }
        }
    }

    /// The pieces a loop over `shape` runs as: `(axis, lo, hi)`, one per stretch of `axis`
    /// between the part boundaries of the concats the loop reads piecewise (all along the same
    /// axis, the first longer than 1), or the whole shape in one piece.
    fn segments(&self, roots: &[Value], shape: &[usize]) -> Vec<(usize, usize, usize)> {
        let mut axis = 0;
        let mut cuts = Vec::new();
        for (n, &r) in roots.iter().enumerate() {
            let with_root = loop_reduction(self.f, r).is_none();
            let (_, leaves) = self.group_parts(r, with_root, &roots[..n]);
            for l in leaves {
                if self.plan.kinds[l] == Kind::Pieces {
                    let (a, parts) = piece_parts(self.f, l);
                    axis = a;
                    cuts.extend(parts.iter().map(|&(_, start, _)| start));
                }
            }
        }
        let n = shape.get(axis).copied().unwrap_or(1);
        cuts.push(0);
        cuts.push(n);
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2).map(|w| (axis, w[0], w[1])).collect()
    }

    /// The accumulator of each root of a loop that is a reduction (starting at the
    /// reduction's initial value); `None` for the others.
    fn loop_accumulators(&mut self, roots: &[Value]) -> Vec<Option<LoopOutput>> {
        let mut accs = Vec::with_capacity(roots.len());
        for &r in roots {
            accs.push(loop_reduction(self.f, r).map(|(input, is_max)| {
                let acc = self.fb.declare_var(types::F64);
                let init = self
                    .fb
                    .ins()
                    .f64const(if is_max { f64::NEG_INFINITY } else { 0.0 });
                self.fb.def_var(acc, init);
                LoopOutput::Acc(acc, input, is_max)
            }));
        }
        accs
    }

    /// Where each root of a loop over `shape` goes, in the piece starting at index `at.1`
    /// along axis `at.0`: its accumulator, or a walker over its storage.
    fn loop_outputs(
        &mut self,
        roots: &[Value],
        shape: &[usize],
        accs: &[Option<LoopOutput>],
        (axis, lo): (usize, usize),
        walkers: &mut Vec<Walker>,
    ) -> Vec<LoopOutput> {
        let row = row_major(shape);
        let mut outs = Vec::with_capacity(roots.len());
        for (&r, acc) in roots.iter().zip(accs) {
            if let Some(acc) = *acc {
                outs.push(acc);
            } else if self.plan.kinds[r] == Kind::Fused {
                outs.push(LoopOutput::Keep);
            } else {
                // Its storage's strides: row-major, or a concat's it is computed inside
                // (`plan::concat::in_concat`).
                let strides = match self.plan.kinds[r] {
                    Kind::Mem(m) if m.storage == r => m.strides,
                    _ => row,
                };
                let base = self.base(r);
                let start = self
                    .fb
                    .ins()
                    .iadd_imm_s(base, 8 * strides[axis] * lo as i64);
                walkers.push(Walker {
                    start,
                    strides: (0..shape.len()).map(|d| 8 * strides[d]).collect(),
                });
                outs.push(LoopOutput::Store(walkers.len() - 1));
            }
        }
        outs
    }

    /// What each root of a loop computes and reads, in the piece starting at index `at.1`
    /// along axis `at.0`; a leaf read by several roots is walked once.
    fn loop_groups(
        &mut self,
        roots: &[Value],
        axes: &[usize],
        at: (usize, usize),
        walkers: &mut Vec<Walker>,
    ) -> Vec<LoopGroup> {
        let mut groups = Vec::with_capacity(roots.len());
        let mut seen: HashMap<Value, Read> = HashMap::new();
        for (n, &r) in roots.iter().enumerate() {
            let with_root = loop_reduction(self.f, r).is_none();
            let (order, leaves) = self.group_parts(r, with_root, &roots[..n]);
            let mut reads = Vec::new();
            for l in leaves {
                let read = match seen.get(&l) {
                    Some(&read) => read,
                    None => {
                        let read = self.reader_at(l, axes, at, walkers);
                        seen.insert(l, read);
                        read
                    }
                };
                reads.push((l, read));
            }
            groups.push(LoopGroup { order, reads });
        }
        groups
    }
}
