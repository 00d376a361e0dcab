//! `Compiled` and `Workspace`: owning generated code and calling it. This is the one file with
//! `unsafe` for generated code: turning finished code into function pointers (`Compiled::link`),
//! freeing it (`discard`, `Drop`), and calling it. `Compiled::call` checks every buffer against
//! the signature before the call; `Compiled::call_unchecked` is the documented escape hatch.
//! A call allocates nothing and takes no lock. `Compiled` implements `call::Executor`, the face
//! it shares with the interpreter's `Program`.
//!
//! Also here, because it calls generated code through raw pointers: `revolve_scan`, the host
//! function through which generated code runs a replay scan under `crate::revolve`'s binomial
//! schedule, calling the scan's compiled step functions back.

use super::plan::Constant;
use crate::call::{try_zeros, AllocError, CallError, Executor, Signature};
use crate::revolve::{self, Reverser};
use cranelift_jit::JITModule;
use cranelift_module::FuncId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The signature every chunk is defined with: inputs, outputs, workspace.
type ChunkFn = unsafe extern "C" fn(*const *const f64, *const *mut f64, *mut f64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled function. Owns its machine code, which is freed when it is dropped.
pub struct Compiled {
    id: u64,
    signature: Signature,
    chunks: Vec<ChunkFn>,
    /// Tensor constants, written into every new workspace.
    consts: Vec<Constant>,
    workspace_len: usize,
    /// What the workspace holds, for an out-of-memory error.
    workspace_what: String,
    /// Machine code of every function (scan bodies included), in bytes.
    code_bytes: usize,
    /// Only touched on drop; the mutex makes `Compiled` `Sync` without unsafe.
    module: Mutex<Option<JITModule>>,
}

/// Scratch memory for one thread's calls of one `Compiled`. Reused between calls.
pub struct Workspace {
    owner: u64,
    buf: Vec<f64>,
    inputs: Vec<*const f64>,
    outputs: Vec<*mut f64>,
}

// SAFETY: the raw pointers are scratch slots rewritten at the start of every call and never
// read outside one; nothing in a Workspace refers to thread-local state.
unsafe impl Send for Workspace {}

impl Workspace {
    /// Size of the scratch memory, in f64 elements.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// What a `Compiled` needs besides its code: the calling convention and the workspace layout.
pub(super) struct Layout {
    pub signature: Signature,
    pub consts: Vec<Constant>,
    pub workspace_len: usize,
    pub workspace_what: String,
    pub code_bytes: usize,
}

/// Frees a module whose code was never handed out (compilation failed part way).
pub(super) fn discard(module: JITModule) {
    // SAFETY: nothing from this module was handed out.
    unsafe { module.free_memory() };
}

impl Compiled {
    /// Takes ownership of a finalized module whose functions `ids` are the chunks, in order,
    /// each defined with the signature `(ptr, ptr, ptr) -> ()` of `ChunkFn`.
    pub(super) fn link(module: JITModule, ids: &[FuncId], layout: Layout) -> Compiled {
        let chunks = ids
            .iter()
            .map(|&id| {
                let code = module.get_finalized_function(id);
                // SAFETY: every chunk is defined with the signature (ptr, ptr, ptr) -> ().
                unsafe { std::mem::transmute::<*const u8, ChunkFn>(code) }
            })
            .collect();
        Compiled {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            signature: layout.signature,
            chunks,
            consts: layout.consts,
            workspace_len: layout.workspace_len,
            workspace_what: layout.workspace_what,
            code_bytes: layout.code_bytes,
            module: Mutex::new(Some(module)),
        }
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Number of machine-code functions the function was split into (not counting the
    /// functions of scan bodies, which its code calls).
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Size of all its machine code (scan bodies included), in bytes.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// A fresh workspace for calls of this function, constants in place. Panics if the memory
    /// cannot be had; `try_workspace` returns an error instead.
    pub fn workspace(&self) -> Workspace {
        self.try_workspace().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A fresh workspace, or an error naming its size and largest value if the memory cannot
    /// be had.
    pub fn try_workspace(&self) -> Result<Workspace, AllocError> {
        let mut buf = try_zeros(self.workspace_len, || self.workspace_what.clone())?;
        for c in &self.consts {
            c.value.write_into(&mut buf[c.offset..c.offset + c.len]);
        }
        Ok(Workspace {
            owner: self.id,
            buf,
            inputs: vec![std::ptr::null(); self.signature.inputs.len()],
            outputs: vec![std::ptr::null_mut(); self.signature.outputs.len()],
        })
    }

    /// Calls the function: one flat row-major buffer per parameter and per result, checked
    /// against the signature. Allocates nothing and takes no lock.
    #[inline]
    pub fn call(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        if ws.owner != self.id {
            return Err(CallError::ForeignWorkspace);
        }
        self.signature
            .check_into(inputs, outputs, &mut ws.inputs, &mut ws.outputs)?;
        // SAFETY: the workspace is this function's, and its pointer arrays hold the buffers'
        // addresses, each buffer of its static type's length (all checked above).
        unsafe { self.run(ws.inputs.as_ptr(), ws.outputs.as_ptr(), ws.buf.as_mut_ptr()) };
        Ok(())
    }

    /// Points the workspace's pointer arrays at the buffers and runs the code.
    ///
    /// # Safety
    /// `ws` is this function's workspace and every buffer has the length of its static type,
    /// so the generated code stays inside them. (Outputs are distinct `&mut` slices, so they
    /// overlap neither each other nor the inputs.)
    #[inline]
    unsafe fn call_slices(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) {
        for (p, x) in ws.inputs.iter_mut().zip(inputs) {
            *p = x.as_ptr();
        }
        for (p, y) in ws.outputs.iter_mut().zip(outputs.iter_mut()) {
            *p = y.as_mut_ptr();
        }
        // SAFETY: the caller's promise above.
        unsafe { self.run(ws.inputs.as_ptr(), ws.outputs.as_ptr(), ws.buf.as_mut_ptr()) };
    }

    /// Calls the function without any check.
    ///
    /// # Safety
    /// `ws` must come from `self.workspace()`; `inputs` must hold one pointer per parameter to
    /// at least as many f64s as its type has elements, `outputs` one per result likewise, valid
    /// for writes; no output may overlap an input or another output.
    #[inline]
    pub unsafe fn call_unchecked(
        &self,
        ws: &mut Workspace,
        inputs: &[*const f64],
        outputs: &[*mut f64],
    ) {
        // SAFETY: the caller's promise above.
        unsafe { self.run(inputs.as_ptr(), outputs.as_ptr(), ws.buf.as_mut_ptr()) };
    }

    /// # Safety
    /// `ins` and `outs` point to one pointer per parameter and per result, to buffers of the
    /// signature's sizes; `buf` is this function's workspace.
    #[inline]
    unsafe fn run(&self, ins: *const *const f64, outs: *const *mut f64, buf: *mut f64) {
        for chunk in &self.chunks {
            // SAFETY: generated code reads inputs and writes outputs and the workspace within
            // the planned sizes.
            unsafe { chunk(ins, outs, buf) };
        }
    }
}

impl Executor for Compiled {
    type Workspace = Workspace;

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn try_workspace(&self) -> Result<Workspace, AllocError> {
        Compiled::try_workspace(self)
    }

    #[inline]
    fn call(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        Compiled::call(self, ws, inputs, outputs)
    }

    /// The slices' pointers go into the workspace's arrays, as in `call`, without the checks.
    #[inline]
    unsafe fn call_unchecked(
        &self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) {
        // SAFETY: the caller's promise (`Executor::call_unchecked`): the workspace is this
        // function's and the buffers have the signature's counts and lengths.
        unsafe { self.call_slices(ws, inputs, outputs) };
    }

    fn workspace_len(&self) -> usize {
        self.workspace_len
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(module) = module {
            // SAFETY: the only pointers into this code are `self.chunks`, dropped with `self`.
            unsafe { module.free_memory() };
        }
    }
}

/// A step function of a revolve scan: `(environment, step)` (see `lower::revolve`).
type StepFn = unsafe extern "C" fn(*const u64, usize);

/// What generated code passes `revolve_scan`: the schedule's size, the workspace ranges of the
/// replay states, and the step functions with their environment. Written field by field at
/// these offsets by `lower::revolve`.
#[repr(C)]
pub(super) struct RevolveArgs {
    pub n: usize,
    pub snapshots: usize,
    /// Elements of one replay state.
    pub len: usize,
    /// `revolve::slots(n, snapshots)` words.
    pub stack: *mut usize,
    /// The current state, `len` elements.
    pub cur: *mut f64,
    /// The stored states, `len` elements per slot.
    pub snaps: *mut f64,
    /// Where the replay step writes the next state, `len` elements.
    pub next: *const f64,
    pub env: *const u64,
    /// Runs the replay step on the current state into `next`.
    pub advance: StepFn,
    /// Runs the body's step on the current state.
    pub reverse: StepFn,
}

/// The symbol under which generated code calls `revolve_scan`, and its address.
pub(super) const REVOLVE_SYMBOL: &str = "adjit_revolve_scan";

pub(super) fn revolve_address() -> *const u8 {
    revolve_scan as *const u8
}

/// Runs `revolve::run` over a replay scan's states, for generated code.
///
/// # Safety
/// `args` points to a `RevolveArgs` whose pointers are valid for the sizes it states and do not
/// overlap, and whose step functions are a scan's, as `lower::revolve` emits them.
unsafe extern "C" fn revolve_scan(args: *const RevolveArgs) {
    // SAFETY: the caller's promise: a valid `RevolveArgs`.
    let a = unsafe { &*args };
    let slots = revolve::slots(a.n, a.snapshots);
    // SAFETY: `stack` holds `slots` words in the workspace, used by nothing else meanwhile.
    let stack = unsafe { std::slice::from_raw_parts_mut(a.stack, slots) };
    revolve::run(a.n, a.snapshots, stack, &mut Revolver(a));
}

/// The executor side of the schedule: states copied between workspace ranges, steps run by the
/// scan's compiled step functions.
struct Revolver<'a>(&'a RevolveArgs);

impl Reverser for Revolver<'_> {
    fn store(&mut self, slot: usize, _step: usize) {
        let a = self.0;
        // SAFETY: `slot < slots(n, snapshots)` (revolve's contract), so the destination lies in
        // `snaps`; `cur` and `snaps` are distinct ranges of `len` elements per state.
        unsafe { std::ptr::copy_nonoverlapping(a.cur, a.snaps.add(slot * a.len), a.len) };
    }

    fn restore(&mut self, slot: usize, _step: usize) {
        let a = self.0;
        // SAFETY: as in `store`, the other way.
        unsafe { std::ptr::copy_nonoverlapping(a.snaps.add(slot * a.len), a.cur, a.len) };
    }

    fn advance(&mut self, step: usize) {
        let a = self.0;
        // SAFETY: the step function reads the current state and writes `next` (`step < n`),
        // within the scan's workspace; then `next` becomes the current state.
        unsafe {
            (a.advance)(a.env, step);
            std::ptr::copy_nonoverlapping(a.next, a.cur, a.len);
        }
    }

    fn reverse(&mut self, step: usize) {
        let a = self.0;
        // SAFETY: the step function runs the body's step `step < n` on the current state.
        unsafe { (a.reverse)(a.env, step) };
    }
}
