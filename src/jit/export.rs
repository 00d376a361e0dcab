//! Object files: `Jit::export` compiles functions into one relocatable object (ELF on Linux)
//! with the same planner and lowering as the JIT, plus a C header (`header`), so that C, C++
//! and Fortran programs link compiled derivatives without adjit, a runtime or a compiler.
//!
//! For each exported function `F` the object defines (every symbol begins with `F`):
//! - `int F(const double *const *arg, double *const *res, double *work)`: copies the function's tensor
//!   constants into `work`, runs its chunks, returns 0 (1 for a null `arg`, `res` or `work`
//!   where the function needs one). No allocation, no global state: reentrant, and
//!   thread-safe with one `work` per thread.
//! - `size_t F_work(void)`, `int F_n_in(void)`, `int F_n_out(void)`, and per argument and
//!   result `const char *F_name_in(int)`, `int F_rank_in(int)`, `const size_t
//!   *F_shape_in(int)`, `size_t F_numel_in(int)` (and `_out`): out of range, NULL, -1 or 0.
//!
//! Chunks and scan bodies are local symbols. Host calls go to the C library's functions
//! (`runtime::c_function`), the ones the interpreter's Rust functions call, so exported code
//! equals the interpreter bit for bit; `sigmoid`, which is ours, is defined in the object.
//! Two things an object cannot do are refused: `erf` (ours, not the C library's) and scans under
//! binomial checkpointing (run by adjit's runtime).

mod header;

use super::define::{self, chunk_signature, Definer, Runtime};
use super::runtime::{self, CFunction, Callee};
use super::{codegen, empty, plan, Jit, JitError};
use crate::call::Signature;
use crate::ir::{verify, Func, Op};
use crate::ops::vmath;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, UserFuncName, Value};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{default_libcall_names, DataDescription, DataId, FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use std::collections::HashMap;

/// One function to export: its C name, the function, and a name for each of its results.
pub struct Entry<'f> {
    pub name: String,
    pub func: &'f Func,
    pub outputs: Vec<String>,
}

/// An exported object file and its C header.
pub struct Exported {
    /// The relocatable object file, for the target's linker.
    pub object: Vec<u8>,
    /// The C header declaring every entry (`header_name` is its include guard's stem).
    pub header: String,
    /// Machine code of every function, in bytes.
    pub code_bytes: usize,
}

/// Whether `s` can name a C function: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// C and C++ keywords, which cannot name a function.
const KEYWORDS: &[&str] = &[
    "auto",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "constexpr",
    "continue",
    "default",
    "delete",
    "do",
    "double",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "nullptr",
    "operator",
    "private",
    "protected",
    "public",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
];

/// Functions of the C library an object may call besides the ops' (Cranelift's libcalls).
const LIBCALLS: &[&str] = &[
    "fma",
    "floor",
    "ceil",
    "trunc",
    "nearbyint",
    "memcpy",
    "memset",
    "memmove",
    "memcmp",
];

/// Whether `name` can prefix an exported object's symbols: a C identifier that is no keyword,
/// not `main`, not adjit's own C API (`adjit`, `adjit_...`), not reserved (`_X...`, `__...`)
/// and not a C library function the object calls. The error says which rule it breaks.
pub fn check_export_name(name: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("`{name}` cannot name an exported function: {why}"));
    if !is_c_identifier(name) {
        return refuse("it must be a C identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if KEYWORDS.contains(&name) || name == "main" {
        return refuse("it is a C or C++ keyword, or main");
    }
    if name == "adjit" || name.starts_with("adjit_") {
        return refuse("adjit and adjit_... are the run-time C API's names");
    }
    let mut chars = name.chars();
    if chars.next() == Some('_') && chars.next().is_some_and(|c| c == '_' || c.is_uppercase()) {
        return refuse("names beginning with __ or _ and a capital are reserved in C");
    }
    let callees = runtime::symbols().into_iter().map(|s| s.callee);
    let library = callees
        .filter_map(runtime::c_function)
        .filter_map(|c| match c {
            CFunction::Libm(n) => Some(n),
            CFunction::Sigmoid => None,
        });
    if LIBCALLS.contains(&name) || library.into_iter().any(|n| n == name) {
        return refuse("it is a C library function the object calls");
    }
    Ok(())
}

impl Jit {
    /// Compiles `entries` into one object file for `target` (a triple; the host's if `None`),
    /// with a C header whose include guard is derived from `header_name`.
    pub fn export(
        &self,
        header_name: &str,
        entries: &[Entry],
        target: Option<&str>,
    ) -> Result<Exported, JitError> {
        let fast = entries.iter().any(|e| self.fast_compile(e.func));
        let isa = self.isa_for(fast, true, target)?;
        // libmvec is glibc's on Linux: other targets call the C library's scalar functions.
        let triple = isa.triple();
        let vector = target.is_none()
            || (triple.operating_system == target_lexicon::OperatingSystem::Linux
                && triple.environment == target_lexicon::Environment::Gnu);
        let mut callees = Vec::new();
        for e in entries {
            check_entry(e, vector, target.is_none(), &mut callees)?;
        }
        let builder = ObjectBuilder::new(isa.clone(), header_name, default_libcall_names())
            .map_err(|e| codegen(&e))?;
        let mut module = ObjectModule::new(builder);
        let mut imports = c_imports(&mut module, header_name, &callees)?;
        let mut own = Vec::new();
        for e in entries {
            own.extend(define::inline_own_ops(e.func, &*isa));
        }
        define::define_slow_paths(&mut module, &mut imports, &own)?;
        let mut layouts = Vec::with_capacity(entries.len());
        let mut code_bytes = 0;
        for e in entries {
            let (work, bytes) = self.export_one(&mut module, &isa, e, imports.clone())?;
            layouts.push(work);
            code_bytes += bytes;
        }
        let object = module.finish().emit().map_err(|e| codegen(&e))?;
        let header = header::header(header_name, entries, &layouts, target);
        Ok(Exported {
            object,
            header,
            code_bytes,
        })
    }

    /// Defines entry `e` and its queries in `module`: its workspace length and code size.
    fn export_one(
        &self,
        module: &mut ObjectModule,
        isa: &OwnedTargetIsa,
        e: &Entry,
        imports: HashMap<Callee, FuncId>,
    ) -> Result<(usize, usize), JitError> {
        let without_empty = empty::without_empty(e.func);
        let f = without_empty.as_ref().unwrap_or(e.func);
        let plan = plan::plan(f, self.chunk_cost(self.fast_compile(f)));
        let mut d = Definer::new(
            module,
            isa.clone(),
            imports,
            &format!("{}__chunk", e.name),
            Runtime::None,
        )?;
        let chunks = d.chunks(f, &plan, true)?;
        let consts = constants_data(&mut d, &e.name, &plan)?;
        let sig = Signature::of(f);
        let needs = [
            !sig.inputs.is_empty(),
            !sig.outputs.is_empty(),
            plan.workspace_len > 0,
        ];
        entry_function(&mut d, &e.name, &chunks, consts, needs)?;
        queries(&mut d, e, &sig, plan.workspace_len)?;
        Ok((plan.workspace_len, d.finish()?))
    }
}

/// Refuses what an object file cannot hold: a name `check_export_name` refuses, an invalid
/// function, `erf` anywhere (scan bodies included). Adds the host functions `e` calls to
/// `callees`: vector ones only if `vector`, four-lane ones only for the `host` CPU.
fn check_entry(
    e: &Entry,
    vector: bool,
    host: bool,
    callees: &mut Vec<Callee>,
) -> Result<(), JitError> {
    check_export_name(&e.name).map_err(JitError::Unexportable)?;
    verify(e.func).map_err(JitError::Verify)?;
    let mut stack = vec![e.func];
    while let Some(f) = stack.pop() {
        for inst in &f.insts {
            if let Op::Scan { body, replay, .. } = &inst.op {
                stack.push(body.func());
                stack.extend(replay.as_ref().map(|r| r.func()));
            }
            let callee = if let Op::Unary(u) = &inst.op {
                Some(Callee::Unary(*u))
            } else if let Op::Binary(b) = &inst.op {
                Some(Callee::Binary(*b))
            } else {
                None
            };
            // A unary op with a vector function in use calls that (`lower::call_lanes`,
            // `lower::quad`): the four-lane one for this CPU, the two-lane one for a target's
            // baseline CPU where the target has libmvec. adjit's own functions are inline for
            // this CPU (`lower::ownmath`), calling the C library's beyond their limits.
            let own = matches!(callee, Some(Callee::Unary(u)) if host && vmath::is_own(u));
            let lanes = match callee {
                Some(Callee::Unary(u)) if vector && !own => [Callee::Quad(u), Callee::Vector(u)]
                    .into_iter()
                    .find(|&c| runtime::symbol(c).is_some() && (host || c != Callee::Quad(u))),
                _ => None,
            };
            for c in lanes.into_iter().chain(callee) {
                add_callee(c, &inst.op, callees)?;
            }
        }
    }
    Ok(())
}

/// Adds `c` to `callees` if it is a host function, or refuses it if no C library has it.
fn add_callee(c: Callee, op: &Op, callees: &mut Vec<Callee>) -> Result<(), JitError> {
    if runtime::symbol(c).is_none() || callees.contains(&c) {
        return Ok(());
    }
    if runtime::c_function(c).is_none() {
        return Err(JitError::Unexportable(format!(
            "`{}` is adjit's own function, which no C library function matches bit for bit; an \
             object file links against the C library alone",
            op.name()
        )));
    }
    callees.push(c);
    Ok(())
}

/// Declares the host functions `callees` for generated code: the C library's under their own
/// names, `sigmoid` defined in the object (as `{prefix}__sigmoid`, local).
fn c_imports(
    module: &mut ObjectModule,
    prefix: &str,
    callees: &[Callee],
) -> Result<HashMap<Callee, FuncId>, JitError> {
    let mut imports = HashMap::new();
    for &c in callees {
        let Some(symbol) = runtime::symbol(c) else {
            continue;
        };
        let id = match runtime::c_function(c) {
            Some(CFunction::Libm(name)) => {
                define::declare_host(module, name, symbol.arity, symbol.ty)?
            }
            Some(CFunction::Sigmoid) => sigmoid(module, prefix)?,
            None => continue,
        };
        imports.insert(c, id);
    }
    Ok(imports)
}

/// Defines `{prefix}__sigmoid`, exactly `ops::unary::adjit_sigmoid`: `1 / (1 + exp(-x))` for
/// `x >= 0`, else `e / (1 + e)` with `e = exp(x)`.
fn sigmoid(module: &mut ObjectModule, prefix: &str) -> Result<FuncId, JitError> {
    let name = format!("{prefix}__sigmoid");
    let exp = define::declare_host(module, "exp", 1, types::F64)?;
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(types::F64));
    sig.returns.push(AbiParam::new(types::F64));
    let id = module
        .declare_function(&name, Linkage::Local, &sig)
        .map_err(|e| codegen(&e))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    {
        let mut fb = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let exp = module.declare_func_in_func(exp, fb.func);
        let entry = fb.create_block();
        let (pos, neg) = (fb.create_block(), fb.create_block());
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let x = fb.block_params(entry)[0];
        let zero = fb.ins().f64const(0.0);
        let one = fb.ins().f64const(1.0);
        let nonnegative = fb.ins().fcmp(FloatCC::GreaterThanOrEqual, x, zero);
        fb.ins().brif(nonnegative, pos, &[], neg, &[]);
        fb.switch_to_block(pos);
        let minus = fb.ins().fneg(x);
        let call = fb.ins().call(exp, &[minus]);
        let e = fb.inst_results(call)[0];
        let d = fb.ins().fadd(one, e);
        let r = fb.ins().fdiv(one, d);
        fb.ins().return_(&[r]);
        fb.switch_to_block(neg);
        let call = fb.ins().call(exp, &[x]);
        let e = fb.inst_results(call)[0];
        let d = fb.ins().fadd(one, e);
        let r = fb.ins().fdiv(e, d);
        fb.ins().return_(&[r]);
        fb.seal_all_blocks();
        fb.finalize(module.target_config());
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| codegen(&format!("{e:?}")))?;
    Ok(id)
}

/// The tensor constants of `plan`: a read-only data object holding their elements, and for
/// each its `(workspace offset, data offset, length)` in elements. `None` if there are none.
type Consts = Option<(DataId, Vec<(usize, usize, usize)>)>;

fn constants_data(d: &mut Definer, name: &str, plan: &plan::Plan) -> Result<Consts, JitError> {
    if plan.consts.is_empty() {
        return Ok(None);
    }
    let mut elements = Vec::new();
    let mut copies = Vec::with_capacity(plan.consts.len());
    for c in &plan.consts {
        let at = elements.len();
        elements.resize(at + c.len, 0.0);
        c.value.write_into(&mut elements[at..]);
        copies.push((c.offset, at, c.len));
    }
    let bytes = elements.iter().flat_map(|x| x.to_le_bytes()).collect();
    let id = data(d.module, &format!("{name}__consts"), bytes)?;
    Ok(Some((id, copies)))
}

/// Defines a local read-only data object of 8-byte alignment.
fn data(module: &mut dyn Module, name: &str, bytes: Vec<u8>) -> Result<DataId, JitError> {
    let id = module
        .declare_data(name, Linkage::Local, false, false)
        .map_err(|e| codegen(&e))?;
    let mut desc = DataDescription::new();
    desc.define(bytes.into_boxed_slice());
    desc.set_align(8);
    module.define_data(id, &desc).map_err(|e| codegen(&e))?;
    Ok(id)
}

/// Defines `int name(arg, res, work)`: returns 1 if a pointer the function needs (`needs`:
/// arg, res, work) is null, else copies the constants into `work`, calls the chunks in order
/// and returns 0.
fn entry_function(
    d: &mut Definer,
    name: &str,
    chunks: &[FuncId],
    consts: Consts,
    needs: [bool; 3],
) -> Result<(), JitError> {
    let mut sig = chunk_signature(d.module);
    sig.returns.push(AbiParam::new(types::I32));
    let id = d
        .module
        .declare_function(name, Linkage::Export, &sig)
        .map_err(|e| codegen(&e))?;
    d.ctx.func.signature = sig;
    d.ctx.func.name = UserFuncName::user(0, id.as_u32());
    {
        let mut fb = FunctionBuilder::new(&mut d.ctx.func, &mut d.fctx);
        let entry = fb.create_block();
        let (run, null) = (fb.create_block(), fb.create_block());
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let ptrs = fb.block_params(entry).to_vec();
        let mut bad = fb.ins().iconst(types::I8, 0);
        for (&p, _) in ptrs.iter().zip(needs).filter(|(_, need)| *need) {
            let is_null = fb.ins().icmp_imm_s(IntCC::Equal, p, 0);
            bad = fb.ins().bor(bad, is_null);
        }
        fb.ins().brif(bad, null, &[], run, &[]);
        fb.switch_to_block(null);
        let one = fb.ins().iconst(types::I32, 1);
        fb.ins().return_(&[one]);
        fb.switch_to_block(run);
        if let Some((data, copies)) = consts {
            let gv = d.module.declare_data_in_func(data, fb.func);
            let base = fb.ins().symbol_value(types::I64, gv);
            for (to, from, len) in copies {
                copy(&mut fb, base, 8 * from as i64, ptrs[2], 8 * to as i64, len);
            }
        }
        for &c in chunks {
            let r = d.module.declare_func_in_func(c, fb.func);
            fb.ins().call(r, &ptrs);
        }
        let zero = fb.ins().iconst(types::I32, 0);
        fb.ins().return_(&[zero]);
        fb.seal_all_blocks();
        fb.finalize(d.module.target_config());
    }
    d.define(id)
}

/// Copies `len` f64s from `src + from` to `dst + to` (byte offsets): unrolled when short, else
/// a loop.
fn copy(fb: &mut FunctionBuilder, src: Value, from: i64, dst: Value, to: i64, len: usize) {
    let flags = MemFlagsData::trusted();
    if len <= 8 {
        for k in 0..len as i64 {
            let x = fb.ins().load(types::F64, flags, src, (from + 8 * k) as i32);
            fb.ins().store(flags, x, dst, (to + 8 * k) as i32);
        }
        return;
    }
    let src = fb.ins().iadd_imm_s(src, from);
    let dst = fb.ins().iadd_imm_s(dst, to);
    let (body, done) = (fb.create_block(), fb.create_block());
    let i = fb.append_block_param(body, types::I64);
    let zero = fb.ins().iconst(types::I64, 0);
    fb.ins().jump(body, &[zero.into()]);
    fb.switch_to_block(body);
    let s = fb.ins().iadd(src, i);
    let t = fb.ins().iadd(dst, i);
    let x = fb.ins().load(types::F64, flags, s, 0);
    fb.ins().store(flags, x, t, 0);
    let next = fb.ins().iadd_imm_s(i, 8);
    let more = fb
        .ins()
        .icmp_imm_s(IntCC::UnsignedLessThan, next, 8 * len as i64);
    fb.ins().brif(more, body, &[next.into()], done, &[]);
    fb.switch_to_block(done);
}

/// Defines the queries of entry `e`: workspace length, counts, and per argument and result its
/// name, rank, shape and element count.
fn queries(d: &mut Definer, e: &Entry, sig: &Signature, work: usize) -> Result<(), JitError> {
    let name = &e.name;
    scalar_query(d, &format!("{name}_work"), types::I64, work as i64)?;
    scalar_query(
        d,
        &format!("{name}_n_in"),
        types::I32,
        sig.inputs.len() as i64,
    )?;
    scalar_query(
        d,
        &format!("{name}_n_out"),
        types::I32,
        sig.outputs.len() as i64,
    )?;
    let inputs = sig.inputs.iter().map(|(n, t)| (n.as_str(), *t));
    let outputs = e
        .outputs
        .iter()
        .map(String::as_str)
        .zip(sig.outputs.iter().copied());
    for (side, list) in [
        ("in", inputs.collect::<Vec<_>>()),
        ("out", outputs.collect()),
    ] {
        let mut names = Vec::new();
        let mut name_at = Vec::new();
        let mut shapes: Vec<u8> = Vec::new();
        let mut shape_at = Vec::new();
        for (n, t) in &list {
            name_at.push(names.len() as i64);
            names.extend(n.bytes().chain([0]));
            shape_at.push(shapes.len() as i64);
            shapes.extend(t.shape.iter().flat_map(|x| (x as u64).to_le_bytes()));
        }
        shapes.extend(0u64.to_le_bytes());
        let names = data(d.module, &format!("{name}__names_{side}"), names)?;
        let shapes = data(d.module, &format!("{name}__shapes_{side}"), shapes)?;
        let ranks: Vec<i64> = list.iter().map(|(_, t)| t.rank() as i64).collect();
        let numels: Vec<i64> = list.iter().map(|(_, t)| t.numel() as i64).collect();
        let q = |what: &str| format!("{name}_{what}_{side}");
        table_query(d, &q("name"), &name_at, Some(names), types::I64, 0)?;
        table_query(d, &q("rank"), &ranks, None, types::I32, -1)?;
        table_query(d, &q("shape"), &shape_at, Some(shapes), types::I64, 0)?;
        table_query(d, &q("numel"), &numels, None, types::I64, 0)?;
    }
    Ok(())
}

/// Declares the exported function `name` of parameters `params` returning one `ret`, and
/// starts it in the definer's context.
fn start_export(
    d: &mut Definer,
    name: &str,
    params: &[types::Type],
    ret: types::Type,
) -> Result<FuncId, JitError> {
    let mut sig = d.module.make_signature();
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns.push(AbiParam::new(ret));
    let id = d
        .module
        .declare_function(name, Linkage::Export, &sig)
        .map_err(|e| codegen(&e))?;
    d.ctx.func.signature = sig;
    d.ctx.func.name = UserFuncName::user(0, id.as_u32());
    Ok(id)
}

/// Defines `ty name(void)` returning `value`.
fn scalar_query(d: &mut Definer, name: &str, ty: types::Type, value: i64) -> Result<(), JitError> {
    let id = start_export(d, name, &[], ty)?;
    {
        let mut fb = FunctionBuilder::new(&mut d.ctx.func, &mut d.fctx);
        let entry = fb.create_block();
        fb.switch_to_block(entry);
        let v = fb.ins().iconst(ty, value);
        fb.ins().return_(&[v]);
        fb.seal_all_blocks();
        fb.finalize(d.module.target_config());
    }
    d.define(id)
}

/// Defines `ty name(int i)` returning `values[i]` (plus the address of `base`, if given), or
/// `missing` for `i` out of range.
fn table_query(
    d: &mut Definer,
    name: &str,
    values: &[i64],
    base: Option<DataId>,
    ty: types::Type,
    missing: i64,
) -> Result<(), JitError> {
    let id = start_export(d, name, &[types::I32], ty)?;
    {
        let mut fb = FunctionBuilder::new(&mut d.ctx.func, &mut d.fctx);
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let i = fb.block_params(entry)[0];
        let mut r = fb.ins().iconst(ty, 0);
        for (k, &v) in values.iter().enumerate() {
            let is_k = fb.ins().icmp_imm_s(IntCC::Equal, i, k as i64);
            let v = fb.ins().iconst(ty, v);
            r = fb.ins().select(is_k, v, r);
        }
        if let Some(base) = base {
            let gv = d.module.declare_data_in_func(base, fb.func);
            let base = fb.ins().symbol_value(types::I64, gv);
            r = fb.ins().iadd(base, r);
        }
        let in_range = fb
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, i, values.len() as i64);
        let missing = fb.ins().iconst(ty, missing);
        let r = fb.ins().select(in_range, r, missing);
        fb.ins().return_(&[r]);
        fb.seal_all_blocks();
        fb.finalize(d.module.target_config());
    }
    d.define(id)
}
