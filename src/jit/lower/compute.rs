//! Emitting one unit: the dispatch on a value's op (`compute`) and the cases that are neither
//! fused loops (`fused`) nor matmuls (`matmul`): scalar ops, one-element reductions and slices,
//! materialized reshapes, pad, concat, and copies into outputs.

use super::loops::{Pairing, Walker};
use super::Emitter;
use crate::ir::{DType, Def, Dims, Func, Inst, Op, Type, Unary, Value};
use crate::jit::plan::{row_major, unit_values, Kind, Unit};
use crate::jit::JitError;
use cranelift_codegen::ir::{types, InstBuilder, Value as CV};

impl Emitter<'_, '_> {
    pub fn unit(&mut self, u: Unit) -> Result<(), JitError> {
        match u {
            Unit::Compute(v) => self.compute(v),
            Unit::Loop { .. } => {
                let roots = unit_values(&u, &self.plan.loop_roots).to_vec();
                if self.is_partial_reduction(roots[0]) {
                    self.reductions(&roots);
                } else {
                    self.elementwise(&roots);
                }
                Ok(())
            }
            Unit::CopyOut(v, k) => {
                let ty = self.f.value_type(v);
                let dst = self.outs[k];
                self.copy(v, ty, dst);
                Ok(())
            }
        }
    }

    /// Computes value `v` into its register or its storage.
    fn compute(&mut self, v: Value) -> Result<(), JitError> {
        let f: &Func = self.f;
        let Def::Inst(i) = f.def(v) else {
            return Ok(());
        };
        let inst = &f.insts[i];
        if inst.ty.numel() == 0 {
            return Ok(());
        }
        let scalar = self.plan.kinds[v] == Kind::Scalar;
        match &inst.op {
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select if scalar => {
                self.scalar_op(v, inst)
            }
            Op::Unary(u) if self.has_quad(*u) && self.plan.kinds[inst.args[0]] != Kind::Fused => {
                self.quad_map(v, inst, *u)
            }
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => self.elementwise(&[v]),
            Op::ReduceSum { axes } => self.reduce(v, inst, *axes, false),
            Op::ReduceMax { axes } => self.reduce(v, inst, *axes, true),
            Op::Slice { start, .. } if scalar => self.scalar_slice(v, inst, *start)?,
            Op::Reshape { .. } | Op::Broadcast { .. } | Op::Transpose { .. } | Op::Slice { .. } => {
                self.layout(v, inst, scalar)?
            }
            Op::Pad { .. } if scalar => self.scalar_pad(v, inst),
            Op::Pad { lo, .. } => self.pad(v, inst, *lo),
            Op::Concat { .. } if scalar => self.scalar_concat(v, inst)?,
            Op::Concat { axis } => self.concat(v, inst, *axis as usize),
            Op::Matmul { ta, tb } => self.matmul(v, inst, *ta, *tb),
            Op::Scan { .. } => self.scan(v, inst)?,
            Op::Const { .. } => {}
        }
        Ok(())
    }

    /// An elementwise op on registers.
    fn scalar_op(&mut self, v: Value, inst: &Inst) {
        if let Some(r) = self.early.remove(&v) {
            return self.computed(v, r);
        }
        if let (Op::Unary(u), Some(other)) = (&inst.op, self.plan.sin_cos[v]) {
            let x = self.reg(inst.args[0]);
            if let Some((sin, cos)) = self.own_sin_cos(x) {
                let (mine, theirs) = if *u == Unary::Sin {
                    (sin, cos)
                } else {
                    (cos, sin)
                };
                self.early.insert(other, theirs);
                return self.computed(v, mine);
            }
        }
        let a: Vec<CV> = inst.args.iter().map(|&x| self.reg(x)).collect();
        let r = self.op(&inst.op, &a, 1);
        self.computed(v, r);
    }

    /// A reduction: of one element, on its register; of every axis, the loop of an elementwise
    /// root (two lanes wide, accumulated lane by lane in element order); else a loop nest
    /// (`fused`).
    fn reduce(&mut self, v: Value, inst: &Inst, axes: Dims, is_max: bool) {
        let x = inst.args[0];
        let input = self.f.value_type(x);
        if input.numel() != 1 {
            if axes.len() == input.rank() && self.plan.kinds[v] == Kind::Scalar {
                return self.elementwise(&[v]);
            }
            return self.reductions(&[v]);
        }
        let x = self.reg(x);
        let init = self
            .fb
            .ins()
            .f64const(if is_max { f64::NEG_INFINITY } else { 0.0 });
        let r = if is_max {
            self.fb.ins().fmax(init, x)
        } else {
            self.fb.ins().fadd(init, x)
        };
        self.computed(v, r);
    }

    /// A one-element slice: the element, read however its operand is read.
    fn scalar_slice(&mut self, v: Value, inst: &Inst, start: Dims) -> Result<(), JitError> {
        let x = inst.args[0];
        let r = match self.plan.kinds[x] {
            Kind::Mem(m) => {
                let off = m.element(start);
                let base = self.base(m.storage);
                let addr = self.fb.ins().iadd_imm_s(base, 8 * off);
                self.load(addr, inst.ty.dtype)
            }
            Kind::Splat(c) => self.immediate(c, inst.ty.dtype),
            Kind::Bcast(s) => self.reg(s),
            Kind::Scalar => self.reg(x),
            Kind::Fused | Kind::Pieces => {
                return Err(JitError::Internal(format!("slice of unstored value {x}")))
            }
        };
        self.computed(v, r);
        Ok(())
    }

    /// A layout op that is not a view: a one-element value (its operand's register), or a
    /// reshape copied in row-major order of its operand (views cover the others; see `plan`).
    fn layout(&mut self, v: Value, inst: &Inst, scalar: bool) -> Result<(), JitError> {
        let x = inst.args[0];
        if scalar {
            let r = self.reg(x);
            self.computed(v, r);
            return Ok(());
        }
        if !matches!(inst.op, Op::Reshape { .. }) {
            let name = inst.op.name();
            return Err(JitError::Internal(format!("unplanned materialized {name}")));
        }
        let src_ty = self.f.value_type(x);
        let dst = self.base(v);
        self.copy(x, src_ty, dst);
        Ok(())
    }

    /// A one-element pad: its operand's element, or the padding zero.
    fn scalar_pad(&mut self, v: Value, inst: &Inst) {
        let x = inst.args[0];
        let r = if self.f.value_type(x).numel() == 1 {
            self.reg(x)
        } else {
            self.immediate(0.0, inst.ty.dtype)
        };
        self.computed(v, r);
    }

    /// A pad: zeros in the halo around the operand (`halo`), the operand placed at `lo`, so
    /// each element is written once.
    fn pad(&mut self, v: Value, inst: &Inst, lo: Dims) {
        let dtype = inst.ty.dtype;
        let out = inst.ty.shape.to_vec();
        let inner = self.f.value_type(inst.args[0]).shape.to_vec();
        let os = row_major(&out);
        let dst = self.base(v);
        for (start, dims) in halo(&out, &inner, &lo.to_vec()) {
            let off: i64 = start.iter().zip(&os).map(|(&s, &o)| s as i64 * o).sum();
            let fill = vec![Walker {
                start: self.fb.ins().iadd_imm_s(dst, 8 * off),
                strides: os[..out.len()].iter().map(|s| 8 * s).collect(),
            }];
            // Zero is 0.0 in memory for every dtype.
            self.nest_lanes(&dims, &fill, Pairing::Contiguous, &mut |e, p, inner| {
                let z = e.float(0.0, inner.lanes);
                e.store_lanes(p[0], z, DType::F64, inner.lanes);
            });
        }
        self.place(inst.args[0], dst, &out, &lo.to_vec(), dtype);
    }

    /// A one-element concat: its one-element part.
    fn scalar_concat(&mut self, v: Value, inst: &Inst) -> Result<(), JitError> {
        let part = inst
            .args
            .iter()
            .copied()
            .find(|&a| self.f.value_type(a).numel() == 1)
            .ok_or_else(|| {
                JitError::Internal("one-element concat without a one-element part".into())
            })?;
        let r = self.reg(part);
        self.computed(v, r);
        Ok(())
    }

    /// A concat: each part placed in turn along `axis`, except those computed in place.
    fn concat(&mut self, v: Value, inst: &Inst, axis: usize) {
        let out = inst.ty.shape.to_vec();
        let dst = self.base(v);
        let mut at = 0;
        for &a in inst.args.iter() {
            let mut lo = vec![0; out.len()];
            lo[axis] = at;
            at += self.f.value_type(a).shape.get(axis);
            if !self.plan.in_place[a] {
                self.place(a, dst, &out, &lo, inst.ty.dtype);
            }
        }
    }

    /// Copies value `v` (of type `ty`) to row-major memory at `dst`.
    pub(super) fn copy(&mut self, v: Value, ty: Type, dst: CV) {
        if ty.numel() == 1 {
            let r = self.reg(v);
            self.store(dst, r, ty.dtype);
            return;
        }
        let shape = ty.shape.to_vec();
        if let (Kind::Mem(m), &[rows, cols]) = (self.plan.kinds[v], shape.as_slice()) {
            if m.strides[0] == 1 && m.strides[1] != 1 && rows >= 2 && cols >= 2 {
                let base = self.base(m.storage);
                let src = self.fb.ins().iadd_imm_s(base, 8 * m.offset);
                return self.transposed_copy((rows, cols), (src, m.strides[1]), dst);
            }
        }
        let axes: Vec<usize> = (0..shape.len()).collect();
        let mut walkers = vec![Walker {
            start: dst,
            strides: row_major(&shape)[..shape.len()]
                .iter()
                .map(|s| 8 * s)
                .collect(),
        }];
        let src = self.reader(v, &axes, &mut walkers);
        self.nest_lanes(&shape, &walkers, Pairing::Contiguous, &mut |e, p, inner| {
            let x = e.fetch_lanes(src, p, ty.dtype, inner);
            e.store_lanes(p[0], x, ty.dtype, inner.lanes);
        });
    }

    /// A row-major `rows x cols` copy at `dst` of a matrix at `src` stored by columns (element
    /// `(i, j)` at `src + i + j * column`, a transpose): two rows by two columns at a time, a
    /// vector load down each column transposed in registers into a vector store along each
    /// row, so reads and writes both move pairs; an odd last row or column element by element.
    fn transposed_copy(&mut self, (rows, cols): (usize, usize), (src, column): (CV, i64), dst: CV) {
        let (r2, c2) = (rows / 2, cols / 2);
        let c = cols as i64;
        let walkers = [
            Walker {
                start: src,
                strides: vec![16, 16 * column],
            },
            Walker {
                start: dst,
                strides: vec![16 * c, 16],
            },
        ];
        self.nest(&[r2, c2], &walkers, &mut |e, p| {
            let u = e.load_at(types::F64X2, p[0], 0);
            let w = e.load_at(types::F64X2, p[0], 8 * column);
            let (row0, row1) = e.transpose2(u, w);
            e.store_at(row0, p[1], 0);
            e.store_at(row1, p[1], 8 * c);
        });
        // The odd last row (every column), then the odd last column (the other rows).
        let edges = [
            (2 * r2, rows - 2 * r2, 0, cols),
            (0, 2 * r2, 2 * c2, cols - 2 * c2),
        ];
        for (i0, ni, j0, nj) in edges {
            if ni == 0 || nj == 0 {
                continue;
            }
            let (i, j) = (i0 as i64, j0 as i64);
            let walkers = [
                Walker {
                    start: self.fb.ins().iadd_imm_s(src, 8 * (i + j * column)),
                    strides: vec![8, 8 * column],
                },
                Walker {
                    start: self.fb.ins().iadd_imm_s(dst, 8 * (i * c + j)),
                    strides: vec![8 * c, 8],
                },
            ];
            self.nest(&[ni, nj], &walkers, &mut |e, p| {
                let x = e.load(p[0], DType::F64);
                e.store(p[1], x, DType::F64);
            });
        }
    }

    /// Writes `x` into the row-major tensor of shape `out` at `dst`, at offset `lo`.
    fn place(&mut self, x: Value, dst: CV, out: &[usize], lo: &[usize], dtype: DType) {
        let shape = self.f.value_type(x).shape.to_vec();
        let os = row_major(out);
        let off: i64 = lo.iter().enumerate().map(|(d, l)| *l as i64 * os[d]).sum();
        let start = self.fb.ins().iadd_imm_s(dst, 8 * off);
        let mut walkers = vec![Walker {
            start,
            strides: os[..out.len()].iter().map(|s| 8 * s).collect(),
        }];
        let axes: Vec<usize> = (0..shape.len()).collect();
        let src = self.reader(x, &axes, &mut walkers);
        self.nest_lanes(&shape, &walkers, Pairing::Contiguous, &mut |e, p, inner| {
            let y = e.fetch_lanes(src, p, dtype, inner);
            e.store_lanes(p[0], y, dtype, inner.lanes);
        });
    }
}

/// The boxes `(start, dims)` of a pad's output `out` outside its operand (of shape `inner`,
/// placed at `lo`), disjoint and nonempty: along each axis `d`, the part before and after the
/// operand, within the operand's extent on the axes before `d` and whole on those after.
fn halo(out: &[usize], inner: &[usize], lo: &[usize]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut boxes = Vec::new();
    for d in 0..out.len() {
        let mut start: Vec<usize> = (0..out.len())
            .map(|a| if a < d { lo[a] } else { 0 })
            .collect();
        let mut dims: Vec<usize> = (0..out.len())
            .map(|a| if a < d { inner[a] } else { out[a] })
            .collect();
        let after = lo[d] + inner[d];
        for (s, n) in [(0, lo[d]), (after, out[d] - after)] {
            start[d] = s;
            dims[d] = n;
            if dims.iter().all(|&n| n > 0) {
                boxes.push((start.clone(), dims.clone()));
            }
        }
    }
    boxes
}
