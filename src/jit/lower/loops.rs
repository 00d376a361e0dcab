//! Loop nests: do-while loops over static trip counts, with the pointers they walk, and how a
//! loop reads a value (from a register, or through a walked pointer, one or two lanes at once).

use super::{Emitter, Read};
use crate::ir::{DType, Value};
use crate::jit::plan::{piece_parts, Kind};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value as CV};

/// Whether a loop nest runs its innermost axis two elements per iteration.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pairing {
    /// One element per iteration.
    One,
    /// Two, when every walker steps the innermost axis by one element or not at all (the
    /// lanes are one vector load or store).
    Contiguous,
    /// Two whatever the walkers' strides: a walker stepping by more than one element has its
    /// lanes gathered (a reduction's operands, whose lanes are different result elements).
    Strided,
}

/// The innermost loop level as a loop body sees it: elements per iteration, and each walker's
/// byte stride along it (0 for a value that does not change along it).
pub(super) struct Inner {
    pub(super) lanes: usize,
    pub(super) strides: Vec<i64>,
}

impl Inner {
    /// Walker `w`'s byte stride along the innermost axis (only consulted for several lanes).
    pub(super) fn stride(&self, w: usize) -> i64 {
        self.strides.get(w).copied().unwrap_or(8)
    }
}

/// A pointer walked by a loop nest: its start and its byte stride along each axis.
pub(super) struct Walker {
    pub(super) start: CV,
    pub(super) strides: Vec<i64>,
}

/// The most common nonzero stride (of equally common ones, the last; 0 if all are 0): the step
/// of the offset a loop carries for every pointer that moves by it.
fn most_common_step(strides: &[i64]) -> i64 {
    let mut tally: Vec<(i64, usize)> = Vec::new();
    for &s in strides.iter().filter(|&&s| s != 0) {
        match tally.iter_mut().find(|(x, _)| *x == s) {
            Some((_, n)) => *n += 1,
            None => tally.push((s, 1)),
        }
    }
    tally.iter().max_by_key(|(_, n)| *n).map_or(0, |&(s, _)| s)
}

impl Emitter<'_, '_> {
    /// A loop nest over `dims`; `body` gets the current pointer of every walker.
    pub(super) fn nest(
        &mut self,
        dims: &[usize],
        walkers: &[Walker],
        body: &mut dyn FnMut(&mut Self, &[CV]),
    ) {
        self.nest_lanes(dims, walkers, Pairing::One, &mut |e, p, _| body(e, p));
    }

    /// A loop nest over `dims`. As `pairing` allows, the innermost axis runs two elements per
    /// iteration (then one for an odd count); `body` learns the lanes and the innermost byte
    /// strides.
    pub(super) fn nest_lanes(
        &mut self,
        dims: &[usize],
        walkers: &[Walker],
        pairing: Pairing,
        body: &mut dyn FnMut(&mut Self, &[CV], &Inner),
    ) {
        // Drop unit axes; merge neighbours that every walker steps through contiguously.
        let mut d: Vec<usize> = Vec::new();
        let mut s: Vec<Vec<i64>> = vec![Vec::new(); walkers.len()];
        for (ax, &n) in dims.iter().enumerate() {
            if n == 1 {
                continue;
            }
            let last = d.len();
            let merge = last > 0
                && walkers
                    .iter()
                    .enumerate()
                    .all(|(w, wk)| s[w][last - 1] == wk.strides[ax] * n as i64);
            if merge {
                d[last - 1] *= n;
                for (w, wk) in walkers.iter().enumerate() {
                    s[w][last - 1] = wk.strides[ax];
                }
            } else {
                d.push(n);
                for (w, wk) in walkers.iter().enumerate() {
                    s[w].push(wk.strides[ax]);
                }
            }
        }
        if d.contains(&0) {
            return;
        }
        let vector = d.last().is_some_and(|&n| n >= 2)
            && match pairing {
                Pairing::One => false,
                Pairing::Contiguous => s.iter().all(|ws| matches!(ws.last(), Some(&8) | Some(&0))),
                Pairing::Strided => true,
            };
        let starts: Vec<CV> = walkers.iter().map(|w| w.start).collect();
        self.level(0, &d, &s, starts, vector, body);
    }

    /// Emits a counted do-while loop of `count >= 1` iterations; `body` gets each pointer
    /// advanced by its stride times the iteration number. Pointers that step by the loop's
    /// most common stride share one carried byte offset (added in the address, where x86 folds
    /// it); others carry their own pointer; invariant ones carry nothing. Few carried values
    /// keep register pressure and compile time low.
    pub(super) fn counted(
        &mut self,
        count: usize,
        ptrs: &[CV],
        strides: &[i64],
        body: &mut dyn FnMut(&mut Self, &[CV]),
    ) {
        let step = most_common_step(strides);
        let offset = self.fb.declare_var(types::I64);
        let zero = self.fb.ins().iconst(types::I64, 0);
        self.fb.def_var(offset, zero);
        let own: Vec<Option<cranelift_frontend::Variable>> = ptrs
            .iter()
            .zip(strides)
            .map(|(&p, &s)| {
                (s != 0 && s != step).then(|| {
                    let v = self.fb.declare_var(types::I64);
                    self.fb.def_var(v, p);
                    v
                })
            })
            .collect();
        let (body_block, exit) = (self.fb.create_block(), self.fb.create_block());
        self.fb.ins().jump(body_block, &[]);
        self.fb.switch_to_block(body_block);
        let o = self.fb.use_var(offset);
        let cur: Vec<CV> = ptrs
            .iter()
            .zip(strides)
            .zip(&own)
            .map(|((&p, &s), v)| match v {
                Some(v) => self.fb.use_var(*v),
                None if s == 0 => p,
                None => self.fb.ins().iadd(p, o),
            })
            .collect();
        body(self, &cur);
        let o = self.fb.use_var(offset);
        let next = self.fb.ins().iadd_imm_s(o, step.max(1));
        self.fb.def_var(offset, next);
        for (v, &s) in own.iter().zip(strides) {
            if let Some(v) = v {
                let p = self.fb.use_var(*v);
                let q = self.fb.ins().iadd_imm_s(p, s);
                self.fb.def_var(*v, q);
            }
        }
        let more =
            self.fb
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, next, (count as i64) * step.max(1));
        self.fb.ins().brif(more, body_block, &[], exit, &[]);
        self.fb.seal_block(body_block);
        self.fb.switch_to_block(exit);
        self.fb.seal_block(exit);
    }

    pub(super) fn level(
        &mut self,
        l: usize,
        dims: &[usize],
        strides: &[Vec<i64>],
        ptrs: Vec<CV>,
        vector: bool,
        body: &mut dyn FnMut(&mut Self, &[CV], &Inner),
    ) {
        let inner_strides = |l: usize| -> Vec<i64> {
            strides
                .iter()
                .map(|s| s.get(l).copied().unwrap_or(0))
                .collect()
        };
        if l == dims.len() {
            let inner = Inner {
                lanes: 1,
                strides: inner_strides(l.saturating_sub(1)),
            };
            body(self, &ptrs, &inner);
            return;
        }
        let step: Vec<i64> = strides.iter().map(|s| s[l]).collect();
        if vector && l + 1 == dims.len() {
            let (pairs, odd) = (dims[l] / 2, dims[l] % 2 == 1);
            let twice: Vec<i64> = step.iter().map(|s| 2 * s).collect();
            let inner = Inner {
                lanes: 2,
                strides: step.clone(),
            };
            self.counted(pairs, &ptrs, &twice, &mut |e, p| body(e, p, &inner));
            if odd {
                let tail: Vec<CV> = ptrs
                    .iter()
                    .zip(&twice)
                    .map(|(&p, &t)| self.fb.ins().iadd_imm_s(p, t * pairs as i64))
                    .collect();
                let inner = Inner {
                    lanes: 1,
                    strides: step,
                };
                body(self, &tail, &inner);
            }
            return;
        }
        self.counted(dims[l], &ptrs, &step, &mut |e, p| {
            e.level(l + 1, dims, strides, p.to_vec(), vector, body)
        });
    }

    /// How a loop over `v`'s shape reads `v`; memory reads add a walker (byte strides for the
    /// axes listed in `axes`, in that order).
    pub(super) fn reader(&mut self, v: Value, axes: &[usize], walkers: &mut Vec<Walker>) -> Read {
        self.reader_at(v, axes, (0, 0), walkers)
    }

    /// How a loop over `v`'s shape, from index `at.1` along axis `at.0` on, reads `v`. A concat
    /// read piecewise is read as the part covering that index (the loop runs within one part).
    pub(super) fn reader_at(
        &mut self,
        v: Value,
        axes: &[usize],
        (axis, lo): (usize, usize),
        walkers: &mut Vec<Walker>,
    ) -> Read {
        match self.plan.kinds[v] {
            Kind::Scalar => Read::Reg(self.reg(v)),
            Kind::Splat(x) => {
                let dtype = self.f.value_type(v).dtype;
                Read::Reg(self.immediate(x, dtype))
            }
            Kind::Bcast(s) => Read::Reg(self.reg(s)),
            Kind::Mem(m) => {
                let base = self.base(m.storage);
                let offset = m.offset + lo as i64 * m.strides[axis];
                let start = self.fb.ins().iadd_imm_s(base, 8 * offset);
                walkers.push(Walker {
                    start,
                    strides: axes.iter().map(|&a| 8 * m.strides[a]).collect(),
                });
                Read::Ptr(walkers.len() - 1)
            }
            Kind::Fused => panic!("internal: fused value {v} read outside its group"),
            Kind::Pieces => {
                let (_, parts) = piece_parts(self.f, v);
                let Some(&(part, start, _)) = parts
                    .iter()
                    .find(|&&(_, start, len)| start <= lo && lo < start + len)
                else {
                    panic!("internal: no part of {v} at {lo}");
                };
                self.reader_at(part, axes, (axis, lo - start), walkers)
            }
        }
    }

    /// Adds walkers for the same memory reads along other axes (for a second, inner nest).
    pub(super) fn rewalk(&self, v: Value, axes: &[usize], start: CV, walkers: &mut Vec<Walker>) {
        if let Kind::Mem(m) = self.plan.kinds[v] {
            walkers.push(Walker {
                start,
                strides: axes.iter().map(|&a| 8 * m.strides[a]).collect(),
            });
        }
    }

    pub(super) fn fetch_lanes(&mut self, r: Read, ptrs: &[CV], dtype: DType, inner: &Inner) -> CV {
        match r {
            Read::Reg(x) if inner.lanes == 1 => x,
            Read::Reg(x) => self.widen(x, dtype),
            Read::Ptr(w) => self.load_lanes(ptrs[w], dtype, inner.lanes, inner.stride(w)),
        }
    }
}
