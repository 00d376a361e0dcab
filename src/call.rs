//! What the interpreter and the JIT share: the calling convention (flat row-major `f64`
//! buffers, one per parameter and one per result, checked against the static signature; bool
//! values travel as `0.0`/`1.0`), the face both executors show (`Executor`: signature,
//! workspace, checked and unchecked calls, and `eval` for callers who do not reuse buffers),
//! the allocator that plans workspace ranges, and fallible allocation of buffers (running out
//! of memory is an error, not an abort). It knows no executor: `interp` and `jit` implement
//! `Executor`.

use crate::ir::{Func, Type, Value};
use std::collections::HashMap;
use std::fmt;

/// A call whose buffers do not match the function's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    InputCount {
        expected: usize,
        got: usize,
    },
    InputLength {
        index: usize,
        name: String,
        ty: Type,
        got: usize,
    },
    OutputCount {
        expected: usize,
        got: usize,
    },
    OutputLength {
        index: usize,
        ty: Type,
        got: usize,
    },
    /// The workspace was made for another function.
    ForeignWorkspace,
    /// A batch call (`crate::batch`) in the flat layout: input `index` holds neither one set
    /// (`ty.numel()` elements, shared by every set) nor `sets` of them.
    BatchInputLength {
        index: usize,
        name: String,
        ty: Type,
        sets: usize,
        got: usize,
    },
    /// A batch call in the flat layout: output `index` does not hold `sets` values of `ty`.
    BatchOutputLength {
        index: usize,
        ty: Type,
        sets: usize,
        got: usize,
    },
    /// A batch call in the per-set layout with unequal numbers of input and output sets.
    SetCount {
        inputs: usize,
        outputs: usize,
    },
    /// A batch call in the per-set layout: the buffers of set `set` do not match.
    InSet {
        set: usize,
        error: Box<CallError>,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::InputCount { expected, got } => {
                let s = if *expected == 1 { "" } else { "s" };
                write!(f, "expected {expected} input{s}, got {got}")
            }
            CallError::InputLength {
                index,
                name,
                ty,
                got,
            } => write!(
                f,
                "input {index} ('{name}': {ty}) needs {} elements, got {got}",
                ty.numel()
            ),
            CallError::OutputCount { expected, got } => {
                let s = if *expected == 1 { "" } else { "s" };
                write!(f, "expected {expected} output buffer{s}, got {got}")
            }
            CallError::OutputLength { index, ty, got } => write!(
                f,
                "output {index} ({ty}) needs {} elements, got {got}",
                ty.numel()
            ),
            CallError::ForeignWorkspace => {
                write!(f, "the workspace belongs to another function")
            }
            CallError::BatchInputLength {
                index,
                name,
                ty,
                sets,
                got,
            } => write!(
                f,
                "batch input {index} ('{name}': {ty}) needs {n} elements (one set, shared) or \
                 {sets} x {n} ({sets} sets), got {got}",
                n = ty.numel()
            ),
            CallError::BatchOutputLength {
                index,
                ty,
                sets,
                got,
            } => write!(
                f,
                "batch output {index} ({ty}) needs {sets} x {} elements ({sets} sets), got {got}",
                ty.numel()
            ),
            CallError::SetCount { inputs, outputs } => {
                write!(f, "{inputs} input sets but {outputs} output sets")
            }
            CallError::InSet { set, error } => write!(f, "set {set}: {error}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The types of a function's inputs and outputs, with the function's and the parameters'
/// names for messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The function's name, without the `@`.
    pub name: String,
    pub inputs: Vec<(String, Type)>,
    pub outputs: Vec<Type>,
    /// Element counts, precomputed so that checking a call is a few compares.
    input_lens: Box<[usize]>,
    output_lens: Box<[usize]>,
}

impl Signature {
    pub fn of(f: &Func) -> Signature {
        let inputs: Vec<(String, Type)> = f.params.iter().map(|p| (p.name.clone(), p.ty)).collect();
        let outputs = f.result_types();
        Signature {
            name: f.name.clone(),
            input_lens: inputs.iter().map(|(_, t)| t.numel()).collect(),
            output_lens: outputs.iter().map(|t| t.numel()).collect(),
            inputs,
            outputs,
        }
    }

    /// Checks counts and lengths of a call's buffers.
    #[inline]
    pub fn check(&self, inputs: &[&[f64]], outputs: &[&mut [f64]]) -> Result<(), CallError> {
        let ok = inputs.len() == self.input_lens.len()
            && outputs.len() == self.output_lens.len()
            && inputs
                .iter()
                .zip(self.input_lens.iter())
                .all(|(x, &n)| x.len() == n)
            && outputs
                .iter()
                .zip(self.output_lens.iter())
                .all(|(y, &n)| y.len() == n);
        if ok {
            Ok(())
        } else {
            Err(self.mismatch(inputs, outputs))
        }
    }

    /// Checks a call's buffers as `check` does and, in the same pass, writes their addresses
    /// to `ins` and `outs`, which must have one slot per input and per output (else the
    /// workspace is not this function's). One pass with the
    /// verdict accumulated, not a loop that exits early, keeps a small call's fixed cost low.
    /// On a mismatch the slots hold some of the addresses; the caller must not run.
    #[inline]
    pub(crate) fn check_into(
        &self,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
        ins: &mut [*const f64],
        outs: &mut [*mut f64],
    ) -> Result<(), CallError> {
        if inputs.len() != self.input_lens.len() || outputs.len() != self.output_lens.len() {
            return Err(self.mismatch(inputs, outputs));
        }
        if ins.len() != inputs.len() || outs.len() != outputs.len() {
            return Err(CallError::ForeignWorkspace);
        }
        let mut ok = true;
        for ((p, x), &n) in ins.iter_mut().zip(inputs).zip(self.input_lens.iter()) {
            ok &= x.len() == n;
            *p = x.as_ptr();
        }
        for ((p, y), &n) in outs
            .iter_mut()
            .zip(outputs.iter_mut())
            .zip(self.output_lens.iter())
        {
            ok &= y.len() == n;
            *p = y.as_mut_ptr();
        }
        if ok {
            Ok(())
        } else {
            Err(self.mismatch(inputs, outputs))
        }
    }

    /// The first mismatch of a call that failed `check`.
    #[cold]
    fn mismatch(&self, inputs: &[&[f64]], outputs: &[&mut [f64]]) -> CallError {
        if inputs.len() != self.inputs.len() {
            return CallError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            };
        }
        for (index, ((name, ty), x)) in self.inputs.iter().zip(inputs).enumerate() {
            if x.len() != ty.numel() {
                return CallError::InputLength {
                    index,
                    name: name.clone(),
                    ty: *ty,
                    got: x.len(),
                };
            }
        }
        if outputs.len() != self.outputs.len() {
            return CallError::OutputCount {
                expected: self.outputs.len(),
                got: outputs.len(),
            };
        }
        for (index, (ty, y)) in self.outputs.iter().zip(outputs).enumerate() {
            if y.len() != ty.numel() {
                return CallError::OutputLength {
                    index,
                    ty: *ty,
                    got: y.len(),
                };
            }
        }
        unreachable!("mismatch is only called for calls that fail check")
    }
}

/// What the interpreter (`interp::Program`) and compiled code (`jit::Compiled`) both are: a
/// function that is called on caller-held buffers with a caller-held workspace. Code written
/// against this trait runs on either executor (the tests compare them through it).
///
/// The per-call path is `call` (or `call_unchecked`) on buffers and a workspace made once:
/// it allocates nothing. `eval` and `call_vecs` are conveniences that allocate.
pub trait Executor {
    /// Scratch memory for one thread's calls of one executor, reused between calls.
    type Workspace;

    /// The types (and names) of the inputs and outputs.
    fn signature(&self) -> &Signature;

    /// A fresh workspace, constants in place, or an error naming its size and largest value
    /// if the memory cannot be had.
    fn try_workspace(&self) -> Result<Self::Workspace, AllocError>;

    /// A fresh workspace. Panics if the memory cannot be had (see `try_workspace`).
    fn workspace(&self) -> Self::Workspace {
        self.try_workspace().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Size of a workspace, in f64 elements (constants included), known without making one.
    fn workspace_len(&self) -> usize;

    /// Size of a workspace in bytes.
    fn workspace_bytes(&self) -> u64 {
        (self.workspace_len() as u64).saturating_mul(std::mem::size_of::<f64>() as u64)
    }

    /// Calls the function: one flat row-major buffer per parameter and per result, checked
    /// against the signature, and a workspace from this executor. Allocates nothing.
    fn call(
        &self,
        ws: &mut Self::Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError>;

    /// Calls the function without checking the buffers or the workspace.
    ///
    /// # Safety
    /// `ws` must come from this executor's `workspace` or `try_workspace`; `inputs` must hold
    /// one buffer per parameter and `outputs` one per result, each exactly as long as its type
    /// has elements. (The interpreter panics or computes garbage when this is broken; compiled
    /// code reads and writes out of bounds.) `jit::Compiled` also has an inherent
    /// `call_unchecked` over raw pointer arrays, which a method call on a `Compiled` finds
    /// first; this one is reached through the trait.
    unsafe fn call_unchecked(
        &self,
        ws: &mut Self::Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    );

    /// One zeroed buffer per output, or an error naming the output that did not fit.
    fn try_outputs(&self) -> Result<Vec<Vec<f64>>, AllocError> {
        let s = self.signature();
        try_outputs(&s.name, &s.outputs)
    }

    /// `call` on owned buffers. Builds the lists of slices, so it allocates (a pointer per
    /// buffer); a loop that must not allocate builds them once and uses `call`.
    fn call_vecs(
        &self,
        ws: &mut Self::Workspace,
        inputs: &[Vec<f64>],
        outputs: &mut [Vec<f64>],
    ) -> Result<(), CallError> {
        let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [f64]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
        self.call(ws, &ins, &mut outs)
    }

    /// Runs the function once on `inputs` (one flat buffer per parameter) and returns its
    /// results, allocating the outputs and a workspace (fallibly). For repeated calls, keep a
    /// workspace and buffers and use `call`.
    fn eval(&self, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, EvalError> {
        let mut outputs = self.try_outputs()?;
        let mut ws = self.try_workspace()?;
        self.call_vecs(&mut ws, inputs, &mut outputs)?;
        Ok(outputs)
    }
}

/// Why `Executor::eval` failed: memory for the outputs or the workspace could not be had, or
/// the inputs do not match the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError {
    Alloc(AllocError),
    Call(CallError),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Alloc(e) => e.fmt(f),
            EvalError::Call(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EvalError {}

impl From<AllocError> for EvalError {
    fn from(e: AllocError) -> Self {
        EvalError::Alloc(e)
    }
}

impl From<CallError> for EvalError {
    fn from(e: CallError) -> Self {
        EvalError::Call(e)
    }
}

/// Workspace ranges for planning an executor's memory: a freed range is reused by the next
/// request of exactly its length; otherwise the workspace grows at the top. The size saturates
/// at `usize::MAX` instead of overflowing, so a plan too large for memory fails when its
/// workspace is reserved (an `AllocError`), not while planning.
#[derive(Debug, Default)]
pub struct Ranges {
    top: usize,
    free: HashMap<usize, Vec<usize>>,
}

impl Ranges {
    /// Ranges above a region of `start` elements that is never reused (constants).
    pub fn above(start: usize) -> Ranges {
        Ranges {
            top: start,
            free: HashMap::new(),
        }
    }

    /// A range of `len` elements: its offset.
    pub fn take(&mut self, len: usize) -> usize {
        if let Some(off) = self.free.get_mut(&len).and_then(Vec::pop) {
            return off;
        }
        self.permanent(len)
    }

    /// Returns a range for reuse.
    pub fn release(&mut self, off: usize, len: usize) {
        self.free.entry(len).or_default().push(off);
    }

    /// A range that is never reused.
    pub fn permanent(&mut self, len: usize) -> usize {
        let off = self.top;
        self.top = self.top.saturating_add(len);
        off
    }

    /// Workspace size so far, in elements.
    pub fn len(&self) -> usize {
        self.top
    }

    pub fn is_empty(&self) -> bool {
        self.top == 0
    }
}

/// Memory that could not be had: `bytes` bytes for `what`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocError {
    pub what: String,
    pub bytes: u128,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of memory: cannot allocate {} bytes ({:.1} GiB) for {}",
            self.bytes,
            self.bytes as f64 / (1u64 << 30) as f64,
            self.what
        )
    }
}

impl std::error::Error for AllocError {}

/// `n` zeros, or an error naming `what` (called only on failure) if the memory cannot be had.
pub fn try_zeros(n: usize, what: impl FnOnce() -> String) -> Result<Vec<f64>, AllocError> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return Err(AllocError {
            what: what(),
            bytes: n as u128 * std::mem::size_of::<f64>() as u128,
        });
    }
    v.resize(n, 0.0);
    Ok(v)
}

/// What a workspace of `f` holds, for out-of-memory messages: `"the workspace of @f (largest
/// value: e: f64[60000,60000])"`, the largest among the values `in_workspace` accepts.
pub fn workspace_what(f: &Func, in_workspace: impl Fn(Value) -> bool) -> String {
    let largest = (0..f.num_values() as u32)
        .map(Value)
        .filter(|&v| in_workspace(v))
        .max_by_key(|&v| f.value_type(v).numel());
    match largest {
        Some(v) => {
            let name = f
                .value_name(v)
                .map_or_else(|| v.to_string(), str::to_string);
            format!(
                "the workspace of @{} (largest value: {name}: {})",
                f.name,
                f.value_type(v)
            )
        }
        None => format!("the workspace of @{}", f.name),
    }
}

/// One zeroed output buffer per type, or an error naming the output that did not fit.
pub fn try_outputs(func: &str, types: &[Type]) -> Result<Vec<Vec<f64>>, AllocError> {
    types
        .iter()
        .enumerate()
        .map(|(k, t)| try_zeros(t.numel(), || format!("output {k} ({t}) of @{func}")))
        .collect()
}
