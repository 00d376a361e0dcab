//! Reductions: `reduce_sum` and `reduce_max` over a set of axes, which the result drops.
//!
//! Order of evaluation (the JIT keeps it, so sums agree bit for bit): each result element starts
//! at `+0.0` (sum) or `-inf` (max) and takes the reduced elements in row-major order. The sum of
//! nothing is `0`, the max of nothing `-inf`; `reduce_max` propagates NaN like `max`.

use super::layout::Walk;
use super::{check_axes, refuse, remove_axes, ShapeError};
use crate::ir::{DType, Dims, Op, Type, Var};

pub(crate) fn shape(op: &Op, x: Type, axes: Dims) -> Result<Type, ShapeError> {
    if x.dtype != DType::F64 {
        return Err(refuse(op, &[x], "operand must be f64"));
    }
    check_axes(axes, x.rank()).map_err(|e| refuse(op, &[x], e))?;
    Ok(x.with_shape(remove_axes(x.shape, axes)))
}

/// Walks the operand in row-major order; the second offset is the result element it feeds.
pub fn reduce_walk(x: Dims, axes: Dims) -> Walk {
    let shape = x.to_vec();
    let xs = x.strides();
    let out_strides = remove_axes(x, axes).strides();
    let mut b = Vec::with_capacity(shape.len());
    let mut k = 0;
    for i in 0..shape.len() {
        if axes.contains(i) {
            b.push(0);
        } else {
            b.push(out_strides[k]);
            k += 1;
        }
    }
    Walk::new(&shape, &xs, &b, 0, 0)
}

pub fn sum_kernel(walk: &Walk, x: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    walk.for_each(|a, b| out[b] += x[a]);
}

pub fn max_kernel(walk: &Walk, x: &[f64], out: &mut [f64]) {
    out.fill(f64::NEG_INFINITY);
    walk.for_each(|a, b| out[b] = super::binary::maximum(out[b], x[a]));
}

/// The VJP of `reduce_sum` over `axes`: broadcast the cotangent back (its transpose).
pub fn sum_vjp<'b>(x: Var<'b>, axes: Dims, g: Var<'b>) -> Var<'b> {
    g.expand(&x.shape(), &axes.to_vec())
}

/// The VJP of `reduce_max` over `axes`: the cotangent is shared equally among the elements
/// that equal the maximum (ties split it; a NaN maximum sends it nowhere).
pub fn max_vjp<'b>(x: Var<'b>, y: Var<'b>, axes: Dims, g: Var<'b>) -> Var<'b> {
    let (shape, axes) = (x.shape(), axes.to_vec());
    let b = x.builder();
    let hit = x.eq(y.expand(&shape, &axes));
    let count = b
        .select(hit, b.splat(1.0, &shape), b.splat(0.0, &shape))
        .sum_axes(&axes);
    b.select(hit, (g / count).expand(&shape, &axes), b.splat(0.0, &shape))
}

/// The JVP of `reduce_sum` over `axes`: the sum of the tangent (the op is linear), whose
/// axes come after `lead` axes of directions.
pub fn sum_jvp<'b>(axes: Dims, t: Var<'b>, lead: usize) -> Var<'b> {
    t.sum_axes(&super::shift_axes(axes, lead))
}

/// The JVP of `reduce_max` over `axes`: the mean of the tangent over the elements that equal
/// the maximum, the transpose of `max_vjp`. The tangent is summed over the ties first and
/// divided once per reduced element, not once per element (ties are rare, so the share's
/// rounding rarely matters, and a division per element was most of the rule's cost). The count
/// is at least 1, so a NaN maximum, which no element equals, gets a zero tangent as it sends
/// no cotangent.
pub fn max_jvp<'b>(x: Var<'b>, y: Var<'b>, axes: Dims, t: Var<'b>, lead: usize) -> Var<'b> {
    let (shape, axes) = (x.shape(), axes.to_vec());
    let b = x.builder();
    let hit = x.eq(y.expand(&shape, &axes));
    let count = b
        .select(hit, b.splat(1.0, &shape), b.splat(0.0, &shape))
        .sum_axes(&axes);
    let lead_axes = super::shift_axes(Dims::new(&axes), lead);
    let summed = b.select(hit, t, b.splat(0.0, &shape)).sum_axes(&lead_axes);
    summed / count.max(b.splat(1.0, &count.shape()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_each_axis() {
        let x: Vec<f64> = (0..6).map(|i| i as f64).collect(); // [[0,1,2],[3,4,5]]
        let s = Dims::new(&[2, 3]);
        let mut out = vec![0.0; 3];
        sum_kernel(&reduce_walk(s, Dims::new(&[0])), &x, &mut out);
        assert_eq!(out, vec![3., 5., 7.]);
        let mut out = vec![0.0; 2];
        sum_kernel(&reduce_walk(s, Dims::new(&[1])), &x, &mut out);
        assert_eq!(out, vec![3., 12.]);
        let mut out = vec![0.0; 1];
        max_kernel(&reduce_walk(s, Dims::new(&[0, 1])), &x, &mut out);
        assert_eq!(out, vec![5.]);
    }
}
