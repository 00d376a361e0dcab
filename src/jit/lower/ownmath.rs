//! adjit's own `sin`, `cos` and `exp` (`ops::ownmath`) as inline code on one lane or two: the
//! recipe's operations emitted as Cranelift instructions (`fma` is one instruction where the
//! target has FMA, the only place this is used), so the bits are the four-lane kernel's. An
//! argument beyond the recipe's limit (NaN and infinities included) branches to the op's host
//! function, which gives the C library's value there, as the kernel does.
//!
//! Compiled code runs this for single values, where a call of the four-lane kernel would cost
//! more than the recipe, and object files run it for every element, since they cannot call
//! the kernel (it is in adjit, not in a C library).

use super::Emitter;
use crate::ir::Unary;
use crate::jit::runtime::Callee;
use crate::ops::ownmath::{self, Own};
use crate::ops::vmath;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{
    types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value as CV,
};

/// The recipe's operations on a register of `lanes` lanes.
struct Clif<'e, 'a, 'b> {
    e: &'e mut Emitter<'a, 'b>,
    lanes: usize,
}

impl Clif<'_, '_, '_> {
    fn int_type(&self) -> Type {
        if self.lanes == 1 {
            types::I64
        } else {
            types::I64X2
        }
    }

    fn float_type(&self) -> Type {
        if self.lanes == 1 {
            types::F64
        } else {
            types::F64X2
        }
    }

    fn bits(&mut self, x: CV) -> CV {
        let ty = self.int_type();
        self.e.fb.ins().bitcast(ty, MemFlagsData::new(), x)
    }

    fn float(&mut self, x: CV) -> CV {
        let ty = self.float_type();
        self.e.fb.ins().bitcast(ty, MemFlagsData::new(), x)
    }
}

impl ownmath::Arith for Clif<'_, '_, '_> {
    type V = CV;
    fn constant(&mut self, c: ownmath::Const) -> CV {
        self.e.float(c.value(), self.lanes)
    }
    fn fma(&mut self, a: CV, b: CV, c: CV) -> CV {
        self.e.fb.ins().fma(a, b, c)
    }
    fn mul(&mut self, a: CV, b: CV) -> CV {
        self.e.fb.ins().fmul(a, b)
    }
    fn add(&mut self, a: CV, b: CV) -> CV {
        self.e.fb.ins().fadd(a, b)
    }
    fn sub(&mut self, a: CV, b: CV) -> CV {
        self.e.fb.ins().fsub(a, b)
    }
    fn flip_if_odd(&mut self, y: CV, t: CV) -> CV {
        let t = self.bits(t);
        let sign = self.e.fb.ins().ishl_imm_u(t, 63);
        let y = self.bits(y);
        let flipped = self.e.fb.ins().bxor(y, sign);
        self.float(flipped)
    }
    fn scale(&mut self, p: CV, t: CV) -> CV {
        let t = self.bits(t);
        let k = self.e.fb.ins().ishl_imm_u(t, 52);
        let p = self.bits(p);
        let scaled = self.e.fb.ins().iadd(p, k);
        self.float(scaled)
    }
}

impl Emitter<'_, '_> {
    /// Whether `u` is computed inline here: it is one of adjit's own functions in this process,
    /// the target has FMA, and the module either has the trampoline of its slow path (defined
    /// where inline code is wanted: fast code in the JIT) or cannot call the four-lane kernel
    /// (object files).
    pub(super) fn inline_own(&self, u: Unary) -> bool {
        vmath::is_own(u)
            && self.module.isa().has_native_fma()
            && (self.imports.contains_key(&Callee::Slow(u)) || !self.has_quad(u))
    }

    /// `u(x)` on a register of one lane (`f64`) or two (`f64x2`), inline (`inline_own`).
    pub(super) fn own_math(&mut self, u: Unary, x: CV, lanes: usize) -> CV {
        let Some(f) = Own::of(u) else {
            panic!(
                "internal: `{}` is not one of adjit's own functions",
                u.name()
            );
        };
        let fast = ownmath::recipe(&mut Clif { e: self, lanes }, f, x);
        let abs = self.fb.ins().fabs(x);
        let limit = self.float(f.limit(), lanes);
        let inside = self.fb.ins().fcmp(FloatCC::LessThanOrEqual, abs, limit);
        let all_inside = match lanes {
            1 => inside,
            _ => self.fb.ins().vall_true(inside),
        };
        let (beyond, done) = (self.fb.create_block(), self.fb.create_block());
        let ty = self.fb.func.dfg.value_type(x);
        let result = self.fb.append_block_param(done, ty);
        self.fb
            .ins()
            .brif(all_inside, done, &[fast.into()], beyond, &[]);
        self.fb.switch_to_block(beyond);
        self.fb.set_cold_block(beyond);
        let slow = self.slow_path(u, x, lanes);
        let y = match lanes {
            1 => slow,
            _ => {
                // Lanes within the limit keep the recipe's value: an object file's host
                // function is the C library's, which differs there.
                let mask = self
                    .fb
                    .ins()
                    .bitcast(types::F64X2, MemFlagsData::new(), inside);
                self.fb.ins().bitselect(mask, fast, slow)
            }
        };
        self.fb.ins().jump(done, &[y.into()]);
        self.fb.switch_to_block(done);
        result
    }

    /// `(sin x, cos x)` of one value, where both are inline: one two-lane register runs
    /// `ownmath::sin_cos` with `sin` in lane 0 and `cos` in lane 1, each with its own recipe's
    /// bits, for about the work of one. Beyond the limit (the same for both) each takes its
    /// host function. `None` where they are not inline, or their limits differ.
    pub(super) fn own_sin_cos(&mut self, x: CV) -> Option<(CV, CV)> {
        let (sin, cos) = (Unary::Sin, Unary::Cos);
        let limit = Own::Sin.limit();
        if !(self.inline_own(sin) && self.inline_own(cos)) || Own::Cos.limit() != limit {
            return None;
        }
        let pair = self.fb.ins().splat(types::F64X2, x);
        let phases: Vec<u8> = [ownmath::PHASE_SIN, ownmath::PHASE_COS]
            .iter()
            .flat_map(|p| p.to_le_bytes())
            .collect();
        let phases = self.fb.func.dfg.constants.insert(phases.into());
        let phase = self.fb.ins().vconst(types::F64X2, phases);
        let fast = ownmath::sin_cos(&mut Clif { e: self, lanes: 2 }, pair, phase);
        let abs = self.fb.ins().fabs(x);
        let limit = self.float(limit, 1);
        let inside = self.fb.ins().fcmp(FloatCC::LessThanOrEqual, abs, limit);
        let (beyond, done) = (self.fb.create_block(), self.fb.create_block());
        let result = self.fb.append_block_param(done, types::F64X2);
        self.fb
            .ins()
            .brif(inside, done, &[fast.into()], beyond, &[]);
        self.fb.switch_to_block(beyond);
        self.fb.set_cold_block(beyond);
        let (s, c) = (self.slow_path(sin, x, 1), self.slow_path(cos, x, 1));
        let both = self.fb.ins().scalar_to_vector(types::F64X2, s);
        let both = self.fb.ins().insertlane(both, c, 1);
        self.fb.ins().jump(done, &[both.into()]);
        self.fb.switch_to_block(done);
        let s = self.fb.ins().extractlane(result, 0);
        let c = self.fb.ins().extractlane(result, 1);
        Some((s, c))
    }

    /// The host function of `u` on each lane of `x`: through the module's `preserve_all`
    /// trampoline (`Callee::Slow`) where there is one, so that the call clobbers nothing.
    fn slow_path(&mut self, u: Unary, x: CV, lanes: usize) -> CV {
        if !self.imports.contains_key(&Callee::Slow(u)) {
            return self.call_each_lane(Callee::Unary(u), &[x], lanes);
        }
        let slow = self.host(Callee::Slow(u));
        let slot =
            self.fb
                .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        let out = self.fb.ins().stack_addr(types::I64, slot, 0);
        let one = |e: &mut Self, a: CV| {
            e.fb.ins().call(slow, &[a, out]);
            e.fb.ins().load(types::F64, MemFlagsData::trusted(), out, 0)
        };
        if lanes == 1 {
            return one(self, x);
        }
        let a = self.fb.ins().extractlane(x, 0);
        let b = self.fb.ins().extractlane(x, 1);
        let (a, b) = (one(self, a), one(self, b));
        let v = self.fb.ins().scalar_to_vector(types::F64X2, a);
        self.fb.ins().insertlane(v, b, 1)
    }
}
