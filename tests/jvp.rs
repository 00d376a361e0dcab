//! Forward mode (`ad::jvp`), checked against central differences and against reverse mode:
//! every op (first and second order), the dot-product test `<u, J t> = <J^T u, t>` against
//! `vjp`, forward-over-reverse Hessian-vector products against `ad::hvp` on every shipped
//! model, the closure of the transforms (jvp of jvp, jvp of grad, grad of jvp), and random
//! graphs. Differences as in `gradients.rs`: Richardson-extrapolated central differences.

mod common;

use adjit::ad::{self, HvpMode};
use adjit::inputs::{defaults, Rng};
use adjit::interp::eval;
use adjit::ir::{self, Builder, Checkpoint, Func, Op, Opcode, Role, ScanOptions, Type, Var};
use common::examples::{example, example_outputs};
use common::numeric::{derivative, dot, rel, run, shifted};
use common::random_graph::random_func;
use proptest::prelude::*;

/// Random values of the shapes of `f`'s parameters `which`.
fn draw(f: &Func, which: &[usize], rng: &mut Rng) -> Vec<Vec<f64>> {
    which
        .iter()
        .map(|&i| {
            (0..f.params[i].ty.numel())
                .map(|_| rng.range(-1.0, 1.0))
                .collect()
        })
        .collect()
}

/// Random values of the shapes of `f`'s results.
fn draw_results(f: &Func, rng: &mut Rng) -> Vec<Vec<f64>> {
    f.result_types()
        .iter()
        .map(|t| (0..t.numel()).map(|_| rng.range(-1.0, 1.0)).collect())
        .collect()
}

fn cat(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    a.iter().chain(b).cloned().collect()
}

/// Norm-wise relative difference: max |a - b| / max(|a|, |b|).
fn normwise(a: &[f64], b: &[f64]) -> f64 {
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// For `f` at `inputs` along a random tangent `t` and a random output weight `u`: the relative
/// errors of `<u, J t>` against differences and against `<J^T u, t>` from `vjp`. Also checks
/// that the jvp function's outputs are `f`'s bit for bit.
fn first_order(f: &Func, inputs: &[Vec<f64>], seed: u64) -> (f64, f64) {
    let wrt = ad::resolve_wrt(f, None).unwrap();
    let j = ad::jvp(f, None).unwrap_or_else(|e| panic!("@{}: {e}", f.name));
    ir::verify(&j).unwrap();
    let mut rng = Rng::new(seed);
    let t = draw(f, &wrt, &mut rng);
    let u = draw_results(f, &mut rng);
    let n = f.results.len();
    let out = run(&j, &cat(inputs, &t));
    assert_eq!(out.len(), 2 * n);
    assert_eq!(out[..n], run(f, inputs)[..], "@{}: outputs differ", f.name);
    let ujt = dot(&u, &out[n..]);
    let fd = derivative(|h| dot(&u, &run(f, &shifted(inputs, &wrt, &t, h))));
    let v = ad::vjp(f, None).unwrap();
    let back = run(&v, &cat(inputs, &u));
    let jtu_t = dot(&back[n..], &t);
    let scale = ujt.abs().max(1e-3);
    (rel(ujt, fd, scale), rel(ujt, jtu_t, 1e-300))
}

#[test]
fn every_op_against_differences_and_vjp() {
    let mut failures = Vec::new();
    for (i, &op) in Opcode::ALL.iter().enumerate() {
        for f in [example_outputs(op), example(op)] {
            let inputs = defaults(&f, 11);
            let (fd, dp) = first_order(&f, &inputs, 200 + i as u64);
            if !(fd <= 1e-7 && dp <= 1e-12) {
                failures.push(format!(
                    "{} ({} results): differences {fd:.2e}, dot product {dp:.2e}",
                    op.name(),
                    f.results.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Second order along tangents `t` and `s`: the jvp of the jvp against differences of the jvp,
/// its symmetry in `t` and `s`, and the jvp of the vjp against it by the dot-product test.
/// Returns the three relative errors.
fn second_order(f: &Func, inputs: &[Vec<f64>], seed: u64) -> (f64, f64, f64) {
    let wrt = ad::resolve_wrt(f, None).unwrap();
    let j = ad::jvp(f, None).unwrap();
    let jj = ad::jvp(&j, None).unwrap_or_else(|e| panic!("@{}: jvp of jvp: {e}", f.name));
    ir::verify(&jj).unwrap();
    let mut rng = Rng::new(seed);
    let (t, s) = (draw(f, &wrt, &mut rng), draw(f, &wrt, &mut rng));
    let u = draw_results(f, &mut rng);
    let n = f.results.len();
    // jj: (x, t, s) -> (y, J t, J s, (d/ds) J t).
    let out = run(&jj, &cat(&cat(inputs, &t), &s));
    assert_eq!(out.len(), 4 * n);
    let second = dot(&u, &out[3 * n..]);
    let fd = derivative(|h| {
        let moved = cat(&shifted(inputs, &wrt, &s, h), &t);
        dot(&u, &run(&j, &moved)[n..])
    });
    let swapped = run(&jj, &cat(&cat(inputs, &s), &t));
    let sym = rel(second, dot(&u, &swapped[3 * n..]), 1e-300);
    // jvp of vjp: (x, u, s) -> (y, J^T u, J s, (d/ds) J^T u); <(d/ds) J^T u, t> = <u, (d/ds) J t>.
    let v = ad::vjp(f, None).unwrap();
    let jv = ad::jvp(&v, None).unwrap_or_else(|e| panic!("@{}: jvp of vjp: {e}", f.name));
    let out = run(&jv, &cat(&cat(inputs, &u), &s));
    let k = wrt.len();
    let via_vjp = dot(&out[2 * n + k..], &t);
    let scale = second.abs().max(1e-3);
    (
        rel(second, fd, scale),
        sym,
        rel(second, via_vjp, scale * 1e-9),
    )
}

#[test]
fn every_op_second_order() {
    let mut failures = Vec::new();
    for (i, &op) in Opcode::ALL.iter().enumerate() {
        let f = example_outputs(op);
        let inputs = defaults(&f, 13);
        let (fd, sym, dp) = second_order(&f, &inputs, 300 + i as u64);
        if !(fd <= 1e-6 && sym <= 1e-12 && dp <= 1e-12) {
            failures.push(format!(
                "{}: differences {fd:.2e}, symmetry {sym:.2e}, jvp of vjp {dp:.2e}",
                op.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Forward-over-reverse (`ad::hvp`'s `FwdRev` mode, and `jvp` of `grad`) and reverse-over-forward
/// (`vjp` of `jvp` seeded on the tangent, and `grad` of the jvp's tangent) Hessian-vector
/// products against `ad::hvp`'s `RevRev` mode;
/// returns the largest norm-wise error.
fn hvp_errors(f: &Func, inputs: &[Vec<f64>], seed: u64) -> f64 {
    let wrt = ad::resolve_wrt(f, None).unwrap();
    let k = wrt.len();
    let mut rng = Rng::new(seed);
    let v = draw(f, &wrt, &mut rng);
    let hin = cat(inputs, &v);
    let want = run(&ad::hvp_with(f, None, HvpMode::RevRev).unwrap(), &hin);
    // ad::hvp's forward-over-reverse mode: the same signature, the same value and gradient.
    let got = run(&ad::hvp_with(f, None, HvpMode::FwdRev).unwrap(), &hin);
    assert_eq!(
        got[..1 + k],
        want[..1 + k],
        "@{}: fwdrev value and gradient",
        f.name
    );
    let mut worst = 0.0f64;
    for j in 0..k {
        worst = worst.max(normwise(&got[1 + k + j], &want[1 + k + j]));
    }
    let fwd_rev = ad::jvp(&ad::grad(f, None).unwrap(), None)
        .unwrap_or_else(|e| panic!("@{}: jvp of grad: {e}", f.name));
    // (x, v) -> (y, grad, <grad, v>, H v)
    let got = run(&fwd_rev, &hin);
    assert_eq!(
        got[..1 + k],
        want[..1 + k],
        "@{}: value and gradient",
        f.name
    );
    for j in 0..k {
        worst = worst.max(normwise(&got[2 + k + j], &want[1 + k + j]));
    }
    // vjp of jvp, seeded 0 on y and 1 on its tangent: d/dx <grad f, v> = H v.
    let jf = ad::jvp(f, None).unwrap();
    let rev_fwd = ad::vjp(&jf, Some(&wrt_names(f, &wrt))).unwrap();
    let got = run(&rev_fwd, &cat(&hin, &[vec![0.0], vec![1.0]]));
    for j in 0..k {
        worst = worst.max(normwise(&got[2 + j], &want[1 + k + j]));
    }
    // grad of jvp: the jvp function returning its tangent alone is the scalar <grad f, v>.
    let mut tangent_only = jf.clone();
    tangent_only.results = vec![jf.results[1]];
    let grad_fwd = ad::grad(&tangent_only, Some(&wrt_names(f, &wrt)))
        .unwrap_or_else(|e| panic!("@{}: grad of jvp: {e}", f.name));
    let got = run(&grad_fwd, &hin);
    for j in 0..k {
        worst = worst.max(normwise(&got[1 + j], &want[1 + k + j]));
    }
    worst
}

fn wrt_names<'f>(f: &'f Func, wrt: &[usize]) -> Vec<&'f str> {
    wrt.iter().map(|&i| f.params[i].name.as_str()).collect()
}

#[test]
fn forward_over_reverse_matches_hvp_for_every_op() {
    let mut failures = Vec::new();
    for (i, &op) in Opcode::ALL.iter().enumerate() {
        let f = example(op);
        let e = hvp_errors(&f, &defaults(&f, 17), 400 + i as u64);
        if e > 1e-13 {
            failures.push(format!("{}: {e:.2e}", op.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forward_over_reverse_matches_hvp_on_every_model() {
    let mut failures = Vec::new();
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = ir::parse(m.text).unwrap();
        let e = hvp_errors(&f, &defaults(&f, 0), 9);
        if e > 1e-13 {
            failures.push(format!("{}: {e:.2e}", m.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn transformed_sizes_stay_bounded() {
    let mut table = Vec::new();
    for m in adjit::models::ALL {
        let f = ir::parse(m.text).unwrap();
        let count = |g: &Func| g.insts.len();
        let (nf, nj) = (count(&f), count(&ad::jvp(&f, None).unwrap()));
        assert!(nj <= 3 * nf, "{}: jvp has {nj} for {nf}", m.name);
        if !m.scalar() {
            continue;
        }
        let g = ad::grad(&f, None).unwrap();
        let (nfr, nrr) = (
            count(&ad::jvp(&g, None).unwrap()),
            count(&ad::hvp(&f, None).unwrap()),
        );
        table.push(format!(
            "{:14} f {nf:6}  jvp {nj:6} ({:.2}x)  jvp of grad {nfr:6}  hvp {nrr:6}",
            m.name,
            nj as f64 / nf as f64
        ));
        assert!(
            nj <= 3 * nf,
            "{}: jvp has {nj} instructions for {nf}",
            m.name
        );
        assert!(nfr <= 10 * nf, "{}: jvp of grad has {nfr} for {nf}", m.name);
    }
    println!("{}", table.join("\n"));
}

#[test]
fn every_model_against_differences_and_vjp() {
    for m in adjit::models::ALL {
        let f = ir::parse(m.text).unwrap();
        let (fd, dp) = first_order(&f, &defaults(&f, 0), 21);
        assert!(fd <= 1e-6, "{}: differences {fd:.2e}", m.name);
        assert!(dp <= 1e-12, "{}: dot product {dp:.2e}", m.name);
    }
}

#[test]
fn the_transforms_are_closed() {
    // Third order in every combination verifies, prints and parses back.
    for &op in Opcode::ALL.iter() {
        let f = example(op);
        let name = op.name();
        let jg = ad::jvp(&ad::grad(&f, None).unwrap(), None).unwrap();
        let jjg = ad::jvp(&jg, None).unwrap_or_else(|e| panic!("{name}: jvp jvp grad: {e}"));
        let vj = ad::vjp(&ad::jvp(&f, None).unwrap(), None).unwrap();
        let jh = ad::jvp(&ad::hvp(&f, None).unwrap(), None).unwrap();
        let hj = ad::vjp(&jg, None).unwrap_or_else(|e| panic!("{name}: vjp jvp grad: {e}"));
        for g in [&jjg, &vj, &jh, &hj] {
            ir::verify(g).unwrap();
            let back = ir::parse(&g.to_string()).expect("prints and parses back");
            assert_eq!(&back, g);
        }
    }
}

#[test]
fn parameters_and_results_are_laid_out_as_documented() {
    let b = Builder::new("f");
    let x = b.param("x", &[3]);
    let taken = b.param("t_x", &[3]);
    let d = b.data("d", &[2]);
    let m = b.param_with("m", Type::bool(&[3]), Role::Data, None);
    let y = b.select(m, x * taken, x);
    let f = b.finish(&[y.sum(), d * 2.0, m]).unwrap();
    let j = ad::jvp(&f, None).unwrap();
    let names: Vec<&str> = j.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["x", "t_x", "d", "m", "t_x_1", "t_t_x"]);
    assert!(j.params[4..].iter().all(|p| p.role == Role::Data));
    let types: Vec<String> = j.result_types().iter().map(|t| t.to_string()).collect();
    assert_eq!(
        types,
        ["f64[]", "f64[2]", "bool[3]", "f64[]", "f64[2]", "f64[3]"]
    );
    // Only `x`: its tangent alone; d's and m's results have zero tangents.
    let j = ad::jvp(&f, Some(&["x"])).unwrap();
    assert_eq!(j.params.len(), 5);
    let out = run(
        &j,
        &[
            vec![1.0, 2.0, 3.0],
            vec![1.0; 3],
            vec![1.0, 1.0],
            vec![1.0, 0.0, 1.0],
            vec![1.0, 1.0, 1.0],
        ],
    );
    assert_eq!(out[3], [3.0]);
    assert_eq!(out[4], [0.0, 0.0]);
    assert_eq!(out[5], [0.0; 3]);
}

#[test]
fn bad_requests_are_clear_errors() {
    let b = Builder::new("f");
    let x = b.param("x", &[3]);
    let m = b.param_with("m", Type::bool(&[3]), Role::Data, None);
    let f = b.finish(&[b.select(m, x, x * 2.0)]).unwrap();
    let e = ad::jvp(&f, Some(&["nope"])).unwrap_err().to_string();
    assert!(e.contains("@f has no input 'nope'"), "{e}");
    let e = ad::jvp(&f, Some(&["m"])).unwrap_err().to_string();
    assert!(e.contains("'m' has type bool[3]"), "{e}");
    let b = Builder::new("constant");
    let c = b.finish(&[b.scalar(1.0)]).unwrap();
    let e = ad::jvp(&c, None).unwrap_err().to_string();
    assert_eq!(e, "@constant has no f64 input to differentiate");
    let bad = Builder::new("bad");
    let p = bad.param("p", &[2]);
    let q = bad.param("q", &[3]);
    let invalid = bad.finish_unverified(&[p.value(), q.value(), ir::Value(99)]);
    let e = ad::jvp(&invalid, None).unwrap_err();
    assert!(matches!(e, ad::AdError::Invalid(_)), "{e}");
}

#[test]
fn a_scan_has_no_local_rule_and_says_so() {
    // ops::jvp names the op it has no rule for; ad::jvp handles scans itself.
    let f = example_outputs(Opcode::Scan);
    let b = Builder::new("probe");
    let mut vars: Vec<_> = f
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, None))
        .collect();
    let mut scan = None;
    for inst in &f.insts {
        let args: Vec<_> = inst.args.iter().map(|a| vars[a.index()]).collect();
        let values: Vec<_> = args.iter().map(|v| v.value()).collect();
        let y = b.op(inst.op.clone(), &values);
        if inst.op.opcode() == Opcode::Scan {
            scan = Some((inst.op.clone(), args, y));
        }
        vars.push(y);
    }
    let (op, args, y) = scan.expect("the example has a scan");
    let ts: Vec<_> = args.iter().map(|&v| Some(v)).collect();
    let e = adjit::ops::jvp(&op, &args, y, &ts).unwrap_err();
    assert_eq!(e.to_string(), "scan has no JVP rule here");
}

const POLICIES: [Checkpoint; 6] = [
    Checkpoint::Auto,
    Checkpoint::All,
    Checkpoint::Carry,
    Checkpoint::Binomial(1),
    Checkpoint::Binomial(2),
    Checkpoint::Binomial(50),
];

/// One step with two carries of different shapes and two per-step outputs (as in
/// `scan_ad.rs`): h' = tanh(W h + x + s), s' = 0.9 s + sum(h') / 10, ys = (h'^2, s').
fn step<'c>(
    _: &'c Builder,
    c: &[Var<'c>],
    h: &[Var<'c>],
    x: &[Var<'c>],
) -> (Vec<Var<'c>>, Vec<Var<'c>>) {
    let pre = c[0].matmul(h[0].reshape(&[3, 1])).reshape(&[3]) + x[0] + h[1];
    let h2 = pre.tanh();
    let s2 = h[1] * 0.9 + h2.sum() / 10.0;
    (vec![h2, s2], vec![h2 * h2, s2])
}

const N: usize = 6;

/// `step` over `N` steps, as a scan (`policy`) or unrolled (`None`); results: the final
/// carries and the stacked outputs. `w` is data unless `w_too`, so a const has no tangent.
fn recurrent(policy: Option<Checkpoint>, reverse: bool, w_too: bool) -> Func {
    let b = Builder::new("recurrent");
    let w = if w_too {
        b.param("w", &[3, 3])
    } else {
        b.data("w", &[3, 3])
    };
    let (h0, s0, xs) = (
        b.param("h0", &[3]),
        b.param("s0", &[]),
        b.param("xs", &[N, 3]),
    );
    let results = match policy {
        Some(p) => {
            let opts = ScanOptions::new("step", N).reverse(reverse).checkpoint(p);
            let out = b.scan(opts, &[w], &[h0, s0], &[xs], step);
            vec![out.carries[0], out.carries[1], out.ys[0], out.ys[1]]
        }
        None => {
            let (mut h, mut s) = (h0, s0);
            let (mut ys0, mut ys1) = (vec![None; N], vec![None; N]);
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
            let ys0: Vec<Var<'_>> = ys0.into_iter().flatten().collect();
            let ys1: Vec<Var<'_>> = ys1.into_iter().flatten().collect();
            vec![h, s, b.concat(&ys0, 0), b.concat(&ys1, 0)]
        }
    };
    b.finish(&results).unwrap()
}

fn assert_all_close(a: &[Vec<f64>], b: &[Vec<f64>], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: result counts");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let d = common::max_rel_diff(x, y);
        assert!(
            d <= tol,
            "{what}: result {k} differs by {d:e}\n{x:?}\n{y:?}"
        );
    }
}

fn scans_of(f: &Func) -> Vec<&Op> {
    f.insts
        .iter()
        .map(|i| &i.op)
        .filter(|op| matches!(op, Op::Scan { .. }))
        .collect()
}

#[test]
fn jvp_through_scan_equals_unrolled_under_every_policy() {
    for (reverse, w_too) in [(false, true), (true, true), (false, false)] {
        let reference = ad::jvp(&recurrent(None, reverse, w_too), None).unwrap();
        let inputs = defaults(&reference, 5);
        let want = run(&reference, &inputs);
        for policy in POLICIES {
            let f = recurrent(Some(policy), reverse, w_too);
            let j = ad::jvp(&f, None).unwrap();
            let what = format!("jvp, {policy}, reverse {reverse}, w {w_too}");
            assert_all_close(&run(&j, &inputs), &want, 1e-13, &what);
            // One scan, carrying the tangents, under the same attributes.
            let scans = scans_of(&j);
            assert_eq!(scans.len(), 1, "{what}:\n{j}");
            let Op::Scan {
                reverse: r,
                checkpoint: c,
                carries,
                ..
            } = scans[0]
            else {
                unreachable!()
            };
            assert_eq!((*r, *c, *carries), (reverse, policy, 4), "{what}");
            // Forward over reverse through the scan, against reverse over reverse unrolled.
            let loss = scalar_of(&f);
            let e = hvp_errors(&loss, &defaults(&loss, 3), 8);
            assert!(e <= 1e-13, "{what}: forward over reverse {e:.2e}");
        }
    }
}

#[test]
fn only_what_depends_on_the_inputs_carries_tangents_in_a_scan() {
    // Carry `a` and the ys `a * x` depend on x; carry `q` and the ys `q` only on data.
    let b = Builder::new("partly");
    let (xs, c, q0) = (b.param("xs", &[5]), b.data("c", &[]), b.data("q0", &[]));
    let a0 = b.scalar(0.0);
    let opts = ScanOptions::new("step", 5);
    let out = b.scan(opts, &[c], &[a0, q0], &[xs], |_, c, h, x| {
        (vec![h[0] + x[0], h[1] * c[0]], vec![h[0] * x[0], h[1]])
    });
    let f = b
        .finish(&[out.carries[0], out.carries[1], out.ys[0], out.ys[1]])
        .unwrap();
    let j = ad::jvp(&f, None).unwrap();
    let scans = scans_of(&j);
    assert_eq!(scans.len(), 1, "{j}");
    let Op::Scan {
        body,
        consts,
        carries,
        ..
    } = scans[0]
    else {
        unreachable!()
    };
    assert_eq!((*consts, *carries), (1, 3), "a, q and a's tangent:\n{j}");
    let results = body.func().results.len();
    assert_eq!(results, 6, "a, q, a's tangent; the ys and a * x's tangent");
    let inputs = defaults(&j, 2);
    let out = run(&j, &inputs);
    assert_eq!(out[5], [0.0], "q's tangent");
    assert_eq!(out[7], [0.0; 5], "the tangent of q's ys");
    let (fd, dp) = first_order(&f, &defaults(&f, 2), 77);
    assert!(fd <= 1e-7 && dp <= 1e-12, "{fd:.2e} {dp:.2e}");
}

/// `f` with its results summed into one scalar, weighted so every element counts.
fn scalar_of(f: &Func) -> Func {
    let b = Builder::new(format!("{}_loss", f.name));
    let params: Vec<_> = f
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init))
        .collect();
    let mut map: Vec<ir::Value> = params.iter().map(|p| p.value()).collect();
    for inst in &f.insts {
        let args: Vec<ir::Value> = inst.args.iter().map(|a| map[a.index()]).collect();
        map.push(b.op(inst.op.clone(), &args).value());
    }
    let total = f
        .results
        .iter()
        .map(|r| common::examples::loss(&b, b.var(map[r.index()])))
        .reduce(|a, c| a + c)
        .unwrap();
    b.finish(&[total]).unwrap()
}

#[test]
fn replay_and_nested_scans_against_differences_and_vjp() {
    let fs = [
        common::scans::replay_scan(5, 2, Checkpoint::Binomial(2)),
        common::scans::replay_scan(4, 3, Checkpoint::All),
        common::scans::nested_scan(3, 4),
    ];
    for (i, f) in fs.iter().enumerate() {
        let inputs = defaults(f, 4);
        let (fd, dp) = first_order(f, &inputs, 40 + i as u64);
        assert!(
            fd <= 1e-7 && dp <= 1e-12,
            "@{} {i}: {fd:.2e}, {dp:.2e}",
            f.name
        );
        let (fd, sym, dp) = second_order(f, &inputs, 50 + i as u64);
        assert!(
            fd <= 1e-6 && sym <= 1e-12 && dp <= 1e-12,
            "@{} {i}: {fd:.2e} {sym:.2e} {dp:.2e}",
            f.name
        );
        let loss = scalar_of(f);
        let e = hvp_errors(&loss, &defaults(&loss, 4), 60 + i as u64);
        assert!(e <= 1e-13, "@{} {i}: forward over reverse {e:.2e}", f.name);
    }
}

#[test]
fn compiled_jvp_agrees_with_the_interpreter_bit_for_bit() {
    // Functions without scans (the JIT of this branch does not compile scans yet).
    let mut fs: Vec<Func> = Opcode::ALL
        .iter()
        .filter(|&&op| op != Opcode::Scan)
        .map(|&op| example_outputs(op))
        .collect();
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = ir::parse(m.text).unwrap();
        if scans_of(&f).is_empty() {
            fs.push(ad::grad(&f, None).unwrap());
        }
    }
    for f in &fs {
        let j = ad::jvp(f, None).unwrap();
        let inputs = defaults(&j, 6);
        let compiled = adjit::jit::compile(&j).unwrap_or_else(|e| panic!("@{}: {e}", j.name));
        let got = adjit::call::Executor::eval(&compiled, &inputs).unwrap();
        let want = run(&j, &inputs);
        let same = got
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "@{}", j.name);
    }
}

/// Both hvp modes compiled on every shipped model: each equals the interpreter bit for bit,
/// and the two agree to 1e-13 (norm-wise, per result).
#[test]
fn compiled_hvp_modes_agree_on_every_model() {
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = ir::parse(m.text).unwrap();
        let mut outs = Vec::new();
        for mode in HvpMode::ALL {
            let h = ad::hvp_with(&f, None, mode).unwrap();
            let inputs = defaults(&h, 5);
            let compiled = adjit::jit::compile(&h).unwrap_or_else(|e| panic!("@{}: {e}", h.name));
            let got = adjit::call::Executor::eval(&compiled, &inputs).unwrap();
            let want = run(&h, &inputs);
            let same = got
                .iter()
                .flatten()
                .zip(want.iter().flatten())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{} ({mode}): compiled differs from the interpreter",
                m.name
            );
            outs.push(got);
        }
        for (a, b) in outs[0].iter().zip(&outs[1]) {
            let e = normwise(a, b);
            assert!(e <= 1e-13, "{}: fwdrev vs revrev {e:.2e}", m.name);
        }
    }
}

/// `hvp_only` on every shipped model, in both modes: `hvp`'s parameters, its products alone
/// (to 1e-13, norm-wise), compiled equal to interpreted bit for bit, and never more
/// instructions than `hvp` (fewer on `rosenbrock`, whose value and gradient need work of
/// their own). A function `hvp` refuses, `hvp_only` refuses with the same error.
#[test]
fn hvp_only_is_the_product_of_hvp_on_every_model() {
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = ir::parse(m.text).unwrap();
        for mode in HvpMode::ALL {
            let full = ad::hvp_with(&f, None, mode).unwrap();
            let only = ad::hvp_only(&f, None, mode).unwrap();
            assert_eq!(only.params, full.params, "{} ({mode})", m.name);
            let k = only.results.len();
            assert_eq!(full.results.len(), 2 * k + 1, "{} ({mode})", m.name);
            assert!(only.insts.len() <= full.insts.len(), "{} ({mode})", m.name);
            if m.name == "rosenbrock" {
                assert!(only.insts.len() < full.insts.len(), "{mode}");
            }
            let inputs = defaults(&only, 3);
            let want = run(&full, &inputs);
            let got = run(&only, &inputs);
            for j in 0..k {
                let e = normwise(&got[j], &want[1 + k + j]);
                assert!(
                    e <= 1e-13,
                    "{} ({mode}): product {j} off by {e:.2e}",
                    m.name
                );
            }
            let compiled = adjit::jit::compile(&only).unwrap();
            let jit = adjit::call::Executor::eval(&compiled, &inputs).unwrap();
            let bits = |x: &Vec<Vec<f64>>| -> Vec<u64> {
                x.iter().flatten().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(&jit), bits(&got), "{} ({mode}): compiled", m.name);
        }
    }
    let b = Builder::new("two");
    let x = b.param("x", &[2]);
    let vector = b.finish(&[x * x]).unwrap();
    for mode in HvpMode::ALL {
        let want = ad::hvp_with(&vector, None, mode).unwrap_err();
        assert_eq!(ad::hvp_only(&vector, None, mode).unwrap_err(), want);
    }
}

/// The largest finite magnitude among the f64 values `f` computes on `inputs` (at least 1).
fn largest_value(f: &Func, inputs: &[Vec<f64>]) -> f64 {
    let mut all = f.clone();
    all.results = (0..f.insts.len())
        .filter(|&k| f.insts[k].ty.dtype == ir::DType::F64)
        .map(|k| f.inst_value(k))
        .collect();
    eval(&all, inputs).map_or(1.0, |outs| {
        outs.iter()
            .flatten()
            .filter(|x| x.is_finite())
            .fold(1.0f64, |m, x| m.max(x.abs()))
    })
}

/// `<u, J t>` from the jvp against `<J^T u, t>` from the vjp, where both are finite.
fn dot_product_holds(f: &Func, seed: u64) -> Result<(), String> {
    let inputs = defaults(f, seed);
    let j = ad::jvp(f, None).map_err(|e| e.to_string())?;
    ir::verify(&j).map_err(|e| e.to_string())?;
    let wrt = ad::resolve_wrt(f, None).map_err(|e| e.to_string())?;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let t = draw(f, &wrt, &mut rng);
    let u = draw_results(f, &mut rng);
    let n = f.results.len();
    let out = eval(&j, &cat(&inputs, &t)).map_err(|e| e.to_string())?;
    let y = eval(f, &inputs).map_err(|e| e.to_string())?;
    let same = out[..n].iter().zip(&y).all(|(a, b)| {
        a.iter()
            .zip(b)
            .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
    });
    if !same {
        return Err("the jvp's outputs are not f's".into());
    }
    let v = ad::vjp(f, None).map_err(|e| e.to_string())?;
    let back = eval(&v, &cat(&inputs, &u)).map_err(|e| e.to_string())?;
    let (a, b) = (dot(&u, &out[n..]), dot(&back[n..], &t));
    // Rounding: relative to the products, plus an absolute part for cancellation, scaled by
    // |u| |t| and the largest value either function computes on the way (where cancellation
    // happens: reverse mode may add and subtract a large term).
    let norm = |v: &[Vec<f64>]| v.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    let largest = largest_value(&j, &cat(&inputs, &t)).max(largest_value(&v, &cat(&inputs, &u)));
    let tol = 1e-10 * a.abs().max(b.abs()) + 1e-13 * norm(&u) * norm(&t) * largest;
    if a.is_finite() && b.is_finite() && (a - b).abs() > tol {
        return Err(format!("<u, J t> = {a}, <J^T u, t> = {b}"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn jvp_of_random_graphs_verifies_runs_and_transposes_to_vjp(
        seed in any::<u64>(), ops in 1usize..20
    ) {
        let f = random_func(seed, ops);
        if let Err(e) = dot_product_holds(&f, seed) {
            prop_assert!(false, "{e}\n{f}");
        }
    }
}

/// `reduce_max`'s tangent is the mean of the tangent over the ties, a NaN maximum's is zero
/// (as its VJP sends no cotangent), in one and in vector mode, and it is the transpose of the
/// VJP; the JIT agrees with the interpreter bit for bit.
#[test]
fn reduce_max_shares_its_tangent_among_ties() {
    let b = Builder::new("f");
    let x = b.param("x", &[4, 3]);
    let f = b.finish(&[x.max_axes(&[1])]).unwrap();
    let xs = vec![
        1.0,
        3.0,
        3.0,
        2.0,
        1.0,
        0.0,
        f64::NAN,
        1.0,
        2.0,
        5.0,
        5.0,
        5.0,
    ];
    let t = vec![
        10.0, 20.0, 41.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 1.0, 2.0, 4.0,
    ];
    let j = ad::jvp(&f, None).unwrap();
    let inputs = vec![xs.clone(), t.clone()];
    let out = run(&j, &inputs);
    assert_eq!(out[1], [30.5, 1.0, 0.0, 7.0 / 3.0]);
    common::agree::check_agrees("reduce_max jvp", &j, &inputs);
    // Two directions at once: row j of the tangent is the jvp along direction j.
    let twice: Vec<f64> = t.iter().copied().chain(t.iter().map(|v| v * 2.0)).collect();
    let jv = ad::jvp_vector(&f, None, 2).unwrap();
    let outv = run(&jv, &[xs.clone(), twice]);
    assert_eq!(
        outv[1],
        [30.5, 1.0, 0.0, 7.0 / 3.0, 61.0, 2.0, 0.0, 14.0 / 3.0]
    );
    // The transpose: <u, J t> = <J^T u, t> (the NaN row takes no part in either).
    let u = vec![1.0, -2.0, 3.0, 0.5];
    let back = run(&ad::vjp(&f, None).unwrap(), &[xs, u.clone()]);
    let jt: f64 = u.iter().zip(&out[1]).map(|(a, b)| a * b).sum();
    let jtu: f64 = back[1].iter().zip(&t).map(|(g, b)| g * b).sum();
    assert!((jt - jtu).abs() <= 1e-14 * jt.abs(), "{jt} vs {jtu}");
}

/// A quotient whose operands both move takes one division for its tangent, `(ta - y tb) / b`,
/// and is the sum of the two partial tangents.
#[test]
fn a_quotient_of_two_moving_operands_divides_once_for_its_tangent() {
    let b = Builder::new("q");
    let x = b.param("x", &[3]);
    let y = b.param("y", &[3]);
    let f = b.finish(&[x / y]).unwrap();
    let j = ad::jvp(&f, None).unwrap();
    let divisions = j
        .insts
        .iter()
        .filter(|i| i.op == Op::Binary(ir::Binary::Div))
        .count();
    assert_eq!(divisions, 2, "{j}");
    let (xs, ys) = (vec![1.0, -2.0, 0.5], vec![4.0, 0.25, -3.0]);
    let (tx, ty) = (vec![0.5, 1.0, -1.0], vec![2.0, -0.5, 0.125]);
    let out = run(&j, &[xs.clone(), ys.clone(), tx.clone(), ty.clone()]);
    for i in 0..3 {
        let want = tx[i] / ys[i] - xs[i] * ty[i] / (ys[i] * ys[i]);
        assert!(
            (out[1][i] - want).abs() <= 1e-15 * want.abs(),
            "{i}: {} vs {want}",
            out[1][i]
        );
    }
}

/// `c / sqrt(u)`: the quotient's and the square root's rules divide by the same root through
/// one reciprocal, so the jvp takes the primal quotient and that one division; in vector mode
/// neither is per direction.
#[test]
fn a_quotient_by_a_square_root_shares_one_reciprocal() {
    let b = Builder::new("inverse_root");
    let u = b.param("u", &[5]);
    let c = b.data("c", &[5]);
    let f = b.finish(&[(c / u.sqrt()).sum()]).unwrap();
    let divisions = |g: &Func| -> Vec<Vec<usize>> {
        g.insts
            .iter()
            .filter(|i| i.op == Op::Binary(ir::Binary::Div))
            .map(|i| i.ty.shape.to_vec())
            .collect()
    };
    assert_eq!(divisions(&ad::jvp(&f, None).unwrap()), [vec![5], vec![5]]);
    assert_eq!(
        divisions(&ad::jvp_vector(&f, None, 3).unwrap()),
        [vec![5], vec![5]]
    );
    // And against differences: d/du sum(c u^-1/2) = -c u^-3/2 / 2.
    let j = ad::jvp(&f, None).unwrap();
    let (us, cs, ts) = (
        vec![0.5, 1.0, 2.0, 3.0, 9.0],
        vec![1.0, -2.0, 0.5, 4.0, 1.5],
        vec![1.0, 0.5, -1.0, 2.0, 0.25],
    );
    let out = run(&j, &[us.clone(), cs.clone(), ts.clone()]);
    let want: f64 = (0..5)
        .map(|i| -0.5 * cs[i] * us[i].powf(-1.5) * ts[i])
        .sum();
    assert!(
        (out[1][0] - want).abs() <= 1e-14 * want.abs(),
        "{} vs {want}",
        out[1][0]
    );
}
