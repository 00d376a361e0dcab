//! Contractions: `matmul` of rank-2 matrices or rank-3 stacks, with optional transposes of
//! either operand (so the VJP needs no `transpose` ops).
//!
//! Order of evaluation: each result element starts at `+0.0` and, for `p = 0, 1, ...` in turn,
//! becomes `fma(a[i,p], b[p,j], acc)`: a fused multiply-add, the product and the sum rounded
//! once. A correctly rounded `fma` has one result whoever computes it (the FMA instruction, C's
//! `fma`, `f64::mul_add`), and the JIT's register-tiled kernel keeps that chain for every
//! element (the tiles group elements, not terms of a sum), so compiled code and the interpreter
//! agree bit for bit.
//!
//! The reference kernel is compiled twice: for the FMA instruction, chosen at run time where the
//! CPU has it, and portably (where `mul_add` may be a call of C's `fma`). Both give the same bits.

use super::{refuse, ShapeError};
use crate::ir::{DType, Dims, Op, Type, Var};

/// The sizes of a matmul: `batch` products of `[m,k] x [k,n]` after the optional transposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub ta: bool,
    pub tb: bool,
}

/// Reads the sizes of a well-typed matmul (see `matmul_shape`).
pub fn matmul_dims(a: Type, b: Type, ta: bool, tb: bool) -> MatmulDims {
    let r = a.rank();
    let (m, k) = if ta {
        (a.shape.get(r - 1), a.shape.get(r - 2))
    } else {
        (a.shape.get(r - 2), a.shape.get(r - 1))
    };
    let n = if tb {
        b.shape.get(r - 2)
    } else {
        b.shape.get(r - 1)
    };
    let batch = if r == 3 { a.shape.get(0) } else { 1 };
    MatmulDims {
        batch,
        m,
        k,
        n,
        ta,
        tb,
    }
}

pub(crate) fn matmul_shape(
    op: &Op,
    a: Type,
    b: Type,
    ta: bool,
    tb: bool,
) -> Result<Type, ShapeError> {
    if a.dtype != DType::F64 || b.dtype != DType::F64 {
        return Err(refuse(op, &[a, b], "operands must be f64"));
    }
    let r = a.rank();
    if !(r == 2 || r == 3) || b.rank() != r {
        return Err(refuse(
            op,
            &[a, b],
            "operands must both be rank 2, or both rank 3",
        ));
    }
    if r == 3 && a.shape.get(0) != b.shape.get(0) {
        return Err(refuse(op, &[a, b], "batch sizes differ"));
    }
    let kb = if tb {
        b.shape.get(r - 1)
    } else {
        b.shape.get(r - 2)
    };
    let d = matmul_dims(a, b, ta, tb);
    if d.k != kb {
        return Err(refuse(
            op,
            &[a, b],
            format!("contracted sizes differ: {} and {kb}", d.k),
        ));
    }
    let shape = if r == 3 {
        Dims::new(&[d.batch, d.m, d.n])
    } else {
        Dims::new(&[d.m, d.n])
    };
    Ok(a.with_shape(shape))
}

/// The reference matmul: plain loops. Each result element is the `fma` chain over
/// `p = 0, 1, ...` from `+0.0` whichever loop order is used, so the choice below changes speed,
/// not results; so does the choice between the FMA instruction and a call of C's `fma`.
pub fn kernel(d: &MatmulDims, a: &[f64], b: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `kernel_fma` needs only the FMA instructions, which the CPU has (checked just
        // above); it is otherwise the safe `loops`.
        unsafe { kernel_fma(d, a, b, out) };
        return;
    }
    loops(d, a, b, out);
}

/// `loops` compiled with the FMA instructions, so that `mul_add` is one instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
fn kernel_fma(d: &MatmulDims, a: &[f64], b: &[f64], out: &mut [f64]) {
    loops(d, a, b, out);
}

/// The loops of `kernel`, inlined into each of its compilations.
#[inline(always)]
fn loops(d: &MatmulDims, a: &[f64], b: &[f64], out: &mut [f64]) {
    let (m, k, n) = (d.m, d.k, d.n);
    // Element (i, p) of A sits at i*ai + p*ap; element (p, j) of B at p*bp + j*bj.
    let (ai, ap) = if d.ta { (1, m) } else { (k, 1) };
    let (bp, bj) = if d.tb { (1, k) } else { (n, 1) };
    for t in 0..d.batch {
        let a = &a[t * m * k..(t + 1) * m * k];
        let b = &b[t * k * n..(t + 1) * k * n];
        let o = &mut out[t * m * n..(t + 1) * m * n];
        if bj == 1 && n > 1 {
            // Rows of B are contiguous: accumulate whole rows of the result (i, p, j order).
            o.fill(0.0);
            for i in 0..m {
                let row = &mut o[i * n..(i + 1) * n];
                for p in 0..k {
                    let x = a[i * ai + p * ap];
                    for (r, &y) in row.iter_mut().zip(&b[p * bp..p * bp + n]) {
                        *r = x.mul_add(y, *r);
                    }
                }
            }
        } else {
            // Columns of B are contiguous (or there is one): one dot product per element.
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0;
                    for p in 0..k {
                        s = a[i * ai + p * ap].mul_add(b[p * bp + j * bj], s);
                    }
                    o[i * n + j] = s;
                }
            }
        }
    }
}

/// The value of every element of a matmul of splats `x` and `y` contracting `k` terms: the
/// kernel's `fma` chain.
pub fn splat_product(x: f64, y: f64, k: usize) -> f64 {
    (0..k).fold(0.0, |acc, _| x.mul_add(y, acc))
}

/// The VJP of `C = op(A) op(B)` (`op` transposes where `ta`/`tb` say): two more matmuls with
/// the transposes folded into their flags, so no `transpose` op is emitted.
pub fn vjp<'b>(
    a: Var<'b>,
    b: Var<'b>,
    ta: bool,
    tb: bool,
    g: Var<'b>,
    need_a: bool,
    need_b: bool,
) -> [Option<Var<'b>>; 2] {
    let da = need_a.then(|| {
        if ta {
            b.matmul_t(g, tb, true)
        } else {
            g.matmul_t(b, false, !tb)
        }
    });
    let db = need_b.then(|| {
        if tb {
            g.matmul_t(a, true, ta)
        } else {
            a.matmul_t(g, !ta, false)
        }
    });
    [da, db]
}

/// The JVP of `matmul`: it is bilinear, so `ta @ b + a @ tb` with the same transposes. With
/// `lead` axes of directions in front of the tangents, the products are batched over them.
pub fn jvp<'b>(
    a: Var<'b>,
    b: Var<'b>,
    ta: bool,
    tb: bool,
    da: Option<Var<'b>>,
    db: Option<Var<'b>>,
    lead: usize,
) -> Option<Var<'b>> {
    let left = da.map(|da| batched(da, b, ta, tb, lead, true));
    let right = db.map(|db| batched(a, db, ta, tb, lead, false));
    match (left, right) {
        (Some(l), Some(r)) => Some(l + r),
        (d, None) | (None, d) => d,
    }
}

/// `a @ b` (with the transposes) where the tangent operand (`a` if `tangent_left`) has `lead`
/// axes of directions in front: every product element sums in the same order as the plain
/// matmul's. A left tangent that is not transposed becomes one tall matrix; otherwise the
/// directions join the batch axis and the primal operand is broadcast along them.
fn batched<'b>(a: Var<'b>, b: Var<'b>, ta: bool, tb: bool, lead: usize, left: bool) -> Var<'b> {
    if lead == 0 {
        return a.matmul_t(b, ta, tb);
    }
    let (t, p) = if left { (a, b) } else { (b, a) };
    let ts = t.shape();
    let (dirs, inner) = ts.split_at(lead);
    let k: usize = dirs.iter().product();
    let front = |s: Vec<usize>| -> Vec<usize> { dirs.iter().copied().chain(s).collect() };
    if left && !ta && inner.len() == 2 {
        let rows = t.reshape(&[k * inner[0], inner[1]]).matmul_t(p, false, tb);
        let n = rows.shape()[1];
        return rows.reshape(&front(vec![inner[0], n]));
    }
    // Both as [k * batch, m, n] stacks.
    let stack = |v: Var<'b>, s: &[usize]| -> Var<'b> {
        let batch = if s.len() == 3 { s[0] } else { 1 };
        v.reshape(&[k * batch, s[s.len() - 2], s[s.len() - 1]])
    };
    let pe = p.expand(&front(p.shape()), &(0..lead).collect::<Vec<_>>());
    let (ts3, ps3) = (stack(t, inner), stack(pe, &p.shape()));
    let out = if left {
        ts3.matmul_t(ps3, ta, tb)
    } else {
        ps3.matmul_t(ts3, ta, tb)
    };
    let os = out.shape();
    let tail = if inner.len() == 3 {
        vec![inner[0], os[1], os[2]]
    } else {
        vec![os[1], os[2]]
    };
    out.reshape(&front(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_agree_with_plain_product() {
        // A = [[1,2,3],[4,5,6]] (2x3), B = [[1,0],[0,1],[1,1]] (3x2); AB = [[4,5],[10,11]].
        let a = [1., 2., 3., 4., 5., 6.];
        let b = [1., 0., 0., 1., 1., 1.];
        let at = [1., 4., 2., 5., 3., 6.];
        let bt = [1., 0., 1., 0., 1., 1.];
        let expect = [4., 5., 10., 11.];
        for (ta, tb, x, y) in [
            (false, false, &a, &b),
            (true, false, &at, &b),
            (false, true, &a, &bt),
            (true, true, &at, &bt),
        ] {
            let d = MatmulDims {
                batch: 1,
                m: 2,
                k: 3,
                n: 2,
                ta,
                tb,
            };
            let mut out = [0.0; 4];
            kernel(&d, x, y, &mut out);
            assert_eq!(out, expect, "ta={ta} tb={tb}");
        }
    }

    #[test]
    fn each_step_is_one_fused_multiply_add() {
        // 1 * -1, then (1 + 2^-30)(1 - 2^-30) = 1 - 2^-60: fused, -1 + (1 - 2^-60) = -2^-60
        // exactly; a rounded product (1.0) and a separate add would give 0.
        let e = 2f64.powi(-30);
        let a = [1.0, 1.0 + e];
        let expect = -(2f64.powi(-60));
        // n = 2 takes the kernel's row loop when B is not transposed, n = 1 its dot products.
        for (n, ta, tb) in [
            (1, false, false),
            (1, true, true),
            (2, false, false),
            (2, true, true),
        ] {
            // A is 1x2 whichever way it is stored; B is 2xn, both columns (-1, 1 - e).
            let b: Vec<f64> = if tb {
                (0..n).flat_map(|_| [-1.0, 1.0 - e]).collect()
            } else {
                [vec![-1.0; n], vec![1.0 - e; n]].concat()
            };
            let d = MatmulDims {
                batch: 1,
                m: 1,
                k: 2,
                n,
                ta,
                tb,
            };
            let (mut fast, mut portable) = ([0.0; 2], [0.0; 2]);
            kernel(&d, &a, &b, &mut fast[..n]);
            loops(&d, &a, &b, &mut portable[..n]);
            assert_eq!(fast[..n], vec![expect; n][..], "n={n} ta={ta} tb={tb}");
            assert_eq!(portable.map(f64::to_bits), fast.map(f64::to_bits));
        }
        assert_eq!(splat_product(1.0 + e, 1.0 - e, 1), 1.0);
        assert_eq!(splat_product(-1.0, 0.5, 3), -1.5);
    }
}
