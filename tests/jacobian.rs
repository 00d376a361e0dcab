//! Vector mode, dense Jacobians and Hessians: the vector-mode jvp equals k separate jvps bit
//! for bit (same operations in the same order, the directions only broadcast along); Jacobians
//! in both modes and Hessians match central differences on every shipped model small enough,
//! the two Jacobian modes agree to 1e-13, and compiled code equals the interpreter bit for bit.

mod common;

use adjit::ad::{self, JacobianMode};
use adjit::call::Executor;
use adjit::inputs::defaults;
use adjit::interp::eval;
use adjit::ir::{self, Func, Opcode};
use common::examples::example_outputs;

/// Dense derivatives up to this many entries are checked against differences.
const MAX_ENTRIES: usize = 100_000;

fn run(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    eval(f, inputs).unwrap_or_else(|e| panic!("@{}: {e}", f.name))
}

fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn jit_equals_interp(f: &Func, inputs: &[Vec<f64>]) {
    let compiled = adjit::jit::compile(f).unwrap_or_else(|e| panic!("@{}: {e}", f.name));
    let got = compiled.eval(inputs).unwrap();
    assert!(
        same_bits(&got, &run(f, inputs)),
        "@{}: JIT vs interpreter",
        f.name
    );
}

fn wrt_sizes(f: &Func) -> Vec<(usize, usize)> {
    ad::resolve_wrt(f, None)
        .unwrap()
        .iter()
        .map(|&i| (i, f.params[i].ty.numel()))
        .collect()
}

/// A vector-mode jvp with `k` random directions against `k` jvps, one per direction.
fn vector_equals_separate(f: &Func, k: usize, seed: u64) {
    let v = ad::jvp_vector(f, None, k).unwrap_or_else(|e| panic!("@{}: {e}", f.name));
    let j = ad::jvp(f, None).unwrap();
    let all = defaults(&v, seed);
    let np = f.params.len();
    let out = run(&v, &all);
    let nr = f.results.len();
    for d in 0..k {
        let mut ins = all[..np].to_vec();
        for t in &all[np..] {
            let n = t.len() / k;
            ins.push(t[d * n..(d + 1) * n].to_vec());
        }
        let one = run(&j, &ins);
        assert!(same_bits(&one[..nr], &out[..nr]), "@{}: outputs", f.name);
        for r in 0..nr {
            let n = one[nr + r].len();
            let row = &out[nr + r][d * n..(d + 1) * n];
            assert!(
                same_bits(&[one[nr + r].clone()], &[row.to_vec()]),
                "@{}: direction {d}, result {r}",
                f.name
            );
        }
    }
    jit_equals_interp(&v, &all);
}

#[test]
fn vector_mode_equals_separate_jvps_bit_for_bit() {
    for op in Opcode::ALL {
        vector_equals_separate(&example_outputs(op), 3, 5);
    }
    for m in adjit::models::ALL {
        let f = ir::parse(m.text).unwrap();
        if m.name != "pendulum_long" {
            vector_equals_separate(&f, 2, 7);
        }
    }
}

/// Columns differenced per input (the first ones and a stride through the rest).
const COLUMNS: usize = 24;

/// Central differences of `f`'s results along coordinates of each differentiated input:
/// `(j, col)` with `col` the derivative of every result element (flattened, results in order)
/// along coordinate `j` of all inputs joined.
fn difference_columns(f: &Func, inputs: &[Vec<f64>], results: &[usize]) -> Vec<(usize, Vec<f64>)> {
    let mut cols = Vec::new();
    let mut base = 0;
    for (p, n) in wrt_sizes(f) {
        let step = n.div_ceil(COLUMNS).max(1);
        for c in (0..n).step_by(step) {
            let h = 1e-6 * inputs[p][c].abs().max(1.0);
            let at = |s: f64| {
                let mut x = inputs.to_vec();
                x[p][c] += s * h;
                let out = run(f, &x);
                results
                    .iter()
                    .flat_map(|&r| out[r].clone())
                    .collect::<Vec<f64>>()
            };
            let (hi, lo) = (at(1.0), at(-1.0));
            let col = hi
                .iter()
                .zip(&lo)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect();
            cols.push((base + c, col));
        }
        base += n;
    }
    cols
}

/// The largest difference of `got[row][col]` (rows: result elements) from `cols`, relative to
/// the largest entry (at least 1).
fn error(got: &[f64], nc: usize, cols: &[(usize, Vec<f64>)]) -> f64 {
    let scale = got.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for (c, col) in cols {
        for (r, want) in col.iter().enumerate() {
            worst = worst.max((got[r * nc + c] - want).abs() / scale);
        }
    }
    worst
}

/// The Jacobian blocks of result `i` for every input, joined into one `[rows, all inputs]`.
fn joined(out: &[Vec<f64>], f: &Func) -> Vec<f64> {
    let sizes = wrt_sizes(f);
    let nr = f.results.len();
    let mut m = Vec::new();
    for i in 0..nr {
        let rows = f.result_types()[i].numel();
        for r in 0..rows {
            for (a, &(_, n)) in sizes.iter().enumerate() {
                m.extend_from_slice(&out[nr + i * sizes.len() + a][r * n..(r + 1) * n]);
            }
        }
    }
    m
}

fn small_models() -> Vec<(String, Func)> {
    let mut fs: Vec<(String, Func)> = adjit::models::ALL
        .iter()
        .filter(|m| m.name != "bratu")
        .map(|m| (m.name.to_string(), ir::parse(m.text).unwrap()))
        .collect();
    fs.push(("bratu_60".into(), adjit::models::bratu_n(60)));
    fs
}

#[test]
fn jacobians_match_differences_and_each_other() {
    for (name, f) in small_models() {
        let n_in: usize = wrt_sizes(&f).iter().map(|s| s.1).sum();
        let n_out: usize = f.result_types().iter().map(|t| t.numel()).sum();
        if n_in * n_out > MAX_ENTRIES || name == "pendulum_long" {
            continue;
        }
        let start = std::time::Instant::now();
        let inputs = defaults(&f, 3);
        // Forward mode runs f's work once per input element: mlp (thousands) is left out.
        let fmode = if n_in <= 2000 {
            JacobianMode::Forward
        } else {
            JacobianMode::Reverse
        };
        let fwd = ad::jacobian(&f, None, fmode).unwrap();
        let rev = ad::jacobian(&f, None, JacobianMode::Reverse).unwrap();
        let (jf, jr) = (run(&fwd, &inputs), run(&rev, &inputs));
        let nr = f.results.len();
        assert!(same_bits(&jf[..nr], &run(&f, &inputs)), "{name}: outputs");
        let (mf, mr) = (joined(&jf, &f), joined(&jr, &f));
        let scale = mf.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let agree = mf
            .iter()
            .zip(&mr)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0.0, f64::max);
        assert!(agree <= 1e-13, "{name}: forward vs reverse {agree:.2e}");
        let results: Vec<usize> = (0..nr).collect();
        let e = error(&mf, n_in, &difference_columns(&f, &inputs, &results));
        assert!(e <= 1e-6, "{name}: Jacobian vs differences {e:.2e}");
        jit_equals_interp(&fwd, &inputs);
        jit_equals_interp(&rev, &inputs);
        println!("{name}: {:?}", start.elapsed());
    }
}

#[test]
fn every_op_jacobian_in_both_modes() {
    // Several results of several shapes each: the blocks' layout in both modes.
    for op in Opcode::ALL {
        let f = example_outputs(op);
        let inputs = defaults(&f, 8);
        let fwd = run(
            &ad::jacobian(&f, None, JacobianMode::Forward).unwrap(),
            &inputs,
        );
        let rev = run(
            &ad::jacobian(&f, None, JacobianMode::Reverse).unwrap(),
            &inputs,
        );
        let (mf, mr) = (joined(&fwd, &f), joined(&rev, &f));
        let scale = mf.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let agree = mf.iter().zip(&mr).map(|(a, b)| (a - b).abs() / scale);
        let agree = agree.fold(0.0, f64::max);
        assert!(
            agree <= 1e-13,
            "{}: forward vs reverse {agree:.2e}",
            op.name()
        );
        let n_in: usize = wrt_sizes(&f).iter().map(|s| s.1).sum();
        let results: Vec<usize> = (0..f.results.len()).collect();
        let e = error(&mf, n_in, &difference_columns(&f, &inputs, &results));
        assert!(e <= 1e-6, "{}: Jacobian vs differences {e:.2e}", op.name());
    }
}

#[test]
fn hessians_match_differences_of_gradients() {
    for (name, f) in small_models() {
        let r = f.result_types();
        let n: usize = wrt_sizes(&f).iter().map(|s| s.1).sum();
        if r.len() != 1 || !r[0].is_scalar() || n * n > MAX_ENTRIES || name == "pendulum_long" {
            continue;
        }
        let inputs = defaults(&f, 4);
        let h = ad::hessian(&f, None).unwrap();
        let g = ad::grad(&f, None).unwrap();
        let out = run(&h, &inputs);
        let k = wrt_sizes(&f).len();
        assert!(
            same_bits(&out[..1 + k], &run(&g, &inputs)),
            "{name}: value, grad"
        );
        // Rows: the gradient's elements (inputs in order); columns: every input's.
        let sizes = wrt_sizes(&f);
        let mut m = Vec::new();
        for (a, &(_, na)) in sizes.iter().enumerate() {
            for i in 0..na {
                for (c, &(_, nc)) in sizes.iter().enumerate() {
                    m.extend_from_slice(&out[1 + k + a * k + c][i * nc..(i + 1) * nc]);
                }
            }
        }
        let results: Vec<usize> = (1..=k).collect();
        let e = error(&m, n, &difference_columns(&g, &inputs, &results));
        assert!(e <= 1e-5, "{name}: Hessian vs differences {e:.2e}");
        jit_equals_interp(&h, &inputs);
    }
}

#[test]
fn auto_picks_by_size_and_errors_are_clean() {
    let f = adjit::models::bratu_n(5);
    let fwd = ad::jacobian(&f, None, JacobianMode::Forward).unwrap();
    let auto = ad::jacobian(&f, None, JacobianMode::Auto).unwrap();
    assert_eq!(fwd.to_string(), auto.to_string());
    let tiny = ir::parse(adjit::models::find("tiny").unwrap().text).unwrap();
    let rev = ad::jacobian(&tiny, None, JacobianMode::Reverse).unwrap();
    let auto = ad::jacobian(&tiny, None, JacobianMode::Auto).unwrap();
    assert_eq!(rev.to_string(), auto.to_string());
    assert!(matches!(
        ad::hessian(&f, None),
        Err(ad::AdError::NotScalar { .. })
    ));
    assert!(matches!(
        ad::jacobian(&f, Some(&["nope"]), JacobianMode::Auto),
        Err(ad::AdError::NoSuchInput { .. })
    ));
}

#[test]
fn too_large_is_an_error_not_a_panic() {
    let b = ir::Builder::new("r8");
    let x = b.param("x", &[1, 1, 1, 1, 1, 1, 1, 2]);
    let f = b.finish(&[x.exp().sum()]).unwrap();
    assert!(matches!(
        ad::jvp_vector(&f, None, 3),
        Err(ad::AdError::TooLarge { .. })
    ));
    assert!(matches!(
        ad::hessian(&f, None),
        Err(ad::AdError::TooLarge { .. })
    ));
    let b = ir::Builder::new("wide");
    let x = b.param("x", &[1 << 20]);
    let f = b.finish(&[x.exp()]).unwrap();
    let e = ad::jacobian(&f, None, JacobianMode::Auto).unwrap_err();
    assert!(e.to_string().contains("beyond the limits"), "{e}");
}
