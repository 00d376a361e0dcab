//! A scan as a loop in the caller's code: the body is a function of its own (its chunks, each
//! `fn(inputs, outputs, workspace)`), called once per step with pointer arrays (a stack slot
//! of the caller) that the loop rewrites each step: where the step's xs, carries, outputs and
//! replay state are. Per step that is a few stores and one call per chunk of the body.
//!
//! The carries alternate between the result's carry part and a spare range, in the order that
//! makes the last step write the result; the initial carries are copied where step -1 would
//! have written them. A replay scan first runs its replay step over every state, storing the
//! whole trajectory, then the body reads state `i` from it at step `i`, in either direction.

use super::revolve::RevolveCode;
use super::{flags, Emitter};
use crate::ir::{Def, Inst, Value};
use crate::jit::plan::{Kind, Load, ScanPlan};
use crate::jit::JitError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, FuncRef, InstBuilder, StackSlotData, StackSlotKind, Value as CV,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;

/// The machine-code functions of a scan: its body's chunks and its replay step's, in order,
/// and the step functions of a scan run under `crate::revolve`.
pub struct ScanCode {
    pub body: Vec<FuncId>,
    pub replay: Vec<FuncId>,
    pub revolve: Option<RevolveCode>,
}

/// Pointer arrays for calls of a scan's function: inputs then outputs, in one stack slot.
#[derive(Clone, Copy)]
pub(super) struct Frame {
    pub(super) ins: CV,
    pub(super) outs: CV,
}

/// Something a step passes that moves with the step: `base + index * stride` bytes.
#[derive(Clone, Copy)]
pub(super) struct Stepped {
    pub(super) base: CV,
    pub(super) stride: i64,
}

impl Emitter<'_, '_> {
    /// Scan `v` (instruction `inst`) into its result's storage.
    pub(super) fn scan(&mut self, v: Value, inst: &Inst) -> Result<(), JitError> {
        let internal = |what: &str| JitError::Internal(format!("scan {v}: {what}"));
        let sp: &ScanPlan = self.plan.scans[v]
            .as_deref()
            .ok_or_else(|| internal("no plan"))?;
        let code = self.scan_code.get(&v).ok_or_else(|| internal("no code"))?;
        let s = &sp.shape;
        let result = self.base(v);
        let spare = self.work(sp.at.spare);
        // Step k writes the result when length - 1 - k is even; step -1 "wrote" the other.
        let (first, other) = if s.length.is_multiple_of(2) {
            (result, spare)
        } else {
            (spare, result)
        };
        for j in 0..s.carries {
            let dst = self.fb.ins().iadd_imm_s(first, 8 * sp.parts[j].0 as i64);
            self.copy_to(inst.args[s.carry_start() + j], dst);
        }
        if s.length == 0 {
            return Ok(());
        }
        let args: Vec<CV> = (0..inst.args.len())
            .map(|j| self.operand(inst.args[j], sp.at.staged[j]))
            .collect();
        if let Some(rc) = &code.revolve {
            self.revolve_scan(sp, rc, inst, &args, [result, spare]);
            return Ok(());
        }
        let states = self.trajectory(sp, &code.replay, inst, &args);
        let xs: Vec<Stepped> = (s.xs_start()..inst.args.len())
            .map(|j| Stepped {
                base: args[j],
                stride: 8 * sp.body.func.params[j].ty.numel() as i64,
            })
            .collect();
        let ys: Vec<Stepped> = (s.carries..s.carries + s.ys)
            .map(|j| Stepped {
                base: self.fb.ins().iadd_imm_s(result, 8 * sp.parts[j].0 as i64),
                stride: 8 * s.y_types[j - s.carries].numel() as i64,
            })
            .collect();
        let frame = self.frame(&sp.body.func, &args[..s.consts]);
        let body_ws = self.work(sp.at.body_ws);
        let last = (s.length - 1) as i64;
        let reverse = sp.reverse;
        let carry_offsets: Vec<i64> = (0..s.carries).map(|j| 8 * sp.parts[j].0 as i64).collect();
        self.steps(s.length, (first, other), {
            &mut |e: &mut Self, k: CV, from: CV, to: CV| {
                let i = if reverse {
                    let l = e.fb.ins().iconst(types::I64, last);
                    e.fb.ins().isub(l, k)
                } else {
                    k
                };
                e.set_stepped(frame.ins, s.replay_start(), &states, i);
                for (j, &off) in carry_offsets.iter().enumerate() {
                    let at = (8 * (s.carry_start() + j)) as i32;
                    let p = e.fb.ins().iadd_imm_s(from, off);
                    e.fb.ins().store(flags(), p, frame.ins, at);
                    let q = e.fb.ins().iadd_imm_s(to, off);
                    e.fb.ins().store(flags(), q, frame.outs, 8 * j as i32);
                }
                e.set_stepped(frame.ins, s.xs_start(), &xs, i);
                e.set_stepped(frame.outs, s.carries, &ys, i);
                e.call_chunks(&code.body, &frame, body_ws);
            }
        });
        Ok(())
    }

    /// The replay states of every step (each replay carry's states in a row), computed by
    /// running the replay step from the replay carries' initial values; none without replay.
    fn trajectory(
        &mut self,
        sp: &ScanPlan,
        code: &[FuncId],
        inst: &Inst,
        args: &[CV],
    ) -> Vec<Stepped> {
        let Some(replay) = &sp.replay else {
            return Vec::new();
        };
        let s = &sp.shape;
        let mut at = sp.at.trajectory;
        let mut states = Vec::with_capacity(s.replays);
        for j in 0..s.replays {
            let base = self.work(at);
            self.copy_to(inst.args[s.replay_start() + j], base);
            let len = replay.func.result_types()[j].numel();
            states.push(Stepped {
                base,
                stride: 8 * len as i64,
            });
            at += len * s.length;
        }
        if s.length < 2 {
            return states;
        }
        let frame = self.frame(&replay.func, &args[..s.consts]);
        let ws = self.work(sp.at.replay_ws);
        let leading = replay.func.params.len() - s.consts - s.replays;
        let xs: Vec<Stepped> = (0..leading)
            .map(|m| Stepped {
                base: args[s.xs_start() + m],
                stride: 8 * replay.func.params[s.consts + s.replays + m].ty.numel() as i64,
            })
            .collect();
        let next: Vec<Stepped> = states
            .iter()
            .map(|st| Stepped {
                base: self.fb.ins().iadd_imm_s(st.base, st.stride),
                ..*st
            })
            .collect();
        let zero = self.fb.ins().iconst(types::I64, 0);
        self.steps(s.length - 1, (zero, zero), &mut |e, k, _, _| {
            e.set_stepped(frame.ins, s.replay_start(), &states, k);
            e.set_stepped(frame.ins, s.consts + s.replays, &xs, k);
            e.set_stepped(frame.outs, 0, &next, k);
            e.call_chunks(code, &frame, ws);
        });
        states
    }

    /// Emits `count >= 1` steps; `step` gets the step number and a pair of values that swap
    /// after every step (the carries' source and destination).
    fn steps(&mut self, count: usize, pair: (CV, CV), step: &mut dyn FnMut(&mut Self, CV, CV, CV)) {
        let [k, a, b] = [(); 3].map(|_| self.fb.declare_var(types::I64));
        let zero = self.fb.ins().iconst(types::I64, 0);
        self.fb.def_var(k, zero);
        self.fb.def_var(a, pair.0);
        self.fb.def_var(b, pair.1);
        let (body, exit) = (self.fb.create_block(), self.fb.create_block());
        self.fb.ins().jump(body, &[]);
        self.fb.switch_to_block(body);
        let (kv, av, bv) = (self.fb.use_var(k), self.fb.use_var(a), self.fb.use_var(b));
        step(self, kv, av, bv);
        let next = self.fb.ins().iadd_imm_s(kv, 1);
        self.fb.def_var(k, next);
        self.fb.def_var(a, bv);
        self.fb.def_var(b, av);
        let more = self
            .fb
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, next, count as i64);
        self.fb.ins().brif(more, body, &[], exit, &[]);
        self.fb.seal_block(body);
        self.fb.switch_to_block(exit);
        self.fb.seal_block(exit);
    }

    /// A frame for calls of `g`, its first inputs pointing at `fixed` for every call.
    pub(super) fn frame(&mut self, g: &crate::ir::Func, fixed: &[CV]) -> Frame {
        let (np, nr) = (g.params.len(), g.results.len());
        let size = (8 * (np + nr)).max(8) as u32;
        let slot = self.fb.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            size,
            3,
        ));
        let ins = self.fb.ins().stack_addr(types::I64, slot, 0);
        let outs = self.fb.ins().stack_addr(types::I64, slot, (8 * np) as i32);
        for (j, &p) in fixed.iter().enumerate() {
            self.fb.ins().store(flags(), p, ins, (8 * j) as i32);
        }
        Frame { ins, outs }
    }

    fn set_stepped(&mut self, array: CV, first: usize, items: &[Stepped], index: CV) {
        set_stepped(&mut self.fb, array, first, items, index);
    }

    /// The reference to function `id` of this module (see `Calls::local`).
    pub(super) fn local(&mut self, id: FuncId) -> FuncRef {
        let mut calls = Calls {
            module: self.module,
            locals: &mut self.locals,
        };
        calls.local(&mut self.fb, id)
    }

    fn call_chunks(&mut self, chunks: &[FuncId], frame: &Frame, ws: CV) {
        let mut calls = Calls {
            module: self.module,
            locals: &mut self.locals,
        };
        calls.chunks(&mut self.fb, chunks, frame, ws);
    }

    /// The address of workspace offset `off` (in elements).
    pub(super) fn work(&mut self, off: usize) -> CV {
        self.fb.ins().iadd_imm_s(self.ws, 8 * off as i64)
    }

    /// Copies `a` (of any kind) to row-major memory at `dst`.
    pub(super) fn copy_to(&mut self, a: Value, dst: CV) {
        let ty = self.f.value_type(a);
        self.copy(a, ty, dst);
    }

    /// A pointer to operand `a` in row-major order: its copy at workspace offset `staged`, or
    /// where it is (see `plan::scan`).
    fn operand(&mut self, a: Value, staged: Option<usize>) -> CV {
        if let Some(off) = staged {
            let dst = self.work(off);
            self.copy_to(a, dst);
            return dst;
        }
        match (self.plan.kinds[a], self.plan.loads[a], self.f.def(a)) {
            (Kind::Mem(m), _, _) => {
                let base = self.base(m.storage);
                self.fb.ins().iadd_imm_s(base, 8 * m.offset)
            }
            (_, Some(Load { storage, offset }), _) => {
                let base = self.base(storage);
                self.fb.ins().iadd_imm_s(base, 8 * offset)
            }
            (_, None, Def::Param(i)) => self.ins[i],
            // Empty: never read.
            (_, None, Def::Inst(_)) => self.ws,
        }
    }
}

/// Stores `base + index * stride` of each of `items` into `array` from entry `first` on.
pub(super) fn set_stepped(
    fb: &mut FunctionBuilder,
    array: CV,
    first: usize,
    items: &[Stepped],
    index: CV,
) {
    for (j, it) in items.iter().enumerate() {
        let p = if it.stride == 0 {
            it.base
        } else {
            let off = fb.ins().imul_imm_s(index, it.stride);
            fb.ins().iadd(it.base, off)
        };
        fb.ins().store(flags(), p, array, (8 * (first + j)) as i32);
    }
}

/// Calls of functions of this module from the function being built.
pub(super) struct Calls<'m> {
    pub module: &'m mut dyn Module,
    /// References declared in the function so far.
    pub locals: &'m mut HashMap<FuncId, FuncRef>,
}

impl Calls<'_> {
    /// Calls each chunk of a scan's function on `frame` and workspace `ws`.
    pub(super) fn chunks(
        &mut self,
        fb: &mut FunctionBuilder,
        chunks: &[FuncId],
        frame: &Frame,
        ws: CV,
    ) {
        for &id in chunks {
            let r = self.local(fb, id);
            fb.ins().call(r, &[frame.ins, frame.outs, ws]);
        }
    }

    /// The reference to function `id`. Called through an absolute address, not a 32-bit
    /// displacement: functions of one module need not lie within 2 GiB of each other.
    pub(super) fn local(&mut self, fb: &mut FunctionBuilder, id: FuncId) -> FuncRef {
        if let Some(&r) = self.locals.get(&id) {
            return r;
        }
        let r = self.module.declare_func_in_func(id, fb.func);
        fb.func.dfg.ext_funcs[r].colocated = false;
        self.locals.insert(id, r);
        r
    }
}
