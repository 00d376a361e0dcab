//! Vector mode, dense Jacobians and Hessians: the vector-mode jvp equals k separate jvps bit
//! for bit (same operations in the same order, the directions only broadcast along); Jacobians
//! in both modes and Hessians match central differences on every shipped model small enough,
//! the two Jacobian modes agree to 1e-13, and compiled code equals the interpreter bit for bit.
//! Beyond the limits of a value (a block, an identity seed, what a scan stacks along its steps,
//! with or without directions) a transform is `TooLarge`, naming the value; zero directions
//! pass through scans; an empty `wrt` list is its own error.

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

/// A scan whose body returns a rank-7 value per step (stacked: rank 8), and one whose body
/// computes rank-8 values (the reverse sweep would save them per step: rank 9).
const RANK7_YS: &str = "\
func @step(c0: f64[1,1,1,1,1,1,2], h0: f64[], x0: f64[]) -> (f64[], f64[1,1,1,1,1,1,2]) {
    b: f64[1,1,1,1,1,1,2] = broadcast x0 [axes=[0,1,2,3,4,5,6], shape=[1,1,1,1,1,1,2]]
    y: f64[1,1,1,1,1,1,2] = mul c0, b
    s: f64[] = reduce_sum y [axes=[0,1,2,3,4,5,6]]
    h1: f64[] = add h0, s
    return h1, y
}

func @main(w: f64[1,1,1,1,1,1,2], h: f64[], xs: f64[3]) -> (f64[]) {
    s: f64[7] = scan w, h, xs [body=@step, carries=1, consts=1, length=3]
    ys: f64[6] = slice s [start=[1], stop=[7]]
    q: f64[6] = mul ys, ys
    l: f64[] = reduce_sum q [axes=[0]]
    return l
}
";

const RANK8_BODY: &str = "\
func @step(c0: f64[1,1,1,1,1,1,1,2], h0: f64[], x0: f64[]) -> (f64[]) {
    b: f64[1,1,1,1,1,1,1,2] = broadcast h0 [axes=[0,1,2,3,4,5,6,7], shape=[1,1,1,1,1,1,1,2]]
    y: f64[1,1,1,1,1,1,1,2] = mul c0, b
    z: f64[1,1,1,1,1,1,1,2] = sin y
    s: f64[] = reduce_sum z [axes=[0,1,2,3,4,5,6,7]]
    h1: f64[] = add s, x0
    return h1
}

func @main(w: f64[1,1,1,1,1,1,1,2], h: f64[], xs: f64[3]) -> (f64[]) {
    s: f64[1] = scan w, h, xs [body=@step, carries=1, consts=1, length=3]
    l: f64[] = reduce_sum s [axes=[0]]
    return l
}
";

fn too_large(r: Result<Func, ad::AdError>, want: &str) {
    match r {
        Err(e @ ad::AdError::TooLarge { .. }) => {
            assert!(e.to_string().contains(want), "{e}");
        }
        other => panic!("expected TooLarge with {want:?}, got {other:?}"),
    }
}

#[test]
fn what_scans_stack_beyond_the_rank_limit_is_too_large() {
    let f = ir::parse(RANK7_YS).unwrap();
    // Its gradient works; in vector mode the stacked outputs gain the directions: rank 9.
    ad::grad(&f, None).unwrap();
    let want = "value 'y' (f64[1,1,1,1,1,1,2]) of @step, stacked over 3 steps with";
    for mode in [
        JacobianMode::Forward,
        JacobianMode::Reverse,
        JacobianMode::Auto,
    ] {
        too_large(ad::jacobian(&f, None, mode), want);
    }
    too_large(ad::jvp_vector(&f, None, 2), want);
    too_large(ad::hessian(&f, Some(&["h"])), "rank 9");
    // Reverse mode saves the body's rank-8 values per step.
    let g = ir::parse(RANK8_BODY).unwrap();
    ad::jvp(&g, None).unwrap();
    let want =
        "value 'b' (f64[1,1,1,1,1,1,1,2]) of @step.vjp, stored at each of 3 steps, of rank 9";
    too_large(ad::grad(&g, None), want);
    too_large(ad::vjp(&g, None), want);
    too_large(ad::hvp(&g, None), want);
    // Storing only the carry (checkpoint=carry), the same loop differentiates.
    let carry = ir::parse(&RANK8_BODY.replace("length=3]", "length=3, checkpoint=carry]")).unwrap();
    let g = ad::grad(&carry, None).unwrap();
    let out = eval(&g, &defaults(&g, 0)).unwrap();
    assert!(out[1..].iter().flatten().all(|x| x.is_finite()), "{out:?}");
}

/// Nested scans whose inner per-step output is rank 6: stacked by the inner scan (rank 7)
/// with directions (rank 8), but never by the outer one.
const NESTED: &str = "\
func @inner(h: f64[]) -> (f64[], f64[1,1,1,1,1,2]) {
    s: f64[] = sin h
    y: f64[1,1,1,1,1,2] = broadcast s [axes=[0,1,2,3,4,5], shape=[1,1,1,1,1,2]]
    return s, y
}

func @outer(h: f64[]) -> (f64[]) {
    o: f64[5] = scan h [body=@inner, carries=1, consts=0, length=2]
    r: f64[] = reduce_sum o [axes=[0]]
    return r
}

func @main(x: f64[2]) -> (f64[]) {
    a: f64[1] = slice x [start=[0], stop=[1]]
    h: f64[] = reshape a [shape=[]]
    out: f64[1] = scan h [body=@outer, carries=1, consts=0, length=2]
    r: f64[] = reshape out [shape=[]]
    b: f64[1] = slice x [start=[1], stop=[2]]
    c: f64[] = reshape b [shape=[]]
    s: f64[] = mul r, c
    return s
}
";

#[test]
fn nested_scans_within_the_limits_differentiate_densely() {
    let f = ir::parse(NESTED).unwrap();
    let x = vec![0.3, 2.0];
    let fwd = ad::jacobian(&f, None, JacobianMode::Forward).unwrap();
    let rev = ad::jacobian(&f, None, JacobianMode::Reverse).unwrap();
    let (a, b) = (
        eval(&fwd, std::slice::from_ref(&x)).unwrap(),
        eval(&rev, std::slice::from_ref(&x)).unwrap(),
    );
    for (p, q) in a[1].iter().zip(&b[1]) {
        assert!((p - q).abs() <= 1e-13 * p.abs().max(1.0), "{a:?} {b:?}");
    }
    let h = ad::hessian(&f, None).unwrap();
    let out = eval(&h, &[x]).unwrap();
    assert!(out[2].iter().all(|v| v.is_finite()), "{out:?}");
    let (h01, h10) = (out[2][1], out[2][2]);
    assert!((h01 - h10).abs() <= 1e-13 * h01.abs(), "symmetric: {out:?}");
}

#[test]
fn identity_seeds_beyond_the_element_limit_are_too_large() {
    // 2^16 directions: the block (2^32 elements) fits, the [n, n + 1] identity it is cut from
    // does not.
    let b = ir::Builder::new("big");
    let x = b.param("x", &[1 << 16]);
    let f = b.finish(&[(x * x).sum()]).unwrap();
    let want = "the identity of 65536 directions, built as a [65536, 65537] value";
    too_large(ad::hessian(&f, None), want);
    let b = ir::Builder::new("bigj");
    let x = b.param("x", &[1 << 16]);
    let f = b.finish(&[x.sin()]).unwrap();
    for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
        too_large(ad::jacobian(&f, None, mode), want);
    }
}

/// A scan, with an empty input `e` added (as its sum, 0) into the scan's constant.
const SCAN_WITH_EMPTY: &str = "\
func @step(c0: f64[], h0: f64[2], x0: f64[]) -> (f64[2], f64[]) {
    a: f64[2] = broadcast c0 [axes=[0], shape=[2]]
    b: f64[2] = broadcast x0 [axes=[0], shape=[2]]
    p: f64[2] = mul a, h0
    q: f64[2] = add p, b
    h1: f64[2] = tanh q
    y: f64[] = reduce_sum h1 [axes=[0]]
    return h1, y
}

func @main(w: f64[], h: f64[2], e: f64[0], data xs: f64[3]) -> (f64[]) {
    se: f64[] = reduce_sum e [axes=[0]]
    ww: f64[] = add w, se
    s: f64[5] = scan ww, h, xs [body=@step, carries=1, consts=1, length=3]
    q: f64[5] = mul s, s
    l: f64[] = reduce_sum q [axes=[0]]
    return l
}
";

#[test]
fn no_directions_pass_through_scans() {
    // Zero directions through a scan, and the Jacobian and Hessian by an empty input that
    // feeds one: empty blocks.
    let f = ir::parse(SCAN_WITH_EMPTY).unwrap();
    let v = ad::jvp_vector(&f, None, 0).unwrap();
    let out = eval(&v, &defaults(&v, 0)).unwrap();
    assert_eq!((out.len(), out[1].len()), (2, 0), "{out:?}");
    let value = eval(&f, &defaults(&f, 0)).unwrap()[0][0];
    for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
        let jac = ad::jacobian(&f, Some(&["e"]), mode).unwrap();
        let out = eval(&jac, &defaults(&jac, 0)).unwrap();
        assert_eq!((out[0][0], out[1].len()), (value, 0), "{mode:?}: {out:?}");
    }
    let hess = ad::hessian(&f, Some(&["e"])).unwrap();
    let out = eval(&hess, &defaults(&hess, 0)).unwrap();
    assert!(out[1].is_empty() && out[2].is_empty(), "{out:?}");
    // With w beside it, the blocks by w are the ordinary ones.
    let hess = ad::hessian(&f, Some(&["e", "w"])).unwrap();
    let out = eval(&hess, &defaults(&hess, 0)).unwrap();
    assert_eq!(out[6].len(), 1, "{out:?}");
    assert!(out[6][0].is_finite() && out[6][0] != 0.0, "{out:?}");
}

#[test]
fn an_empty_wrt_list_is_its_own_error() {
    let f = adjit::models::rosenbrock(4);
    for r in [
        ad::jvp(&f, Some(&[])),
        ad::grad(&f, Some(&[])),
        ad::jacobian(&f, Some(&[]), JacobianMode::Auto),
        ad::hessian(&f, Some(&[])),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, ad::AdError::EmptyWrt { .. }), "{e:?}");
        assert!(e.to_string().contains("an empty list"), "{e}");
    }
}
