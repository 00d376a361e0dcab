//! Planning a function for code generation, before any Cranelift: how every value is computed
//! and where it lives, which instructions fuse into one loop, how the work is cut into chunks,
//! and the workspace layout.
//!
//! Every value gets a `Kind`:
//! - `Scalar`: one element (`f64[]`, `f64[1]`, ...). Kept in a register (an SSA value of the
//!   generated code); stored to a workspace slot only when a later chunk reads it.
//! - `Splat`: a constant with every element equal: an immediate wherever it is read.
//! - `Mem`: readable from memory at `storage + offset + sum(index[d] * strides[d])`. Parameters,
//!   tensor constants and materialized results are `Mem` with row-major strides; `broadcast`,
//!   `slice`, `transpose` and (of row-major data) `reshape` are `Mem` views of their operand's
//!   storage with other strides, so they cost nothing until read.
//! - `Bcast`: a scalar seen over a larger shape (a broadcast of a one-element value).
//! - `Fused`: an elementwise value with one use, in an elementwise op or reduction of the same
//!   shape: computed inside its consumer's loop, never stored.
//!
//! Values that need code are emitted as `Unit`s in instruction order; a unit is a scalar op, a
//! loop nest (a fused elementwise group, a reduction, a copy, pad, concat or small matmul) or a
//! call of the matmul kernel. Units are cut into chunks (one generated function each) so that
//! compile time stays linear. Workspace ranges are reused once their value is dead.

use crate::call::Ranges;
use crate::ir::{Def, Func, Literal, Op, Type, Value, MAX_RANK};
use std::collections::HashMap;

/// Where a `Mem` value's elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    /// The value that owns the storage (a parameter, a tensor constant or a materialized value).
    pub storage: Value,
    /// In elements from the start of the storage.
    pub offset: i64,
    /// In elements, one per axis of the value's shape.
    pub strides: [i64; MAX_RANK],
}

impl Mem {
    /// The offset of the element at index `start` (one entry per axis).
    pub fn element(&self, start: crate::ir::Dims) -> i64 {
        self.offset
            + start
                .iter()
                .enumerate()
                .map(|(d, s)| s as i64 * self.strides[d])
                .sum::<i64>()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Scalar,
    Splat(f64),
    Mem(Mem),
    Bcast(Value),
    Fused,
}

/// Where a storage owner lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    Input(usize),
    /// Output buffer `k`, from element `offset`.
    Output(usize, usize),
    /// Workspace offset, in elements.
    Work(usize),
}

impl Home {
    /// The same place moved `by` elements on.
    fn offset(self, by: usize) -> Home {
        match self {
            Home::Input(i) => Home::Input(i),
            Home::Output(k, off) => Home::Output(k, off + by),
            Home::Work(off) => Home::Work(off + by),
        }
    }
}

/// A tensor constant's data and its place in the workspace (written once, when a workspace is
/// made).
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// In elements from the start of the workspace.
    pub offset: usize,
    pub value: Literal,
    /// Number of elements.
    pub len: usize,
}

/// One piece of generated code, in execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Compute value `v` (a scalar op, or a loop nest writing `v`'s storage).
    Compute(Value),
    /// Compute several values in one loop nest over one shape: the values
    /// `loop_roots[first..first + count]`, in order, each an elementwise value of that shape or
    /// a reduction of that shape to a scalar (each may read the earlier elementwise ones, at
    /// the same index only).
    Loop { first: u32, count: u32 },
    /// Copy value `v` into output `k` (results that are not computed in place).
    CopyOut(Value, usize),
}

/// The plan of a whole function.
pub struct Plan {
    pub kinds: Vec<Kind>,
    /// Home of every storage owner (indexed by value; `None` for values without storage).
    pub homes: Vec<Option<Home>>,
    /// Where a scalar is stored when computed: a workspace slot if a later chunk reads it, or
    /// its place inside the concat that reads it.
    pub slots: Vec<Option<Home>>,
    /// The root that computes each fused value.
    pub fused_into: Vec<u32>,
    /// Members of each root's group, in instruction order (fused values only).
    pub groups: HashMap<u32, Vec<Value>>,
    pub units: Vec<Unit>,
    /// The values of every `Unit::Loop`.
    pub loop_roots: Vec<Value>,
    /// `chunks[c]` is the range of `units` that chunk `c` emits.
    pub chunks: Vec<std::ops::Range<usize>>,
    /// One-element slices of a parameter or tensor constant: loaded where they are used (each
    /// chunk loads its own copy) from `(storage, element offset)`, never stored.
    pub loads: Vec<Option<(Value, i64)>>,
    /// Concat operands computed in place inside the concat (which then skips them).
    pub in_place: Vec<bool>,
    /// Constant tensors to write into a new workspace.
    pub consts: Vec<Constant>,
    pub workspace_len: usize,
    /// For one-element values that are register views of another (a reshape of a scalar),
    /// the value that holds the register; every other value maps to itself.
    pub scalar_source: Vec<u32>,
}

pub fn row_major(shape: &[usize]) -> [i64; MAX_RANK] {
    let mut s = [0i64; MAX_RANK];
    let mut acc = 1i64;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i] as i64;
    }
    s
}

fn is_row_major(m: &Mem, shape: &[usize]) -> bool {
    let want = row_major(shape);
    (0..shape.len()).all(|d| shape[d] == 1 || m.strides[d] == want[d])
}

fn is_elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select
    )
}

/// The values a unit computes.
pub fn unit_values(u: Unit, loop_roots: &[Value]) -> &[Value] {
    match u {
        Unit::Compute(_) => &[],
        Unit::Loop { first, count } => &loop_roots[first as usize..(first + count) as usize],
        Unit::CopyOut(..) => &[],
    }
}

/// Cost of computing one value, in rough instruction counts, for chunking.
fn value_cost(f: &Func, groups: &HashMap<u32, Vec<Value>>, v: Value) -> usize {
    1 + groups.get(&v.0).map_or(0, |g| g.len())
        + match f.def(v) {
            Def::Inst(i) => f.insts[i].args.len(),
            Def::Param(_) => 0,
        }
}

/// Plans `f` (which must verify) with chunks of about `chunk_cost` units of work.
pub fn plan(f: &Func, chunk_cost: usize) -> Plan {
    let np = f.params.len();
    let nv = f.num_values();
    // Uses: count, the single user, and whether a value is returned.
    let mut uses = vec![0u32; nv];
    let mut user = vec![u32::MAX; nv];
    let mut returned = vec![false; nv];
    for (k, inst) in f.insts.iter().enumerate() {
        for &a in inst.args.iter() {
            uses[a.index()] += 1;
            user[a.index()] = (np + k) as u32;
        }
    }
    for &r in &f.results {
        returned[r.index()] = true;
    }

    // Kinds, in instruction order (operands first).
    let mut kinds: Vec<Kind> = Vec::with_capacity(nv);
    for p in &f.params {
        kinds.push(if p.ty.numel() == 1 {
            Kind::Scalar
        } else {
            Kind::Mem(Mem {
                storage: Value(kinds.len() as u32),
                offset: 0,
                strides: row_major(&p.ty.shape.to_vec()),
            })
        });
    }
    let own = |v: usize, t: Type| {
        Kind::Mem(Mem {
            storage: Value(v as u32),
            offset: 0,
            strides: row_major(&t.shape.to_vec()),
        })
    };
    for (k, inst) in f.insts.iter().enumerate() {
        let v = np + k;
        let ty = inst.ty;
        let shape = ty.shape.to_vec();
        if ty.numel() == 1 {
            kinds.push(Kind::Scalar);
            continue;
        }
        let arg = |i: usize| kinds[inst.args[i].index()];
        let kind = match &inst.op {
            Op::Const { value, .. } => match value.as_splat() {
                Some(x) => Kind::Splat(x),
                None => own(v, ty),
            },
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => {
                let u = user[v] as usize;
                let fusable = uses[v] == 1
                    && !returned[v]
                    && u != u32::MAX as usize
                    && match &f.insts[u - np].op {
                        op if is_elementwise(op) => true,
                        Op::ReduceSum { .. } | Op::ReduceMax { .. } => true,
                        _ => false,
                    };
                if fusable {
                    Kind::Fused
                } else {
                    own(v, ty)
                }
            }
            Op::Broadcast { axes, .. } => match arg(0) {
                Kind::Scalar => Kind::Bcast(inst.args[0]),
                Kind::Splat(x) => Kind::Splat(x),
                Kind::Bcast(s) => Kind::Bcast(s),
                Kind::Mem(m) => {
                    let mut strides = [0i64; MAX_RANK];
                    let mut k = 0;
                    for (d, s) in strides.iter_mut().enumerate().take(shape.len()) {
                        if !axes.contains(d) {
                            *s = m.strides[k];
                            k += 1;
                        }
                    }
                    Kind::Mem(Mem { strides, ..m })
                }
                Kind::Fused => own(v, ty),
            },
            Op::Transpose { perm } => match arg(0) {
                Kind::Mem(m) => {
                    let mut strides = [0i64; MAX_RANK];
                    for (d, p) in perm.iter().enumerate() {
                        strides[d] = m.strides[p];
                    }
                    Kind::Mem(Mem { strides, ..m })
                }
                other @ (Kind::Splat(_) | Kind::Bcast(_)) => other,
                Kind::Scalar | Kind::Fused => own(v, ty),
            },
            Op::Slice { start, .. } => match arg(0) {
                Kind::Mem(m) => {
                    let offset = m.element(*start);
                    Kind::Mem(Mem { offset, ..m })
                }
                other @ (Kind::Splat(_) | Kind::Bcast(_)) => other,
                Kind::Scalar | Kind::Fused => own(v, ty),
            },
            Op::Reshape { .. } => {
                let src_shape = f.value_type(inst.args[0]).shape.to_vec();
                match arg(0) {
                    Kind::Mem(m) if is_row_major(&m, &src_shape) => Kind::Mem(Mem {
                        strides: row_major(&shape),
                        ..m
                    }),
                    other @ (Kind::Splat(_) | Kind::Bcast(_)) => other,
                    Kind::Scalar => Kind::Bcast(inst.args[0]),
                    Kind::Mem(_) | Kind::Fused => own(v, ty),
                }
            }
            Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Matmul { .. } => own(v, ty),
        };
        kinds.push(kind);
    }

    // One-element slices of memory that no call writes (parameters, constants): plain loads.
    let mut loads: Vec<Option<(Value, i64)>> = vec![None; nv];
    for (k, inst) in f.insts.iter().enumerate() {
        let v = np + k;
        if let (Kind::Scalar, Op::Slice { start, .. }) = (kinds[v], &inst.op) {
            if let Kind::Mem(m) = kinds[inst.args[0].index()] {
                let immutable = match f.def(m.storage) {
                    Def::Param(_) => true,
                    Def::Inst(j) => matches!(f.insts[j].op, Op::Const { .. }),
                };
                if immutable {
                    let off = m.element(*start);
                    loads[v] = Some((m.storage, off));
                }
            }
        }
    }

    // Groups: each fused value's root is its user's root.
    let mut fused_into = vec![u32::MAX; nv];
    for v in (np..nv).rev() {
        if kinds[v] == Kind::Fused {
            let u = user[v] as usize;
            fused_into[v] = if kinds[u] == Kind::Fused {
                fused_into[u]
            } else {
                u as u32
            };
        }
    }
    let mut groups: HashMap<u32, Vec<Value>> = HashMap::new();
    for v in np..nv {
        if kinds[v] == Kind::Fused {
            groups
                .entry(fused_into[v])
                .or_default()
                .push(Value(v as u32));
        }
    }

    // Units: every value that needs code, in order; results not computed in place are copied.
    let mut homes: Vec<Option<Home>> = vec![None; nv];
    for (i, p) in f.params.iter().enumerate() {
        if p.ty.numel() != 1 {
            homes[i] = Some(Home::Input(i));
        }
    }
    let mut units = Vec::new();
    let mut pending_out: Vec<Vec<usize>> = vec![Vec::new(); nv];
    for (k, &r) in f.results.iter().enumerate() {
        pending_out[r.index()].push(k);
    }
    let copy_outs =
        |units: &mut Vec<Unit>, homes: &mut [Option<Home>], v: usize, computed_in_place: bool| {
            for (n, &k) in pending_out[v].iter().enumerate() {
                if f.value_type(Value(v as u32)).numel() == 0 {
                    // Nothing to write.
                } else if n == 0 && computed_in_place {
                    homes[v] = Some(Home::Output(k, 0));
                } else {
                    units.push(Unit::CopyOut(Value(v as u32), k));
                }
            }
        };
    for v in 0..np {
        copy_outs(&mut units, &mut homes, v, false);
    }
    for (k, inst) in f.insts.iter().enumerate() {
        let v = np + k;
        let needs_code = match kinds[v] {
            Kind::Scalar => {
                !matches!(inst.op, Op::Const { .. }) && loads[v].is_none() && {
                    // One-element views of scalars are the same register.
                    !matches!(
                        (&inst.op, kinds[inst.args.first().map_or(v, |a| a.index())]),
                        (
                            Op::Reshape { .. } | Op::Broadcast { .. } | Op::Transpose { .. },
                            Kind::Scalar
                        )
                    )
                }
            }
            Kind::Mem(m) => m.storage.index() == v && !matches!(inst.op, Op::Const { .. }),
            Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused => false,
        };
        if needs_code {
            units.push(Unit::Compute(Value(v as u32)));
        }
        let in_place = needs_code && matches!(kinds[v], Kind::Mem(_));
        copy_outs(&mut units, &mut homes, v, in_place);
    }

    // Consecutive elementwise loops over one shape become one loop nest, unless a later one
    // reads an earlier one's result at other indices (through a view).
    // A loop root: a materialized elementwise value, or a reduction of all axes to a scalar
    // (accumulated in the loop, in the loop's element order).
    let loop_shape = |v: Value| -> Option<crate::ir::Dims> {
        let Def::Inst(k) = f.def(v) else { return None };
        let inst = &f.insts[k];
        match &inst.op {
            op if is_elementwise(op) => {
                matches!(kinds[v.index()], Kind::Mem(m) if m.storage == v).then_some(inst.ty.shape)
            }
            Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
                let input = f.value_type(inst.args[0]);
                (kinds[v.index()] == Kind::Scalar
                    && axes.len() == input.rank()
                    && input.numel() > 1)
                    .then_some(input.shape)
            }
            _ => None,
        }
    };
    // Whether `v` can join a loop computing `produced`: it reads their results only at the
    // same index, and reads no reduction among them (not complete until the loop ends).
    let leaves_read_same_index = |v: Value, produced: &[Value]| {
        let mut ok = true;
        let mut check = |inst: usize| {
            for &a in f.insts[inst].args.iter() {
                match kinds[a.index()] {
                    Kind::Mem(m) if a != m.storage && produced.contains(&m.storage) => ok = false,
                    Kind::Scalar if produced.contains(&a) => ok = false,
                    Kind::Bcast(s) if produced.contains(&s) => ok = false,
                    _ => {}
                }
            }
        };
        for &m in groups.get(&v.0).map_or(&[][..], |g| &g[..]) {
            if let Def::Inst(k) = f.def(m) {
                check(k);
            }
        }
        if let Def::Inst(k) = f.def(v) {
            check(k);
        }
        ok
    };
    let mut loop_roots: Vec<Value> = Vec::new();
    let mut merged: Vec<Unit> = Vec::with_capacity(units.len());
    let mut current: Vec<Value> = Vec::new();
    let flush = |current: &mut Vec<Value>, merged: &mut Vec<Unit>, loop_roots: &mut Vec<Value>| {
        match current.len() {
            0 => {}
            1 => merged.push(Unit::Compute(current[0])),
            n => {
                merged.push(Unit::Loop {
                    first: loop_roots.len() as u32,
                    count: n as u32,
                });
                loop_roots.extend(current.iter().copied());
            }
        }
        current.clear();
    };
    // Copies of results computed by the open loop wait for it to close, so they do not split it.
    let mut deferred: Vec<Unit> = Vec::new();
    for &u in &units {
        match u {
            Unit::Compute(v) if loop_shape(v).is_some() => {
                let fits = current
                    .last()
                    .is_some_and(|&c| loop_shape(c) == loop_shape(v))
                    && current.len() < 256
                    && leaves_read_same_index(v, &current);
                if !fits {
                    flush(&mut current, &mut merged, &mut loop_roots);
                    merged.append(&mut deferred);
                }
                current.push(v);
            }
            Unit::CopyOut(v, _) if current.contains(&v) => deferred.push(u),
            other => {
                flush(&mut current, &mut merged, &mut loop_roots);
                merged.append(&mut deferred);
                merged.push(other);
            }
        }
    }
    flush(&mut current, &mut merged, &mut loop_roots);
    merged.append(&mut deferred);
    let units = merged;
    fn computes<'a>(u: &'a Unit, loop_roots: &'a [Value]) -> &'a [Value] {
        match u {
            Unit::Compute(v) => std::slice::from_ref(v),
            Unit::Loop { .. } => unit_values(*u, loop_roots),
            Unit::CopyOut(..) => &[],
        }
    }

    // Chunks.
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut cost = 0;
    for (i, &u) in units.iter().enumerate() {
        cost += match u {
            Unit::CopyOut(..) => 2,
            _ => computes(&u, &loop_roots)
                .iter()
                .map(|&v| value_cost(f, &groups, v))
                .sum(),
        };
        if cost >= chunk_cost {
            chunks.push(start..i + 1);
            start = i + 1;
            cost = 0;
        }
    }
    if start < units.len() || chunks.is_empty() {
        chunks.push(start..units.len());
    }
    let mut chunk_of_unit = vec![0u32; units.len()];
    for (c, r) in chunks.iter().enumerate() {
        for u in r.clone() {
            chunk_of_unit[u] = c as u32;
        }
    }

    // Reads: which values each unit reads directly (operands, group leaves, copies).
    let mut unit_of: Vec<u32> = vec![u32::MAX; nv];
    for (i, &u) in units.iter().enumerate() {
        for &v in computes(&u, &loop_roots) {
            unit_of[v.index()] = i as u32;
        }
    }
    // A scalar that is a register view (reshape of a scalar) reads as its source.
    let mut scalar_source: Vec<u32> = (0..nv as u32).collect();
    for (k, inst) in f.insts.iter().enumerate() {
        let v = np + k;
        if kinds[v] == Kind::Scalar
            && matches!(
                inst.op,
                Op::Reshape { .. } | Op::Broadcast { .. } | Op::Transpose { .. }
            )
            && kinds[inst.args[0].index()] == Kind::Scalar
        {
            scalar_source[v] = scalar_source[inst.args[0].index()];
        }
    }
    // A value read only by a concat, as a contiguous part of it, is computed directly inside
    // the concat's storage (a scalar is stored there): `inside[v] = (concat, element offset)`.
    // `in_place[a]` marks the concat operands the concat then skips.
    let mut inside: Vec<Option<(u32, usize)>> = vec![None; nv];
    let mut in_place = vec![false; nv];
    for (k, inst) in f.insts.iter().enumerate() {
        let c = np + k;
        let Op::Concat { axis } = inst.op else {
            continue;
        };
        if !matches!(kinds[c], Kind::Mem(m) if m.storage.index() == c) {
            continue;
        }
        let shape = inst.ty.shape.to_vec();
        let axis = axis as usize;
        if shape[..axis].iter().any(|&d| d != 1) {
            continue;
        }
        let stride = row_major(&shape)[axis] as usize;
        let mut at = 0;
        for &a in inst.args.iter() {
            let ai = a.index();
            // The value that computes the part (a scalar seen through views counts if every
            // step on the way has this one use).
            let mut src = ai;
            while src != scalar_source[src] as usize && uses[src] == 1 && !returned[src] {
                let Def::Inst(k) = f.def(Value(src as u32)) else {
                    break;
                };
                src = f.insts[k].args[0].index();
            }
            let single = uses[src] == 1 && uses[ai] == 1 && !returned[src] && !returned[ai];
            let computed = unit_of[src] != u32::MAX
                && match kinds[src] {
                    Kind::Mem(m) => m.storage.index() == src && homes[src].is_none(),
                    Kind::Scalar => true,
                    Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused => false,
                };
            if single && computed && (src == scalar_source[ai] as usize || src == ai) {
                inside[src] = Some((c as u32, at * stride));
                in_place[ai] = true;
            }
            at += f.value_type(a).shape.get(axis);
        }
    }
    let reads_of = |u: Unit, out: &mut Vec<Value>| {
        out.clear();
        if let Unit::CopyOut(v, _) = u {
            out.push(v);
        }
        for &v in computes(&u, &loop_roots) {
            if let Def::Inst(i) = f.def(v) {
                out.extend(
                    f.insts[i]
                        .args
                        .iter()
                        .copied()
                        .filter(|a| !in_place[a.index()]),
                );
            }
            if let Some(g) = groups.get(&v.0) {
                for m in g {
                    if let Def::Inst(i) = f.def(*m) {
                        out.extend(f.insts[i].args.iter().copied());
                    }
                }
            }
        }
    };
    // The storage or scalar behind a read, for liveness.
    let underlying = |v: Value| -> Option<Value> {
        match kinds[v.index()] {
            Kind::Mem(m) => Some(m.storage),
            Kind::Bcast(s) => Some(s),
            Kind::Scalar => Some(v),
            Kind::Splat(_) | Kind::Fused => None,
        }
    };
    let mut last_unit = vec![0u32; nv];
    let mut first_chunk_use = vec![u32::MAX; nv];
    let mut live_in: Vec<Vec<Value>> = vec![Vec::new(); chunks.len()];
    let mut reads = Vec::new();
    let mut needs_slot = vec![false; nv];
    for (i, &u) in units.iter().enumerate() {
        reads_of(u, &mut reads);
        let c = chunk_of_unit[i];
        for &r in &reads {
            let Some(s) = underlying(r) else { continue };
            let s = if kinds[s.index()] == Kind::Scalar {
                Value(scalar_source[s.index()])
            } else {
                s
            };
            last_unit[s.index()] = last_unit[s.index()].max(i as u32);
            if kinds[s.index()] == Kind::Scalar && loads[s.index()].is_none() {
                let def_chunk = match f.def(s) {
                    Def::Param(_) => u32::MAX,
                    Def::Inst(k) => {
                        if matches!(f.insts[k].op, Op::Const { .. }) {
                            continue;
                        }
                        chunk_of_unit[unit_of[s.index()] as usize]
                    }
                };
                // Parameters are loaded from their input in every chunk that reads them.
                let from_earlier = def_chunk == u32::MAX || def_chunk < c;
                if from_earlier && first_chunk_use[s.index()] != c {
                    first_chunk_use[s.index()] = c;
                    live_in[c as usize].push(s);
                    if def_chunk != u32::MAX {
                        needs_slot[s.index()] = true;
                    }
                }
            }
        }
    }

    // Workspace: tensor constants first (never reused), then materialized values and scalar
    // slots, each range reused after its last reader.
    let mut top = 0usize;
    let mut consts = Vec::new();
    for (k, inst) in f.insts.iter().enumerate() {
        let v = np + k;
        if let (Op::Const { value, .. }, Kind::Mem(m)) = (&inst.op, kinds[v]) {
            if m.storage.index() == v {
                homes[v] = Some(Home::Work(top));
                consts.push(Constant {
                    offset: top,
                    value: value.clone(),
                    len: inst.ty.numel(),
                });
                top += inst.ty.numel();
            }
        }
    }
    let mut ranges = Ranges::above(top);
    let mut dies: Vec<Vec<(usize, usize)>> = vec![Vec::new(); units.len()];
    let mut slots: Vec<Option<Home>> = vec![None; nv];
    // Gives `v` its home (a fresh workspace range of `len` elements if it has none yet),
    // freed after unit `last`.
    let claim = |homes: &mut Vec<Option<Home>>,
                 dies: &mut Vec<Vec<(usize, usize)>>,
                 ranges: &mut Ranges,
                 v: usize,
                 len: usize,
                 last: usize| {
        if homes[v].is_some() {
            return;
        }
        let off = ranges.take(len);
        homes[v] = Some(Home::Work(off));
        dies[last].push((off, len));
    };
    for (i, &u) in units.iter().enumerate() {
        for &v in computes(&u, &loop_roots) {
            let vi = v.index();
            if let Some((c, off)) = inside[vi] {
                // Chains of concats resolve from the outermost one, which is claimed first.
                let mut chain = vec![(vi, off)];
                let mut outer = c as usize;
                while let Some((next, o)) = inside[outer] {
                    chain.push((outer, o));
                    outer = next as usize;
                }
                let last = (last_unit[outer] as usize).max(i);
                claim(
                    &mut homes,
                    &mut dies,
                    &mut ranges,
                    outer,
                    f.value_type(Value(outer as u32)).numel(),
                    last,
                );
                for &(x, _) in chain.iter().rev() {
                    let (parent, o) = inside[x].expect("in the chain");
                    let home = homes[parent as usize].expect("claimed above").offset(o);
                    if kinds[x] == Kind::Scalar {
                        slots[x] = Some(home);
                    } else {
                        homes[x] = Some(home);
                    }
                }
                continue;
            }
            let len = if needs_slot[vi] {
                1
            } else if homes[vi].is_none() && matches!(kinds[vi], Kind::Mem(_)) {
                f.value_type(v).numel()
            } else {
                0
            };
            // Freed after its last reader (or right away if nothing reads it).
            let last = (last_unit[vi] as usize).max(i);
            if len > 0 && needs_slot[vi] {
                let off = ranges.take(1);
                slots[vi] = Some(Home::Work(off));
                dies[last].push((off, 1));
            } else if len > 0 {
                claim(&mut homes, &mut dies, &mut ranges, vi, len, last);
            }
        }
        for (off, len) in std::mem::take(&mut dies[i]) {
            ranges.release(off, len);
        }
    }
    let top = ranges.len();
    Plan {
        kinds,
        homes,
        slots,
        loads,
        in_place,
        fused_into,
        groups,
        units,
        loop_roots,
        chunks,
        consts,
        workspace_len: top,
        scalar_source,
    }
}
