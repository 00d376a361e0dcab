//! Partial reductions as loop nests: the kept axes outside, two result elements at a time (one
//! per lane), the reduced axes inside, each result element accumulated in a register in the
//! interpreter's order. Reductions over the same axes of one operand shape share the nest
//! (`plan::fusion` merges them) and load a leaf they both read once.

use super::loops::{Inner, Pairing, Walker};
use super::{Emitter, Read};
use crate::ir::{DType, Def, Func, Op, Reduction, Value};
use crate::jit::plan::{row_major, Kind};
use cranelift_codegen::ir::{types, Value as CV};
use std::collections::HashMap;

/// A reduction root: its operand, the axes it reduces, and whether it is a max.
fn reduction_of(f: &Func, v: Value) -> (Value, Vec<usize>, bool) {
    let Def::Inst(k) = f.def(v) else {
        panic!("internal: {v} is not a reduction");
    };
    let inst = &f.insts[k];
    let (Op::ReduceSum { axes } | Op::ReduceMax { axes }) = &inst.op else {
        panic!("internal: {v} is {}, not a reduction", inst.op.name());
    };
    let is_max = inst.op.reduction() == Some(Reduction::Max);
    (inst.args[0], axes.to_vec(), is_max)
}

/// One root's part of the nest: its operand, whether it is a max, the values its group
/// computes in order, and the leaves it is first to read.
struct Part {
    operand: Value,
    is_max: bool,
    order: Vec<Value>,
    reads: Vec<(Value, Read)>,
}

impl Emitter<'_, '_> {
    /// Whether `v` is a reduction stored to memory (so `reductions` computes it).
    pub(super) fn is_partial_reduction(&self, v: Value) -> bool {
        let Def::Inst(k) = self.f.def(v) else {
            return false;
        };
        self.f.insts[k].op.reduction().is_some() && self.plan.kinds[v] != Kind::Scalar
    }

    /// `roots`, reductions over the same axes of operands of one shape (with the fused values
    /// feeding each), in one loop nest. A single root may have one element, in a register.
    pub(super) fn reductions(&mut self, roots: &[Value]) {
        let f = self.f;
        let (first, axes, _) = reduction_of(f, roots[0]);
        let shape = f.value_type(first).shape.to_vec();
        let outer: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let scalar_out = self.plan.kinds[roots[0]] == Kind::Scalar;
        let mut walkers = Vec::new();
        if !scalar_out {
            for &r in roots {
                let out_shape = f.value_type(r).shape.to_vec();
                let os = row_major(&out_shape);
                let start = self.base(r);
                walkers.push(Walker {
                    start,
                    strides: (0..out_shape.len()).map(|d| 8 * os[d]).collect(),
                });
            }
        }
        let parts = self.reduction_parts(roots, &outer, &mut walkers);
        let outer_dims: Vec<usize> = outer.iter().map(|&a| shape[a]).collect();
        let inner_dims: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let mut result = None;
        // Two result elements at a time, one per lane, each accumulated in its own order: two
        // independent chains where one would wait on each add's latency.
        self.nest_lanes(
            &outer_dims,
            &walkers,
            Pairing::Strided,
            &mut |e, p, lanes| {
                let ty = if lanes.lanes == 1 {
                    types::F64
                } else {
                    types::F64X2
                };
                let accs: Vec<_> = parts
                    .iter()
                    .map(|part| {
                        let acc = e.fb.declare_var(ty);
                        let init = if part.is_max { f64::NEG_INFINITY } else { 0.0 };
                        let init = e.float(init, lanes.lanes);
                        e.fb.def_var(acc, init);
                        acc
                    })
                    .collect();
                // The inner nest walks the same leaves along the reduced axes; its lanes step as
                // the outer nest's.
                let mut inner = Vec::new();
                let mut lane_strides = Vec::new();
                let inner_parts: Vec<Vec<(Value, Read)>> = parts
                    .iter()
                    .map(|part| {
                        let mut reads = Vec::with_capacity(part.reads.len());
                        for &(l, r) in &part.reads {
                            let read = match r {
                                Read::Ptr(w) => {
                                    e.rewalk(l, &axes, p[w], &mut inner);
                                    lane_strides.push(lanes.stride(w));
                                    Read::Ptr(inner.len() - 1)
                                }
                                Read::Reg(x) => Read::Reg(x),
                            };
                            reads.push((l, read));
                        }
                        reads
                    })
                    .collect();
                let each = Inner {
                    lanes: lanes.lanes,
                    strides: lane_strides,
                };
                e.nest(&inner_dims, &inner, &mut |e2, q| {
                    let mut vals: HashMap<Value, CV> = HashMap::new();
                    for ((part, reads), &acc) in parts.iter().zip(&inner_parts).zip(&accs) {
                        e2.evaluate(&part.order, reads, q, &each, &mut vals);
                        let x = vals[&part.operand];
                        e2.accumulate(acc, x, part.is_max);
                    }
                });
                for (n, &acc) in accs.iter().enumerate() {
                    let total = e.fb.use_var(acc);
                    if scalar_out {
                        result = Some(total);
                    } else {
                        e.store_lanes(p[n], total, DType::F64, lanes.lanes);
                    }
                }
            },
        );
        if let Some(r) = result {
            self.computed(roots[0], r);
        }
    }

    /// Each root's part, its leaves read through walkers over the kept axes `outer`; a leaf or
    /// a fused value several roots read is read or computed by the first only (the later ones
    /// find it computed).
    fn reduction_parts(
        &mut self,
        roots: &[Value],
        outer: &[usize],
        walkers: &mut Vec<Walker>,
    ) -> Vec<Part> {
        let mut seen: Vec<Value> = Vec::new();
        let mut parts = Vec::with_capacity(roots.len());
        for &r in roots {
            let (operand, _, is_max) = reduction_of(self.f, r);
            let (order, leaves) = self.group_parts(r, false, &seen);
            let mut reads = Vec::with_capacity(leaves.len());
            for l in leaves {
                reads.push((l, self.reader(l, outer, walkers)));
                seen.push(l);
            }
            // Values shared with later roots (`plan::fusion::share_in_reductions`).
            seen.extend(&order);
            parts.push(Part {
                operand,
                is_max,
                order,
                reads,
            });
        }
        parts
    }
}
