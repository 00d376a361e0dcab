//! The tape interpreter: runs any verified function instruction by instruction.
//!
//! It is the oracle for the JIT and the baseline the JIT is measured against, so it is honest:
//! `Program::new` plans everything once (a workspace slot for every value, with liveness-based
//! reuse; strides for every layout op); `Program::run` then walks the planned steps over a
//! caller-held `Workspace` with no heap allocation and no lookups. `reshape` costs nothing: its
//! result shares its operand's storage. Kernels come from `crate::ops`; nothing here is shared
//! with the JIT's lowering. `Program` implements `call::Executor`, the face it shares with the
//! JIT's `Compiled`.
//!
//! A `scan` is a step of its own (`scan`): its body is planned once as a `Plan` of its own,
//! over a region of the parent's workspace that nothing else uses, so nested scans nest their
//! regions; each loop step copies the carries and the step's slices of the xs into the body's
//! parameter slots, runs the body's steps, and copies the results out. Replay scans reverse
//! their trajectory with the binomial schedule of `crate::revolve`.

mod scan;

use crate::call::{try_zeros, AllocError, CallError, EvalError, Executor, Ranges, Signature};
use crate::ir::verify::VerifyIssue;
use crate::ir::{verify, Func, Literal, Op, VerifyError};
use crate::ops::kernel::Kernel;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

pub use scan::replay_steps;

/// Where a value lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// The caller's input buffer `i`.
    Input(usize),
    /// `len` elements of the workspace from `off`.
    Work { off: usize, len: usize },
}

/// One planned instruction: a kernel, or a scan (a loop over its own planned body).
#[derive(Debug)]
enum Step {
    Kernel(KernelStep),
    Scan(Box<scan::ScanStep>),
}

#[derive(Clone, Debug)]
struct KernelStep {
    kernel: Kernel,
    /// Operand locations: inline for up to three operands, in `parts` for a concat.
    args: [Loc; 3],
    parts: Box<[Loc]>,
    out: usize,
    len: usize,
}

/// A planned function over a workspace region of `len` elements and a stack region of
/// `stack_len` entries (the revolve positions of its replay scans, `crate::revolve`). The
/// top-level function reads its parameters from the caller's buffers; a scan body (embedded)
/// has them in its own region, where the scan copies them.
#[derive(Debug)]
struct Plan {
    steps: Vec<Step>,
    params: Vec<Loc>,
    outputs: Vec<Loc>,
    /// Constants written once when a workspace is made; nested bodies write their own.
    consts: Vec<(usize, usize, Literal)>,
    len: usize,
    stack_len: usize,
}

/// A function prepared for repeated interpretation.
#[derive(Debug)]
pub struct Program {
    id: u64,
    signature: Signature,
    plan: Plan,
    /// What the workspace holds, for an out-of-memory error.
    workspace_what: String,
}

/// Scratch memory for one thread's calls of one `Program`. Reused between calls.
pub struct Workspace {
    program: u64,
    buf: Vec<f64>,
    /// The positions of the snapshots of replay scans (`crate::revolve`).
    stack: Vec<usize>,
}

impl Workspace {
    /// Size in f64 elements.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Why a function cannot be interpreted or a call failed.
#[derive(Debug)]
pub enum InterpError {
    Verify(VerifyError),
    Call(CallError),
    Alloc(AllocError),
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::Verify(e) => e.fmt(f),
            InterpError::Call(e) => e.fmt(f),
            InterpError::Alloc(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InterpError {}

impl From<CallError> for InterpError {
    fn from(e: CallError) -> Self {
        InterpError::Call(e)
    }
}

impl From<EvalError> for InterpError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::Alloc(e) => InterpError::Alloc(e),
            EvalError::Call(e) => InterpError::Call(e),
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Program {
    /// Verifies `f` and plans its execution: a location for every value (reusing workspace
    /// ranges of dead values), then one step per instruction that computes something.
    pub fn new(f: &Func) -> Result<Program, VerifyError> {
        verify(f)?;
        // The two-lane math functions are looked up now, not in the first call.
        crate::ops::vmath::init();
        let refuse = |(inst, message): (Option<usize>, String)| VerifyError {
            func: f.name.clone(),
            issues: vec![VerifyIssue {
                inst,
                line: String::new(),
                message,
            }],
        };
        let (plan, loc) = Plan::new(f, false).map_err(refuse)?;
        let np = f.params.len();
        Ok(Program {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            signature: Signature::of(f),
            workspace_what: crate::call::workspace_what(f, |v| {
                v.index() >= np && matches!(loc[v.index()], Loc::Work { .. })
            }),
            plan,
        })
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Number of planned steps (instructions other than `const` and `reshape`; a scan is one).
    pub fn num_steps(&self) -> usize {
        self.plan.steps.len()
    }

    /// A fresh workspace, with the function's constants in place. Panics if the memory cannot
    /// be had; `try_workspace` returns an error instead.
    pub fn workspace(&self) -> Workspace {
        self.try_workspace().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A fresh workspace, or an error naming its size and largest value if the memory cannot
    /// be had.
    pub fn try_workspace(&self) -> Result<Workspace, AllocError> {
        let mut buf = try_zeros(self.plan.len, || self.workspace_what.clone())?;
        self.plan.write_consts(&mut buf);
        let mut stack = Vec::new();
        if stack.try_reserve_exact(self.plan.stack_len).is_err() {
            return Err(AllocError {
                what: format!("the checkpoint positions of @{}", self.signature.name),
                bytes: self.plan.stack_len as u128 * std::mem::size_of::<usize>() as u128,
            });
        }
        stack.resize(self.plan.stack_len, 0);
        Ok(Workspace {
            program: self.id,
            buf,
            stack,
        })
    }

    /// Runs the function: `inputs` and `outputs` are flat row-major buffers, one per parameter
    /// and per result, checked against the signature.
    pub fn run(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        if ws.program != self.id {
            return Err(CallError::ForeignWorkspace);
        }
        self.signature.check(inputs, outputs)?;
        self.execute(ws, inputs, outputs);
        Ok(())
    }

    /// The steps, then the copies into the outputs. Buffers of the wrong lengths make it panic
    /// or compute garbage, never more: this is safe code.
    #[inline]
    fn execute(&self, ws: &mut Workspace, inputs: &[&[f64]], outputs: &mut [&mut [f64]]) {
        self.plan.run(&mut ws.buf, &mut ws.stack, inputs);
        for (out, &l) in outputs.iter_mut().zip(&self.plan.outputs) {
            out.copy_from_slice(read(l, inputs, &ws.buf, 0, &[]));
        }
    }
}

/// Why planning failed: the instruction, if any, and the message.
type PlanError = (Option<usize>, String);

impl Plan {
    /// Plans `f` (verified). Its parameters are the caller's inputs, or with `embedded` (a
    /// scan body) ranges of its own region. Also returns every value's location.
    fn new(f: &Func, embedded: bool) -> Result<(Plan, Vec<Loc>), PlanError> {
        let dies_at = deaths(f);
        let mut alloc = Ranges::default();
        let mut loc: Vec<Loc> = (0..f.params.len())
            .map(|i| {
                if embedded {
                    let len = f.params[i].ty.numel();
                    let off = alloc.permanent(len);
                    Loc::Work { off, len }
                } else {
                    Loc::Input(i)
                }
            })
            .collect();
        let mut plan = Plan {
            steps: Vec::with_capacity(f.insts.len()),
            params: loc.clone(),
            outputs: Vec::new(),
            consts: Vec::new(),
            len: 0,
            stack_len: 0,
        };
        for (k, dying) in dies_at.iter().enumerate() {
            let place = plan
                .inst(f, k, &loc, &mut alloc)
                .map_err(|e| (Some(k), e))?;
            loc.push(place);
            for &r in dying {
                if let Loc::Work { off, len } = loc[r as usize] {
                    alloc.release(off, len);
                }
            }
        }
        plan.outputs = f.results.iter().map(|r| loc[r.index()]).collect();
        plan.len = alloc.len();
        Ok((plan, loc))
    }

    /// Plans instruction `k`: a step, a constant written once (a range of its own), or a
    /// reshape (its operand's storage). Returns where its value lives.
    fn inst(&mut self, f: &Func, k: usize, loc: &[Loc], alloc: &mut Ranges) -> Result<Loc, String> {
        let inst = &f.insts[k];
        let len = inst.ty.numel();
        if let Op::Const { value, .. } = &inst.op {
            let off = alloc.permanent(len);
            self.consts.push((off, len, value.clone()));
            return Ok(Loc::Work { off, len });
        }
        if let Op::Reshape { .. } = inst.op {
            return Ok(loc[inst.args[0].index()]);
        }
        let operands = inst.args.iter().map(|a| loc[a.index()]);
        if let Op::Scan { .. } = inst.op {
            let step = scan::ScanStep::new(f, k, operands.collect(), alloc, self.stack_len)?;
            self.stack_len = self.stack_len.saturating_add(step.stack_len());
            let out = step.out();
            self.steps.push(Step::Scan(Box::new(step)));
            return Ok(Loc::Work { off: out, len });
        }
        let types: Vec<_> = inst.args.iter().map(|&a| f.value_type(a)).collect();
        let kernel = Kernel::new(&inst.op, &types, inst.ty)
            .ok_or_else(|| format!("{} has no kernel", inst.op.name()))?;
        let (mut args, mut parts) = ([Loc::Input(usize::MAX); 3], Box::default());
        if inst.args.len() <= args.len() {
            for (slot, l) in args.iter_mut().zip(operands) {
                *slot = l;
            }
        } else {
            parts = operands.collect();
        }
        let out = alloc.take(len);
        self.steps.push(Step::Kernel(KernelStep {
            kernel,
            args,
            parts,
            out,
            len,
        }));
        Ok(Loc::Work { off: out, len })
    }

    /// Writes the constants into a fresh region, nested bodies' included.
    fn write_consts(&self, buf: &mut [f64]) {
        for (off, len, value) in &self.consts {
            value.write_into(&mut buf[*off..off + len]);
        }
        for step in &self.steps {
            if let Step::Scan(s) = step {
                s.write_consts(buf);
            }
        }
    }

    /// Runs the steps over the plan's region `buf` and stack region `stack`.
    #[inline]
    fn run(&self, buf: &mut [f64], stack: &mut [usize], inputs: &[&[f64]]) {
        for step in &self.steps {
            match step {
                Step::Kernel(k) => exec(k, buf, inputs),
                Step::Scan(s) => s.run(buf, stack, inputs),
            }
        }
    }
}

impl Executor for Program {
    type Workspace = Workspace;

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn try_workspace(&self) -> Result<Workspace, AllocError> {
        Program::try_workspace(self)
    }

    #[inline]
    fn call(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        self.run(ws, inputs, outputs)
    }

    /// Skips the checks of `run`. The body is safe code (the crate denies unsafe operations
    /// outside `unsafe` blocks, and there are none here): a broken promise panics or gives
    /// garbage.
    #[inline]
    unsafe fn call_unchecked(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) {
        self.execute(ws, inputs, outputs);
    }

    fn workspace_len(&self) -> usize {
        self.plan.len
    }

    /// The f64 workspace and the replay scans' checkpoint positions (`usize` each).
    fn workspace_bytes(&self) -> u64 {
        let f64s = (self.plan.len as u64).saturating_mul(std::mem::size_of::<f64>() as u64);
        let positions =
            (self.plan.stack_len as u64).saturating_mul(std::mem::size_of::<usize>() as u64);
        f64s.saturating_add(positions)
    }
}

/// For each instruction, the storage roots whose last reader it is: their ranges can be reused
/// once its result is placed. A reshape shares its operand's storage (root); results and
/// constants live to the end.
fn deaths(f: &Func) -> Vec<Vec<u32>> {
    let (np, nv, n) = (f.params.len(), f.num_values(), f.insts.len());
    let mut root: Vec<u32> = (0..nv as u32).collect();
    for (k, inst) in f.insts.iter().enumerate() {
        if let Op::Reshape { .. } = inst.op {
            root[np + k] = root[inst.args[0].index()];
        }
    }
    let mut last_use: Vec<usize> = (0..nv).map(|v| v.saturating_sub(np)).collect();
    for (k, inst) in f.insts.iter().enumerate() {
        for &a in inst.args.iter() {
            let r = root[a.index()] as usize;
            last_use[r] = last_use[r].max(k);
        }
    }
    for &r in &f.results {
        last_use[root[r.index()] as usize] = n;
    }
    let mut dies_at: Vec<Vec<u32>> = vec![Vec::new(); n];
    for v in np..nv {
        let is_root = root[v] as usize == v;
        let is_const = matches!(f.insts[v - np].op, Op::Const { .. });
        if is_root && !is_const && last_use[v] < n {
            dies_at[last_use[v]].push(v as u32);
        }
    }
    dies_at
}

/// The operand slice for `l`, given the workspace split around a step's output range: `before`
/// holds the offsets below the output, `after` those from `after_base` on.
#[inline]
fn read<'a>(
    l: Loc,
    inputs: &[&'a [f64]],
    before: &'a [f64],
    after_base: usize,
    after: &'a [f64],
) -> &'a [f64] {
    match l {
        Loc::Input(i) => inputs[i],
        Loc::Work { len: 0, .. } => &[],
        Loc::Work { off, len } => {
            if off < before.len() {
                &before[off..off + len]
            } else {
                &after[off - after_base..off - after_base + len]
            }
        }
    }
}

#[inline]
fn exec(step: &KernelStep, buf: &mut [f64], inputs: &[&[f64]]) {
    let (before, rest) = buf.split_at_mut(step.out);
    let (out, after) = rest.split_at_mut(step.len);
    let (before, after): (&[f64], &[f64]) = (before, after);
    let base = step.out + step.len;
    let locs: &[Loc] = if step.parts.is_empty() {
        &step.args
    } else {
        &step.parts
    };
    step.kernel
        .run(|i| read(locs[i], inputs, before, base, after), out);
}

/// Copies `len` elements of `src`, from its element `at`, into the workspace at `dst`.
#[inline]
fn load(src: Loc, at: usize, len: usize, inputs: &[&[f64]], buf: &mut [f64], dst: usize) {
    match src {
        Loc::Input(i) => buf[dst..dst + len].copy_from_slice(&inputs[i][at..at + len]),
        Loc::Work { off, .. } => buf.copy_within(off + at..off + at + len, dst),
    }
}

/// Evaluates `f` once on `inputs` (one flat buffer per parameter) and returns its results.
/// For repeated calls, keep a `Program` and a `Workspace` instead.
pub fn eval(f: &Func, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, InterpError> {
    let prog = Program::new(f).map_err(InterpError::Verify)?;
    Ok(prog.eval(inputs)?)
}
