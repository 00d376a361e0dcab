//! Ops that move elements without arithmetic: `broadcast reshape transpose slice pad concat`.
//! Shape rules, and the strided walk the interpreter uses for all of them (and for reductions).
//!
//! Transpose pairs: `broadcast`/`reduce_sum`, `slice`/`pad`, `transpose`/`transpose`;
//! `reshape` is its own pair and `concat` pairs with one `slice` per operand.

use super::{check_axes, refuse, remove_axes, Cotangent, ShapeError};
use crate::ir::{Builder, Dims, Op, Type, Value, Var, MAX_ELEMENTS, MAX_RANK};

pub(crate) fn broadcast_shape(
    op: &Op,
    x: Type,
    shape: Dims,
    axes: Dims,
) -> Result<Type, ShapeError> {
    check_axes(axes, shape.len()).map_err(|e| refuse(op, &[x], e))?;
    let expected = remove_axes(shape, axes);
    if expected != x.shape {
        return Err(refuse(
            op,
            &[x],
            format!(
                "shape {shape} without axes {axes} is {expected}, not the operand's {}",
                x.shape
            ),
        ));
    }
    Ok(x.with_shape(shape))
}

pub(crate) fn reshape_shape(op: &Op, x: Type, shape: Dims) -> Result<Type, ShapeError> {
    if shape.product() != x.shape.product() {
        return Err(refuse(
            op,
            &[x],
            format!(
                "shape {shape} holds {} elements, the operand {}",
                shape.product(),
                x.numel()
            ),
        ));
    }
    Ok(x.with_shape(shape))
}

pub(crate) fn transpose_shape(op: &Op, x: Type, perm: Dims) -> Result<Type, ShapeError> {
    let rank = x.rank();
    let mut seen = [false; MAX_RANK];
    let is_perm = perm.len() == rank
        && perm
            .iter()
            .all(|p| p < rank && !std::mem::replace(&mut seen[p], true));
    if !is_perm {
        return Err(refuse(
            op,
            &[x],
            format!("perm {perm} is not a permutation of 0..{rank}"),
        ));
    }
    let shape: Vec<usize> = perm.iter().map(|p| x.shape.get(p)).collect();
    Ok(x.with_shape(Dims::new(&shape)))
}

pub(crate) fn slice_shape(op: &Op, x: Type, start: Dims, stop: Dims) -> Result<Type, ShapeError> {
    let rank = x.rank();
    if start.len() != rank || stop.len() != rank {
        return Err(refuse(
            op,
            &[x],
            format!("start {start} and stop {stop} need {rank} entries"),
        ));
    }
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let (s, e, d) = (start.get(i), stop.get(i), x.shape.get(i));
        if s > e || e > d {
            return Err(refuse(
                op,
                &[x],
                format!("axis {i}: need start <= stop <= {d}, got {s}..{e}"),
            ));
        }
        shape.push(e - s);
    }
    Ok(x.with_shape(Dims::new(&shape)))
}

pub(crate) fn pad_shape(op: &Op, x: Type, lo: Dims, hi: Dims) -> Result<Type, ShapeError> {
    let rank = x.rank();
    if lo.len() != rank || hi.len() != rank {
        return Err(refuse(
            op,
            &[x],
            format!("lo {lo} and hi {hi} need {rank} entries"),
        ));
    }
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let d = lo.get(i) as u64 + x.shape.get(i) as u64 + hi.get(i) as u64;
        if d > MAX_ELEMENTS {
            return Err(refuse(
                op,
                &[x],
                format!("axis {i} would have {d} elements"),
            ));
        }
        shape.push(d as usize);
    }
    Ok(x.with_shape(Dims::new(&shape)))
}

pub(crate) fn concat_shape(op: &Op, xs: &[Type], axis: u32) -> Result<Type, ShapeError> {
    let first = xs[0];
    let axis = axis as usize;
    if axis >= first.rank() {
        return Err(refuse(
            op,
            xs,
            format!("axis {axis} is out of range for rank {}", first.rank()),
        ));
    }
    let mut total: u64 = 0;
    for x in xs {
        let same_other_dims = x.rank() == first.rank()
            && (0..first.rank()).all(|i| i == axis || x.shape.get(i) == first.shape.get(i));
        if x.dtype != first.dtype || !same_other_dims {
            return Err(refuse(
                op,
                xs,
                format!("operands must agree in dtype and in every axis but {axis}"),
            ));
        }
        total += x.shape.get(axis) as u64;
    }
    if total > MAX_ELEMENTS {
        return Err(refuse(
            op,
            xs,
            format!("axis {axis} would have {total} elements"),
        ));
    }
    let mut shape = first.shape.to_vec();
    shape[axis] = total as usize;
    Ok(first.with_shape(Dims::new(&shape)))
}

/// A row-major walk over a shape that tracks two flat offsets, each with its own strides: the
/// one loop behind every layout op and every reduction of the interpreter. Stored inline, so a
/// planned step holds no heap memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    rank: usize,
    shape: [usize; MAX_RANK],
    a: [usize; MAX_RANK],
    b: [usize; MAX_RANK],
    a0: usize,
    b0: usize,
}

impl Walk {
    /// A walk over `shape` with strides `a` and `b` and starting offsets `a0` and `b0`.
    /// Unit axes are dropped and axes that are contiguous in both strides are merged.
    pub fn new(shape: &[usize], a: &[usize], b: &[usize], a0: usize, b0: usize) -> Walk {
        let mut w = Walk {
            rank: 0,
            shape: [0; MAX_RANK],
            a: [0; MAX_RANK],
            b: [0; MAX_RANK],
            a0,
            b0,
        };
        for i in 0..shape.len() {
            if shape[i] == 1 {
                continue;
            }
            let r = w.rank;
            if r > 0 && w.a[r - 1] == a[i] * shape[i] && w.b[r - 1] == b[i] * shape[i] {
                w.shape[r - 1] *= shape[i];
                w.a[r - 1] = a[i];
                w.b[r - 1] = b[i];
            } else {
                w.shape[r] = shape[i];
                w.a[r] = a[i];
                w.b[r] = b[i];
                w.rank += 1;
            }
        }
        if shape.contains(&0) {
            w.rank = 1;
            w.shape[0] = 0;
        }
        w
    }

    /// Calls `f(offset_a, offset_b)` for every index, in row-major order of the shape.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let r = self.rank;
        if r == 0 {
            f(self.a0, self.b0);
            return;
        }
        let (inner, sa, sb) = (self.shape[r - 1], self.a[r - 1], self.b[r - 1]);
        if inner == 0 {
            return;
        }
        let mut idx = [0usize; MAX_RANK];
        let (mut oa, mut ob) = (self.a0, self.b0);
        loop {
            for j in 0..inner {
                f(oa + j * sa, ob + j * sb);
            }
            let mut d = r - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                oa += self.a[d];
                ob += self.b[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                oa -= self.a[d] * self.shape[d];
                ob -= self.b[d] * self.shape[d];
                idx[d] = 0;
            }
        }
    }

    /// `dst[b] = src[a]` over the walk.
    pub fn copy(&self, src: &[f64], dst: &mut [f64]) {
        self.for_each(|a, b| dst[b] = src[a]);
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i];
    }
    s
}

/// Broadcast `x` to `shape` by new `axes`: walks the result; source strides are 0 on new axes.
pub fn broadcast_walk(shape: Dims, axes: Dims) -> Walk {
    let out = shape.to_vec();
    let src_shape = remove_axes(shape, axes).to_vec();
    let src_strides = strides(&src_shape);
    let mut a = Vec::with_capacity(out.len());
    let mut k = 0;
    for i in 0..out.len() {
        if axes.contains(i) {
            a.push(0);
        } else {
            a.push(src_strides[k]);
            k += 1;
        }
    }
    Walk::new(&out, &a, &strides(&out), 0, 0)
}

/// Transpose `x` by `perm`: walks the result in order, reading the source permuted.
pub fn transpose_walk(x: Dims, perm: Dims) -> Walk {
    let xs = strides(&x.to_vec());
    let out: Vec<usize> = perm.iter().map(|p| x.get(p)).collect();
    let a: Vec<usize> = perm.iter().map(|p| xs[p]).collect();
    Walk::new(&out, &a, &strides(&out), 0, 0)
}

/// Slice `x` to `start..stop`: walks the result, reading the source window.
pub fn slice_walk(x: Dims, start: Dims, stop: Dims) -> Walk {
    let xs = strides(&x.to_vec());
    let out: Vec<usize> = start.iter().zip(stop.iter()).map(|(s, e)| e - s).collect();
    let a0 = start.iter().zip(&xs).map(|(s, st)| s * st).sum();
    Walk::new(&out, &xs, &strides(&out), a0, 0)
}

/// Place `x` (of shape `x`) inside a result of shape `out` at offset `lo`: used by `pad` (after
/// zero-filling) and by `concat` (once per operand).
pub fn place_walk(x: Dims, out: Dims, lo: &[usize]) -> Walk {
    let x = x.to_vec();
    let os = strides(&out.to_vec());
    let b0 = lo.iter().zip(&os).map(|(l, s)| l * s).sum();
    Walk::new(&x, &strides(&x), &os, 0, b0)
}

// The VJPs of the layout ops: each is the op's transpose applied to the cotangent.

pub fn broadcast_vjp<'b>(axes: Dims, g: Var<'b>) -> Var<'b> {
    g.sum_axes(&axes.to_vec())
}

pub fn reshape_vjp<'b>(x: Var<'b>, g: Var<'b>) -> Var<'b> {
    g.reshape(&x.shape())
}

pub fn transpose_vjp<'b>(perm: Dims, g: Var<'b>) -> Var<'b> {
    let mut inverse = vec![0; perm.len()];
    for (i, p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    g.transpose(&inverse)
}

/// The cotangent of a slice is `g` padded back to the operand's shape: left placed at `start`
/// (see `Cotangent::Placed`) so that the contributions of many slices of one value are summed
/// by one `assemble` instead of one padded tensor each.
pub fn slice_vjp(start: Dims, g: Var<'_>) -> Cotangent<'_> {
    Cotangent::Placed { start, value: g }
}

/// Sums pieces placed in a zero tensor of type `ty`. Pieces that differ from the full shape
/// along one common axis become one `concat` of segments (zeros filling the gaps); others are
/// padded and added.
pub fn assemble<'b>(b: &'b Builder, ty: Type, mut pieces: Vec<(Dims, Var<'b>)>) -> Var<'b> {
    let shape = ty.shape.to_vec();
    let partial_axes = |start: &Dims, piece: &Var<'b>| -> Vec<usize> {
        let ps = piece.shape();
        (0..shape.len())
            .filter(|&a| start.get(a) != 0 || ps[a] != shape[a])
            .collect()
    };
    let axis = {
        let mut axes: Vec<usize> = pieces
            .iter()
            .flat_map(|(s, p)| partial_axes(s, p))
            .collect();
        axes.sort_unstable();
        axes.dedup();
        (axes.len() == 1).then(|| axes[0])
    };
    let Some(axis) = axis else {
        // No single axis: pad each piece to the full shape and add them up.
        let mut total: Option<Var<'b>> = None;
        for (start, piece) in pieces {
            let hi: Vec<usize> = (0..shape.len())
                .map(|a| shape[a] - start.get(a) - piece.shape()[a])
                .collect();
            let padded = piece.pad(&start.to_vec(), &hi);
            total = Some(total.map_or(padded, |t| t + padded));
        }
        return total.expect("at least one piece");
    };
    pieces.sort_by_key(|(start, _)| start.get(axis));
    // Cut the axis at every piece's ends; each segment is the sum of the pieces covering it
    // (or zeros), and one concat lays the segments side by side.
    let span =
        |(start, piece): &(Dims, Var<'b>)| (start.get(axis), start.get(axis) + piece.shape()[axis]);
    let mut cuts: Vec<usize> = pieces
        .iter()
        .flat_map(|p| [span(p).0, span(p).1])
        .chain([0, shape[axis]])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let zeros = |len: usize| {
        let mut s = shape.clone();
        s[axis] = len;
        b.splat(0.0, &s)
    };
    let mut parts = Vec::with_capacity(cuts.len());
    let mut active: Vec<(Dims, Var<'b>)> = Vec::new();
    let mut next = 0;
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        active.retain(|p| span(p).1 > lo);
        while next < pieces.len() && span(&pieces[next]).0 <= lo {
            active.push(pieces[next]);
            next += 1;
        }
        let mut segment: Option<Var<'b>> = None;
        for p in &active {
            let part = p.1.slice_axis(axis, lo - span(p).0, hi - span(p).0);
            segment = Some(segment.map_or(part, |acc| acc + part));
        }
        parts.push(segment.unwrap_or_else(|| zeros(hi - lo)));
    }
    if parts.len() == 1 {
        parts[0]
    } else {
        b.concat(&parts, axis)
    }
}

pub fn pad_vjp<'b>(x: Var<'b>, lo: Dims, g: Var<'b>) -> Var<'b> {
    let stop: Vec<usize> = lo.iter().zip(x.shape()).map(|(l, d)| l + d).collect();
    g.slice(&lo.to_vec(), &stop)
}

/// One slice of the cotangent per operand that needs it.
pub fn concat_vjp<'b>(
    args: &[Var<'b>],
    axis: u32,
    g: Var<'b>,
    needs: &[bool],
) -> Vec<Option<Var<'b>>> {
    let axis = axis as usize;
    let mut at = 0;
    args.iter()
        .zip(needs)
        .map(|(a, &need)| {
            let d = a.shape()[axis];
            at += d;
            need.then(|| g.slice_axis(axis, at - d, at))
        })
        .collect()
}

/// The JVP of a layout op (`broadcast`, `reshape`, `transpose`, `slice`, `pad`, `concat`): each
/// is linear, so it is the op itself applied to the tangents; zero tangents of `concat`
/// operands are zeros of their shape (`None` only if all are). `op` must be one of these.
/// Tangents with `lead` axes of directions in front get the op shifted past them.
pub fn jvp<'b>(
    op: &Op,
    args: &[Var<'b>],
    ts: &[Option<Var<'b>>],
    lead: &[usize],
) -> Option<Var<'b>> {
    if ts.iter().all(Option::is_none) {
        return None;
    }
    let b = args[0].builder();
    let values: Vec<Value> = args
        .iter()
        .zip(ts)
        .map(|(a, t)| {
            let shape: Vec<usize> = lead.iter().copied().chain(a.shape()).collect();
            t.unwrap_or_else(|| b.splat(0.0, &shape)).value()
        })
        .collect();
    Some(b.op(shifted(op, lead), &values))
}

/// A layout op applied past `lead` leading axes (any other op is returned as it is).
fn shifted(op: &Op, lead: &[usize]) -> Op {
    let n = lead.len();
    if n == 0 {
        return op.clone();
    }
    let front = |d: Dims| Dims::new(&lead.iter().copied().chain(d.iter()).collect::<Vec<_>>());
    let zeros = |d: Dims| Dims::new(&vec![0; n].into_iter().chain(d.iter()).collect::<Vec<_>>());
    match op {
        Op::Broadcast { shape, axes } => Op::Broadcast {
            shape: front(*shape),
            axes: Dims::new(&super::shift_axes(*axes, n)),
        },
        Op::Reshape { shape } => Op::Reshape {
            shape: front(*shape),
        },
        Op::Transpose { perm } => {
            let p: Vec<usize> = (0..n).chain(super::shift_axes(*perm, n)).collect();
            Op::Transpose {
                perm: Dims::new(&p),
            }
        }
        Op::Slice { start, stop } => Op::Slice {
            start: zeros(*start),
            stop: front(*stop),
        },
        Op::Pad { lo, hi } => Op::Pad {
            lo: zeros(*lo),
            hi: zeros(*hi),
        },
        Op::Concat { axis } => Op::Concat {
            axis: axis + n as u32,
        },
        Op::Const { .. }
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::ReduceSum { .. }
        | Op::ReduceMax { .. }
        | Op::Matmul { .. }
        | Op::Scan { .. } => op.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(w: &Walk, src: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        w.copy(src, &mut out);
        out
    }

    #[test]
    fn transpose_and_broadcast() {
        let x: Vec<f64> = (0..6).map(|i| i as f64).collect(); // [[0,1,2],[3,4,5]]
        let t = transpose_walk(Dims::new(&[2, 3]), Dims::new(&[1, 0]));
        assert_eq!(run(&t, &x, 6), vec![0., 3., 1., 4., 2., 5.]);
        let b = broadcast_walk(Dims::new(&[2, 3]), Dims::new(&[0]));
        assert_eq!(run(&b, &[7., 8., 9.], 6), vec![7., 8., 9., 7., 8., 9.]);
        let b = broadcast_walk(Dims::new(&[2, 3]), Dims::new(&[1]));
        assert_eq!(run(&b, &[7., 8.], 6), vec![7., 7., 7., 8., 8., 8.]);
    }

    #[test]
    fn slice_and_place() {
        let x: Vec<f64> = (0..12).map(|i| i as f64).collect(); // 3x4
        let s = slice_walk(Dims::new(&[3, 4]), Dims::new(&[1, 1]), Dims::new(&[3, 3]));
        assert_eq!(run(&s, &x, 4), vec![5., 6., 9., 10.]);
        let p = place_walk(Dims::new(&[1, 2]), Dims::new(&[2, 3]), &[1, 1]);
        assert_eq!(run(&p, &[1., 2.], 6), vec![0., 0., 0., 0., 1., 2.]);
    }

    #[test]
    fn empty_and_scalar_walks() {
        let w = Walk::new(&[], &[], &[], 2, 0);
        assert_eq!(run(&w, &[0., 0., 5.], 1), vec![5.]);
        let w = Walk::new(&[3, 0], &[0, 1], &[0, 1], 0, 0);
        let mut count = 0;
        w.for_each(|_, _| count += 1);
        assert_eq!(count, 0);
    }
}
