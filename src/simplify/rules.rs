//! The rewrite rules of `simplify`, applied as each instruction is rebuilt. Every rule is exact
//! in IEEE arithmetic (same bits for every input, NaN payloads aside):
//!
//! - constant folding: an op on constants becomes a constant, computed by the same kernels the
//!   interpreter runs (splats of any size, other constants up to `FOLD_LIMIT` elements);
//! - `x * 1`, `1 * x`, `x / 1`, `x - 0`, `x + (-0)` are `x`; `x * -1` is `-x`; `azmul(0, x)`
//!   and `azmul(x, 0)` are `+0`;
//!   `--x` is `x`; `a + (-b)` is `a - b` and `a - (-b)` is `a + b`;
//! - `select(c, a, a)` is `a`; a constant mask picks its branch;
//! - broadcast of broadcast, reshape of reshape and transpose of transpose become one op; a
//!   broadcast, reshape, transpose, slice, pad, reduction or concat that changes nothing is
//!   dropped; a slice that undoes a pad is its operand; a concat of adjacent slices of one value
//!   is one slice; a slice within one part of a concat is a slice of that part;
//! - the operands of `add`, `mul` and `azmul` are put in a canonical order so CSE sees `a*b`
//!   and `b*a` as one value.
//!
//! Not rewritten, because IEEE forbids it: `x + 0` (wrong for `x = -0`), `x * 0` (wrong for
//! infinite or NaN `x`), `x - x` (NaN for infinite `x`), and anything that reassociates.

use crate::ir::{Binary, Builder, Dims, Literal, Op, Type, Unary, Value};
use crate::ops::kernel::Kernel;
use crate::ops::{self, binary, unary};
use std::sync::Arc;

/// Non-splat constants up to this many elements are folded.
const FOLD_LIMIT: usize = 4096;

/// Reductions of a splat, and matmuls of splats, contracting up to this many elements are
/// folded (summed in order; a matmul by its `fma` chain).
const SPLAT_SUM_LIMIT: usize = 1 << 20;

/// The simplifier's rewrite hook for `Builder::with_rewrite`: a value equal to `op` on `args`,
/// or `None` to emit the op as it is. Ill-typed ops are left alone for the builder to report.
pub fn rewrite(b: &Builder, op: &Op, args: &[Value]) -> Option<Value> {
    if matches!(op, Op::Binary(Binary::Add | Binary::Mul | Binary::Azmul)) && args[0] > args[1] {
        return Some(emit(b, op, &[args[1], args[0]]));
    }
    let mut types = [Type::scalar(); 3];
    if args.len() > types.len() {
        // Only concat takes more operands; its rules need no types.
        return identity(b, op, args);
    }
    for (t, &a) in types.iter_mut().zip(args) {
        *t = b.type_of(a);
    }
    let ty = ops::result_type(op, &types[..args.len()]).ok()?;
    fold(b, op, args, ty).or_else(|| identity(b, op, args))
}

/// Emits through the builder (and so through its hook).
fn emit(b: &Builder, op: &Op, args: &[Value]) -> Value {
    b.op(op.clone(), args).value()
}

fn splat_of(b: &Builder, v: Value) -> Option<f64> {
    b.literal(v).and_then(|l| l.as_splat())
}

fn is_splat(b: &Builder, v: Value, x: f64) -> bool {
    splat_of(b, v).is_some_and(|c| c.to_bits() == x.to_bits())
}

fn constant(b: &Builder, ty: Type, value: Literal) -> Value {
    b.op_plain(Op::Const { ty, value }, &[])
}

/// Constant folding.
fn fold(b: &Builder, op: &Op, args: &[Value], ty: Type) -> Option<Value> {
    if args.is_empty() || matches!(op, Op::Scan { .. }) {
        return None;
    }
    let lits: Vec<Literal> = args.iter().map(|&a| b.literal(a)).collect::<Option<_>>()?;
    let types: Vec<Type> = args.iter().map(|&a| b.type_of(a)).collect();
    let splats: Option<Vec<f64>> = lits.iter().map(|l| l.as_splat()).collect();
    if let Some(s) = splats {
        if let Some(x) = fold_splat(op, &s, &types) {
            return Some(constant(b, ty, Literal::Splat(x)));
        }
    }
    let too_big = ty.numel() > FOLD_LIMIT || types.iter().any(|t| t.numel() > FOLD_LIMIT);
    if too_big {
        return None;
    }
    // Evaluate with the op's reference kernel, on the constants' elements. `reshape` keeps
    // its operand's elements.
    let data: Vec<Vec<f64>> = lits
        .iter()
        .zip(&types)
        .map(|(l, t)| {
            let mut v = vec![0.0; t.numel()];
            l.write_into(&mut v);
            v
        })
        .collect();
    let out = match Kernel::new(op, &types, ty) {
        Some(kernel) => {
            let mut out = vec![0.0; ty.numel()];
            kernel.run(|i| &data[i], &mut out);
            out
        }
        None => data.into_iter().next()?,
    };
    Some(constant(b, ty, Literal::Elements(Arc::from(out))))
}

/// The value of every element of `op` applied to splat operands, when that result is a splat.
fn fold_splat(op: &Op, s: &[f64], types: &[Type]) -> Option<f64> {
    let sum_of = |x: f64, n: usize| -> Option<f64> {
        (n <= SPLAT_SUM_LIMIT).then(|| (0..n).fold(0.0, |acc, _| acc + x))
    };
    match op {
        Op::Const { .. } | Op::Scan { .. } => None,
        Op::Unary(u) => Some(unary::apply(*u, s[0])),
        Op::Binary(o) => Some(binary::apply(*o, s[0], s[1])),
        Op::Compare(c) => Some(binary::compare(*c, s[0], s[1])),
        Op::Select => Some(if s[0] != 0.0 { s[1] } else { s[2] }),
        Op::ReduceSum { axes } => {
            let n = axes.iter().map(|a| types[0].shape.get(a)).product();
            sum_of(s[0], n)
        }
        Op::ReduceMax { axes } => {
            let n: usize = axes.iter().map(|a| types[0].shape.get(a)).product();
            Some(if n == 0 {
                f64::NEG_INFINITY
            } else {
                binary::maximum(f64::NEG_INFINITY, s[0])
            })
        }
        Op::Broadcast { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Slice { .. } => {
            Some(s[0])
        }
        Op::Pad { .. } => (s[0].to_bits() == 0f64.to_bits()).then_some(0.0),
        Op::Concat { .. } => s
            .iter()
            .all(|x| x.to_bits() == s[0].to_bits())
            .then_some(s[0]),
        Op::Matmul { ta, tb } => {
            let d = ops::contract::matmul_dims(types[0], types[1], *ta, *tb);
            (d.k <= SPLAT_SUM_LIMIT).then(|| ops::contract::splat_product(s[0], s[1], d.k))
        }
    }
}

/// `concat` of slices of one value that follow each other along the axis (and agree on the
/// other axes) is one slice of it; runs of such slices within a longer concat merge too.
fn join_slices(b: &Builder, axis: usize, args: &[Value]) -> Option<Value> {
    let slice_of = |v: Value| match b.definition(v) {
        Some((Op::Slice { start, stop }, Some(x))) => Some((x, start, stop)),
        _ => None,
    };
    let mut merged: Vec<Value> = Vec::with_capacity(args.len());
    let mut run: Option<(Value, Dims, Dims)> = None;
    let mut changed = false;
    let close = |run: &mut Option<(Value, Dims, Dims)>, merged: &mut Vec<Value>, last: Value| {
        if let Some((x, start, stop)) = run.take() {
            let whole = b.type_of(x).shape;
            let full = start.iter().all(|s| s == 0) && stop == whole;
            merged.push(if full {
                x
            } else {
                emit(b, &Op::Slice { start, stop }, &[x])
            });
        } else {
            merged.push(last);
        }
    };
    for (i, &a) in args.iter().enumerate() {
        let this = slice_of(a);
        let extends = match (&run, &this) {
            (Some((x, start, stop)), Some((y, s2, e2))) => {
                x == y
                    && stop.get(axis) == s2.get(axis)
                    && (0..start.len()).all(|d| {
                        d == axis || (start.get(d) == s2.get(d) && stop.get(d) == e2.get(d))
                    })
            }
            _ => false,
        };
        if extends {
            let (x, start, mut stop) = run.take().expect("a run to extend");
            let e2 = this.expect("a slice").2;
            let mut dims = stop.to_vec();
            dims[axis] = e2.get(axis);
            stop = Dims::new(&dims);
            run = Some((x, start, stop));
            changed = true;
            continue;
        }
        if i > 0 {
            close(&mut run, &mut merged, args[i - 1]);
        }
        run = this;
    }
    close(&mut run, &mut merged, args[args.len() - 1]);
    if !changed {
        return None;
    }
    Some(if merged.len() == 1 {
        merged[0]
    } else {
        emit(b, &Op::Concat { axis: axis as u32 }, &merged)
    })
}

/// Algebraic identities; `None` when none applies.
fn identity(b: &Builder, op: &Op, args: &[Value]) -> Option<Value> {
    let def = |v: Value| b.definition(v);
    let shape_of = |v: Value| b.type_of(v).shape;
    match op {
        Op::Binary(Binary::Mul) => times_one(b, args),
        Op::Binary(Binary::Azmul) => absolute_zero(b, args),
        Op::Binary(Binary::Div) => is_splat(b, args[1], 1.0).then_some(args[0]),
        Op::Binary(Binary::Sub) => minus(b, args),
        Op::Binary(Binary::Add) => plus(b, args),
        Op::Unary(Unary::Neg) => match def(args[0]) {
            Some((Op::Unary(Unary::Neg), inner)) => inner,
            _ => None,
        },
        Op::Select => {
            if args[1] == args[2] {
                return Some(args[1]);
            }
            splat_of(b, args[0]).map(|c| if c != 0.0 { args[1] } else { args[2] })
        }
        Op::Broadcast { shape, axes } => broadcast_of_broadcast(b, *shape, *axes, args[0]),
        Op::Reshape { shape } => {
            if *shape == shape_of(args[0]) {
                return Some(args[0]);
            }
            match def(args[0]) {
                Some((Op::Reshape { .. }, Some(x))) => Some(emit(b, op, &[x])),
                _ => None,
            }
        }
        Op::Transpose { perm } => transpose_of_transpose(b, *perm, args[0]),
        Op::Slice { start, stop } => slice_of_pad(b, *start, *stop, args[0])
            .or_else(|| slice_of_concat(b, *start, *stop, args[0])),
        Op::Pad { lo, hi } => {
            (lo.iter().all(|x| x == 0) && hi.iter().all(|x| x == 0)).then_some(args[0])
        }
        Op::ReduceSum { axes } | Op::ReduceMax { axes } => axes.is_empty().then_some(args[0]),
        Op::Concat { axis } => {
            if args.len() == 1 {
                return Some(args[0]);
            }
            join_slices(b, *axis as usize, args)
        }
        Op::Const { .. }
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Matmul { .. }
        | Op::Scan { .. } => None,
    }
}

/// `x * 1 = x`, `x * -1 = -x`, either way round.
fn times_one(b: &Builder, args: &[Value]) -> Option<Value> {
    for (x, c) in [(args[0], args[1]), (args[1], args[0])] {
        if is_splat(b, c, 1.0) {
            return Some(x);
        }
        if is_splat(b, c, -1.0) {
            return Some(emit(b, &Op::Unary(Unary::Neg), &[x]));
        }
    }
    None
}

/// `azmul(0, x) = azmul(x, 0) = +0`.
fn absolute_zero(b: &Builder, args: &[Value]) -> Option<Value> {
    let zero = |v: Value| splat_of(b, v).is_some_and(|c| c == 0.0);
    (zero(args[0]) || zero(args[1]))
        .then(|| b.splat(0.0, &b.type_of(args[0]).shape.to_vec()).value())
}

/// `x - 0 = x`, `x - (-y) = x + y`.
fn minus(b: &Builder, args: &[Value]) -> Option<Value> {
    if is_splat(b, args[1], 0.0) {
        return Some(args[0]);
    }
    match b.definition(args[1]) {
        Some((Op::Unary(Unary::Neg), Some(inner))) => {
            Some(emit(b, &Op::Binary(Binary::Add), &[args[0], inner]))
        }
        _ => None,
    }
}

/// `x + -0 = x`, `x + (-y) = x - y`, either way round.
fn plus(b: &Builder, args: &[Value]) -> Option<Value> {
    for (x, y) in [(args[0], args[1]), (args[1], args[0])] {
        if is_splat(b, y, -0.0) {
            return Some(x);
        }
        if let Some((Op::Unary(Unary::Neg), Some(inner))) = b.definition(y) {
            return Some(emit(b, &Op::Binary(Binary::Sub), &[x, inner]));
        }
    }
    None
}

/// A broadcast adding no axis is its operand; a broadcast of a broadcast is one broadcast.
fn broadcast_of_broadcast(b: &Builder, shape: Dims, axes: Dims, arg: Value) -> Option<Value> {
    if axes.is_empty() {
        return Some(arg);
    }
    match b.definition(arg) {
        Some((Op::Broadcast { axes: inner, .. }, Some(x))) => {
            // The inner op's axes, seen in the outer result: the positions not added by the
            // outer broadcast, in order.
            let kept: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(*i)).collect();
            let mut all: Vec<usize> = axes.iter().chain(inner.iter().map(|a| kept[a])).collect();
            all.sort_unstable();
            let op = Op::Broadcast {
                shape,
                axes: Dims::new(&all),
            };
            Some(emit(b, &op, &[x]))
        }
        _ => None,
    }
}

/// The identity permutation is its operand; a transpose of a transpose is one transpose.
fn transpose_of_transpose(b: &Builder, perm: Dims, arg: Value) -> Option<Value> {
    if perm.iter().enumerate().all(|(i, p)| i == p) {
        return Some(arg);
    }
    match b.definition(arg) {
        Some((Op::Transpose { perm: inner }, Some(x))) => {
            let composed: Vec<usize> = perm.iter().map(|p| inner.get(p)).collect();
            let op = Op::Transpose {
                perm: Dims::new(&composed),
            };
            Some(emit(b, &op, &[x]))
        }
        _ => None,
    }
}

/// A slice of a concat that lies within one of its parts is a slice of that part (the
/// packed results of scans are cut and joined this way by the transforms).
fn slice_of_concat(b: &Builder, start: Dims, stop: Dims, arg: Value) -> Option<Value> {
    let (Op::Concat { axis }, _) = b.definition(arg)? else {
        return None;
    };
    let axis = axis as usize;
    let mut at = 0;
    for part in b.operands(arg) {
        let len = b.type_of(part).shape.get(axis);
        if start.get(axis) >= at && stop.get(axis) <= at + len && len > 0 {
            let shift = |d: Dims| {
                let mut v = d.to_vec();
                v[axis] -= at;
                Dims::new(&v)
            };
            let op = Op::Slice {
                start: shift(start),
                stop: shift(stop),
            };
            return Some(emit(b, &op, &[part]));
        }
        at += len;
    }
    None
}

/// A slice of everything is its operand. A slice of a pad reads the padded value: within it,
/// a slice of it; within the padding, zeros; across its edge along one axis, the concat of
/// the zeros and the slice of it along that axis (which loops read piecewise, so neither the
/// pad nor the slice is stored: the neighbour reads of a stencil such as `bratu`'s).
fn slice_of_pad(b: &Builder, start: Dims, stop: Dims, arg: Value) -> Option<Value> {
    let shape = b.type_of(arg).shape;
    if start.iter().all(|s| s == 0) && stop == shape {
        return Some(arg);
    }
    let Some((Op::Pad { lo, .. }, Some(x))) = b.definition(arg) else {
        return None;
    };
    let inner = b.type_of(x).shape;
    let rank = shape.len();
    // Per axis, the window's overlap with x: `[a, e)` in x's indices (empty if a >= e).
    let overlap: Vec<(usize, usize)> = (0..rank)
        .map(|d| {
            let a = start.get(d).max(lo.get(d)) - lo.get(d);
            let e = stop.get(d).min(lo.get(d) + inner.get(d)).max(lo.get(d)) - lo.get(d);
            (a, e.max(a))
        })
        .collect();
    let ty = b.type_of(arg).with_shape(Dims::new(
        &(0..rank)
            .map(|d| stop.get(d) - start.get(d))
            .collect::<Vec<_>>(),
    ));
    if overlap.iter().any(|&(a, e)| a == e) {
        return Some(constant(b, ty, Literal::Splat(0.0)));
    }
    let inside = |d: usize| overlap[d].1 - overlap[d].0 == stop.get(d) - start.get(d);
    let crossing: Vec<usize> = (0..rank).filter(|&d| !inside(d)).collect();
    if crossing.len() > 1 {
        return None;
    }
    let part = emit(
        b,
        &Op::Slice {
            start: Dims::new(&overlap.iter().map(|o| o.0).collect::<Vec<_>>()),
            stop: Dims::new(&overlap.iter().map(|o| o.1).collect::<Vec<_>>()),
        },
        &[x],
    );
    let &[d] = crossing.as_slice() else {
        return Some(part);
    };
    // Zeros before and after the part along d.
    let before = (lo.get(d) + overlap[d].0).saturating_sub(start.get(d));
    let after = stop.get(d) - start.get(d) - before - (overlap[d].1 - overlap[d].0);
    let mut parts = Vec::with_capacity(3);
    for (n, is_part) in [(before, false), (0, true), (after, false)] {
        if is_part {
            parts.push(part);
        } else if n > 0 {
            let mut dims = ty.shape.to_vec();
            dims[d] = n;
            parts.push(constant(
                b,
                ty.with_shape(Dims::new(&dims)),
                Literal::Splat(0.0),
            ));
        }
    }
    Some(emit(b, &Op::Concat { axis: d as u32 }, &parts))
}
