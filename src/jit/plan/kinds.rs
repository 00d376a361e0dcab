//! What each value is (its `Kind`), from its op, its operands' kinds and its uses; and three
//! facts about one-element values that follow from kinds: which are loaded straight from
//! immutable memory (`Load`), which are register views of another (`scalar_sources`), and which
//! `sin` and `cos` share their argument (`sin_cos_partners`). The category
//! questions asked of an op (`is_elementwise`, `reduction`, `is_register_view`) are methods of
//! the op table (`crate::ir::Opcode`).

use super::{inst, row_major, Kind, Load, Mem, ValueMap};
use crate::ir::{Def, Func, Inst, Op, Type, Unary, Value, MAX_RANK};
use crate::ops::vmath;

/// Who reads each value.
pub(super) struct Uses {
    /// Operand slots reading the value (an instruction reading it twice counts twice).
    pub count: ValueMap<u32>,
    /// The last instruction (named by its result) reading the value: the only one when `count`
    /// is 1.
    pub user: ValueMap<Option<Value>>,
    /// Whether the value is a result of the function.
    pub returned: ValueMap<bool>,
    /// Instructions reading the value (one reading it twice counts once).
    pub readers: ValueMap<u32>,
}

impl Uses {
    pub(super) fn of(f: &Func) -> Uses {
        let nv = f.num_values();
        let mut uses = Uses {
            count: ValueMap::filled(nv, 0),
            user: ValueMap::filled(nv, None),
            returned: ValueMap::filled(nv, false),
            readers: ValueMap::filled(nv, 0),
        };
        for (k, inst) in f.insts.iter().enumerate() {
            let user = f.inst_value(k);
            for &a in inst.args.iter() {
                uses.count[a] += 1;
                if uses.user[a] != Some(user) {
                    uses.readers[a] += 1;
                }
                uses.user[a] = Some(user);
            }
        }
        for &r in &f.results {
            uses.returned[r] = true;
        }
        uses
    }

    /// Read by exactly one operand slot, and not returned.
    pub(super) fn single(&self, v: Value) -> bool {
        self.count[v] == 1 && !self.returned[v]
    }

    /// Read by exactly one instruction (through one operand slot or several, as `x * x`), and
    /// not returned: a loop computing that instruction can compute `v` once, in a register.
    pub(super) fn one_reader(&self, v: Value) -> bool {
        self.readers[v] == 1 && !self.returned[v]
    }
}

/// The instructions (named by their results) reading each value, in order.
pub(super) fn readers(f: &Func) -> ValueMap<Vec<Value>> {
    let mut readers: ValueMap<Vec<Value>> = ValueMap::filled(f.num_values(), Vec::new());
    for (k, inst) in f.insts.iter().enumerate() {
        for &a in inst.args.iter() {
            readers[a].push(f.inst_value(k));
        }
    }
    readers
}

/// `v` as the owner of its own row-major storage.
pub(super) fn own(v: Value, ty: Type) -> Kind {
    Kind::Mem(Mem {
        storage: v,
        offset: 0,
        strides: row_major(&ty.shape.to_vec()),
    })
}

/// Most values a fused value may bring into its root's loop, itself included (a root of `k`
/// fused operands computes at most `1 + k * MAX_FUSED_GROUP`). A value that
/// would bring more is stored instead, the root of a loop of its own, computed where it stands
/// in the function. A long chain of fused values is then computed in pieces as its operands
/// are made, while they are in cache, rather than in one loop at its end that reads them all
/// back: the unrolled `pendulum`'s gradient with respect to a parameter sums one product per
/// RK4 stage over its 400 stages, and its f+grad took 84 us, its hvp 155 us, with the whole
/// sum in one loop, against 75 and 136 us (32, 64 and 128 measured alike).
pub const MAX_FUSED_GROUP: usize = 64;

/// The kind of every value, in order (operands before their users).
pub(super) fn kinds(f: &Func, uses: &Uses) -> ValueMap<Kind> {
    let mut kinds = ValueMap::filled(f.num_values(), Kind::Scalar);
    for (i, p) in f.params.iter().enumerate() {
        if p.ty.numel() != 1 {
            let v = f.param_value(i);
            kinds[v] = own(v, p.ty);
        }
    }
    // Values each fused value brings into its root's loop, itself included.
    let mut group = ValueMap::filled(f.num_values(), 0usize);
    for (k, inst) in f.insts.iter().enumerate() {
        // A scan writes its result through pointers, so even one element lives in memory.
        if inst.ty.numel() != 1 || matches!(inst.op, Op::Scan { .. }) {
            let v = f.inst_value(k);
            let mut kind = tensor_kind(f, uses, &kinds, v, inst);
            if kind == Kind::Fused {
                // An operand read twice (`d * d`) is computed once.
                let fused = inst
                    .args
                    .iter()
                    .enumerate()
                    .filter(|&(i, &a)| kinds[a] == Kind::Fused && !inst.args[..i].contains(&a));
                let size = 1 + fused.map(|(_, &a)| group[a]).sum::<usize>();
                if size > MAX_FUSED_GROUP {
                    kind = own(v, inst.ty);
                } else {
                    group[v] = size;
                }
            }
            kinds[v] = kind;
        }
    }
    kinds
}

/// The kind of a value of more than one element, computed by `inst`.
fn tensor_kind(f: &Func, uses: &Uses, kinds: &ValueMap<Kind>, v: Value, inst: &Inst) -> Kind {
    let arg = || (inst.args[0], kinds[inst.args[0]]);
    let view = match &inst.op {
        Op::Const { value, .. } => value.as_splat().map(Kind::Splat),
        Op::Unary(u) if vmath::is_four_lane(*u) => None,
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => {
            fuses_into_user(f, uses, v).then_some(Kind::Fused)
        }
        Op::Broadcast { axes, .. } => broadcast(arg(), axes, inst.ty.rank()),
        Op::Transpose { perm } => match arg().1 {
            Kind::Mem(m) => {
                let mut strides = [0i64; MAX_RANK];
                for (d, p) in perm.iter().enumerate() {
                    strides[d] = m.strides[p];
                }
                Some(Kind::Mem(Mem { strides, ..m }))
            }
            other @ (Kind::Splat(_) | Kind::Bcast(_)) => Some(other),
            Kind::Scalar | Kind::Fused | Kind::Pieces => None,
        },
        Op::Slice { start, .. } => match arg().1 {
            Kind::Mem(m) => Some(Kind::Mem(Mem {
                offset: m.element(*start),
                ..m
            })),
            other @ (Kind::Splat(_) | Kind::Bcast(_)) => Some(other),
            Kind::Scalar | Kind::Fused | Kind::Pieces => None,
        },
        Op::Reshape { .. } => reshape(f, arg(), inst.ty),
        Op::ReduceSum { .. }
        | Op::ReduceMax { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::Matmul { .. }
        | Op::Scan { .. } => None,
    };
    view.unwrap_or_else(|| own(v, inst.ty))
}

/// Whether elementwise `v` is computed inside the loop of its one user: an elementwise op or a
/// reduction (of the same shape, as elementwise operands have the result's shape), but not an
/// op computed by a four-lane function, which reads its operand from memory (`lower::quad`).
fn fuses_into_user(f: &Func, uses: &Uses, v: Value) -> bool {
    let Some(user) = uses.user[v].filter(|_| uses.one_reader(v)) else {
        return false;
    };
    let user_op = &inst(f, user).expect("users are instructions").op;
    let four_lane = matches!(user_op, Op::Unary(u) if vmath::is_four_lane(*u));
    (user_op.is_elementwise() && !four_lane) || user_op.reduction().is_some()
}

/// A broadcast of `(operand, kind)` to a result of rank `rank` adding `axes`, unless it must be
/// materialized.
fn broadcast((x, kind): (Value, Kind), axes: &crate::ir::Dims, rank: usize) -> Option<Kind> {
    match kind {
        Kind::Scalar => Some(Kind::Bcast(x)),
        Kind::Splat(c) => Some(Kind::Splat(c)),
        Kind::Bcast(s) => Some(Kind::Bcast(s)),
        Kind::Mem(m) => {
            let mut strides = [0i64; MAX_RANK];
            let mut k = 0;
            for (d, s) in strides.iter_mut().enumerate().take(rank) {
                if !axes.contains(d) {
                    *s = m.strides[k];
                    k += 1;
                }
            }
            Some(Kind::Mem(Mem { strides, ..m }))
        }
        Kind::Fused | Kind::Pieces => None,
    }
}

/// A reshape of `(operand, kind)` to `ty`: a view of row-major memory, unless it must be
/// materialized.
fn reshape(f: &Func, (x, kind): (Value, Kind), ty: Type) -> Option<Kind> {
    match kind {
        Kind::Mem(m) if is_row_major(&m, &f.value_type(x).shape.to_vec()) => Some(Kind::Mem(Mem {
            strides: row_major(&ty.shape.to_vec()),
            ..m
        })),
        other @ (Kind::Splat(_) | Kind::Bcast(_)) => Some(other),
        Kind::Scalar => Some(Kind::Bcast(x)),
        Kind::Mem(_) | Kind::Fused | Kind::Pieces => None,
    }
}

pub(super) fn is_row_major(m: &Mem, shape: &[usize]) -> bool {
    let want = row_major(shape);
    (0..shape.len()).all(|d| shape[d] == 1 || m.strides[d] == want[d])
}

/// One-element slices of memory that no call writes (parameters, constants): plain loads.
pub(super) fn loads(f: &Func, kinds: &ValueMap<Kind>) -> ValueMap<Option<Load>> {
    let mut loads = ValueMap::filled(f.num_values(), None);
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        let (Kind::Scalar, Op::Slice { start, .. }) = (kinds[v], &inst.op) else {
            continue;
        };
        let Kind::Mem(m) = kinds[inst.args[0]] else {
            continue;
        };
        let immutable = match f.def(m.storage) {
            Def::Param(_) => true,
            Def::Inst(j) => matches!(f.insts[j].op, Op::Const { .. }),
        };
        if immutable {
            loads[v] = Some(Load {
                storage: m.storage,
                offset: m.element(*start),
            });
        }
    }
    loads
}

/// For each one-element `sin` whose argument (register views seen through) a one-element `cos`
/// also takes, that `cos`, and the other way round: the lowering may compute both at once.
pub(super) fn sin_cos_partners(
    f: &Func,
    kinds: &ValueMap<Kind>,
    source: &ValueMap<Value>,
) -> ValueMap<Option<Value>> {
    let mut partner = ValueMap::filled(f.num_values(), None);
    // The first `sin` and the first `cos` of each argument.
    let mut first: std::collections::HashMap<(Value, bool), Value> = Default::default();
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        let is_sin = matches!(inst.op, Op::Unary(Unary::Sin));
        if !(is_sin || matches!(inst.op, Op::Unary(Unary::Cos))) || kinds[v] != Kind::Scalar {
            continue;
        }
        let x = source[inst.args[0]];
        first.entry((x, is_sin)).or_insert(v);
        if let Some(&other) = first.get(&(x, !is_sin)) {
            if partner[other].is_none() && first[&(x, is_sin)] == v {
                partner[other] = Some(v);
                partner[v] = Some(other);
            }
        }
    }
    partner
}

/// For each one-element value that is a register view of another (a reshape of a scalar), the
/// value that holds the register; every other value maps to itself.
pub(super) fn scalar_sources(f: &Func, kinds: &ValueMap<Kind>) -> ValueMap<Value> {
    let mut source = ValueMap::from_fn(f.num_values(), |v| v);
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        if kinds[v] == Kind::Scalar
            && inst.op.is_register_view()
            && kinds[inst.args[0]] == Kind::Scalar
        {
            source[v] = source[inst.args[0]];
        }
    }
    source
}
