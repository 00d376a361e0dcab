//! Functions holding scans, with their values computed by plain Rust loops: a reverse replay
//! scan built directly as an `Op::Scan` (the shape `ad` gives a `binomial` adjoint) and a scan
//! nested in a scan's body. Shared by `scan_interp.rs` and `no_alloc.rs`.

use adjit::ir::{Body, Builder, Checkpoint, Func, Op, ScanOptions, ScanOut, Var};

/// Sums in index order from `+0.0`, as the kernels do.
pub fn sum(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |s, &x| s + x)
}

/// `(a, r0: [d], q0, g0: [d], xs0: [n, d], xs1: [n]) -> (g, ys0: [n], ys1: [n])`: a reverse
/// scan over the trajectory `r_{i+1} = r_i * a + xs0_i`, `q_{i+1} = q_i + sum(r_i)` (the replay
/// step), whose step `i` is `g' = g * a + r_i * xs1_i + q_i`, `ys0_i = sum(r_i * g')`,
/// `ys1_i = sum(g') * xs1_i`.
pub fn replay_scan(n: usize, d: usize, checkpoint: Checkpoint) -> Func {
    let b = Builder::new("replayed");
    let (a, r0, q0) = (b.param("a", &[]), b.param("r0", &[d]), b.param("q0", &[]));
    let g0 = b.param("g0", &[d]);
    let (xs0, xs1) = (b.param("xs0", &[n, d]), b.param("xs1", &[n]));
    let out = replay_scan_in(&b, n, d, checkpoint, [a, r0, q0, g0, xs0, xs1]);
    b.finish(&[out.carries[0], out.ys[0], out.ys[1]]).unwrap()
}

/// The scan of `replay_scan`, emitted on `b` over `args` (`a, r0, q0, g0, xs0, xs1`).
pub fn replay_scan_in<'b>(
    b: &'b Builder,
    n: usize,
    d: usize,
    checkpoint: Checkpoint,
    args: [Var<'b>; 6],
) -> ScanOut<'b> {
    let rb = Builder::new("replay");
    let (a, r, q) = (rb.param("a", &[]), rb.param("r", &[d]), rb.param("q", &[]));
    let x0 = rb.param("x0", &[d]);
    let replay = rb.finish(&[r * a + x0, q + r.sum()]).unwrap();

    let bb = Builder::new("body");
    let (a, r, q) = (bb.param("a", &[]), bb.param("r", &[d]), bb.param("q", &[]));
    let g = bb.param("g", &[d]);
    let (_x0, x1) = (bb.param("x0", &[d]), bb.param("x1", &[]));
    let g2 = g * a + r * x1 + q;
    let body = bb.finish(&[g2, (r * g2).sum(), g2.sum() * x1]).unwrap();

    let op = Op::Scan {
        body: Body::new(body),
        replay: Some(Body::new(replay)),
        consts: 1,
        carries: 1,
        length: n as u32,
        reverse: true,
        checkpoint,
    };
    let packed = b.try_op(op, &args.map(|v| v.value())).unwrap();
    b.unpack_scan(packed)
}

/// The results of `replay_scan(n, d, _)` on `inputs`, by plain loops.
pub fn replay_reference(n: usize, d: usize, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (a, xs0, xs1) = (inputs[0][0], &inputs[4], &inputs[5]);
    let mut r = vec![inputs[1].clone()];
    let mut q = vec![inputs[2][0]];
    for i in 0..n.saturating_sub(1) {
        let next = (0..d).map(|k| r[i][k] * a + xs0[i * d + k]).collect();
        q.push(q[i] + sum(&r[i]));
        r.push(next);
    }
    let mut g = inputs[3].clone();
    let (mut ys0, mut ys1) = (vec![0.0; n], vec![0.0; n]);
    for i in (0..n).rev() {
        g = (0..d).map(|k| g[k] * a + r[i][k] * xs1[i] + q[i]).collect();
        let rg: Vec<f64> = (0..d).map(|k| r[i][k] * g[k]).collect();
        ys0[i] = sum(&rg);
        ys1[i] = sum(&g) * xs1[i];
    }
    vec![g, ys0, ys1]
}

/// `(k, acc0, xs: [n, m]) -> (acc, ys: [n, m])`: a forward scan over the rows of `xs` whose body
/// runs a reverse scan over the row's elements, `t' = t * k + x` from `t = 0` (a constant of
/// the body), `ys = t'^2`; the outer carry adds each row's final `t`.
pub fn nested_scan(n: usize, m: usize) -> Func {
    let b = Builder::new("nested");
    let (k, acc0, xs) = (
        b.param("k", &[]),
        b.param("acc0", &[]),
        b.param("xs", &[n, m]),
    );
    let outer = ScanOptions::new("outer", n);
    let out = b.scan(outer, &[k], &[acc0], &[xs], |bb, c, h, x| {
        let inner_opts = ScanOptions::new("inner", m).reverse(true);
        let zero = bb.scalar(0.0);
        let inner = bb.scan(inner_opts, &[c[0]], &[zero], &[x[0]], |_, c, t, e| {
            let t2 = t[0] * c[0] + e[0];
            (vec![t2], vec![t2 * t2])
        });
        (vec![h[0] + inner.carries[0]], vec![inner.ys[0]])
    });
    b.finish(&[out.carries[0], out.ys[0]]).unwrap()
}

/// The results of `nested_scan(n, m)` on `inputs`, by plain loops.
pub fn nested_reference(n: usize, m: usize, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (k, mut acc, xs) = (inputs[0][0], inputs[1][0], &inputs[2]);
    let mut ys = vec![0.0; n * m];
    for i in 0..n {
        let mut t = 0.0;
        for j in (0..m).rev() {
            t = t * k + xs[i * m + j];
            ys[i * m + j] = t * t;
        }
        acc += t;
    }
    vec![vec![acc], ys]
}
