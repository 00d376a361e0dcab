//! Replay scans reversed under binomial checkpointing. The caller's code puts the initial replay
//! state in place, writes the environment of two step functions of the scan, and calls
//! `revolve_scan` (in `compiled`), which runs `crate::revolve`'s schedule and calls them back:
//! `advance(env, step)`, the replay step from the current state, and `reverse(env, step)`, the
//! body's step on it. Both are emitted here, once per scan; a step's pointers are computed as in
//! `scan`, and `reverse` alternates the carries the same way (step `i` writes the result when
//! `i` is even), since the schedule reverses every step once, from the last.

use super::scan::{set_stepped, Calls, Frame, ScanCode, Stepped};
use super::{flags, Emitter};
use crate::ir::Inst;
use crate::jit::compiled::RevolveArgs;
use crate::jit::plan::ScanPlan;
use cranelift_codegen::ir::{types, InstBuilder, StackSlotData, StackSlotKind, Value as CV};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;
use std::mem::offset_of;

/// The functions of a scan run under `crate::revolve`, and the host function that runs it.
pub struct RevolveCode {
    pub advance: FuncId,
    pub reverse: FuncId,
    pub host: FuncId,
}

/// Words of the environment: the frames and workspaces of the body and the replay step, the
/// result and spare carries, then the bases of the xs and of the ys.
const BODY_INS: i32 = 0;
const BODY_OUTS: i32 = 1;
const BODY_WS: i32 = 2;
const REPLAY_INS: i32 = 3;
const REPLAY_OUTS: i32 = 4;
const REPLAY_WS: i32 = 5;
const RESULT: i32 = 6;
const SPARE: i32 = 7;
const XS: i32 = 8;

/// Emits into `fb` (signature `(env, step)`) the `reverse` or `advance` step function of `sp`,
/// whose functions are `code`.
pub fn step_function(
    mut fb: FunctionBuilder,
    module: &mut dyn Module,
    sp: &ScanPlan,
    code: &ScanCode,
    reverse: bool,
) {
    let entry = fb.create_block();
    fb.append_block_params_for_function_params(entry);
    fb.switch_to_block(entry);
    fb.seal_block(entry);
    let (env, step) = (fb.block_params(entry)[0], fb.block_params(entry)[1]);
    let word = |fb: &mut FunctionBuilder, w: i32| fb.ins().load(types::I64, flags(), env, 8 * w);
    let s = &sp.shape;
    let xs = |fb: &mut FunctionBuilder, n: usize| -> Vec<Stepped> {
        (0..n)
            .map(|j| Stepped {
                base: word(fb, XS + j as i32),
                stride: 8 * sp.body.func.params[s.xs_start() + j].ty.numel() as i64,
            })
            .collect()
    };
    let mut locals = HashMap::new();
    let mut calls = Calls {
        module,
        locals: &mut locals,
    };
    if reverse {
        let [ins, outs, ws, result, spare] =
            [BODY_INS, BODY_OUTS, BODY_WS, RESULT, SPARE].map(|w| word(&mut fb, w));
        let odd = fb.ins().band_imm_u(step, 1);
        let to = fb.ins().select(odd, spare, result);
        let from = fb.ins().select(odd, result, spare);
        for j in 0..s.carries {
            let off = 8 * sp.parts[j].0 as i64;
            let (p, q) = (fb.ins().iadd_imm_s(from, off), fb.ins().iadd_imm_s(to, off));
            fb.ins()
                .store(flags(), p, ins, (8 * (s.carry_start() + j)) as i32);
            fb.ins().store(flags(), q, outs, (8 * j) as i32);
        }
        let xs = xs(&mut fb, s.xs);
        set_stepped(&mut fb, ins, s.xs_start(), &xs, step);
        let ys: Vec<Stepped> = (0..s.ys)
            .map(|j| Stepped {
                base: word(&mut fb, XS + (s.xs + j) as i32),
                stride: 8 * s.y_types[j].numel() as i64,
            })
            .collect();
        set_stepped(&mut fb, outs, s.carries, &ys, step);
        calls.chunks(&mut fb, &code.body, &Frame { ins, outs }, ws);
    } else {
        let [ins, outs, ws] = [REPLAY_INS, REPLAY_OUTS, REPLAY_WS].map(|w| word(&mut fb, w));
        let replay = &sp.replay.as_ref().expect("a replay scan").func;
        let xs = xs(&mut fb, replay.params.len() - s.consts - s.replays);
        set_stepped(&mut fb, ins, s.consts + s.replays, &xs, step);
        calls.chunks(&mut fb, &code.replay, &Frame { ins, outs }, ws);
    }
    fb.ins().return_(&[]);
    fb.seal_all_blocks();
    let config = calls.module.target_config();
    fb.finalize(config);
}

impl Emitter<'_, '_> {
    /// Scan `inst` (`sp`, its step functions in `rc`) under `crate::revolve`: the initial replay
    /// state, the frames and the environment, then the call of `revolve_scan`. `args` are the
    /// operands' pointers; `[result, spare]` the carries' two places.
    pub(super) fn revolve_scan(
        &mut self,
        sp: &ScanPlan,
        rc: &RevolveCode,
        inst: &Inst,
        args: &[CV],
        [result, spare]: [CV; 2],
    ) {
        let s = &sp.shape;
        let rv = sp.at.revolve.as_ref().expect("a revolve scan");
        let replay = &sp.replay.as_ref().expect("a replay scan").func;
        let (cur, next) = (self.work(rv.cur), self.work(rv.next));
        let (mut fixed, mut outs, mut len) = (args[..s.consts].to_vec(), Vec::new(), 0);
        for (j, n) in sp.replay_lens().into_iter().enumerate() {
            let p = self.fb.ins().iadd_imm_s(cur, 8 * len as i64);
            self.copy_to(inst.args[s.replay_start() + j], p);
            fixed.push(p);
            outs.push(self.fb.ins().iadd_imm_s(next, 8 * len as i64));
            len += n;
        }
        let body = self.frame(&sp.body.func, &fixed);
        let step = self.frame(replay, &fixed);
        for (j, &p) in outs.iter().enumerate() {
            self.fb.ins().store(flags(), p, step.outs, (8 * j) as i32);
        }
        let (body_ws, replay_ws) = (self.work(sp.at.body_ws), self.work(sp.at.replay_ws));
        let mut env = vec![
            body.ins, body.outs, body_ws, step.ins, step.outs, replay_ws, result, spare,
        ];
        env.extend(&args[s.xs_start()..]);
        for j in 0..s.ys {
            let off = 8 * sp.parts[s.carries + j].0 as i64;
            env.push(self.fb.ins().iadd_imm_s(result, off));
        }
        let env = self.words(&env);
        let run = self.revolve_args(sp, rc, [cur, next, env], len);
        let host = self.local(rc.host);
        self.fb.ins().call(host, &[run]);
    }

    /// The `RevolveArgs` of scan `sp` in a stack slot, given the current and next states, the
    /// environment, and the state's length.
    fn revolve_args(
        &mut self,
        sp: &ScanPlan,
        rc: &RevolveCode,
        [cur, next, env]: [CV; 3],
        len: usize,
    ) -> CV {
        let rv = sp.at.revolve.as_ref().expect("a revolve scan");
        let stack = self.work(rv.stack);
        let snaps = self.work(rv.snaps);
        let (adv, rev) = (self.local(rc.advance), self.local(rc.reverse));
        let advance = self.fb.ins().func_addr(types::I64, adv);
        let reverse = self.fb.ins().func_addr(types::I64, rev);
        let n = self.fb.ins().iconst(types::I64, sp.shape.length as i64);
        let snapshots = self.fb.ins().iconst(types::I64, rv.snapshots as i64);
        let len = self.fb.ins().iconst(types::I64, len as i64);
        let slot = self.fb.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            std::mem::size_of::<RevolveArgs>() as u32,
            3,
        ));
        let at = self.fb.ins().stack_addr(types::I64, slot, 0);
        let fields = [
            (offset_of!(RevolveArgs, n), n),
            (offset_of!(RevolveArgs, snapshots), snapshots),
            (offset_of!(RevolveArgs, len), len),
            (offset_of!(RevolveArgs, stack), stack),
            (offset_of!(RevolveArgs, cur), cur),
            (offset_of!(RevolveArgs, snaps), snaps),
            (offset_of!(RevolveArgs, next), next),
            (offset_of!(RevolveArgs, env), env),
            (offset_of!(RevolveArgs, advance), advance),
            (offset_of!(RevolveArgs, reverse), reverse),
        ];
        for (off, x) in fields {
            self.fb.ins().store(flags(), x, at, off as i32);
        }
        at
    }

    /// `values` (64-bit) in a stack slot of their own: its address.
    pub(super) fn words(&mut self, values: &[CV]) -> CV {
        let slot = self.fb.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (8 * values.len()).max(8) as u32,
            3,
        ));
        let at = self.fb.ins().stack_addr(types::I64, slot, 0);
        for (j, &x) in values.iter().enumerate() {
            self.fb.ins().store(flags(), x, at, (8 * j) as i32);
        }
        at
    }
}
