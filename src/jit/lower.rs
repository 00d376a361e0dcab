//! Lowering one chunk of a planned function to a Cranelift function
//! `fn(inputs: *const *const f64, outputs: *const *mut f64, workspace: *mut f64)`.
//!
//! Scalars are SSA values; tensors are loop nests (do-while loops over static trip counts, with
//! one pointer per operand stepped by its stride). Each op has exactly the interpreter's
//! semantics: the same host functions for transcendental ops, `fmax`/`fmin` (IEEE 754-2019, as
//! `ops::binary` defines max/min), sums in the interpreter's order. Bools are `i8` in
//! registers and `0.0`/`1.0` in memory.

use super::plan::{row_major, unit_values, Home, Kind, Plan, Unit};
use super::JitError;
use crate::ir::{Binary, Compare, DType, Def, Func, Op, Type, Unary, Value};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Value as CV};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;

/// How a loop reads a value: from a register (the same for every index) or through a pointer.
#[derive(Clone, Copy)]
enum Read {
    Reg(CV),
    Ptr(usize),
}

/// A matmul operand: in memory (start pointer and element strides along the rows and columns
/// of the matrix as the product uses it, and between batch entries) or a register.
struct Operand {
    ptr: Option<CV>,
    reg: Option<CV>,
    row: i64,
    col: i64,
    batch: i64,
}

/// One kind of tile of a matmul's result: where the first one starts, its size, its column
/// groups (offset, lanes), and the product's sizes.
struct Tile {
    row0: usize,
    col0: usize,
    height: usize,
    width: usize,
    groups: Vec<(usize, usize)>,
    k: usize,
    m: usize,
    n: usize,
}

/// The innermost loop level as a loop body sees it: elements per iteration, and each walker's
/// byte stride along it (0 for a value that does not change along it).
struct Inner {
    lanes: usize,
    strides: Vec<i64>,
}

impl Inner {
    /// Walker `w`'s byte stride along the innermost axis (only consulted for several lanes).
    fn stride(&self, w: usize) -> i64 {
        self.strides.get(w).copied().unwrap_or(8)
    }
}

/// A pointer walked by a loop nest: its start and its byte stride along each axis.
struct Walker {
    start: CV,
    strides: Vec<i64>,
}

pub struct Emitter<'a, 'b> {
    pub fb: FunctionBuilder<'b>,
    pub f: &'a Func,
    pub plan: &'a Plan,
    pub module: &'a mut JITModule,
    pub imports: &'a HashMap<&'static str, FuncId>,
    funcrefs: HashMap<&'static str, FuncRef>,
    regs: HashMap<u32, CV>,
    ins: Vec<CV>,
    outs: Vec<CV>,
    ws: CV,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Vector accesses are not necessarily 16-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a, 'b> Emitter<'a, 'b> {
    /// Starts a chunk function: entry block and argument pointers.
    pub fn new(
        mut fb: FunctionBuilder<'b>,
        f: &'a Func,
        plan: &'a Plan,
        module: &'a mut JITModule,
        imports: &'a HashMap<&'static str, FuncId>,
    ) -> Self {
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        fb.seal_block(entry);
        let p = fb.block_params(entry).to_vec();
        let (ins_ptr, outs_ptr, ws) = (p[0], p[1], p[2]);
        let ins = (0..f.params.len())
            .map(|i| fb.ins().load(types::I64, flags(), ins_ptr, (8 * i) as i32))
            .collect();
        let outs = (0..f.results.len())
            .map(|k| fb.ins().load(types::I64, flags(), outs_ptr, (8 * k) as i32))
            .collect();
        Emitter {
            fb,
            f,
            plan,
            module,
            imports,
            funcrefs: HashMap::new(),
            regs: HashMap::new(),
            ins,
            outs,
            ws,
        }
    }

    pub fn finish(mut self) {
        self.fb.ins().return_(&[]);
        self.fb.seal_all_blocks();
        let config = self.module.target_config();
        self.fb.finalize(config);
    }

    fn load(&mut self, addr: CV, dtype: DType) -> CV {
        let x = self.fb.ins().load(types::F64, flags(), addr, 0);
        match dtype {
            DType::F64 => x,
            DType::Bool => {
                let zero = self.fb.ins().f64const(0.0);
                self.fb.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
        }
    }

    fn store(&mut self, addr: CV, x: CV, dtype: DType) {
        let x = match dtype {
            DType::F64 => x,
            DType::Bool => {
                let (one, zero) = (self.fb.ins().f64const(1.0), self.fb.ins().f64const(0.0));
                self.fb.ins().select(x, one, zero)
            }
        };
        self.fb.ins().store(flags(), x, addr, 0);
    }

    /// Loads `lanes` elements (one repeated if `stride` is 0) of type `dtype` at `addr`.
    fn load_lanes(&mut self, addr: CV, dtype: DType, lanes: usize, stride: i64) -> CV {
        if lanes == 1 {
            return self.load(addr, dtype);
        }
        if stride == 0 {
            let x = self.load(addr, dtype);
            return self.widen(x, dtype);
        }
        let x = self.fb.ins().load(types::F64X2, vector_flags(), addr, 0);
        match dtype {
            DType::F64 => x,
            DType::Bool => {
                let zero = self.float(0.0, 2);
                self.compare(FloatCC::NotEqual, x, zero, 2)
            }
        }
    }

    /// A one-lane value repeated over two lanes (a bool becomes a lane mask).
    fn widen(&mut self, x: CV, dtype: DType) -> CV {
        match dtype {
            DType::F64 => self.fb.ins().splat(types::F64X2, x),
            DType::Bool => {
                let m = self.fb.ins().bmask(types::I64, x);
                let v = self.fb.ins().splat(types::I64X2, m);
                self.fb.ins().bitcast(types::F64X2, MemFlagsData::new(), v)
            }
        }
    }

    /// Stores `lanes` elements of type `dtype` at `addr`.
    fn store_lanes(&mut self, addr: CV, x: CV, dtype: DType, lanes: usize) {
        if lanes == 1 {
            return self.store(addr, x, dtype);
        }
        let x = match dtype {
            DType::F64 => x,
            DType::Bool => {
                let one = self.float(1.0, 2);
                self.fb.ins().band(x, one)
            }
        };
        self.fb.ins().store(vector_flags(), x, addr, 0);
    }

    fn immediate(&mut self, x: f64, dtype: DType) -> CV {
        match dtype {
            DType::F64 => self.fb.ins().f64const(x),
            DType::Bool => self.fb.ins().iconst(types::I8, (x != 0.0) as i64),
        }
    }

    /// Base address of a storage owner.
    fn base(&mut self, storage: Value) -> CV {
        let home = self.plan.homes[storage.index()].expect("storage owners have homes");
        self.home_address(home)
    }

    fn home_address(&mut self, home: Home) -> CV {
        match home {
            Home::Input(i) => self.ins[i],
            Home::Output(k, 0) => self.outs[k],
            Home::Output(k, off) => self.fb.ins().iadd_imm_s(self.outs[k], (8 * off) as i64),
            Home::Work(off) => self.fb.ins().iadd_imm_s(self.ws, (8 * off) as i64),
        }
    }

    /// The register of a one-element value.
    /// The register of a one-element value. Values from memory (a scalar parameter, a slot
    /// written by an earlier chunk, a one-element slice of an input) are loaded at their first
    /// use in the chunk, which is always in straight-line code that dominates the later uses.
    fn reg(&mut self, v: Value) -> CV {
        let v = Value(self.plan.scalar_source[v.index()]);
        if let Some(&r) = self.regs.get(&v.0) {
            return r;
        }
        let dtype = self.f.value_type(v).dtype;
        let addr = match self.f.def(v) {
            Def::Inst(i) => match (
                &self.f.insts[i].op,
                self.plan.loads[v.index()],
                self.plan.slots[v.index()],
            ) {
                (Op::Const { value, .. }, _, _) => {
                    let x = value.get(0);
                    return self.immediate(x, dtype);
                }
                (_, Some((storage, off)), _) => {
                    let base = self.base(storage);
                    self.fb.ins().iadd_imm_s(base, 8 * off)
                }
                (_, None, Some(slot)) => self.home_address(slot),
                (_, None, None) => panic!("internal: scalar {v} used before it was computed"),
            },
            Def::Param(i) => self.ins[i],
        };
        let r = self.load(addr, dtype);
        self.regs.insert(v.0, r);
        r
    }

    fn host(&mut self, name: &'static str) -> FuncRef {
        if let Some(&r) = self.funcrefs.get(name) {
            return r;
        }
        let id = self.imports[name];
        let r = self.module.declare_func_in_func(id, self.fb.func);
        self.funcrefs.insert(name, r);
        r
    }

    fn call1(&mut self, name: &'static str, args: &[CV]) -> CV {
        let r = self.host(name);
        let call = self.fb.ins().call(r, args);
        self.fb.inst_results(call)[0]
    }

    /// A host function on each lane.
    fn call_lanes(&mut self, name: &'static str, args: &[CV], lanes: usize) -> CV {
        if lanes == 1 {
            return self.call1(name, args);
        }
        let mut results = Vec::with_capacity(lanes);
        for k in 0..lanes as u8 {
            let lane: Vec<CV> = args
                .iter()
                .map(|&a| self.fb.ins().extractlane(a, k))
                .collect();
            results.push(self.call1(name, &lane));
        }
        let v = self.fb.ins().scalar_to_vector(types::F64X2, results[0]);
        self.fb.ins().insertlane(v, results[1], 1)
    }

    /// A float constant, splat over the lanes.
    fn float(&mut self, x: f64, lanes: usize) -> CV {
        let c = self.fb.ins().f64const(x);
        if lanes == 1 {
            c
        } else {
            self.fb.ins().splat(types::F64X2, c)
        }
    }

    /// A comparison: an `i8` for one lane, a two-lane all-ones/all-zeros mask (as `f64x2`) else.
    fn compare(&mut self, cc: FloatCC, x: CV, y: CV, lanes: usize) -> CV {
        let c = self.fb.ins().fcmp(cc, x, y);
        if lanes == 1 {
            c
        } else {
            self.fb.ins().bitcast(types::F64X2, MemFlagsData::new(), c)
        }
    }

    fn choose(&mut self, c: CV, x: CV, y: CV, lanes: usize) -> CV {
        if lanes == 1 {
            self.fb.ins().select(c, x, y)
        } else {
            self.fb.ins().bitselect(c, x, y)
        }
    }

    /// One elementwise op on registers of `lanes` lanes.
    fn op(&mut self, op: &Op, a: &[CV], lanes: usize) -> CV {
        match op {
            Op::Unary(u) => match u {
                Unary::Neg => self.fb.ins().fneg(a[0]),
                Unary::Abs => self.fb.ins().fabs(a[0]),
                Unary::Sqrt => self.fb.ins().sqrt(a[0]),
                Unary::Floor => self.fb.ins().floor(a[0]),
                Unary::Sign => {
                    // +1 above zero, -1 below, the argument itself for +-0 and NaN.
                    let zero = self.float(0.0, lanes);
                    let (one, minus) = (self.float(1.0, lanes), self.float(-1.0, lanes));
                    let gt = self.compare(FloatCC::GreaterThan, a[0], zero, lanes);
                    let lt = self.compare(FloatCC::LessThan, a[0], zero, lanes);
                    let neg = self.choose(lt, minus, a[0], lanes);
                    self.choose(gt, one, neg, lanes)
                }
                Unary::Exp => self.call_lanes("adjit_exp", a, lanes),
                Unary::Log => self.call_lanes("adjit_log", a, lanes),
                Unary::Log1p => self.call_lanes("adjit_log1p", a, lanes),
                Unary::Expm1 => self.call_lanes("adjit_expm1", a, lanes),
                Unary::Sin => self.call_lanes("adjit_sin", a, lanes),
                Unary::Cos => self.call_lanes("adjit_cos", a, lanes),
                Unary::Tan => self.call_lanes("adjit_tan", a, lanes),
                Unary::Tanh => self.call_lanes("adjit_tanh", a, lanes),
                Unary::Sigmoid => self.call_lanes("adjit_sigmoid", a, lanes),
            },
            Op::Binary(b) => match b {
                Binary::Add => self.fb.ins().fadd(a[0], a[1]),
                Binary::Sub => self.fb.ins().fsub(a[0], a[1]),
                Binary::Mul => self.fb.ins().fmul(a[0], a[1]),
                Binary::Div => self.fb.ins().fdiv(a[0], a[1]),
                Binary::Pow => self.call_lanes("adjit_pow", a, lanes),
                Binary::Max => self.fb.ins().fmax(a[0], a[1]),
                Binary::Min => self.fb.ins().fmin(a[0], a[1]),
            },
            Op::Compare(c) => {
                let cc = match c {
                    Compare::Lt => FloatCC::LessThan,
                    Compare::Le => FloatCC::LessThanOrEqual,
                    Compare::Gt => FloatCC::GreaterThan,
                    Compare::Ge => FloatCC::GreaterThanOrEqual,
                    Compare::Eq => FloatCC::Equal,
                    Compare::Ne => FloatCC::NotEqual,
                };
                self.compare(cc, a[0], a[1], lanes)
            }
            Op::Select => self.choose(a[0], a[1], a[2], lanes),
            Op::Const { .. }
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Matmul { .. } => panic!("internal: {} is not elementwise", op.name()),
        }
    }

    /// A loop nest over `dims`; `body` gets the current pointer of every walker.
    fn nest(&mut self, dims: &[usize], walkers: &[Walker], body: &mut dyn FnMut(&mut Self, &[CV])) {
        self.nest_lanes(dims, walkers, false, &mut |e, p, _| body(e, p));
    }

    /// A loop nest over `dims`. With `vector`, when every walker steps its innermost axis by one
    /// element (or not at all), that axis runs two elements per iteration (then one for an odd
    /// count); `body` learns the lanes and the innermost byte strides.
    fn nest_lanes(
        &mut self,
        dims: &[usize],
        walkers: &[Walker],
        vector: bool,
        body: &mut dyn FnMut(&mut Self, &[CV], &Inner),
    ) {
        // Drop unit axes; merge neighbours that every walker steps through contiguously.
        let mut d: Vec<usize> = Vec::new();
        let mut s: Vec<Vec<i64>> = vec![Vec::new(); walkers.len()];
        for (ax, &n) in dims.iter().enumerate() {
            if n == 1 {
                continue;
            }
            let last = d.len();
            let merge = last > 0
                && walkers
                    .iter()
                    .enumerate()
                    .all(|(w, wk)| s[w][last - 1] == wk.strides[ax] * n as i64);
            if merge {
                d[last - 1] *= n;
                for (w, wk) in walkers.iter().enumerate() {
                    s[w][last - 1] = wk.strides[ax];
                }
            } else {
                d.push(n);
                for (w, wk) in walkers.iter().enumerate() {
                    s[w].push(wk.strides[ax]);
                }
            }
        }
        if d.contains(&0) {
            return;
        }
        let vector = vector
            && d.last().is_some_and(|&n| n >= 2)
            && s.iter().all(|ws| matches!(ws.last(), Some(&8) | Some(&0)));
        let starts: Vec<CV> = walkers.iter().map(|w| w.start).collect();
        self.level(0, &d, &s, starts, vector, body);
    }

    /// Emits a counted do-while loop of `count >= 1` iterations; `body` gets each pointer
    /// advanced by its stride times the iteration number. Pointers that step by the loop's
    /// most common stride share one carried byte offset (added in the address, where x86 folds
    /// it); others carry their own pointer; invariant ones carry nothing. Few carried values
    /// keep register pressure and compile time low.
    fn counted(
        &mut self,
        count: usize,
        ptrs: &[CV],
        strides: &[i64],
        body: &mut dyn FnMut(&mut Self, &[CV]),
    ) {
        let step = {
            let mut tally: Vec<(i64, usize)> = Vec::new();
            for &s in strides.iter().filter(|&&s| s != 0) {
                match tally.iter_mut().find(|(x, _)| *x == s) {
                    Some((_, n)) => *n += 1,
                    None => tally.push((s, 1)),
                }
            }
            tally.iter().max_by_key(|(_, n)| *n).map_or(0, |&(s, _)| s)
        };
        let offset = self.fb.declare_var(types::I64);
        let zero = self.fb.ins().iconst(types::I64, 0);
        self.fb.def_var(offset, zero);
        let own: Vec<Option<cranelift_frontend::Variable>> = ptrs
            .iter()
            .zip(strides)
            .map(|(&p, &s)| {
                (s != 0 && s != step).then(|| {
                    let v = self.fb.declare_var(types::I64);
                    self.fb.def_var(v, p);
                    v
                })
            })
            .collect();
        let (body_block, exit) = (self.fb.create_block(), self.fb.create_block());
        self.fb.ins().jump(body_block, &[]);
        self.fb.switch_to_block(body_block);
        let o = self.fb.use_var(offset);
        let cur: Vec<CV> = ptrs
            .iter()
            .zip(strides)
            .zip(&own)
            .map(|((&p, &s), v)| match v {
                Some(v) => self.fb.use_var(*v),
                None if s == 0 => p,
                None => self.fb.ins().iadd(p, o),
            })
            .collect();
        body(self, &cur);
        let o = self.fb.use_var(offset);
        let next = self.fb.ins().iadd_imm_s(o, step.max(1));
        self.fb.def_var(offset, next);
        for (v, &s) in own.iter().zip(strides) {
            if let Some(v) = v {
                let p = self.fb.use_var(*v);
                let q = self.fb.ins().iadd_imm_s(p, s);
                self.fb.def_var(*v, q);
            }
        }
        let more =
            self.fb
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, next, (count as i64) * step.max(1));
        self.fb.ins().brif(more, body_block, &[], exit, &[]);
        self.fb.seal_block(body_block);
        self.fb.switch_to_block(exit);
        self.fb.seal_block(exit);
    }

    fn level(
        &mut self,
        l: usize,
        dims: &[usize],
        strides: &[Vec<i64>],
        ptrs: Vec<CV>,
        vector: bool,
        body: &mut dyn FnMut(&mut Self, &[CV], &Inner),
    ) {
        let inner_strides = |l: usize| -> Vec<i64> {
            strides
                .iter()
                .map(|s| s.get(l).copied().unwrap_or(0))
                .collect()
        };
        if l == dims.len() {
            let inner = Inner {
                lanes: 1,
                strides: inner_strides(l.saturating_sub(1)),
            };
            body(self, &ptrs, &inner);
            return;
        }
        let step: Vec<i64> = strides.iter().map(|s| s[l]).collect();
        if vector && l + 1 == dims.len() {
            let (pairs, odd) = (dims[l] / 2, dims[l] % 2 == 1);
            let twice: Vec<i64> = step.iter().map(|s| 2 * s).collect();
            let inner = Inner {
                lanes: 2,
                strides: step.clone(),
            };
            self.counted(pairs, &ptrs, &twice, &mut |e, p| body(e, p, &inner));
            if odd {
                let tail: Vec<CV> = ptrs
                    .iter()
                    .zip(&twice)
                    .map(|(&p, &t)| self.fb.ins().iadd_imm_s(p, t * pairs as i64))
                    .collect();
                let inner = Inner {
                    lanes: 1,
                    strides: step,
                };
                body(self, &tail, &inner);
            }
            return;
        }
        self.counted(dims[l], &ptrs, &step, &mut |e, p| {
            e.level(l + 1, dims, strides, p.to_vec(), vector, body)
        });
    }

    /// How a loop over `v`'s shape reads `v`; memory reads add a walker (byte strides for the
    /// axes listed in `axes`, in that order).
    fn reader(&mut self, v: Value, axes: &[usize], walkers: &mut Vec<Walker>) -> Read {
        match self.plan.kinds[v.index()] {
            Kind::Scalar => Read::Reg(self.reg(v)),
            Kind::Splat(x) => {
                let dtype = self.f.value_type(v).dtype;
                Read::Reg(self.immediate(x, dtype))
            }
            Kind::Bcast(s) => Read::Reg(self.reg(s)),
            Kind::Mem(m) => {
                let base = self.base(m.storage);
                let start = self.fb.ins().iadd_imm_s(base, 8 * m.offset);
                walkers.push(Walker {
                    start,
                    strides: axes.iter().map(|&a| 8 * m.strides[a]).collect(),
                });
                Read::Ptr(walkers.len() - 1)
            }
            Kind::Fused => panic!("internal: fused value {v} read outside its group"),
        }
    }

    /// Adds walkers for the same memory reads along other axes (for a second, inner nest).
    fn rewalk(&self, v: Value, axes: &[usize], start: CV, walkers: &mut Vec<Walker>) {
        if let Kind::Mem(m) = self.plan.kinds[v.index()] {
            walkers.push(Walker {
                start,
                strides: axes.iter().map(|&a| 8 * m.strides[a]).collect(),
            });
        }
    }

    fn fetch_lanes(&mut self, r: Read, ptrs: &[CV], dtype: DType, inner: &Inner) -> CV {
        match r {
            Read::Reg(x) if inner.lanes == 1 => x,
            Read::Reg(x) => self.widen(x, dtype),
            Read::Ptr(w) => self.load_lanes(ptrs[w], dtype, inner.lanes, inner.stride(w)),
        }
    }

    /// Stores scalar `v` into its slot if a later chunk reads it.
    fn computed(&mut self, v: Value, r: CV) {
        self.regs.insert(v.0, r);
        if let Some(slot) = self.plan.slots[v.index()] {
            let addr = self.home_address(slot);
            self.store(addr, r, self.f.value_type(v).dtype);
        }
    }

    pub fn unit(&mut self, u: Unit) -> Result<(), JitError> {
        match u {
            Unit::Compute(v) => self.compute(v),
            Unit::Loop { .. } => {
                let roots = unit_values(u, &self.plan.loop_roots).to_vec();
                self.elementwise(&roots);
                Ok(())
            }
            Unit::CopyOut(v, k) => {
                let ty = self.f.value_type(v);
                let dst = self.outs[k];
                self.copy(v, ty, dst);
                Ok(())
            }
        }
    }

    /// Copies value `v` (of type `ty`) to row-major memory at `dst`.
    fn copy(&mut self, v: Value, ty: Type, dst: CV) {
        if ty.numel() == 1 {
            let r = self.reg(v);
            self.store(dst, r, ty.dtype);
            return;
        }
        let shape = ty.shape.to_vec();
        let axes: Vec<usize> = (0..shape.len()).collect();
        let mut walkers = vec![Walker {
            start: dst,
            strides: row_major(&shape)[..shape.len()]
                .iter()
                .map(|s| 8 * s)
                .collect(),
        }];
        let src = self.reader(v, &axes, &mut walkers);
        self.nest_lanes(&shape, &walkers, true, &mut |e, p, inner| {
            let x = e.fetch_lanes(src, p, ty.dtype, inner);
            e.store_lanes(p[0], x, ty.dtype, inner.lanes);
        });
    }

    fn compute(&mut self, v: Value) -> Result<(), JitError> {
        let Def::Inst(i) = self.f.def(v) else {
            return Ok(());
        };
        let inst = &self.f.insts[i];
        let ty = inst.ty;
        if ty.numel() == 0 {
            return Ok(());
        }
        let scalar = self.plan.kinds[v.index()] == Kind::Scalar;
        let arg = |k: usize| inst.args[k];
        match &inst.op {
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select if scalar => {
                let a: Vec<CV> = inst.args.iter().map(|&x| self.reg(x)).collect();
                let r = self.op(&inst.op, &a, 1);
                self.computed(v, r);
            }
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => self.elementwise(&[v]),
            Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
                let is_max = matches!(inst.op, Op::ReduceMax { .. });
                if self.f.value_type(arg(0)).numel() == 1 {
                    let x = self.reg(arg(0));
                    let init = self
                        .fb
                        .ins()
                        .f64const(if is_max { f64::NEG_INFINITY } else { 0.0 });
                    let r = if is_max {
                        self.fb.ins().fmax(init, x)
                    } else {
                        self.fb.ins().fadd(init, x)
                    };
                    self.computed(v, r);
                } else {
                    self.reduction(v, &axes.to_vec(), is_max);
                }
            }
            Op::Slice { start, .. } if scalar => {
                let r = match self.plan.kinds[arg(0).index()] {
                    Kind::Mem(m) => {
                        let off = m.offset
                            + start
                                .iter()
                                .enumerate()
                                .map(|(d, s)| s as i64 * m.strides[d])
                                .sum::<i64>();
                        let base = self.base(m.storage);
                        let addr = self.fb.ins().iadd_imm_s(base, 8 * off);
                        self.load(addr, ty.dtype)
                    }
                    Kind::Splat(x) => self.immediate(x, ty.dtype),
                    Kind::Bcast(s) => self.reg(s),
                    Kind::Scalar => self.reg(arg(0)),
                    Kind::Fused => {
                        return Err(JitError::Internal(format!(
                            "slice of fused value {}",
                            arg(0)
                        )))
                    }
                };
                self.computed(v, r);
            }
            Op::Reshape { .. } | Op::Broadcast { .. } | Op::Transpose { .. } | Op::Slice { .. } => {
                // A materialized layout op: copy its operand in row-major order of the operand
                // (a reshape), or fail (views cover the others; see `plan`).
                if !matches!(inst.op, Op::Reshape { .. }) && !scalar {
                    return Err(JitError::Internal(format!(
                        "unplanned materialized {}",
                        inst.op.name()
                    )));
                }
                if scalar {
                    let r = self.reg(arg(0));
                    self.computed(v, r);
                } else {
                    let src_ty = self.f.value_type(arg(0));
                    let dst = self.base(v);
                    self.copy(arg(0), src_ty, dst);
                }
            }
            Op::Pad { lo, .. } => {
                if scalar {
                    let r = if self.f.value_type(arg(0)).numel() == 1 {
                        self.reg(arg(0))
                    } else {
                        self.immediate(0.0, ty.dtype)
                    };
                    self.computed(v, r);
                } else {
                    let out = ty.shape.to_vec();
                    let os = row_major(&out);
                    let dst = self.base(v);
                    let fill = vec![Walker {
                        start: dst,
                        strides: os[..out.len()].iter().map(|s| 8 * s).collect(),
                    }];
                    self.nest(&out, &fill, &mut |e, p| {
                        let z = e.immediate(0.0, ty.dtype);
                        e.store(p[0], z, ty.dtype);
                    });
                    let lo: Vec<usize> = lo.to_vec();
                    self.place(arg(0), dst, &out, &lo, ty.dtype);
                }
            }
            Op::Concat { axis } => {
                let axis = *axis as usize;
                if scalar {
                    let part = inst
                        .args
                        .iter()
                        .copied()
                        .find(|&a| self.f.value_type(a).numel() == 1);
                    let part = part.ok_or_else(|| {
                        JitError::Internal("one-element concat without a one-element part".into())
                    })?;
                    let r = self.reg(part);
                    self.computed(v, r);
                } else {
                    let out = ty.shape.to_vec();
                    let dst = self.base(v);
                    let mut at = 0;
                    for &a in inst.args.iter() {
                        let s = self.f.value_type(a).shape;
                        let mut lo = vec![0; out.len()];
                        lo[axis] = at;
                        at += s.get(axis);
                        if !self.plan.in_place[a.index()] {
                            self.place(a, dst, &out, &lo, ty.dtype);
                        }
                    }
                }
            }
            Op::Matmul { ta, tb } => self.matmul(v, i, *ta, *tb),
            Op::Const { .. } => {}
        }
        Ok(())
    }

    /// Writes `x` into the row-major tensor of shape `out` at `dst`, at offset `lo`.
    fn place(&mut self, x: Value, dst: CV, out: &[usize], lo: &[usize], dtype: DType) {
        let shape = self.f.value_type(x).shape.to_vec();
        let os = row_major(out);
        let off: i64 = lo.iter().enumerate().map(|(d, l)| *l as i64 * os[d]).sum();
        let start = self.fb.ins().iadd_imm_s(dst, 8 * off);
        let mut walkers = vec![Walker {
            start,
            strides: os[..out.len()].iter().map(|s| 8 * s).collect(),
        }];
        let axes: Vec<usize> = (0..shape.len()).collect();
        let src = self.reader(x, &axes, &mut walkers);
        self.nest_lanes(&shape, &walkers, true, &mut |e, p, inner| {
            let y = e.fetch_lanes(src, p, dtype, inner);
            e.store_lanes(p[0], y, dtype, inner.lanes);
        });
    }

    /// The values a group computes in order (its fused members, then the root if elementwise)
    /// and the values it reads (its leaves), skipping values in `produced`.
    fn group_parts(
        &self,
        root: Value,
        with_root: bool,
        produced: &[Value],
    ) -> (Vec<Value>, Vec<Value>) {
        let f = self.f;
        let mut order: Vec<Value> = self.plan.groups.get(&root.0).cloned().unwrap_or_default();
        if with_root {
            order.push(root);
        }
        let mut leaves: Vec<Value> = Vec::new();
        let is_member = |v: Value| {
            self.plan.kinds[v.index()] == Kind::Fused && self.plan.fused_into[v.index()] == root.0
        };
        let mut consider = |v: Value| {
            if !is_member(v) && !produced.contains(&v) && !leaves.contains(&v) {
                leaves.push(v);
            }
        };
        for &m in &order {
            if let Def::Inst(k) = f.def(m) {
                for &a in f.insts[k].args.iter() {
                    consider(a);
                }
            }
        }
        if !with_root {
            if let Def::Inst(k) = f.def(root) {
                consider(f.insts[k].args[0]);
            }
        }
        (order, leaves)
    }

    /// Loads every leaf, then computes `order` into `vals`, `inner.lanes` elements at a time.
    fn evaluate(
        &mut self,
        order: &[Value],
        reads: &[(Value, Read)],
        walker_of: &[usize],
        ptrs: &[CV],
        inner: &Inner,
        vals: &mut HashMap<u32, CV>,
    ) {
        let f = self.f;
        for (li, &(l, r)) in reads.iter().enumerate() {
            let dtype = f.value_type(l).dtype;
            let x = match r {
                Read::Reg(x) if inner.lanes == 1 => x,
                Read::Reg(x) => self.widen(x, dtype),
                Read::Ptr(_) => {
                    let w = walker_of[li];
                    self.load_lanes(ptrs[w], dtype, inner.lanes, inner.stride(w))
                }
            };
            vals.insert(l.0, x);
        }
        for &m in order {
            let Def::Inst(k) = f.def(m) else { continue };
            let args: Vec<CV> = f.insts[k].args.iter().map(|a| vals[&a.0]).collect();
            let r = self.op(&f.insts[k].op, &args, inner.lanes);
            vals.insert(m.0, r);
        }
    }

    /// Values over one loop shape in one loop nest: elementwise values (with their fused
    /// members), each stored to its storage, and reductions of the whole shape to a scalar,
    /// each accumulated in the loop's element order. Later values read earlier ones from
    /// registers.
    fn elementwise(&mut self, roots: &[Value]) {
        let f = self.f;
        let reduction = |v: Value| match f.def(v) {
            Def::Inst(k) => match f.insts[k].op {
                Op::ReduceSum { .. } => Some((f.insts[k].args[0], false)),
                Op::ReduceMax { .. } => Some((f.insts[k].args[0], true)),
                _ => None,
            },
            Def::Param(_) => None,
        };
        let shape = match reduction(roots[0]) {
            Some((input, _)) => f.value_type(input).shape.to_vec(),
            None => f.value_type(roots[0]).shape.to_vec(),
        };
        let axes: Vec<usize> = (0..shape.len()).collect();
        let row = row_major(&shape);
        let mut walkers = Vec::new();
        let mut dst = Vec::new();
        let mut accs = Vec::new();
        for &r in roots {
            if let Some((_, is_max)) = reduction(r) {
                let acc = self.fb.declare_var(types::F64);
                let init = self
                    .fb
                    .ins()
                    .f64const(if is_max { f64::NEG_INFINITY } else { 0.0 });
                self.fb.def_var(acc, init);
                accs.push(Some(acc));
                dst.push(usize::MAX);
            } else {
                let start = self.base(r);
                walkers.push(Walker {
                    start,
                    strides: axes.iter().map(|&d| 8 * row[d]).collect(),
                });
                dst.push(walkers.len() - 1);
                accs.push(None);
            }
        }
        let mut plans = Vec::new();
        let mut seen: HashMap<u32, Read> = HashMap::new();
        for (n, &r) in roots.iter().enumerate() {
            let (order, leaves) = self.group_parts(r, reduction(r).is_none(), &roots[..n]);
            let mut reads = Vec::new();
            let mut walker_of = Vec::new();
            for l in leaves {
                // A leaf read by several roots is walked once.
                let read = match seen.get(&l.0) {
                    Some(&read) => read,
                    None => {
                        let read = self.reader(l, &axes, &mut walkers);
                        seen.insert(l.0, read);
                        read
                    }
                };
                walker_of.push(match read {
                    Read::Ptr(w) => w,
                    Read::Reg(_) => usize::MAX,
                });
                reads.push((l, read));
            }
            plans.push((order, reads, walker_of));
        }
        self.nest_lanes(&shape, &walkers, true, &mut |e, p, inner| {
            let mut vals: HashMap<u32, CV> = HashMap::new();
            for (n, (order, reads, walker_of)) in plans.iter().enumerate() {
                e.evaluate(order, reads, walker_of, p, inner, &mut vals);
                match (reduction(roots[n]), accs[n]) {
                    (Some((input, is_max)), Some(acc)) => {
                        // Lane by lane, in element order.
                        let x = vals[&input.0];
                        for k in 0..inner.lanes as u8 {
                            let xk = if inner.lanes == 1 {
                                x
                            } else {
                                e.fb.ins().extractlane(x, k)
                            };
                            let a = e.fb.use_var(acc);
                            let s = if is_max {
                                e.fb.ins().fmax(a, xk)
                            } else {
                                e.fb.ins().fadd(a, xk)
                            };
                            e.fb.def_var(acc, s);
                        }
                    }
                    _ => {
                        let x = vals[&roots[n].0];
                        e.store_lanes(p[dst[n]], x, f.value_type(roots[n]).dtype, inner.lanes);
                    }
                }
            }
        });
        for (n, acc) in accs.iter().enumerate() {
            if let Some(acc) = acc {
                let total = self.fb.use_var(*acc);
                self.computed(roots[n], total);
            }
        }
    }

    /// A reduction over `axes` (with the fused values feeding it) as a loop nest: kept axes
    /// outside, reduced axes inside, each result element accumulated in a register in the
    /// interpreter's order.
    fn reduction(&mut self, root: Value, axes: &[usize], is_max: bool) {
        let f = self.f;
        let Def::Inst(k) = f.def(root) else { return };
        let operand = f.insts[k].args[0];
        let shape = f.value_type(operand).shape.to_vec();
        let outer: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let (order, leaves) = self.group_parts(root, false, &[]);
        let scalar_out = self.plan.kinds[root.index()] == Kind::Scalar;
        let mut walkers = Vec::new();
        if !scalar_out {
            let out_shape = f.value_type(root).shape.to_vec();
            let os = row_major(&out_shape);
            let start = self.base(root);
            walkers.push(Walker {
                start,
                strides: (0..out_shape.len()).map(|d| 8 * os[d]).collect(),
            });
        }
        let reads: Vec<(Value, Read)> = leaves
            .iter()
            .map(|&l| (l, self.reader(l, &outer, &mut walkers)))
            .collect();
        let outer_dims: Vec<usize> = outer.iter().map(|&a| shape[a]).collect();
        let inner_dims: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let mut result = None;
        self.nest(&outer_dims, &walkers, &mut |e, p| {
            let acc = e.fb.declare_var(types::F64);
            let init =
                e.fb.ins()
                    .f64const(if is_max { f64::NEG_INFINITY } else { 0.0 });
            e.fb.def_var(acc, init);
            // The inner nest walks the same leaves along the reduced axes.
            let mut inner = Vec::new();
            let mut walker_of = Vec::new();
            for &(l, r) in &reads {
                match r {
                    Read::Ptr(w) => {
                        walker_of.push(inner.len());
                        e.rewalk(l, axes, p[w], &mut inner);
                    }
                    Read::Reg(_) => walker_of.push(usize::MAX),
                }
            }
            e.nest(&inner_dims, &inner, &mut |e2, q| {
                let mut vals = HashMap::new();
                let one = Inner {
                    lanes: 1,
                    strides: Vec::new(),
                };
                e2.evaluate(&order, &reads, &walker_of, q, &one, &mut vals);
                let x = vals[&operand.0];
                let a = e2.fb.use_var(acc);
                let s = if is_max {
                    e2.fb.ins().fmax(a, x)
                } else {
                    e2.fb.ins().fadd(a, x)
                };
                e2.fb.def_var(acc, s);
            });
            let total = e.fb.use_var(acc);
            if scalar_out {
                result = Some(total);
            } else {
                e.store(p[0], total, DType::F64);
            }
        });
        if let Some(r) = result {
            self.computed(root, r);
        }
    }

    /// A matmul, as loops that sum every result element in the interpreter's order (`p`
    /// ascending from `+0.0`), so results are bit-identical to it. The result is computed in
    /// tiles whose accumulators stay in registers across the `p` loop: 2 rows by 8 columns (four
    /// two-lane vectors) when B is contiguous along `j`, else 4 rows by 2 columns of scalars. A
    /// matrix-vector product with A contiguous along `i` is computed as its transpose, so that
    /// it vectorizes too.
    fn matmul(&mut self, v: Value, inst_index: usize, ta: bool, tb: bool) {
        let f = self.f;
        let inst = &f.insts[inst_index];
        let (a, b) = (inst.args[0], inst.args[1]);
        let (at, bt) = (f.value_type(a), f.value_type(b));
        let d = crate::ops::contract::matmul_dims(at, bt, ta, tb);
        let r = at.rank();
        let operand = |e: &mut Self, x: Value, transposed: bool| -> Operand {
            match e.plan.kinds[x.index()] {
                Kind::Mem(m) => {
                    let base = e.base(m.storage);
                    let ptr = e.fb.ins().iadd_imm_s(base, 8 * m.offset);
                    let (rows, cols) = (m.strides[r - 2], m.strides[r - 1]);
                    let (row, col) = if transposed {
                        (cols, rows)
                    } else {
                        (rows, cols)
                    };
                    Operand {
                        ptr: Some(ptr),
                        reg: None,
                        row,
                        col,
                        batch: if r == 3 { m.strides[0] } else { 0 },
                    }
                }
                Kind::Splat(c) => Operand {
                    ptr: None,
                    reg: Some(e.immediate(c, DType::F64)),
                    row: 0,
                    col: 0,
                    batch: 0,
                },
                Kind::Bcast(s) => Operand {
                    ptr: None,
                    reg: Some(e.reg(s)),
                    row: 0,
                    col: 0,
                    batch: 0,
                },
                Kind::Scalar | Kind::Fused => Operand {
                    ptr: None,
                    reg: Some(e.reg(x)),
                    row: 0,
                    col: 0,
                    batch: 0,
                },
            }
        };
        // A(i, p) and B(p, j) as (row, col) strides.
        let mut opa = operand(self, a, ta);
        let mut opb = operand(self, b, tb);
        let (mut m, mut n) = (d.m, d.n);
        if n == 1 && m > 1 && opa.ptr.is_some() && opa.row == 1 {
            // C = A b, computed as C^T = b^T A^T: a row of length m, contiguous in A^T.
            std::mem::swap(&mut opa, &mut opb);
            std::mem::swap(&mut opa.row, &mut opa.col);
            std::mem::swap(&mut opb.row, &mut opb.col);
            (m, n) = (1, m);
        }
        let scalar_out = self.plan.kinds[v.index()] == Kind::Scalar;
        let pc = if scalar_out { None } else { Some(self.base(v)) };
        let vectors = opb.ptr.is_some() && opb.col == 1 && n >= 2;
        let (rows, cols) = if vectors { (2, 8) } else { (4, 2) };
        // Column groups of a tile: (offset, lanes).
        let groups = |width: usize| -> Vec<(usize, usize)> {
            let mut g = Vec::new();
            let mut c = 0;
            while vectors && c + 2 <= width {
                g.push((c, 2));
                c += 2;
            }
            while c < width {
                g.push((c, 1));
                c += 1;
            }
            g
        };
        let mut result = None;
        for (row0, row_tiles, height) in [(0, m / rows, rows), (m / rows * rows, 1, m % rows)] {
            for (col0, col_tiles, width) in [(0, n / cols, cols), (n / cols * cols, 1, n % cols)] {
                if row_tiles == 0 || col_tiles == 0 || height == 0 || width == 0 {
                    continue;
                }
                let tile = Tile {
                    row0,
                    col0,
                    height,
                    width,
                    groups: groups(width),
                    k: d.k,
                    m,
                    n,
                };
                let out = self.matmul_tiles(&tile, [d.batch, row_tiles, col_tiles], &opa, &opb, pc);
                result = result.or(out);
            }
        }
        if let Some(r) = result {
            self.computed(v, r);
        }
    }

    /// One kind of tile of a matmul, repeated over `counts` (batch, row tiles, column tiles).
    /// Returns the single result for a one-element matmul without memory for `C`.
    fn matmul_tiles(
        &mut self,
        t: &Tile,
        counts: [usize; 3],
        a: &Operand,
        b: &Operand,
        pc: Option<CV>,
    ) -> Option<CV> {
        let (m, n) = (t.m as i64, t.n as i64);
        let (h, w) = (t.height as i64, t.width as i64);
        let mut walkers = Vec::new();
        let mut add = |e: &mut Self, ptr: Option<CV>, offset: i64, strides: [i64; 3]| {
            ptr.map(|p| {
                let start = e.fb.ins().iadd_imm_s(p, 8 * offset);
                walkers.push(Walker {
                    start,
                    strides: strides.iter().map(|s| 8 * s).collect(),
                });
                walkers.len() - 1
            })
        };
        let wa = add(self, a.ptr, t.row0 as i64 * a.row, [a.batch, a.row * h, 0]);
        let wb = add(self, b.ptr, t.col0 as i64 * b.col, [b.batch, 0, b.col * w]);
        let wc = add(
            self,
            pc,
            t.row0 as i64 * n + t.col0 as i64,
            [m * n, n * h, w],
        );
        let mut result = None;
        self.nest(&counts, &walkers, &mut |e, p| {
            let mut accs = Vec::new();
            for _ in 0..t.height {
                for &(_, lanes) in &t.groups {
                    let ty = if lanes == 2 { types::F64X2 } else { types::F64 };
                    let acc = e.fb.declare_var(ty);
                    let zero = e.fb.ins().f64const(0.0);
                    let zero = if lanes == 2 {
                        e.fb.ins().splat(types::F64X2, zero)
                    } else {
                        zero
                    };
                    e.fb.def_var(acc, zero);
                    accs.push(acc);
                }
            }
            let mut inner = Vec::new();
            let ia = wa.map(|w| {
                inner.push(Walker {
                    start: p[w],
                    strides: vec![8 * a.col],
                });
                inner.len() - 1
            });
            let ib = wb.map(|w| {
                inner.push(Walker {
                    start: p[w],
                    strides: vec![8 * b.row],
                });
                inner.len() - 1
            });
            e.nest(&[t.k], &inner, &mut |e2, q| {
                let bs: Vec<CV> = t
                    .groups
                    .iter()
                    .map(|&(col, lanes)| match ib {
                        Some(ib) if lanes == 2 => e2.fb.ins().load(
                            types::F64X2,
                            vector_flags(),
                            q[ib],
                            (8 * col as i64 * b.col) as i32,
                        ),
                        Some(ib) => e2.fb.ins().load(
                            types::F64,
                            flags(),
                            q[ib],
                            (8 * col as i64 * b.col) as i32,
                        ),
                        None => b.reg.expect("a register operand"),
                    })
                    .collect();
                for row in 0..t.height {
                    let x = match ia {
                        Some(ia) => e2.fb.ins().load(
                            types::F64,
                            flags(),
                            q[ia],
                            (8 * row as i64 * a.row) as i32,
                        ),
                        None => a.reg.expect("a register operand"),
                    };
                    let xv = if t.groups.iter().any(|g| g.1 == 2) {
                        Some(e2.fb.ins().splat(types::F64X2, x))
                    } else {
                        None
                    };
                    for (g, &(_, lanes)) in t.groups.iter().enumerate() {
                        let acc = accs[row * t.groups.len() + g];
                        let factor = if lanes == 2 {
                            xv.expect("splat for vector groups")
                        } else {
                            x
                        };
                        let prod = e2.fb.ins().fmul(factor, bs[g]);
                        let s = e2.fb.use_var(acc);
                        let s = e2.fb.ins().fadd(s, prod);
                        e2.fb.def_var(acc, s);
                    }
                }
            });
            for row in 0..t.height {
                for (g, &(col, lanes)) in t.groups.iter().enumerate() {
                    let total = e.fb.use_var(accs[row * t.groups.len() + g]);
                    match wc {
                        Some(wc) => {
                            let off = (8 * (row as i64 * n + col as i64)) as i32;
                            let fl = if lanes == 2 { vector_flags() } else { flags() };
                            e.fb.ins().store(fl, total, p[wc], off);
                        }
                        None => result = Some(total),
                    }
                }
            }
        });
        result
    }
}
