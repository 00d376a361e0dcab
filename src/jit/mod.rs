//! The Cranelift backend: the only module that names Cranelift. This file is the driver:
//! `Jit`, its options, and the compile pipeline.
//!
//! `Jit::compile` removes zero-size values (`empty`), plans the function (`plan`: how each value
//! is computed and stored, fusion, chunks, workspace), lowers each chunk to a Cranelift function
//! (`lower`), and links them with the host functions of `runtime`. The result, `Compiled`
//! (`compiled`), owns its code (freed on drop), is `Send + Sync`, and is called with a
//! caller-held `Workspace`: a call allocates nothing and takes no lock. Errors are `JitError`
//! (`error`).
//!
//! Semantics are the interpreter's, op for op, and so is the order of every sum (reductions and
//! matmuls accumulate each result element in index order from `+0.0`); results agree with the
//! interpreter bit for bit. Matmuls are generated loops rather than calls of a BLAS-like kernel:
//! such kernels (`matrixmultiply` among them) allocate packing buffers on every call, and a
//! compiled call must allocate nothing.
//!
//! The `unsafe` of calling generated code lives in `compiled` alone; this file has none.

mod compiled;
mod empty;
mod error;
mod lower;
pub mod plan;
mod runtime;

pub use compiled::{Compiled, Workspace};
pub use error::JitError;

use crate::call::{workspace_what, Signature};
use crate::ir::{verify, Func, Op};
use cranelift_codegen::ir::{self as clif, types, AbiParam, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use plan::Home;
use std::collections::HashMap;
use std::fmt;

/// What the compiler optimizes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Faster code: Cranelift's backtracking register allocator on chunks of moderate size.
    FastCode,
    /// Faster compilation: the single-pass register allocator on smaller chunks; the code may
    /// be up to about 2x slower.
    FastCompile,
    /// `FastCode`, unless the function has more than `AUTO_LIMIT` instructions (counting
    /// those of scan bodies).
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
            Tier::Auto => instructions(f) > AUTO_LIMIT,
        };
        let chunk_cost =
            self.options
                .chunk_cost
                .unwrap_or(if fast_compile { 1_000 } else { 2_000 });
        let plan = plan::plan(f, chunk_cost);
        let mut jb = JITBuilder::with_isa(self.isa(fast_compile)?, default_libcall_names());
        let symbols = runtime::symbols();
        for s in &symbols {
            jb.symbol(s.name, s.address);
        }
        jb.symbol(compiled::REVOLVE_SYMBOL, compiled::revolve_address());
        let mut module = JITModule::new(jb);
        let (ids, code_bytes) = match self.define(&mut module, f, &plan, &symbols) {
            Ok(done) => done,
            Err(e) => {
                compiled::discard(module);
                return Err(e);
            }
        };
        let workspace_what = workspace_what(f, |v| matches!(plan.homes[v], Some(Home::Work(_))));
        let layout = compiled::Layout {
            signature: Signature::of(f),
            consts: plan.consts,
            workspace_len: plan.workspace_len,
            workspace_what,
            code_bytes,
        };
        Ok(Compiled::link(module, &ids, layout))
    }

    /// The host's code generator with this compiler's settings.
    fn isa(&self, fast_compile: bool) -> Result<OwnedTargetIsa, JitError> {
        let mut flags = settings::builder();
        let mut set = |k: &str, v: &str| {
            flags
                .set(k, v)
                .map_err(|e| JitError::Internal(format!("setting {k}={v}: {e}")))
        };
        set("opt_level", "speed")?;
        set(
            "enable_verifier",
            if self.options.verify { "true" } else { "false" },
        )?;
        set(
            "regalloc_algorithm",
            if fast_compile {
                "single_pass"
            } else {
                "backtracking"
            },
        )?;
        set("is_pic", "false")?;
        set("use_colocated_libcalls", "false")?;
        cranelift_native::builder()
            .map_err(|e| JitError::Host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Host(e.to_string()))
    }

    /// Defines every function of `f`'s plan (scan bodies first) and finalizes them: the
    /// top-level chunks in order, and the size of all code in bytes.
    fn define(
        &self,
        module: &mut JITModule,
        f: &Func,
        plan: &plan::Plan,
        symbols: &[runtime::Symbol],
    ) -> Result<(Vec<FuncId>, usize), JitError> {
        let mut imports: HashMap<runtime::Callee, FuncId> = HashMap::new();
        for s in symbols {
            let mut sig = module.make_signature();
            sig.params.extend((0..s.arity).map(|_| AbiParam::new(s.ty)));
            sig.returns.push(AbiParam::new(s.ty));
            let id = module
                .declare_function(s.name, Linkage::Import, &sig)
                .map_err(|e| codegen(&e))?;
            imports.insert(s.callee, id);
        }
        let mut sig = module.make_signature();
        sig.params.extend((0..3).map(|_| AbiParam::new(types::I64)));
        let mut d = Definer {
            ctx: module.make_context(),
            module,
            imports,
            sig,
            fctx: FunctionBuilderContext::new(),
            // ADJIT_DUMP=1 prints every chunk's Cranelift IR and machine code (for debugging).
            dump: std::env::var_os("ADJIT_DUMP").is_some(),
            code_bytes: 0,
        };
        let ids = d.chunks(f, plan, true)?;
        let code_bytes = d.code_bytes;
        module.finalize_definitions().map_err(|e| codegen(&e))?;
        Ok((ids, code_bytes))
    }
}

fn codegen(e: &dyn fmt::Display) -> JitError {
    JitError::Codegen(e.to_string())
}

/// Defining the functions of one module: the chunks of a plan and of its scans' functions.
struct Definer<'m> {
    module: &'m mut JITModule,
    imports: HashMap<runtime::Callee, FuncId>,
    /// The signature of every chunk: `(inputs, outputs, workspace)`.
    sig: clif::Signature,
    ctx: Context,
    fctx: FunctionBuilderContext,
    dump: bool,
    code_bytes: usize,
}

impl Definer<'_> {
    /// Defines the chunks of `f` planned as `plan`, after those of its scans' bodies and replay
    /// steps (which it calls), and returns them in order. Only the top level's are named.
    fn chunks(&mut self, f: &Func, plan: &plan::Plan, top: bool) -> Result<Vec<FuncId>, JitError> {
        let mut scan_code = HashMap::new();
        for k in 0..f.insts.len() {
            let v = f.inst_value(k);
            if let Some(sp) = &plan.scans[v] {
                scan_code.insert(v, self.scan(sp)?);
            }
        }
        let mut ids = Vec::with_capacity(plan.chunks.len());
        for (c, range) in plan.chunks.iter().enumerate() {
            let id = if top {
                self.module
                    .declare_function(&format!("chunk{c}"), Linkage::Local, &self.sig)
            } else {
                self.module.declare_anonymous_function(&self.sig)
            }
            .map_err(|e| codegen(&e))?;
            self.ctx.func.signature = self.sig.clone();
            self.ctx.func.name = UserFuncName::user(0, id.as_u32());
            {
                let fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
                let mut e =
                    lower::Emitter::new(fb, f, plan, self.module, &self.imports, &scan_code);
                for &u in &plan.units[range.clone()] {
                    e.unit(u)?;
                }
                e.finish();
            }
            self.define(id)?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Defines the functions of scan `sp`: its body's and replay step's chunks, and the step
    /// functions of a scan run under `crate::revolve`.
    fn scan(&mut self, sp: &plan::ScanPlan) -> Result<lower::ScanCode, JitError> {
        let body = self.chunks(&sp.body.func, &sp.body.plan, false)?;
        let replay = match &sp.replay {
            Some(r) => self.chunks(&r.func, &r.plan, false)?,
            None => Vec::new(),
        };
        let mut code = lower::ScanCode {
            body,
            replay,
            revolve: None,
        };
        if sp.at.revolve.is_some() {
            let advance = self.step_function(sp, &code, false)?;
            let reverse = self.step_function(sp, &code, true)?;
            let mut host = self.module.make_signature();
            host.params.push(AbiParam::new(types::I64));
            let host = self
                .module
                .declare_function(compiled::REVOLVE_SYMBOL, Linkage::Import, &host)
                .map_err(|e| codegen(&e))?;
            code.revolve = Some(lower::RevolveCode {
                advance,
                reverse,
                host,
            });
        }
        Ok(code)
    }

    /// Defines the `reverse` or `advance` step function of a scan run under `crate::revolve`,
    /// `(env, step) -> ()`.
    fn step_function(
        &mut self,
        sp: &plan::ScanPlan,
        code: &lower::ScanCode,
        reverse: bool,
    ) -> Result<FuncId, JitError> {
        let mut sig = self.module.make_signature();
        sig.params.extend((0..2).map(|_| AbiParam::new(types::I64)));
        let id = self
            .module
            .declare_anonymous_function(&sig)
            .map_err(|e| codegen(&e))?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        let fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        lower::step_function(fb, self.module, sp, code, reverse);
        self.define(id)?;
        Ok(id)
    }

    /// Compiles the function in the context as `id`.
    fn define(&mut self, id: FuncId) -> Result<(), JitError> {
        if self.dump {
            self.ctx.set_disasm(true);
            eprintln!("{}", self.ctx.func.display());
        }
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| codegen(&format!("{e:?}")))?;
        if let Some(code) = self.ctx.compiled_code() {
            self.code_bytes += code.code_buffer().len();
            if self.dump {
                eprintln!("{}", code.vcode.as_deref().unwrap_or(""));
            }
        }
        self.module.clear_context(&mut self.ctx);
        Ok(())
    }
}

/// Instructions of `f` and of the functions its scans call, each counted once per scan.
fn instructions(f: &Func) -> usize {
    let called = f.insts.iter().map(|i| {
        let Op::Scan { body, replay, .. } = &i.op else {
            return 0;
        };
        instructions(body.func()) + replay.as_ref().map_or(0, |r| instructions(r.func()))
    });
    f.insts.len() + called.sum::<usize>()
}

/// Compiles with the default options.
pub fn compile(f: &Func) -> Result<Compiled, JitError> {
    Jit::default().compile(f)
}
