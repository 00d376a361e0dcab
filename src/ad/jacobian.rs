//! Dense Jacobians and Hessians in one function each, by vector mode (`jvp::emit` with a
//! leading axis of `k` directions) seeded with identity matrices.
//!
//! - `jacobian` forward: the directions are the unit vectors of the differentiated inputs; each
//!   result's tangent `[k] + result.shape` is cut per input and transposed into
//!   `result.shape + input.shape`.
//! - `jacobian` reverse: the vjp function is linear in its cotangents, so forward vector mode
//!   over those cotangents, seeded with the unit vectors of the results, runs the adjoint sweep
//!   for all of them at once (the primal cotangents are dead code, dropped); each input's
//!   cotangent `[k] + input.shape` is cut per result, already in the stated layout.
//! - `hessian`: forward vector mode over the gradient function (forward-over-reverse).

use super::jvp::{emit, or_zero, tshape};
use super::limits::{fits, fits_vector};
use super::{check_scalar, finish, resolve_wrt, transform, verified, AdError, Seed};
use crate::ir::{Builder, DType, Func, Type, Value, Var};
use crate::simplify::simplifying_builder;

/// How `jacobian` computes: one forward pass over the inputs' unit vectors, one reverse pass
/// over the results' unit vectors, or whichever has fewer directions (forward on ties).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JacobianMode {
    Forward,
    Reverse,
    Auto,
}

/// `f.jacobian(inputs...) -> (outputs..., J_ia...)`: the results of `f`, then for each result
/// `i` and each input `a` of `wrt` (in that order, `a` fastest) the Jacobian `J_ia` of type
/// `f64[result_i.shape + a.shape]` (zeros for a bool result).
pub fn jacobian(f: &Func, wrt: Option<&[&str]>, mode: JacobianMode) -> Result<Func, AdError> {
    verified(f)?;
    let wrt = resolve_wrt(f, wrt)?;
    let inputs: Vec<Type> = wrt.iter().map(|&i| f.params[i].ty).collect();
    let results = f.result_types();
    let n_in: usize = inputs.iter().map(|t| t.numel()).sum();
    let n_out: usize = results
        .iter()
        .filter(|t| t.dtype == DType::F64)
        .map(|t| t.numel())
        .sum();
    let forward = match mode {
        JacobianMode::Forward => true,
        JacobianMode::Reverse => false,
        JacobianMode::Auto => n_in <= n_out,
    };
    for (i, r) in results.iter().enumerate() {
        for (&p, a) in wrt.iter().zip(&inputs) {
            let block = || {
                format!(
                    "the block of result {i} ({r}) by input '{}' ({a})",
                    f.params[p].name
                )
            };
            fits(
                &f.name,
                block,
                r.rank() + a.rank(),
                r.numel().saturating_mul(a.numel()),
            )?;
        }
    }
    if forward {
        fits_vector(f, n_in)?;
        fits_seeds(&f.name, inputs.iter().map(|t| t.numel()), n_in)?;
        forward_jacobian(f, &wrt, n_in)
    } else {
        fits_vector(f, n_out)?;
        let f64_results = results.iter().filter(|t| t.dtype == DType::F64);
        fits_seeds(&f.name, f64_results.map(|t| t.numel()), n_out)?;
        reverse_jacobian(f, &wrt, n_out)
    }
}

/// `f.hessian(inputs...) -> (y, grad..., H_ab...)` for a function with one scalar result: its
/// value, its gradient with respect to each input in `wrt`, then for each pair of inputs
/// `a, b` of `wrt` (`b` fastest) the Hessian block `H_ab = d^2 y / da db` of type
/// `f64[a.shape + b.shape]`. Forward-over-reverse in vector mode, one pass.
pub fn hessian(f: &Func, wrt: Option<&[&str]>) -> Result<Func, AdError> {
    verified(f)?;
    check_scalar(f)?;
    let wrt = resolve_wrt(f, wrt)?;
    let inputs: Vec<Type> = wrt.iter().map(|&i| f.params[i].ty).collect();
    let k: usize = inputs.iter().map(|t| t.numel()).sum();
    for (&pa, a) in wrt.iter().zip(&inputs) {
        for (&pc, c) in wrt.iter().zip(&inputs) {
            let (na, nc) = (&f.params[pa].name, &f.params[pc].name);
            let block = || format!("the block of inputs '{na}' ({a}) by '{nc}' ({c})");
            fits(
                &f.name,
                block,
                a.rank() + c.rank(),
                a.numel().saturating_mul(c.numel()),
            )?;
        }
    }
    let g = finish(transform(
        f,
        format!("{}.grad", f.name),
        &wrt,
        Seed::One(0),
        &[0],
    )?)?;
    fits_vector(&g, k)?;
    fits_seeds(&f.name, inputs.iter().map(|t| t.numel()), k)?;
    let b = simplifying_builder(format!("{}.hessian", f.name), 3 * g.insts.len());
    let params = copy_params(&b, &g);
    let tangents = unit_seeds(&b, g.params.len(), &wrt, &inputs, k);
    let (outs, touts) = emit(&b, &g, &params, &tangents, Some(k))?;
    let mut results: Vec<Value> = outs.iter().map(|v| v.value()).collect();
    for (ia, a) in inputs.iter().enumerate() {
        let off: usize = inputs[..ia].iter().map(|t| t.numel()).sum();
        for (ic, c) in inputs.iter().enumerate() {
            let t = or_zero(&b, touts[1 + ic], *c, Some(k));
            let shape: Vec<usize> = a.shape.iter().chain(c.shape.iter()).collect();
            results.push(
                t.slice_axis(0, off, off + a.numel())
                    .reshape(&shape)
                    .value(),
            );
        }
    }
    finish(b.finish_unverified(&results))
}

fn forward_jacobian(f: &Func, wrt: &[usize], k: usize) -> Result<Func, AdError> {
    let b = simplifying_builder(format!("{}.jacobian", f.name), 3 * f.insts.len());
    let params = copy_params(&b, f);
    let inputs: Vec<Type> = wrt.iter().map(|&i| f.params[i].ty).collect();
    let tangents = unit_seeds(&b, f.params.len(), wrt, &inputs, k);
    let (outs, touts) = emit(&b, f, &params, &tangents, Some(k))?;
    let mut results: Vec<Value> = outs.iter().map(|v| v.value()).collect();
    for (y, t) in outs.iter().zip(&touts) {
        let r = y.ty();
        let t = (r.dtype == DType::F64).then_some(*t).flatten();
        let t = or_zero(&b, t, r.with_dtype(DType::F64), Some(k));
        let mut off = 0;
        for a in &inputs {
            // Rows of this input, [n_a, numel(r)], transposed to [numel(r), n_a].
            let rows = t.slice_axis(0, off, off + a.numel());
            let m = rows.reshape(&[a.numel(), r.numel()]).t();
            let shape: Vec<usize> = r.shape.iter().chain(a.shape.iter()).collect();
            results.push(m.reshape(&shape).value());
            off += a.numel();
        }
    }
    finish(b.finish_unverified(&results))
}

fn reverse_jacobian(f: &Func, wrt: &[usize], k: usize) -> Result<Func, AdError> {
    let keep: Vec<usize> = (0..f.results.len()).collect();
    let v = finish(transform(
        f,
        format!("{}.vjp", f.name),
        wrt,
        Seed::Params,
        &keep,
    )?)?;
    // The forward sweep runs over the vjp function, whose adjoint scans stack their own.
    fits_vector(&v, k)?;
    let b = simplifying_builder(format!("{}.jacobian", f.name), 3 * v.insts.len());
    let np = f.params.len();
    let mut params = copy_params(&b, f);
    let results = f.result_types();
    // The cotangent parameters of `v` become zeros, with the results' unit vectors as tangents.
    let mut tangents: Vec<Option<Var<'_>>> = vec![None; v.params.len()];
    let mut off = 0;
    for (i, r) in results.iter().enumerate() {
        params.push(match r.dtype {
            DType::F64 => b.splat(0.0, &r.shape.to_vec()),
            DType::Bool => b.splat_bool(false, &r.shape.to_vec()),
        });
        if r.dtype == DType::F64 {
            let seed = unit_cols(&b, k, off, r.numel());
            tangents[np + i] = Some(seed.reshape(&tshape(Some(k), *r)));
            off += r.numel();
        }
    }
    let (outs, touts) = emit(&b, &v, &params, &tangents, Some(k))?;
    let mut out: Vec<Value> = outs[..results.len()].iter().map(|v| v.value()).collect();
    let mut off = 0;
    for r in &results {
        for (j, &a) in wrt.iter().enumerate() {
            let a = f.params[a].ty;
            let shape: Vec<usize> = r.shape.iter().chain(a.shape.iter()).collect();
            let block = if r.dtype == DType::F64 {
                let t = or_zero(&b, touts[results.len() + j], a, Some(k));
                t.slice_axis(0, off, off + r.numel()).reshape(&shape)
            } else {
                b.splat(0.0, &shape)
            };
            out.push(block.value());
        }
        if r.dtype == DType::F64 {
            off += r.numel();
        }
    }
    finish(b.finish_unverified(&out))
}

fn copy_params<'b>(b: &'b Builder, f: &Func) -> Vec<Var<'b>> {
    f.params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init))
        .collect()
}

/// The tangents of `n` parameters: for each input of `wrt` (of types `inputs`), its block of
/// the identity `[k, k]`, shaped `[k] + input.shape`; none for the others.
fn unit_seeds<'b>(
    b: &'b Builder,
    n: usize,
    wrt: &[usize],
    inputs: &[Type],
    k: usize,
) -> Vec<Option<Var<'b>>> {
    let mut tangents = vec![None; n];
    let mut off = 0;
    for (&i, a) in wrt.iter().zip(inputs) {
        let cols = unit_cols(b, k, off, a.numel());
        tangents[i] = Some(cols.reshape(&tshape(Some(k), *a)));
        off += a.numel();
    }
    tangents
}

/// Seeds of at most this many elements are constants (written once, with the workspace);
/// larger ones are built by ops, so no large constant is stored.
const SMALL_SEED: usize = 1 << 16;

/// Columns `off..off + n` of the identity of size `k`: `[k, n]`, ones at `(off + j, j)`.
fn unit_cols(b: &Builder, k: usize, off: usize, n: usize) -> Var<'_> {
    if n == 0 {
        return b.splat(0.0, &[k, n]);
    }
    if k * n <= SMALL_SEED {
        let mut data = vec![0.0; k * n];
        (0..n).for_each(|j| data[(off + j) * n + j] = 1.0);
        return b.tensor(&[k, n], &data);
    }
    // The identity of size n: ones at stride n + 1 in a flat [n, n + 1] block, read as [n, n];
    // then rows of zeros above and below.
    let ones = b.splat(1.0, &[n, 1]);
    let flat = ones.pad(&[0, 0], &[0, n]).reshape(&[n * (n + 1)]);
    let eye = flat.slice(&[0], &[n * n]).reshape(&[n, n]);
    eye.pad(&[off, 0], &[k - off - n, 0])
}

/// Checks that the unit seeds of blocks of `sizes` directions among `k` can be built: a block
/// of `n` past `SMALL_SEED` elements is built from an `[n, n + 1]` value (`unit_cols`).
fn fits_seeds(func: &str, sizes: impl Iterator<Item = usize>, k: usize) -> Result<(), AdError> {
    for n in sizes.filter(|&n| n > 0 && k.saturating_mul(n) > SMALL_SEED) {
        let what = || {
            format!(
                "the identity of {n} directions, built as a [{n}, {}] value",
                n + 1
            )
        };
        fits(func, what, 2, n.saturating_mul(n + 1))?;
    }
    Ok(())
}
