//! The interpreter runs `scan`: results equal plain Rust loops bit for bit (carries and per-step
//! outputs of several shapes, consts, `reverse`, lengths 0 and 1, one-element, empty and rank-0
//! values, a scan nested in a scan's body), and replay scans give the same bits under every
//! checkpointing policy, with as many replay steps as `revolve::forward_steps` and a workspace
//! that grows with the snapshots, not with the length; so do the gradients `ad` builds.

mod common;

use adjit::call::Executor;
use adjit::interp::{self, Program};
use adjit::ir::{Builder, Checkpoint, Func, ScanOptions, Var};
use adjit::revolve;
use common::scans::{self, sum};

fn bits(values: &[Vec<f64>]) -> Vec<Vec<u64>> {
    values
        .iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[track_caller]
fn assert_same(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) {
    assert_eq!(
        bits(got),
        bits(want),
        "{what}:\n got {got:?}\nwant {want:?}"
    );
}

fn inputs(f: &Func, seed: u64) -> Vec<Vec<f64>> {
    adjit::inputs::defaults(f, seed)
}

/// Consts `w: [2,3]`, `c: []`; carries `h: [3]`, `s: []`, `m: [2,2]`; xs `x: [n,3]`,
/// `z: [n,2,2]`; ys `w h': [2]`, `s'^2: []`, `2 m': [2,2]`.
fn several_shapes(n: usize, reverse: bool) -> Func {
    let b = Builder::new("shapes");
    let (w, c) = (b.param("w", &[2, 3]), b.param("c", &[]));
    let (h0, s0, m0) = (
        b.param("h0", &[3]),
        b.param("s0", &[]),
        b.param("m0", &[2, 2]),
    );
    let (xs, zs) = (b.param("xs", &[n, 3]), b.param("zs", &[n, 2, 2]));
    let opts = ScanOptions::new("step", n).reverse(reverse);
    let out = b.scan(opts, &[w, c], &[h0, s0, m0], &[xs, zs], |_, c, h, x| {
        let h2 = (h[0] + x[0]) * c[1];
        let s2 = h[1] * 0.5 + h2.sum();
        let m2 = h[2] * x[1] + s2;
        (vec![h2, s2, m2], vec![c[0].matmul(h2), s2 * s2, m2 * 2.0])
    });
    let results: Vec<Var<'_>> = out.carries.iter().chain(&out.ys).copied().collect();
    b.finish(&results).unwrap()
}

fn several_shapes_reference(n: usize, reverse: bool, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (w, c) = (&inputs[0], inputs[1][0]);
    let (mut h, mut s, mut m) = (inputs[2].clone(), inputs[3][0], inputs[4].clone());
    let (xs, zs) = (&inputs[5], &inputs[6]);
    let (mut ys0, mut ys1, mut ys2) = (vec![0.0; 2 * n], vec![0.0; n], vec![0.0; 4 * n]);
    let order: Vec<usize> = if reverse {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    for i in order {
        h = (0..3).map(|k| (h[k] + xs[3 * i + k]) * c).collect();
        s = s * 0.5 + sum(&h);
        m = (0..4).map(|k| m[k] * zs[4 * i + k] + s).collect();
        for r in 0..2 {
            // matmul's chain: one fused multiply-add per term, from +0.0.
            ys0[2 * i + r] = (0..3).fold(0.0, |acc, k| w[3 * r + k].mul_add(h[k], acc));
        }
        ys1[i] = s * s;
        for k in 0..4 {
            ys2[4 * i + k] = m[k] * 2.0;
        }
    }
    vec![h, vec![s], m, ys0, ys1, ys2]
}

#[test]
fn carries_and_outputs_of_several_shapes() {
    for reverse in [false, true] {
        for n in [0, 1, 2, 7] {
            let f = several_shapes(n, reverse);
            let x = inputs(&f, n as u64);
            let got = interp::eval(&f, &x).unwrap();
            let want = several_shapes_reference(n, reverse, &x);
            assert_same(&got, &want, &format!("length {n}, reverse {reverse}"));
        }
    }
}

#[test]
fn length_zero_returns_the_initial_carries() {
    let f = several_shapes(0, false);
    let x = inputs(&f, 3);
    let got = interp::eval(&f, &x).unwrap();
    assert_same(&got[..3], &x[2..5], "final carries");
    assert!(got[3..].iter().all(Vec::is_empty), "ys are empty");
}

/// Carries `a: [1]`, `e: [0]`, `t: []`; xs `u: [n,1]`, `v: [n,0]`; ys `e' + v: [0]`, `a' u: [1]`.
#[test]
fn one_element_and_empty_values() {
    let n = 4;
    let b = Builder::new("small");
    let (a0, e0, t0) = (b.param("a0", &[1]), b.param("e0", &[0]), b.param("t0", &[]));
    let (us, vs) = (b.param("us", &[n, 1]), b.param("vs", &[n, 0]));
    let out = b.scan(
        ScanOptions::new("step", n),
        &[],
        &[a0, e0, t0],
        &[us, vs],
        |_, _, h, x| {
            let a2 = h[0] + x[0];
            let e2 = h[1] * 2.0;
            let t2 = h[2] * a2.sum();
            (vec![a2, e2, t2], vec![e2 + x[1], a2 * x[0]])
        },
    );
    let results: Vec<Var<'_>> = out.carries.iter().chain(&out.ys).copied().collect();
    let f = b.finish(&results).unwrap();
    let x = inputs(&f, 5);
    let (mut a, mut t, mut ys1) = (x[0][0], x[2][0], vec![0.0; n]);
    for i in 0..n {
        a += x[3][i];
        t *= a;
        ys1[i] = a * x[3][i];
    }
    let want = vec![vec![a], vec![], vec![t], vec![], ys1];
    assert_same(
        &interp::eval(&f, &x).unwrap(),
        &want,
        "one-element and empty",
    );
}

#[test]
fn a_scan_nested_in_a_scan_body() {
    for (n, m) in [(3, 4), (1, 1), (0, 2), (2, 0)] {
        let f = scans::nested_scan(n, m);
        let x = inputs(&f, 7);
        let got = interp::eval(&f, &x).unwrap();
        assert_same(
            &got,
            &scans::nested_reference(n, m, &x),
            &format!("{n}x{m}"),
        );
    }
}

/// A body that returns its carries swapped reads each old carry before it is replaced.
#[test]
fn carries_returned_in_another_order() {
    let n = 5;
    let b = Builder::new("swap");
    let (p0, q0, xs) = (
        b.param("p0", &[2]),
        b.param("q0", &[2]),
        b.param("xs", &[n, 2]),
    );
    let out = b.scan(
        ScanOptions::new("step", n),
        &[],
        &[p0, q0],
        &[xs],
        |_, _, h, x| (vec![h[1], h[0] + x[0]], vec![h[1]]),
    );
    let f = b
        .finish(&[out.carries[0], out.carries[1], out.ys[0]])
        .unwrap();
    let x = inputs(&f, 9);
    let (mut p, mut q, mut ys) = (x[0].clone(), x[1].clone(), vec![]);
    for i in 0..n {
        let q2: Vec<f64> = (0..2).map(|k| p[k] + x[2][2 * i + k]).collect();
        ys.extend_from_slice(&q);
        (p, q) = (q, q2);
    }
    assert_same(
        &interp::eval(&f, &x).unwrap(),
        &[p, q, ys],
        "swapped carries",
    );
}

/// Every checkpointing policy of a replay scan, with the replay steps it took.
fn replay_runs(n: usize, d: usize) -> Vec<(Checkpoint, Vec<Vec<f64>>, u64)> {
    let mut policies = vec![Checkpoint::All, Checkpoint::Carry, Checkpoint::Auto];
    for s in [1, 2, 3, 7, n.saturating_sub(1).max(1), n.max(1), n + 5] {
        policies.push(Checkpoint::Binomial(s as u32));
    }
    policies
        .into_iter()
        .map(|policy| {
            let f = scans::replay_scan(n, d, policy);
            let p = Program::new(&f).unwrap();
            let x = inputs(&f, 11);
            let before = interp::replay_steps();
            let got = p.eval(&x).unwrap();
            let steps = interp::replay_steps() - before;
            (policy, got, steps)
        })
        .collect()
}

#[test]
fn replay_scans_agree_under_every_policy() {
    for (n, d) in [(0, 2), (1, 2), (2, 3), (5, 1), (23, 3), (40, 2)] {
        let f = scans::replay_scan(n, d, Checkpoint::All);
        let want = scans::replay_reference(n, d, &inputs(&f, 11));
        for (policy, got, steps) in replay_runs(n, d) {
            let what = format!("length {n}, {policy}");
            assert_same(&got, &want, &what);
            let s = match policy {
                Checkpoint::Binomial(s) => s as usize,
                Checkpoint::All | Checkpoint::Carry | Checkpoint::Auto => n,
            };
            assert_eq!(steps, revolve::forward_steps(n, s), "{what}: replay steps");
        }
    }
}

#[test]
fn the_count_of_replay_steps_follows_the_formula() {
    // 30 steps (values of r·n − C(s + r, r − 1) worked by hand): one snapshot recomputes
    // 0 + 1 + ... + 29 steps; 29 or more store every state.
    let runs = replay_runs(30, 2);
    let steps = |p: Checkpoint| runs.iter().find(|r| r.0 == p).unwrap().2;
    assert_eq!(steps(Checkpoint::Binomial(1)), 435);
    assert_eq!(steps(Checkpoint::Binomial(2)), 126);
    assert_eq!(steps(Checkpoint::Binomial(3)), 85);
    assert_eq!(steps(Checkpoint::Binomial(7)), 51);
    assert_eq!(steps(Checkpoint::Binomial(29)), 29);
    assert_eq!(steps(Checkpoint::Binomial(35)), 29);
    assert_eq!(steps(Checkpoint::All), 29);
}

/// Rows of a forward scan each run a replay scan: `(a, acc0, gv0: [d], xs0: [n,m,d],
/// xs1: [n,m]) -> (acc, gv, ys: [n,m])`.
fn replay_in_a_body(n: usize, m: usize, d: usize, policy: Checkpoint) -> Func {
    let b = Builder::new("rows");
    let (a, acc0, gv0) = (
        b.param("a", &[]),
        b.param("acc0", &[]),
        b.param("gv0", &[d]),
    );
    let (xs0, xs1) = (b.param("xs0", &[n, m, d]), b.param("xs1", &[n, m]));
    let opts = ScanOptions::new("row", n);
    let out = b.scan(opts, &[a], &[acc0, gv0], &[xs0, xs1], |bb, c, h, x| {
        let (acc, gv) = (h[0], h[1]);
        let inner = scans::replay_scan_in(bb, m, d, policy, [c[0], gv, acc, gv, x[0], x[1]]);
        let acc2 = acc + inner.ys[0].sum() * 0.001;
        (vec![acc2, inner.carries[0] * 0.5], vec![inner.ys[1]])
    });
    b.finish(&[out.carries[0], out.carries[1], out.ys[0]])
        .unwrap()
}

#[test]
fn a_replay_scan_nested_in_a_scan_body() {
    let (n, m, d) = (4, 9, 2);
    let f = replay_in_a_body(n, m, d, Checkpoint::All);
    let x = inputs(&f, 13);
    let (mut acc, mut gv, mut ys) = (x[1][0], x[2].clone(), vec![]);
    for i in 0..n {
        let row = vec![
            x[0].clone(),
            gv.clone(),
            vec![acc],
            gv.clone(),
            x[3][i * m * d..(i + 1) * m * d].to_vec(),
            x[4][i * m..(i + 1) * m].to_vec(),
        ];
        let out = scans::replay_reference(m, d, &row);
        acc += sum(&out[1]) * 0.001;
        gv = out[0].iter().map(|g| g * 0.5).collect();
        ys.extend_from_slice(&out[2]);
    }
    let want = vec![vec![acc], gv, ys];
    for (s, per_row) in [(1, 36), (2, 17), (3, 13), (100, 8)] {
        let f = replay_in_a_body(n, m, d, Checkpoint::Binomial(s));
        let before = interp::replay_steps();
        let got = interp::eval(&f, &x).unwrap();
        let steps = interp::replay_steps() - before;
        assert_same(&got, &want, &format!("binomial({s})"));
        assert_eq!(steps, n as u64 * per_row, "binomial({s}): replay steps");
    }
}

/// The trajectory of a `binomial(10)` replay scan takes 10 snapshots whatever its length: from
/// 100 to 10,000 steps the workspace grows by far less than the 9,900 states that storing
/// every state adds.
#[test]
fn binomial_workspaces_grow_with_snapshots_not_length() {
    let d = 16;
    let state = d + 1;
    let len = |n: usize, policy: Checkpoint| {
        Program::new(&scans::replay_scan(n, d, policy))
            .unwrap()
            .workspace()
            .len()
    };
    let (small, large) = (
        len(100, Checkpoint::Binomial(10)),
        len(10_000, Checkpoint::Binomial(10)),
    );
    let all = len(10_000, Checkpoint::All);
    assert!(large - small < 9_900 * state, "{small} -> {large}");
    assert!(
        all - large >= (10_000 - 1 - 10) * state,
        "{large} vs {all} storing all"
    );
    // And the large binomial scan still runs, bit for bit like storing everything.
    let f = scans::replay_scan(10_000, d, Checkpoint::Binomial(10));
    let x = inputs(&f, 17);
    let all_f = scans::replay_scan(10_000, d, Checkpoint::All);
    assert_same(
        &interp::eval(&f, &x).unwrap(),
        &interp::eval(&all_f, &x).unwrap(),
        "10,000 steps",
    );
}

/// The gradient of a scan (`ad`'s adjoint scan: stored residuals, stored carries, or a replay
/// scan under `binomial`) runs with the same bits under every policy, replaying as many steps
/// as the schedule's formula says.
#[test]
fn gradients_agree_under_every_policy() {
    let n = 20;
    let policies = [
        Checkpoint::All,
        Checkpoint::Carry,
        Checkpoint::Binomial(1),
        Checkpoint::Binomial(3),
        Checkpoint::Binomial(50),
    ];
    let mut first: Option<Vec<Vec<f64>>> = None;
    for policy in policies {
        let b = Builder::new("f");
        let (w, h0, xs) = (
            b.param("w", &[2]),
            b.param("h0", &[2]),
            b.param("xs", &[n, 2]),
        );
        let opts = ScanOptions::new("step", n).checkpoint(policy);
        let out = b.scan(opts, &[w], &[h0], &[xs], |_, c, h, x| {
            let h2 = (h[0] * c[0] + x[0]).tanh();
            (vec![h2], vec![h2.sum()])
        });
        let f = b.finish(&[out.carries[0].sum() + out.ys[0].sum()]).unwrap();
        let g = adjit::ad::grad(&f, None).unwrap();
        let before = interp::replay_steps();
        let got = interp::eval(&g, &inputs(&g, 1)).unwrap();
        let steps = interp::replay_steps() - before;
        let want_steps = match policy {
            Checkpoint::Binomial(s) => revolve::forward_steps(n, s as usize),
            Checkpoint::All | Checkpoint::Carry | Checkpoint::Auto => 0,
        };
        assert_eq!(steps, want_steps, "{policy}: replay steps");
        match &first {
            None => first = Some(got),
            Some(want) => assert_same(&got, want, &format!("gradient under {policy}")),
        }
    }
}
