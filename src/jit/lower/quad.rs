//! Four-lane vector math: an op whose function in use takes four lanes (`ops::vmath`,
//! libmvec's `_ZGVdN4v_*`, or adjit's own kernel). A tensor of such an op is its own unit (the
//! planner does not fuse it), computed into its storage four elements at a time, a last partial
//! group padded with its last element: in the JIT by one call of `vmath::map_raw` for the whole
//! tensor (a call per group made Cranelift save and restore the live vector registers each
//! time), in object files by a loop calling the function through `runtime::QUAD_CALL` on two
//! `f64x2` halves. Single registers and pairs are repeated to four lanes and go through
//! `QUAD_CALL` too. The interpreter groups elements the same way (`vmath::map`), and lanes are
//! independent, so both agree bit for bit.

use super::Emitter;
use crate::ir::{Inst, Unary, Value};
use crate::jit::plan::{row_major, Kind};
use crate::jit::runtime::Callee;
use cranelift_codegen::ir::{types, InstBuilder, Value as CV};

impl Emitter<'_, '_> {
    /// Whether `u` is computed by its four-lane function here.
    pub(super) fn has_quad(&self, u: Unary) -> bool {
        self.imports.contains_key(&Callee::Quad(u)) && self.imports.contains_key(&Callee::QuadCall)
    }

    /// `u` on the four lanes `[lo, hi]`.
    fn quad_call(&mut self, u: Unary, lo: CV, hi: CV) -> (CV, CV) {
        let f = self.host(Callee::Quad(u));
        let addr = self.fb.ins().func_addr(types::I64, f);
        let call = self.host(Callee::QuadCall);
        let inst = self.fb.ins().call(call, &[addr, lo, hi]);
        let r = self.fb.inst_results(inst);
        (r[0], r[1])
    }

    /// `u` on a register of one lane (`f64`) or two (`f64x2`): the lanes repeated to four.
    pub(super) fn quad_lanes(&mut self, u: Unary, x: CV, lanes: usize) -> CV {
        let pair = match lanes {
            1 => self.fb.ins().splat(types::F64X2, x),
            _ => x,
        };
        let (r, _) = self.quad_call(u, pair, pair);
        match lanes {
            1 => self.fb.ins().extractlane(r, 0),
            _ => r,
        }
    }

    /// Tensor `v = u(x)` into `v`'s storage: from `x`'s storage if it is contiguous, else from
    /// a copy of `x` made in `v`'s storage first; one call of `Callee::Map` where the module
    /// has it.
    pub(super) fn quad_map(&mut self, v: Value, inst: &Inst, u: Unary) {
        let x = inst.args[0];
        let n = inst.ty.numel();
        let dst = self.base(v);
        let shape = inst.ty.shape.to_vec();
        let src = match self.plan.kinds[x] {
            Kind::Mem(m)
                if (0..shape.len())
                    .all(|d| shape[d] == 1 || m.strides[d] == row_major(&shape)[d]) =>
            {
                let base = self.base(m.storage);
                self.fb.ins().iadd_imm_s(base, 8 * m.offset)
            }
            Kind::Mem(_)
            | Kind::Scalar
            | Kind::Splat(_)
            | Kind::Bcast(_)
            | Kind::Fused
            | Kind::Pieces => {
                self.copy(x, inst.ty, dst);
                dst
            }
        };
        if self.imports.contains_key(&Callee::Map) {
            let op = self.fb.ins().iconst(types::I64, u as i64);
            let n = self.fb.ins().iconst(types::I64, n as i64);
            let map = self.host(Callee::Map);
            self.fb.ins().call(map, &[op, src, dst, n]);
            return;
        }
        let flags = super::vector_flags();
        let groups = n / 4;
        if groups > 0 {
            self.counted(groups, &[src, dst], &[32, 32], &mut |e, p| {
                let lo = e.fb.ins().load(types::F64X2, flags, p[0], 0);
                let hi = e.fb.ins().load(types::F64X2, flags, p[0], 16);
                let (lo, hi) = e.quad_call(u, lo, hi);
                e.fb.ins().store(flags, lo, p[1], 0);
                e.fb.ins().store(flags, hi, p[1], 16);
            });
        }
        let tail = n % 4;
        if tail > 0 {
            // The group `[t0, t1, t2, t2]` (or `[t0, t1, t1, t1]`, `[t0, t0, t0, t0]`).
            let at = 8 * (4 * groups) as i32;
            let lane = |e: &mut Self, j: usize| {
                let k = j.min(tail - 1) as i32;
                e.fb.ins().load(types::F64, flags, src, at + 8 * k)
            };
            let half = |e: &mut Self, j: usize| {
                let a = lane(e, j);
                let b = lane(e, j + 1);
                let v = e.fb.ins().scalar_to_vector(types::F64X2, a);
                e.fb.ins().insertlane(v, b, 1)
            };
            let (lo, hi) = (half(self, 0), half(self, 2));
            let (lo, hi) = self.quad_call(u, lo, hi);
            for j in 0..tail {
                let (h, k) = if j < 2 { (lo, j) } else { (hi, j - 2) };
                let a = self.fb.ins().extractlane(h, k as u8);
                self.fb.ins().store(flags, a, dst, at + 8 * j as i32);
            }
        }
    }
}
