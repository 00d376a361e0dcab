//! The Cranelift backend: the only module that names Cranelift.
//!
//! `Jit::compile` plans a verified function (`plan`: how each value is computed and stored,
//! fusion, chunks, workspace), lowers each chunk to a Cranelift function (`lower`), and links
//! them with the host functions of `runtime`. The result, `Compiled`, owns its code (freed on
//! drop), is `Send + Sync`, and is called with a caller-held `Workspace`: a call allocates
//! nothing and takes no lock.
//!
//! Semantics are the interpreter's, op for op, and so is the order of every sum (reductions and
//! matmuls accumulate each result element in index order from `+0.0`); results agree with the
//! interpreter bit for bit. Matmuls are generated loops rather than calls of a BLAS-like kernel:
//! such kernels (`matrixmultiply` among them) allocate packing buffers on every call, and a
//! compiled call must allocate nothing.
//!
//! This is the one place with `unsafe` for calling generated code: `Compiled::call` checks
//! every buffer against the signature before the call; `Compiled::call_unchecked` is the
//! documented escape hatch.

mod empty;
mod lower;
pub mod plan;
mod runtime;

use crate::call::{try_zeros, workspace_what, AllocError, CallError, Signature};
use crate::ir::{verify, Func, VerifyError};
use cranelift_codegen::ir::{types, AbiParam, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Why a function could not be compiled.
#[derive(Debug)]
pub enum JitError {
    Verify(VerifyError),
    /// The host CPU is not supported by Cranelift.
    Host(String),
    /// Cranelift refused the generated code.
    Codegen(String),
    /// A bug in adjit: the plan or the lowering broke an invariant.
    Internal(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Verify(e) => e.fmt(f),
            JitError::Host(e) => write!(f, "this CPU is not supported by the code generator: {e}"),
            JitError::Codegen(e) => write!(f, "code generation failed: {e}"),
            JitError::Internal(e) => write!(f, "internal error, please report: {e}"),
        }
    }
}

impl std::error::Error for JitError {}

/// What the compiler optimizes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Faster code: Cranelift's backtracking register allocator on chunks of moderate size.
    FastCode,
    /// Faster compilation: the single-pass register allocator on smaller chunks; the code may
    /// be up to about 2x slower.
    FastCompile,
    /// `FastCode`, unless the function has more than `AUTO_LIMIT` instructions.
    Auto,
}

/// Above this many instructions, `Tier::Auto` compiles for compile time.
pub const AUTO_LIMIT: usize = 5_000;

#[derive(Clone, Debug)]
pub struct JitOptions {
    pub tier: Tier,
    /// Run Cranelift's verifier on every function (slower; on in debug builds by default).
    pub verify: bool,
    /// Work per machine-code function, in rough instruction counts (default: 2,000 for
    /// `FastCode`, 1,000 for `FastCompile`). Smaller chunks compile in more nearly linear time.
    pub chunk_cost: Option<usize>,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            tier: Tier::Auto,
            verify: cfg!(debug_assertions),
            chunk_cost: None,
        }
    }
}

/// The compiler. `Jit::default().compile(&f)` is the usual call.
#[derive(Clone, Debug, Default)]
pub struct Jit {
    pub options: JitOptions,
}

type ChunkFn = unsafe extern "C" fn(*const *const f64, *const *mut f64, *mut f64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled function. Owns its machine code, which is freed when it is dropped.
pub struct Compiled {
    id: u64,
    signature: Signature,
    chunks: Vec<ChunkFn>,
    /// Tensor constants: workspace offset, data, length.
    consts: Vec<(usize, crate::ir::Literal, usize)>,
    workspace_len: usize,
    /// What the workspace holds, for an out-of-memory error.
    workspace_what: String,
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

impl Jit {
    pub fn new(options: JitOptions) -> Jit {
        Jit { options }
    }

    /// Compiles a function (which must verify) to native code.
    pub fn compile(&self, f: &Func) -> Result<Compiled, JitError> {
        verify(f).map_err(JitError::Verify)?;
        let without_empty = empty::without_empty(f);
        let f = without_empty.as_ref().unwrap_or(f);
        let fast_compile = match self.options.tier {
            Tier::FastCode => false,
            Tier::FastCompile => true,
            Tier::Auto => f.insts.len() > AUTO_LIMIT,
        };
        let chunk_cost =
            self.options
                .chunk_cost
                .unwrap_or(if fast_compile { 1_000 } else { 2_000 });
        let plan = plan::plan(f, chunk_cost);

        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, k: &str, v: &str| {
            flags
                .set(k, v)
                .map_err(|e| JitError::Internal(format!("setting {k}={v}: {e}")))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(
            &mut flags,
            "enable_verifier",
            if self.options.verify { "true" } else { "false" },
        )?;
        set(
            &mut flags,
            "regalloc_algorithm",
            if fast_compile {
                "single_pass"
            } else {
                "backtracking"
            },
        )?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Host(e.to_string()))?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        let symbols = runtime::symbols();
        for s in &symbols {
            jb.symbol(s.name, s.address);
        }
        let mut module = JITModule::new(jb);
        let result = self.define(&mut module, f, &plan, &symbols);
        let ids = match result {
            Ok(ids) => ids,
            Err(e) => {
                // SAFETY: nothing from this module was handed out.
                unsafe { module.free_memory() };
                return Err(e);
            }
        };
        let chunks = ids
            .iter()
            .map(|&id| {
                let code = module.get_finalized_function(id);
                // SAFETY: every chunk is defined with the signature (ptr, ptr, ptr) -> ().
                unsafe { std::mem::transmute::<*const u8, ChunkFn>(code) }
            })
            .collect();
        Ok(Compiled {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            signature: Signature::of(f),
            chunks,
            consts: plan.consts,
            workspace_len: plan.workspace_len,
            workspace_what: workspace_what(f, |v| {
                matches!(plan.homes[v.index()], Some(plan::Home::Work(_)))
            }),
            module: Mutex::new(Some(module)),
        })
    }

    fn define(
        &self,
        module: &mut JITModule,
        f: &Func,
        plan: &plan::Plan,
        symbols: &[runtime::Symbol],
    ) -> Result<Vec<FuncId>, JitError> {
        let codegen = |e: &dyn fmt::Display| JitError::Codegen(e.to_string());
        let mut imports: HashMap<&'static str, FuncId> = HashMap::new();
        for s in symbols {
            let mut sig = module.make_signature();
            sig.params
                .extend((0..s.arity).map(|_| AbiParam::new(types::F64)));
            sig.returns.push(AbiParam::new(types::F64));
            let id = module
                .declare_function(s.name, Linkage::Import, &sig)
                .map_err(|e| codegen(&e))?;
            imports.insert(s.name, id);
        }
        let mut sig = module.make_signature();
        sig.params.extend((0..3).map(|_| AbiParam::new(types::I64)));
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        let mut ids = Vec::with_capacity(plan.chunks.len());
        // ADJIT_DUMP=1 prints every chunk's Cranelift IR and machine code (for debugging).
        let dump = std::env::var_os("ADJIT_DUMP").is_some();
        for (c, range) in plan.chunks.iter().enumerate() {
            let id = module
                .declare_function(&format!("chunk{c}"), Linkage::Local, &sig)
                .map_err(|e| codegen(&e))?;
            ctx.func.signature = sig.clone();
            ctx.func.name = UserFuncName::user(0, id.as_u32());
            {
                let fb = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let mut e = lower::Emitter::new(fb, f, plan, module, &imports);
                for &u in &plan.units[range.clone()] {
                    e.unit(u)?;
                }
                e.finish();
            }
            if dump {
                ctx.set_disasm(true);
                eprintln!("{}", ctx.func.display());
            }
            module
                .define_function(id, &mut ctx)
                .map_err(|e| codegen(&format!("{e:?}")))?;
            if dump {
                if let Some(code) = ctx.compiled_code() {
                    eprintln!("{}", code.vcode.as_deref().unwrap_or(""));
                }
            }
            module.clear_context(&mut ctx);
            ids.push(id);
        }
        module.finalize_definitions().map_err(|e| codegen(&e))?;
        Ok(ids)
    }
}

impl Compiled {
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Number of machine-code functions the function was split into.
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
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
        for (off, value, len) in &self.consts {
            value.write_into(&mut buf[*off..off + len]);
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
        self.signature.check(inputs, outputs)?;
        for (p, x) in ws.inputs.iter_mut().zip(inputs) {
            *p = x.as_ptr();
        }
        for (p, y) in ws.outputs.iter_mut().zip(outputs.iter_mut()) {
            *p = y.as_mut_ptr();
        }
        // SAFETY: the workspace is this function's (checked above), and every buffer has the
        // length of its static type, so the generated code stays inside them; outputs are
        // distinct `&mut` slices, so they overlap neither each other nor the inputs.
        unsafe { self.run(ws.inputs.as_ptr(), ws.outputs.as_ptr(), ws.buf.as_mut_ptr()) };
        Ok(())
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

/// Compiles with the default options.
pub fn compile(f: &Func) -> Result<Compiled, JitError> {
    Jit::default().compile(f)
}
