//! Reverse mode through `scan`: gradients and hvps of functions with scans equal those of the
//! same functions unrolled, under every checkpointing policy, nested scans and reverse scans
//! included; the transforms verify and stay closed (hvp of a function holding both scans).

mod common;

use adjit::ir::{Builder, Checkpoint, Func, ScanOptions, Var};
use adjit::{ad, interp};
use common::max_rel_diff;

const POLICIES: [Checkpoint; 6] = [
    Checkpoint::Auto,
    Checkpoint::All,
    Checkpoint::Carry,
    Checkpoint::Binomial(1),
    Checkpoint::Binomial(2),
    Checkpoint::Binomial(50),
];

/// One step of a small recurrent system with two carries of different shapes and two
/// per-step outputs: h' = tanh(W h + x + s), s' = s * 0.9 + sum(h') / 10, ys = (h'^2, s').
fn step<'c>(
    _: &'c Builder,
    c: &[Var<'c>],
    h: &[Var<'c>],
    x: &[Var<'c>],
) -> (Vec<Var<'c>>, Vec<Var<'c>>) {
    let w = c[0];
    let (hv, s) = (h[0], h[1]);
    let pre = w.matmul(hv.reshape(&[3, 1])).reshape(&[3]) + x[0] + s;
    let h2 = pre.tanh();
    let s2 = s * 0.9 + h2.sum() / 10.0;
    (vec![h2, s2], vec![h2 * h2, s2])
}

/// The loss over the scan's results: every output counts, so every cotangent path is used.
fn loss<'b>(hn: Var<'b>, sn: Var<'b>, ys0: Var<'b>, ys1: Var<'b>) -> Var<'b> {
    (hn * hn).sum() + sn.sin() + ys0.sum() * 0.5 + (ys1 * ys1).sum()
}

const N: usize = 7;

fn scanned(policy: Checkpoint, reverse: bool) -> Func {
    let b = Builder::new("scanned");
    let w = b.param("w", &[3, 3]);
    let h0 = b.param("h0", &[3]);
    let s0 = b.param("s0", &[]);
    let xs = b.param("xs", &[N, 3]);
    let opts = ScanOptions::new("step", N)
        .reverse(reverse)
        .checkpoint(policy);
    let out = b.scan(opts, &[w], &[h0, s0], &[xs], step);
    let l = loss(out.carries[0], out.carries[1], out.ys[0], out.ys[1]);
    b.finish(&[l]).unwrap()
}

fn unrolled(reverse: bool) -> Func {
    let b = Builder::new("unrolled");
    let w = b.param("w", &[3, 3]);
    let h0 = b.param("h0", &[3]);
    let s0 = b.param("s0", &[]);
    let xs = b.param("xs", &[N, 3]);
    let (mut h, mut s) = (h0, s0);
    let mut ys0 = vec![None; N];
    let mut ys1 = vec![None; N];
    let order: Vec<usize> = if reverse {
        (0..N).rev().collect()
    } else {
        (0..N).collect()
    };
    for i in order {
        let x = xs.slice(&[i, 0], &[i + 1, 3]).reshape(&[3]);
        let (hs, ys) = step(&b, &[w], &[h, s], &[x]);
        (h, s) = (hs[0], hs[1]);
        ys0[i] = Some(ys[0].reshape(&[1, 3]));
        ys1[i] = Some(ys[1].reshape(&[1]));
    }
    let ys0: Vec<Var<'_>> = ys0.into_iter().map(Option::unwrap).collect();
    let ys1: Vec<Var<'_>> = ys1.into_iter().map(Option::unwrap).collect();
    let l = loss(h, s, b.concat(&ys0, 0), b.concat(&ys1, 0));
    b.finish(&[l]).unwrap()
}

fn inputs(f: &Func) -> Vec<Vec<f64>> {
    adjit::inputs::defaults(f, 7)
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: result counts");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let d = max_rel_diff(x, y);
        assert!(
            d <= 1e-13,
            "{what}: result {k} differs by {d:e}\n{x:?}\n{y:?}"
        );
    }
}

#[test]
fn grad_through_scan_equals_unrolled_under_every_policy() {
    for reverse in [false, true] {
        let reference = ad::grad(&unrolled(reverse), None).unwrap();
        let want = interp::eval(&reference, &inputs(&reference)).unwrap();
        for policy in POLICIES {
            let f = scanned(policy, reverse);
            let g = ad::grad(&f, None).unwrap();
            let got = interp::eval(&g, &inputs(&g)).unwrap();
            assert_close(&got, &want, &format!("grad, {policy}, reverse {reverse}"));
        }
    }
}

#[test]
fn hvp_through_scan_equals_unrolled_under_every_policy() {
    for reverse in [false, true] {
        let reference = ad::hvp(&unrolled(reverse), None).unwrap();
        let mut hin = inputs(&reference);
        hin.truncate(4);
        for (i, p) in reference.params[4..].iter().enumerate() {
            hin.push(
                (0..p.ty.numel())
                    .map(|k| 0.3 - 0.1 * ((k + i) % 5) as f64)
                    .collect(),
            );
        }
        let want = interp::eval(&reference, &hin).unwrap();
        for policy in POLICIES {
            let h = ad::hvp(&scanned(policy, reverse), None).unwrap();
            let got = interp::eval(&h, &hin).unwrap();
            assert_close(&got, &want, &format!("hvp, {policy}, reverse {reverse}"));
        }
    }
}

/// A scan whose body holds a scan: the inner one sums a weighted row, the outer carries it.
fn nested(policy: Checkpoint) -> Func {
    let b = Builder::new("nested");
    let a = b.param("a", &[4, 5]);
    let k = b.param("k", &[]);
    let acc0 = b.scalar(0.0);
    let outer = ScanOptions::new("row", 4).checkpoint(policy);
    let out = b.scan(outer, &[k], &[acc0], &[a], |sb, c, h, x| {
        let inner = ScanOptions::new("elem", 5).checkpoint(policy);
        let zero = sb.scalar(0.0);
        let row = sb.scan(inner, &[c[0]], &[zero], &[x[0]], |_, c, h, x| {
            let t = (h[0] + x[0] * c[0]).sin();
            (vec![t], vec![t * t])
        });
        let next = h[0] * 0.5 + row.carries[0] + row.ys[0].sum();
        (vec![next], vec![row.carries[0]])
    });
    let l = out.carries[0] + (out.ys[0] * out.ys[0]).sum();
    b.finish(&[l]).unwrap()
}

fn nested_unrolled() -> Func {
    let b = Builder::new("nested_unrolled");
    let a = b.param("a", &[4, 5]);
    let k = b.param("k", &[]);
    let mut acc = b.scalar(0.0);
    let mut rows = Vec::new();
    for i in 0..4 {
        let mut h = b.scalar(0.0);
        let mut sq = Vec::new();
        for j in 0..5 {
            let x = a.slice(&[i, j], &[i + 1, j + 1]).reshape(&[]);
            h = (h + x * k).sin();
            sq.push((h * h).reshape(&[1]));
        }
        acc = acc * 0.5 + h + b.concat(&sq, 0).sum();
        rows.push(h.reshape(&[1]));
    }
    let ys = b.concat(&rows, 0);
    let l = acc + (ys * ys).sum();
    b.finish(&[l]).unwrap()
}

#[test]
fn nested_scans_differentiate_to_first_and_second_order() {
    let reference = ad::hvp(&nested_unrolled(), None).unwrap();
    let mut hin = inputs(&reference);
    hin.truncate(2);
    hin.push((0..20).map(|k| 0.05 * k as f64 - 0.4).collect());
    hin.push(vec![0.7]);
    let want = interp::eval(&reference, &hin).unwrap();
    for policy in POLICIES {
        let f = nested(policy);
        let y = interp::eval(&f, &hin[..2]).unwrap();
        assert_close(&y, &want[..1], &format!("value, {policy}"));
        let g = ad::grad(&f, None).unwrap();
        assert_close(
            &interp::eval(&g, &hin[..2]).unwrap(),
            &want[..3],
            &format!("grad, {policy}"),
        );
        let h = ad::hvp(&f, None).unwrap();
        assert_close(
            &interp::eval(&h, &hin).unwrap(),
            &want,
            &format!("hvp, {policy}"),
        );
    }
}

#[test]
fn the_gradient_holds_both_scans() {
    let g = ad::grad(&scanned(Checkpoint::Carry, false), None).unwrap();
    let scans = |f: &Func| {
        f.insts
            .iter()
            .filter(|i| matches!(i.op, adjit::ir::Op::Scan { .. }))
            .count()
    };
    assert_eq!(scans(&g), 2, "a forward and an adjoint scan:\n{g}");
    let h = ad::hvp(&scanned(Checkpoint::Binomial(2), false), None).unwrap();
    assert!(scans(&h) >= 3, "{h}");
}
