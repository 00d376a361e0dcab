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
//! matmuls accumulate each result element in index order from `+0.0`, one fused multiply-add
//! per step, as the interpreter's `f64::mul_add`); results agree with the
//! interpreter bit for bit. Matmuls are generated loops rather than calls of a BLAS-like kernel:
//! such kernels (`matrixmultiply` among them) allocate packing buffers on every call, and a
//! compiled call must allocate nothing.
//!
//! The `unsafe` of calling generated code lives in `compiled` alone; this file has none.

mod compiled;
mod define;
mod empty;
mod error;
pub mod export;
mod lower;
pub mod plan;
mod pool;
mod runtime;

pub use compiled::{Compiled, Workspace};
pub use error::JitError;

use crate::call::{workspace_what, Signature};
use crate::ir::{verify, Func, Op};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId};
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

/// Above this many instructions, `Tier::Auto` compiles for compile time. Chunks compile on
/// every core while lowering goes on (`pool`), so fast code costs about 1.3-2x the compile
/// time of the fast-compile tier: the unrolled 100-step `pendulum`'s hvp (53,451 instructions)
/// compiles as `FastCode` in about 0.55 s and runs about 1.5x faster; random scalar graphs of
/// 60,000 instructions compile in about 0.4 s (README, "Compiled code").
pub const AUTO_LIMIT: usize = 60_000;

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
        let fast_compile = self.fast_compile(f);
        let plan = plan::plan(f, self.chunk_cost(fast_compile));
        let isa = self.isa(fast_compile)?;
        let mut jb = JITBuilder::with_isa(isa.clone(), default_libcall_names());
        let symbols = runtime::symbols();
        for s in &symbols {
            jb.symbol(s.name, s.address);
        }
        jb.symbol(compiled::REVOLVE_SYMBOL, compiled::revolve_address());
        let mut module = JITModule::new(jb);
        let (ids, code_bytes) =
            match self.define(&mut module, isa, f, &plan, &symbols, fast_compile) {
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

    /// Whether `f` is compiled for compile time rather than speed (`Tier`).
    fn fast_compile(&self, f: &Func) -> bool {
        match self.options.tier {
            Tier::FastCode => false,
            Tier::FastCompile => true,
            Tier::Auto => instructions(f) > AUTO_LIMIT,
        }
    }

    /// The work per machine-code function (`JitOptions::chunk_cost`).
    fn chunk_cost(&self, fast_compile: bool) -> usize {
        self.options
            .chunk_cost
            .unwrap_or(if fast_compile { 1_000 } else { 2_000 })
    }

    /// The host's code generator with this compiler's settings.
    fn isa(&self, fast_compile: bool) -> Result<OwnedTargetIsa, JitError> {
        self.isa_for(fast_compile, false, None)
    }

    /// The code generator for `triple` with its baseline CPU, or for this machine with its
    /// CPU's features if `None`; position-independent if `pic`.
    fn isa_for(
        &self,
        fast_compile: bool,
        pic: bool,
        triple: Option<&str>,
    ) -> Result<OwnedTargetIsa, JitError> {
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
        set("is_pic", if pic { "true" } else { "false" })?;
        set("use_colocated_libcalls", "false")?;
        let builder = match triple {
            Some(t) => {
                let parsed: target_lexicon::Triple = t
                    .parse()
                    .map_err(|e| JitError::Target(format!("`{t}` is not a target triple: {e}")))?;
                cranelift_codegen::isa::lookup(parsed).map_err(|_| {
                    JitError::Target(format!(
                        "target `{t}` is not supported: this build of adjit generates code for \
                         {} only",
                        target_lexicon::Triple::host().architecture
                    ))
                })?
            }
            None => cranelift_native::builder().map_err(|e| JitError::Host(e.to_string()))?,
        };
        builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Host(e.to_string()))
    }

    /// Defines every function of `f`'s plan (scan bodies first) and finalizes them: the
    /// top-level chunks in order, and the size of all code in bytes.
    fn define(
        &self,
        module: &mut JITModule,
        isa: OwnedTargetIsa,
        f: &Func,
        plan: &plan::Plan,
        symbols: &[runtime::Symbol],
        fast_compile: bool,
    ) -> Result<(Vec<FuncId>, usize), JitError> {
        let mut imports = HashMap::new();
        for s in symbols {
            let id = define::declare_host(module, s.name, s.arity, s.ty)?;
            imports.insert(s.callee, id);
        }
        // adjit's own sin, cos and exp are inline on single values in fast code; in the
        // fast-compile tier (the largest functions) they call the four-lane kernel instead,
        // a few instructions where the recipe is about forty.
        if !fast_compile {
            let own = define::inline_own_ops(f, &*isa);
            define::define_slow_paths(module, &mut imports, &own)?;
        }
        let mut d = define::Definer::new(module, isa, imports, "chunk", define::Runtime::Host)?;
        let ids = d.chunks(f, plan, true)?;
        let code_bytes = d.finish()?;
        module.finalize_definitions().map_err(|e| codegen(&e))?;
        Ok((ids, code_bytes))
    }
}

fn codegen(e: &dyn fmt::Display) -> JitError {
    JitError::Codegen(e.to_string())
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
