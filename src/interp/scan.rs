//! The interpreter's `scan`: planning a scan step (its body, and a replay scan's replay step, as
//! embedded `Plan`s) and running it without allocating.
//!
//! A scan owns, in its parent's workspace, ranges that no other value reuses: the body's region
//! (its parameters first, then its values and constants, nested scans' regions inside), the
//! replay step's region, and for a replay scan the current trajectory state and the snapshots.
//! The packed result is an ordinary value of the parent; its carry parts double as the carries
//! between steps. A loop step copies the carries and the step's slices of the xs into the
//! body's parameter slots, runs the body, and copies the new carries and the step's `y_i` out
//! (`y_i` at index `i`, also when the scan runs in `reverse`). Copying through the packed result
//! keeps a body that returns its parameters in another order (swapped carries) correct.
//!
//! A replay scan runs its trajectory `r_{i+1} = replay(consts, r_i, x_i)` beside the body: in
//! reverse under `crate::revolve`'s binomial schedule, with `binomial(s)` snapshots, or all
//! `length` states under the other policies; forward (not produced by `ad`, but defined), one
//! replay step after each body step. `replay_steps` counts the replay steps run, for tests.

use super::{load, Loc, Plan};
use crate::call::Ranges;
use crate::ir::{Checkpoint, Func, Op, ScanShape};
use crate::revolve::{self, Reverser};
use std::cell::Cell;

thread_local! {
    static REPLAY_STEPS: Cell<u64> = const { Cell::new(0) };
}

/// How many replay steps (trajectory recomputations of replay scans) the interpreter has run on
/// this thread: a test compares the difference over a call with `revolve::forward_steps`.
pub fn replay_steps() -> u64 {
    REPLAY_STEPS.with(Cell::get)
}

/// A function planned inside its scan's region: where its parameters and results live, as
/// absolute `(offset, len)` ranges of the parent's workspace.
#[derive(Debug)]
struct Embedded {
    plan: Plan,
    base: usize,
    /// Offset of its stack region within the scan's stack region after the scan's own stack.
    stack: usize,
    params: Box<[(usize, usize)]>,
    outputs: Box<[(usize, usize)]>,
}

impl Embedded {
    /// Plans `f` at a permanent range of `alloc`, with its stack region at `stack`.
    fn new(f: &Func, alloc: &mut Ranges, stack: usize) -> Result<Embedded, String> {
        let (plan, _) = Plan::new(f, true).map_err(|(inst, message)| match inst {
            Some(k) => format!("@{}, instruction {k}: {message}", f.name),
            None => format!("@{}: {message}", f.name),
        })?;
        let base = alloc.permanent(plan.len);
        let absolute = |locs: &[Loc]| -> Result<Box<[(usize, usize)]>, String> {
            locs.iter()
                .map(|&l| match l {
                    Loc::Work { off, len } => Ok((base.saturating_add(off), len)),
                    Loc::Input(_) => Err(format!("@{} reads an input directly", f.name)),
                })
                .collect()
        };
        Ok(Embedded {
            params: absolute(&plan.params)?,
            outputs: absolute(&plan.outputs)?,
            plan,
            base,
            stack,
        })
    }

    /// Runs the function's steps on its region; `stack` is the scan's stack region after the
    /// scan's own stack.
    #[inline]
    fn run(&self, buf: &mut [f64], stack: &mut [usize]) {
        self.plan.run(
            &mut buf[self.base..self.base + self.plan.len],
            &mut stack[self.stack..self.stack + self.plan.stack_len],
            &[],
        );
    }
}

/// The replay step of a replay scan and its trajectory storage.
#[derive(Debug)]
struct Replay {
    /// Its parameters: the consts, the replay carries, then some leading xs.
    step: Embedded,
    /// The current state `r_i`: every replay carry, packed, at `cur + state[j]`.
    cur: usize,
    state: Box<[usize]>,
    state_len: usize,
    /// The snapshots: `slots` states of `state_len` from `snaps`.
    snaps: usize,
    /// The snapshot count handed to `revolve::run`.
    snapshots: usize,
}

/// One planned scan.
#[derive(Debug)]
pub(super) struct ScanStep {
    body: Embedded,
    replay: Option<Replay>,
    /// Operand locations in the parent: consts, replay carries, carries, xs.
    operands: Box<[Loc]>,
    shape: ScanShape,
    /// Elements of one step's slice of each xs.
    x_lens: Box<[usize]>,
    /// The packed result's offset and, per part (carries, then ys), its absolute offset and
    /// the elements of one carry or of one step's `y`.
    out: usize,
    parts: Box<[(usize, usize)]>,
    reverse: bool,
    /// The scan's own stack (revolve positions) in the parent's stack region, then the body's
    /// and the replay step's.
    stack: usize,
    own_stack: usize,
    stack_len: usize,
}

impl ScanStep {
    /// Plans instruction `k` of `f`, a scan whose operands live at `operands`, taking its
    /// regions from `alloc` and its stack from offset `stack` of the parent's stack region.
    pub(super) fn new(
        f: &Func,
        k: usize,
        operands: Box<[Loc]>,
        alloc: &mut Ranges,
        stack: usize,
    ) -> Result<ScanStep, String> {
        let inst = &f.insts[k];
        let shape = ScanShape::of(&inst.op, operands.len())?;
        let Op::Scan {
            body,
            replay,
            reverse,
            checkpoint,
            ..
        } = &inst.op
        else {
            return Err("not a scan".into());
        };
        let (body_fn, replay_fn) = (body.func(), replay.as_ref().map(|r| r.func()));
        let snapshots = match checkpoint {
            Checkpoint::Binomial(s) => *s as usize,
            Checkpoint::Auto | Checkpoint::All | Checkpoint::Carry => shape.length,
        };
        let own_stack = match replay_fn {
            Some(_) => revolve::slots(shape.length, snapshots),
            None => 0,
        };
        let body = Embedded::new(body_fn, alloc, 0)?;
        let replay = match replay_fn {
            Some(r) => Some(Replay::new(
                r,
                &shape,
                snapshots,
                alloc,
                body.plan.stack_len,
            )?),
            None => None,
        };
        let stack_len = [own_stack, body.plan.stack_len]
            .into_iter()
            .chain(replay.as_ref().map(|r| r.step.plan.stack_len))
            .fold(0usize, usize::saturating_add);
        let (packed, total) = shape.parts()?;
        let out = alloc.take(total);
        let x_lens = body_fn.params[shape.xs_start()..]
            .iter()
            .map(|p| p.ty.numel())
            .collect();
        let each = shape.carry_types.iter().chain(&shape.y_types);
        let parts = packed
            .iter()
            .zip(each)
            .map(|(&(off, _), t)| (out + off, t.numel()))
            .collect();
        Ok(ScanStep {
            body,
            replay,
            operands,
            shape,
            x_lens,
            out,
            parts,
            reverse: *reverse,
            stack,
            own_stack,
            stack_len,
        })
    }

    /// The packed result's offset in the parent's workspace.
    pub(super) fn out(&self) -> usize {
        self.out
    }

    /// The stack entries the scan uses (its own, its body's and its replay step's).
    pub(super) fn stack_len(&self) -> usize {
        self.stack_len
    }

    /// Writes the constants of the body and of the replay step into their regions.
    pub(super) fn write_consts(&self, buf: &mut [f64]) {
        for e in std::iter::once(&self.body).chain(self.replay.as_ref().map(|r| &r.step)) {
            e.plan.write_consts(&mut buf[e.base..e.base + e.plan.len]);
        }
    }

    /// Runs the scan: consts into place, initial carries into the packed result, then the
    /// steps (through the trajectory for a replay scan).
    pub(super) fn run(&self, buf: &mut [f64], stack: &mut [usize], inputs: &[&[f64]]) {
        let s = &self.shape;
        for (j, &(dst, len)) in self.body.params[..s.consts].iter().enumerate() {
            load(self.operands[j], 0, len, inputs, buf, dst);
        }
        for (j, &(dst, len)) in self.parts[..s.carries].iter().enumerate() {
            load(self.operands[s.carry_start() + j], 0, len, inputs, buf, dst);
        }
        let block = &mut stack[self.stack..self.stack + self.stack_len];
        let (own, rest) = block.split_at_mut(self.own_stack);
        match &self.replay {
            None => {
                for i in 0..s.length {
                    let i = if self.reverse { s.length - 1 - i } else { i };
                    self.step(i, buf, rest, inputs);
                }
            }
            Some(replay) => {
                let mut t = Trajectory {
                    scan: self,
                    replay,
                    buf,
                    stack: rest,
                    inputs,
                };
                t.run(own);
            }
        }
    }

    /// Loop step `i`: carries (from the packed result) and the xs' slices into the body's
    /// parameters, the body, then the new carries and `y_i` into the packed result.
    #[inline]
    fn step(&self, i: usize, buf: &mut [f64], stack: &mut [usize], inputs: &[&[f64]]) {
        let s = &self.shape;
        let params = &self.body.params;
        for (&(src, len), &(dst, _)) in self.parts[..s.carries]
            .iter()
            .zip(&params[s.carry_start()..])
        {
            buf.copy_within(src..src + len, dst);
        }
        for (j, &len) in self.x_lens.iter().enumerate() {
            let at = s.xs_start() + j;
            load(self.operands[at], i * len, len, inputs, buf, params[at].0);
        }
        self.body.run(buf, stack);
        for (j, (&(src, len), &(dst, each))) in
            self.body.outputs.iter().zip(&self.parts).enumerate()
        {
            let dst = if j < s.carries { dst } else { dst + i * each };
            buf.copy_within(src..src + len, dst);
        }
    }
}

impl Replay {
    /// Plans the replay step `r` and the trajectory storage: the current state and
    /// `revolve::slots(length, snapshots)` snapshots.
    fn new(
        r: &Func,
        shape: &ScanShape,
        snapshots: usize,
        alloc: &mut Ranges,
        stack: usize,
    ) -> Result<Replay, String> {
        let step = Embedded::new(r, alloc, stack)?;
        let mut state = Vec::with_capacity(shape.replays + 1);
        let mut state_len = 0usize;
        for &(_, len) in &step.params[shape.consts..shape.consts + shape.replays] {
            state.push(state_len);
            state_len += len;
        }
        let slots = revolve::slots(shape.length, snapshots);
        let cur = alloc.permanent(state_len);
        let snaps = alloc.permanent(slots.saturating_mul(state_len));
        Ok(Replay {
            step,
            cur,
            state: state.into(),
            state_len,
            snaps,
            snapshots,
        })
    }
}

/// A replay scan while it runs: the executor side of `revolve::Reverser`.
struct Trajectory<'a, 'i> {
    scan: &'a ScanStep,
    replay: &'a Replay,
    buf: &'a mut [f64],
    /// The scan's stack region after its own stack.
    stack: &'a mut [usize],
    inputs: &'a [&'i [f64]],
}

impl Trajectory<'_, '_> {
    /// Consts into the replay step, `r_0` (the replay carries) into the current state, then
    /// the body steps in order, each seeing its `r_i`.
    fn run(&mut self, own_stack: &mut [usize]) {
        let (s, rp) = (&self.scan.shape, self.replay);
        for (j, &(dst, len)) in rp.step.params[..s.consts].iter().enumerate() {
            load(self.scan.operands[j], 0, len, self.inputs, self.buf, dst);
        }
        for (j, &at) in rp.state.iter().enumerate() {
            let (_, len) = rp.step.params[s.consts + j];
            let src = self.scan.operands[s.replay_start() + j];
            load(src, 0, len, self.inputs, self.buf, rp.cur + at);
        }
        if self.scan.reverse {
            revolve::run(s.length, rp.snapshots, own_stack, self);
        } else {
            for i in 0..s.length {
                if i > 0 {
                    self.advance(i - 1);
                }
                self.reverse(i);
            }
        }
    }

    /// Copies the current state into the parameter slots `params` (the replay carries of the
    /// body or of the replay step).
    fn state_into(&mut self, params: &[(usize, usize)]) {
        let rp = self.replay;
        for (&at, &(dst, len)) in rp.state.iter().zip(params) {
            self.buf.copy_within(rp.cur + at..rp.cur + at + len, dst);
        }
    }
}

impl Reverser for Trajectory<'_, '_> {
    fn store(&mut self, slot: usize, _step: usize) {
        let (cur, n) = (self.replay.cur, self.replay.state_len);
        let at = self.replay.snaps + slot * n;
        self.buf.copy_within(cur..cur + n, at);
    }

    fn restore(&mut self, slot: usize, _step: usize) {
        let (cur, n) = (self.replay.cur, self.replay.state_len);
        let at = self.replay.snaps + slot * n;
        self.buf.copy_within(at..at + n, cur);
    }

    fn advance(&mut self, step: usize) {
        let (scan, rp) = (self.scan, self.replay);
        let s = &scan.shape;
        self.state_into(&rp.step.params[s.consts..s.consts + s.replays]);
        let x_params = &rp.step.params[s.consts + s.replays..];
        for (j, (&len, &(dst, _))) in scan.x_lens.iter().zip(x_params).enumerate() {
            let src = scan.operands[s.xs_start() + j];
            load(src, step * len, len, self.inputs, self.buf, dst);
        }
        rp.step.run(self.buf, self.stack);
        for (&at, &(src, len)) in rp.state.iter().zip(rp.step.outputs.iter()) {
            self.buf.copy_within(src..src + len, rp.cur + at);
        }
        REPLAY_STEPS.with(|c| c.set(c.get() + 1));
    }

    fn reverse(&mut self, step: usize) {
        let scan = self.scan;
        let s = &scan.shape;
        self.state_into(&scan.body.params[s.replay_start()..s.carry_start()]);
        scan.step(step, self.buf, self.stack, self.inputs);
    }
}
