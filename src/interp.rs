//! The tape interpreter: runs any verified function instruction by instruction.
//!
//! It is the oracle for the JIT and the baseline the JIT is measured against, so it is honest:
//! `Program::new` plans everything once (a workspace slot for every value, with liveness-based
//! reuse; strides for every layout op); `Program::run` then walks the planned steps over a
//! caller-held `Workspace` with no heap allocation and no lookups. `reshape` costs nothing: its
//! result shares its operand's storage. Kernels come from `crate::ops`; nothing here is shared
//! with the JIT's lowering. `Program` implements `call::Executor`, the face it shares with the
//! JIT's `Compiled`.

use crate::call::{try_zeros, AllocError, CallError, EvalError, Executor, Ranges, Signature};
use crate::ir::{verify, Func, Literal, Op, VerifyError};
use crate::ops::kernel::Kernel;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a value lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// The caller's input buffer `i`.
    Input(usize),
    /// `len` elements of the workspace from `off`.
    Work { off: usize, len: usize },
}

#[derive(Clone, Debug)]
struct Step {
    kernel: Kernel,
    /// Operand locations: inline for up to three operands, in `parts` for a concat.
    args: [Loc; 3],
    parts: Box<[Loc]>,
    out: usize,
    len: usize,
}

/// A function prepared for repeated interpretation.
#[derive(Debug)]
pub struct Program {
    id: u64,
    signature: Signature,
    steps: Vec<Step>,
    outputs: Vec<Loc>,
    consts: Vec<(usize, usize, Literal)>,
    workspace_len: usize,
    /// What the workspace holds, for an out-of-memory error.
    workspace_what: String,
}

/// Scratch memory for one thread's calls of one `Program`. Reused between calls.
pub struct Workspace {
    program: u64,
    buf: Vec<f64>,
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
        if let Some(k) = f.insts.iter().position(|i| matches!(i.op, Op::Scan { .. })) {
            return Err(VerifyError {
                func: f.name.clone(),
                issues: vec![crate::ir::verify::VerifyIssue {
                    inst: Some(k),
                    line: String::new(),
                    message: "scan is not interpreted yet".into(),
                }],
            });
        }
        let np = f.params.len();
        let dies_at = deaths(f);
        let mut loc: Vec<Loc> = (0..np).map(Loc::Input).collect();
        let mut alloc = Ranges::default();
        let mut steps = Vec::with_capacity(f.insts.len());
        let mut consts = Vec::new();
        for (k, inst) in f.insts.iter().enumerate() {
            let len = inst.ty.numel();
            let types: Vec<_> = inst.args.iter().map(|&a| f.value_type(a)).collect();
            let Some(kernel) = Kernel::new(&inst.op, &types, inst.ty) else {
                // A constant is written once, in a range of its own; a reshape shares its
                // operand's storage.
                let place = if let Op::Const { value, .. } = &inst.op {
                    let off = alloc.permanent(len);
                    consts.push((off, len, value.clone()));
                    Loc::Work { off, len }
                } else {
                    loc[inst.args[0].index()]
                };
                loc.push(place);
                continue;
            };
            let operands = inst.args.iter().map(|a| loc[a.index()]);
            let (mut args, mut parts) = ([Loc::Input(usize::MAX); 3], Box::default());
            if inst.args.len() <= args.len() {
                for (slot, l) in args.iter_mut().zip(operands) {
                    *slot = l;
                }
            } else {
                parts = operands.collect();
            }
            let out = alloc.take(len);
            steps.push(Step {
                kernel,
                args,
                parts,
                out,
                len,
            });
            loc.push(Loc::Work { off: out, len });
            for &r in &dies_at[k] {
                if let Loc::Work { off, len } = loc[r as usize] {
                    alloc.release(off, len);
                }
            }
        }
        Ok(Program {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            signature: Signature::of(f),
            steps,
            outputs: f.results.iter().map(|r| loc[r.index()]).collect(),
            consts,
            workspace_len: alloc.len(),
            workspace_what: crate::call::workspace_what(f, |v| {
                v.index() >= np && matches!(loc[v.index()], Loc::Work { .. })
            }),
        })
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Number of planned steps (instructions other than `const` and `reshape`).
    pub fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// A fresh workspace, with the function's constants in place. Panics if the memory cannot
    /// be had; `try_workspace` returns an error instead.
    pub fn workspace(&self) -> Workspace {
        self.try_workspace().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A fresh workspace, or an error naming its size and largest value if the memory cannot
    /// be had.
    pub fn try_workspace(&self) -> Result<Workspace, AllocError> {
        let mut buf = try_zeros(self.workspace_len, || self.workspace_what.clone())?;
        for (off, len, value) in &self.consts {
            value.write_into(&mut buf[*off..off + len]);
        }
        Ok(Workspace {
            program: self.id,
            buf,
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
        self.execute(&mut ws.buf, inputs, outputs);
        Ok(())
    }

    /// The steps, then the copies into the outputs. Buffers of the wrong lengths make it panic
    /// or compute garbage, never more: this is safe code.
    #[inline]
    fn execute(&self, buf: &mut [f64], inputs: &[&[f64]], outputs: &mut [&mut [f64]]) {
        for step in &self.steps {
            exec(step, buf, inputs);
        }
        for (out, &l) in outputs.iter_mut().zip(&self.outputs) {
            out.copy_from_slice(read(l, inputs, buf, 0, &[]));
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
        self.execute(&mut ws.buf, inputs, outputs);
    }

    fn workspace_len(&self) -> usize {
        self.workspace_len
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
fn exec(step: &Step, buf: &mut [f64], inputs: &[&[f64]]) {
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

/// Evaluates `f` once on `inputs` (one flat buffer per parameter) and returns its results.
/// For repeated calls, keep a `Program` and a `Workspace` instead.
pub fn eval(f: &Func, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, InterpError> {
    let prog = Program::new(f).map_err(InterpError::Verify)?;
    Ok(prog.eval(inputs)?)
}
