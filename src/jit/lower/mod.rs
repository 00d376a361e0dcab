//! Lowering one chunk of a planned function to a Cranelift function
//! `fn(inputs: *const *const f64, outputs: *const *mut f64, workspace: *mut f64)`.
//!
//! Scalars are SSA values; tensors are loop nests (`loops`), fused groups (`fused`) and tiled
//! matmuls (`matmul`). Each op has exactly the interpreter's semantics: the same host functions
//! for transcendental ops (vector ones called per group of lanes), `fmax`/`fmin` (IEEE 754-2019, as `ops::binary` defines max/min), sums
//! in the interpreter's order. Bools are `i8` in registers (lane masks in vectors) and
//! `0.0`/`1.0` in memory. This module holds the emitter: registers, memory access, host calls
//! and single elementwise ops; `compute` emits each unit.

use super::plan::{Home, Kind, Load, Plan};
use super::runtime::Callee;
use crate::ir::{Binary, Compare, DType, Def, Func, Op, Unary, Value};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Value as CV};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;

mod across;
mod compute;
mod fused;
mod loops;
mod matmul;
mod ownmath;
mod quad;
mod reduce;
mod revolve;
mod scan;

pub use across::computed_across;
pub use revolve::{step_function, RevolveCode};
pub use scan::ScanCode;

/// How a loop reads a value: from a register (the same for every index) or through a pointer.
#[derive(Clone, Copy)]
enum Read {
    Reg(CV),
    Ptr(usize),
}

pub struct Emitter<'a, 'b> {
    pub fb: FunctionBuilder<'b>,
    pub f: &'a Func,
    pub plan: &'a Plan,
    pub module: &'a mut dyn Module,
    pub imports: &'a HashMap<Callee, FuncId>,
    /// The functions of each scan's body and replay step.
    pub scan_code: &'a HashMap<Value, ScanCode>,
    funcrefs: HashMap<Callee, FuncRef>,
    /// References to functions of this module (scan bodies) in this chunk.
    locals: HashMap<FuncId, FuncRef>,
    regs: HashMap<Value, CV>,
    /// Values computed before their instruction: the `cos` of a `sin` computed with it, or the
    /// other way round (`Emitter::own_sin_cos`).
    early: HashMap<Value, CV>,
    ins: Vec<CV>,
    outs: Vec<CV>,
    ws: CV,
    /// `[-0.0, -0.0]`, made in the entry block: a two-lane `neg` flips the sign bits with it.
    /// Cranelift's own `fneg` of a vector rebuilds the mask at every use, three instructions
    /// where this is one.
    sign_mask: CV,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Vector accesses are not necessarily 16-byte aligned.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// A vector load in a loop body, at an address that moves with the loop: free to move to its
/// first use. Without this, a loop whose results are all accumulated (no store to anchor the
/// arithmetic) had its loads issued first and its arithmetic elaborated at the back edge,
/// every loaded vector live at once and most of them spilled. Sound because no loop reads
/// memory that the same loop writes (a value's storage is reused only after the last unit
/// that reads it), and the address differs in every iteration and every loop.
fn loop_load_flags() -> MemFlagsData {
    vector_flags().with_readonly().with_can_move()
}

impl<'a, 'b> Emitter<'a, 'b> {
    /// Starts a chunk function: entry block and argument pointers.
    pub fn new(
        mut fb: FunctionBuilder<'b>,
        f: &'a Func,
        plan: &'a Plan,
        module: &'a mut dyn Module,
        imports: &'a HashMap<Callee, FuncId>,
        scan_code: &'a HashMap<Value, ScanCode>,
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
        let minus_zero = fb.ins().f64const(-0.0);
        let sign_mask = fb.ins().splat(types::F64X2, minus_zero);
        Emitter {
            fb,
            f,
            plan,
            module,
            imports,
            scan_code,
            funcrefs: HashMap::new(),
            locals: HashMap::new(),
            regs: HashMap::new(),
            early: HashMap::new(),
            ins,
            outs,
            ws,
            sign_mask,
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

    /// Loads `lanes` elements `stride` bytes apart (one repeated if `stride` is 0) of type
    /// `dtype` at `addr`.
    fn load_lanes(&mut self, addr: CV, dtype: DType, lanes: usize, stride: i64) -> CV {
        if lanes == 1 {
            return self.load(addr, dtype);
        }
        if stride == 0 {
            let x = self.load(addr, dtype);
            return self.widen(x, dtype);
        }
        let x = if stride == 8 {
            self.fb.ins().load(types::F64X2, loop_load_flags(), addr, 0)
        } else {
            // Gathered: the lanes lie `stride` bytes apart.
            let second = self.fb.ins().iadd_imm_s(addr, stride);
            let a = self.fb.ins().load(types::F64, loop_load_flags(), addr, 0);
            let b = self.fb.ins().load(types::F64, loop_load_flags(), second, 0);
            let v = self.fb.ins().scalar_to_vector(types::F64X2, a);
            self.fb.ins().insertlane(v, b, 1)
        };
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
        let home = self.plan.homes[storage].expect("storage owners have homes");
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

    /// The register of a one-element value. Values from memory (a scalar parameter, a slot
    /// written by an earlier chunk, a one-element slice of an input) are loaded at their first
    /// use in the chunk, which is always in straight-line code that dominates the later uses.
    fn reg(&mut self, v: Value) -> CV {
        let v = self.plan.scalar_source[v];
        if let Some(&r) = self.regs.get(&v) {
            return r;
        }
        let dtype = self.f.value_type(v).dtype;
        if let Def::Inst(i) = self.f.def(v) {
            if let Op::Const { value, .. } = &self.f.insts[i].op {
                return self.immediate(value.get(0), dtype);
            }
        }
        let addr = self.scalar_address(v);
        let r = self.load(addr, dtype);
        self.regs.insert(v, r);
        r
    }

    /// Where a one-element value that is not a constant is read from.
    fn scalar_address(&mut self, v: Value) -> CV {
        if let Kind::Mem(m) = self.plan.kinds[v] {
            // A one-element scan result.
            let base = self.base(m.storage);
            return self.fb.ins().iadd_imm_s(base, 8 * m.offset);
        }
        match (self.f.def(v), self.plan.loads[v], self.plan.slots[v]) {
            (Def::Param(i), _, _) => self.ins[i],
            (Def::Inst(_), Some(Load { storage, offset }), _) => {
                let base = self.base(storage);
                self.fb.ins().iadd_imm_s(base, 8 * offset)
            }
            (Def::Inst(_), None, Some(slot)) => self.home_address(slot),
            (Def::Inst(_), None, None) => {
                panic!("internal: scalar {v} used before it was computed")
            }
        }
    }

    /// The function reference of `callee`'s host function in this chunk.
    fn host(&mut self, callee: Callee) -> FuncRef {
        if let Some(&r) = self.funcrefs.get(&callee) {
            return r;
        }
        let Some(&id) = self.imports.get(&callee) else {
            panic!("internal: {callee:?} has no host function in the op table");
        };
        let r = self.module.declare_func_in_func(id, self.fb.func);
        self.funcrefs.insert(callee, r);
        r
    }

    fn call1(&mut self, callee: Callee, args: &[CV]) -> CV {
        let r = self.host(callee);
        let call = self.fb.ins().call(r, args);
        self.fb.inst_results(call)[0]
    }

    /// A host function on each lane. A unary op computed by adjit's own functions is inline
    /// on single values, and on pairs where the four-lane kernel is not at hand (`ownmath`).
    /// Another with a vector function in use calls that: four lanes through `quad`, two lanes
    /// once for both, or on a single element repeated (taking lane 0), as the interpreter
    /// does (`ops::vmath`).
    fn call_lanes(&mut self, callee: Callee, args: &[CV], lanes: usize) -> CV {
        if let Callee::Unary(u) = callee {
            if self.inline_own(u) && (lanes == 1 || !self.has_quad(u)) {
                return self.own_math(u, args[0], lanes);
            }
            if self.has_quad(u) {
                return self.quad_lanes(u, args[0], lanes);
            }
            let vector = Callee::Vector(u);
            if self.imports.contains_key(&vector) {
                let x = match lanes {
                    1 => self.fb.ins().splat(types::F64X2, args[0]),
                    _ => args[0],
                };
                let y = self.call1(vector, &[x]);
                return match lanes {
                    1 => self.fb.ins().extractlane(y, 0),
                    _ => y,
                };
            }
        }
        self.call_each_lane(callee, args, lanes)
    }

    /// The host function of `callee` called on each lane.
    fn call_each_lane(&mut self, callee: Callee, args: &[CV], lanes: usize) -> CV {
        if lanes == 1 {
            return self.call1(callee, args);
        }
        let mut results = Vec::with_capacity(lanes);
        for k in 0..lanes as u8 {
            let lane: Vec<CV> = args
                .iter()
                .map(|&a| self.fb.ins().extractlane(a, k))
                .collect();
            results.push(self.call1(callee, &lane));
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
                Unary::Neg if lanes == 2 => self.fb.ins().bxor(a[0], self.sign_mask),
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
                // Host calls: the function is the op table's `host` column.
                Unary::Exp
                | Unary::Log
                | Unary::Log1p
                | Unary::Expm1
                | Unary::Sin
                | Unary::Cos
                | Unary::Tan
                | Unary::Tanh
                | Unary::Sigmoid
                | Unary::Asin
                | Unary::Acos
                | Unary::Atan
                | Unary::Sinh
                | Unary::Cosh
                | Unary::Erf => self.call_lanes(Callee::Unary(*u), a, lanes),
            },
            Op::Binary(b) => match b {
                Binary::Add => self.fb.ins().fadd(a[0], a[1]),
                Binary::Sub => self.fb.ins().fsub(a[0], a[1]),
                Binary::Mul => self.fb.ins().fmul(a[0], a[1]),
                Binary::Div => self.fb.ins().fdiv(a[0], a[1]),
                Binary::Pow | Binary::Atan2 => self.call_lanes(Callee::Binary(*b), a, lanes),
                Binary::Max => self.fb.ins().fmax(a[0], a[1]),
                Binary::Min => self.fb.ins().fmin(a[0], a[1]),
                Binary::Azmul => {
                    // NotEqual holds for NaN too, which keeps the product's NaN.
                    let product = self.fb.ins().fmul(a[0], a[1]);
                    let zero = self.float(0.0, lanes);
                    let a_nonzero = self.compare(FloatCC::NotEqual, a[0], zero, lanes);
                    let b_nonzero = self.compare(FloatCC::NotEqual, a[1], zero, lanes);
                    let nonzero = self.fb.ins().band(a_nonzero, b_nonzero);
                    if lanes == 1 {
                        self.fb.ins().select(nonzero, product, zero)
                    } else {
                        self.fb.ins().band(product, nonzero)
                    }
                }
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
            | Op::Matmul { .. }
            | Op::Scan { .. } => panic!("internal: {} is not elementwise", op.name()),
        }
    }

    /// Stores scalar `v` into its slot if a later chunk reads it.
    fn computed(&mut self, v: Value, r: CV) {
        self.regs.insert(v, r);
        if let Some(slot) = self.plan.slots[v] {
            let addr = self.home_address(slot);
            self.store(addr, r, self.f.value_type(v).dtype);
        }
    }
}
