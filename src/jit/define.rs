//! Defining a plan's functions in a Cranelift module, for the JIT (`JITModule`) and for
//! object files (`ObjectModule`, `export`) alike: the chunks of a function, and of its scans'
//! bodies and replay steps, lowered by `lower`.
//!
//! Lowering is sequential (it declares names in the module); each function it builds goes to
//! a `pool::Pool`, which compiles it to machine code on the other cores meanwhile, and
//! `Definer::finish` defines them all in the module in order, so the result does not depend on
//! the number of threads.

use super::lower;
use super::plan;
use super::pool::Pool;
use super::runtime::{Callee, QUAD_CALL};
use super::{codegen, compiled, JitError};
use crate::ir::{Func, Op, Unary};
use crate::ops::vmath;
use cranelift_codegen::ir::{self as clif, types, AbiParam, Function, InstBuilder, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa, TargetIsa};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::HashMap;

/// Whether generated code may call adjit's own runtime (`compiled::revolve_scan`): yes in the
/// JIT, no in an object file, which links against the C library alone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Host,
    None,
}

/// Declares an imported function of `arity` arguments of type `ty` (F64, or F64X2 for a
/// two-lane function) returning one `ty`; with no arguments, a function whose address alone is
/// taken (a four-lane function, called through `QUAD_CALL`).
pub fn declare_host(
    module: &mut dyn Module,
    name: &str,
    arity: usize,
    ty: types::Type,
) -> Result<FuncId, JitError> {
    let mut sig = module.make_signature();
    sig.params.extend((0..arity).map(|_| AbiParam::new(ty)));
    if arity > 0 {
        sig.returns.push(AbiParam::new(ty));
    }
    module
        .declare_function(name, Linkage::Import, &sig)
        .map_err(|e| codegen(&e))
}

/// Defines `QUAD_CALL` (`(f, lo, hi) -> (lo, hi)`: a pointer and two `f64x2`) as a local
/// function of `module`.
fn define_quad_call(module: &mut dyn Module) -> Result<FuncId, JitError> {
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(types::I64));
    sig.params
        .extend((0..2).map(|_| AbiParam::new(types::F64X2)));
    sig.returns
        .extend((0..2).map(|_| AbiParam::new(types::F64X2)));
    let id = module
        .declare_anonymous_function(&sig)
        .map_err(|e| codegen(&e))?;
    module
        .define_function_bytes(id, 16, &QUAD_CALL, &[])
        .map_err(|e| codegen(&e))?;
    Ok(id)
}

/// The unary ops of adjit's own functions (`ops::ownmath`) that `f` computes, scan bodies
/// included, where they are inline in code for `isa` (`lower::ownmath`).
pub fn inline_own_ops(f: &Func, isa: &dyn TargetIsa) -> Vec<Unary> {
    let mut ops = Vec::new();
    if !isa.has_native_fma() {
        return ops;
    }
    let mut stack = vec![f];
    while let Some(f) = stack.pop() {
        for inst in &f.insts {
            if let Op::Unary(u) = &inst.op {
                if vmath::is_own(*u) && !ops.contains(u) {
                    ops.push(*u);
                }
            }
            if let Op::Scan { body, replay, .. } = &inst.op {
                stack.push(body.func());
                stack.extend(replay.as_ref().map(|r| r.func()));
            }
        }
    }
    ops
}

/// Defines `Callee::Slow(u)` in `module` for each op of `ops` whose host function is among
/// `imports`: `(x, out) -> ()` of Cranelift's `preserve_all` convention, which stores the
/// host function of `x` at `out`. It saves every register it uses, its call's included, so
/// inline code that branches to it for arguments beyond its recipe's limit keeps its values
/// in registers across the call; a call of the host function itself would make the register
/// allocator move them to the stack on the fast path too. (`preserve_all` functions return
/// nothing, hence the pointer.)
pub fn define_slow_paths(
    module: &mut dyn Module,
    imports: &mut HashMap<Callee, FuncId>,
    ops: &[Unary],
) -> Result<(), JitError> {
    for &u in ops {
        let slow = Callee::Slow(u);
        let Some(&host) = imports.get(&Callee::Unary(u)) else {
            continue;
        };
        if imports.contains_key(&slow) {
            continue;
        }
        let mut sig = module.make_signature();
        sig.call_conv = CallConv::PreserveAll;
        sig.params.push(AbiParam::new(types::F64));
        sig.params.push(AbiParam::new(types::I64));
        let id = module
            .declare_anonymous_function(&sig)
            .map_err(|e| codegen(&e))?;
        let config = module.target_config();
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        let mut fctx = FunctionBuilderContext::new();
        let mut fb = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = fb.create_block();
        fb.append_block_params_for_function_params(block);
        fb.switch_to_block(block);
        fb.seal_block(block);
        let (x, out) = (fb.block_params(block)[0], fb.block_params(block)[1]);
        let host = module.declare_func_in_func(host, fb.func);
        let call = fb.ins().call(host, &[x]);
        let y = fb.inst_results(call)[0];
        fb.ins().store(clif::MemFlagsData::trusted(), y, out, 0);
        fb.ins().return_(&[]);
        fb.finalize(config);
        module
            .define_function(id, &mut ctx)
            .map_err(|e| codegen(&e))?;
        imports.insert(slow, id);
    }
    Ok(())
}

/// The signature of every chunk: `(inputs, outputs, workspace) -> ()`, three pointers.
pub fn chunk_signature(module: &dyn Module) -> clif::Signature {
    let mut sig = module.make_signature();
    sig.params.extend((0..3).map(|_| AbiParam::new(types::I64)));
    sig
}

/// Defining the functions of one module: the chunks of a plan and of its scans' functions.
pub struct Definer<'m> {
    pub module: &'m mut dyn Module,
    imports: HashMap<Callee, FuncId>,
    /// The local symbol name of top-level chunk `c` is `{chunk_prefix}{c}`.
    chunk_prefix: String,
    runtime: Runtime,
    /// The signature of every chunk: `(inputs, outputs, workspace)`.
    sig: clif::Signature,
    pub ctx: Context,
    pub fctx: FunctionBuilderContext,
    dump: bool,
    /// Compiles the functions built, in the order they are defined.
    pool: Pool,
}

impl<'m> Definer<'m> {
    /// A definer of functions calling `imports`, compiled for `isa` (the module's); where
    /// those include a four-lane function, `QUAD_CALL` is defined in the module first.
    pub fn new(
        module: &'m mut dyn Module,
        isa: OwnedTargetIsa,
        mut imports: HashMap<Callee, FuncId>,
        chunk_prefix: &str,
        runtime: Runtime,
    ) -> Result<Self, JitError> {
        if imports.keys().any(|c| matches!(c, Callee::Quad(_))) {
            imports.insert(Callee::QuadCall, define_quad_call(module)?);
        }
        // ADJIT_DUMP=1 prints every chunk's Cranelift IR and machine code (for debugging).
        let dump = std::env::var_os("ADJIT_DUMP").is_some();
        Ok(Definer {
            sig: chunk_signature(module),
            ctx: module.make_context(),
            module,
            imports,
            chunk_prefix: chunk_prefix.to_string(),
            runtime,
            fctx: FunctionBuilderContext::new(),
            dump,
            pool: Pool::new(isa, dump),
        })
    }

    /// Defines the chunks of `f` planned as `plan`, after those of its scans' bodies and replay
    /// steps (which it calls), and returns them in order. Only the top level's are named.
    pub fn chunks(
        &mut self,
        f: &Func,
        plan: &plan::Plan,
        top: bool,
    ) -> Result<Vec<FuncId>, JitError> {
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
                let name = format!("{}{c}", self.chunk_prefix);
                self.module
                    .declare_function(&name, Linkage::Local, &self.sig)
            } else {
                self.module.declare_anonymous_function(&self.sig)
            }
            .map_err(|e| codegen(&e))?;
            self.ctx.func.signature = self.sig.clone();
            self.ctx.func.name = UserFuncName::user(0, id.as_u32());
            {
                let fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
                let mut e =
                    lower::Emitter::new(fb, f, plan, &mut *self.module, &self.imports, &scan_code);
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
        if sp.at.revolve.is_some() && self.runtime == Runtime::None {
            return Err(JitError::Unexportable(
                "a scan under binomial checkpointing is run by adjit's runtime (revolve), \
                 which an object file does not have; use checkpoint=all, carry or auto"
                    .to_string(),
            ));
        }
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
        lower::step_function(fb, &mut *self.module, sp, code, reverse);
        self.define(id)?;
        Ok(id)
    }

    /// Takes the function built in the context, to be compiled as `id`.
    pub fn define(&mut self, id: FuncId) -> Result<(), JitError> {
        if self.dump {
            eprintln!("{}", self.ctx.func.display());
        }
        let func = std::mem::replace(&mut self.ctx.func, Function::new());
        self.module.clear_context(&mut self.ctx);
        self.pool.submit(id, func);
        Ok(())
    }

    /// Finishes compiling every function defined, and defines them in the module in order.
    /// Returns the size of their machine code in bytes.
    pub fn finish(self) -> Result<usize, JitError> {
        let compiled = self.pool.finish()?;
        let mut bytes = 0;
        for (id, code) in compiled {
            bytes += code.bytes.len();
            self.module
                .define_function_bytes(id, code.alignment, &code.bytes, &code.relocs)
                .map_err(|e| codegen(&format!("{e:?}")))?;
        }
        Ok(bytes)
    }
}
