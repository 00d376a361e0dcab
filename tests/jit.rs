//! The Cranelift backend against the interpreter: every model (f, grad, hvp), random graphs
//! over the whole op set, IEEE special values, threads, big graphs and memory; and call
//! checking, one generic test run over both executors through `call::Executor`.
//!
//! Agreement is bit for bit (NaN matching NaN): the JIT evaluates every op with the
//! interpreter's functions (libmvec's two-lane ones included) and sums in the interpreter's order.

mod common;

use adjit::call::{CallError, EvalError, Executor};
use adjit::interp::{self, Program};
use adjit::ir::{self, Builder, Func, Op, Var};
use adjit::jit::{self, Compiled};
use common::agree::{check_agrees, difference};
use common::random_graph::random_func;
use proptest::prelude::*;
use std::sync::Arc;

/// Random operands of a `batch` of `m x k` by `k x n` products.
fn matmul_operands(
    batch: usize,
    (m, k, n): (usize, usize, usize),
    draw: &mut impl FnMut() -> f64,
) -> Vec<Vec<f64>> {
    [m * k, k * n]
        .iter()
        .map(|len| (0..batch * len).map(|_| draw()).collect())
        .collect()
}

/// The interpreter computes `want` (a matmul's fma chains) exactly, and compiled code agrees.
fn agrees_with_chain(name: &str, f: &Func, inputs: &[Vec<f64>], want: &[f64]) {
    let interpreted = interp::eval(f, inputs).unwrap();
    assert_eq!(
        difference(&interpreted, &[want.to_vec()]),
        0.0,
        "{name}: interpreter"
    );
    check_agrees(name, f, inputs);
}

#[test]
fn every_model_f_grad_hvp() {
    for m in adjit::models::ALL {
        let f = ir::parse(m.text).unwrap();
        // Vector-valued models: f, its jvp and its dense Jacobian.
        let (g, h) = if m.scalar() {
            (adjit::ad::grad(&f, None), adjit::ad::hvp(&f, None))
        } else {
            let mode = adjit::ad::JacobianMode::Forward;
            (
                adjit::ad::jvp(&f, None),
                adjit::ad::jacobian(&f, None, mode),
            )
        };
        let (g, h) = (g.unwrap(), h.unwrap());
        for (kind, func) in [("f", &f), ("grad", &g), ("hvp", &h)] {
            let inputs = adjit::inputs::defaults(func, 2);
            check_agrees(&format!("{} {kind}", m.name), func, &inputs);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_agree_with_the_interpreter(seed in any::<u64>(), ops in 1usize..24) {
        let f = random_func(seed, ops);
        let inputs = adjit::inputs::defaults(&f, seed);
        check_agrees(&format!("random {seed} {ops} f"), &f, &inputs);
        let text = f.to_string();
        let back = ir::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&f), "text round trip of\n{}", text);
        let g = adjit::ad::grad(&f, None).unwrap();
        check_agrees(&format!("random {seed} {ops} grad"), &g, &inputs);
        let h = adjit::ad::hvp(&f, None).unwrap();
        let hin = adjit::inputs::defaults(&h, seed);
        check_agrees(&format!("random {seed} {ops} hvp"), &h, &hin);
    }
}

/// `C[t] = op(A[t]) op(B[t])` computed here as the documented chain: each element starts at
/// `+0.0` and becomes `fma(a, b, acc)` for `p` ascending (with `fused` false, `acc + a * b`).
fn fma_chain(
    d: (usize, usize, usize, usize),
    t: (bool, bool),
    ab: &[Vec<f64>],
    fused: bool,
) -> Vec<f64> {
    let ((batch, m, k, n), (ta, tb)) = (d, t);
    let mut c = Vec::with_capacity(batch * m * n);
    for t in 0..batch {
        let (a, b) = (&ab[0][t * m * k..], &ab[1][t * k * n..]);
        for i in 0..m {
            for j in 0..n {
                let x = |p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
                let y = |p: usize| if tb { b[j * k + p] } else { b[p * n + j] };
                let step = |acc: f64, p| {
                    if fused {
                        x(p).mul_add(y(p), acc)
                    } else {
                        acc + x(p) * y(p)
                    }
                };
                c.push((0..k).fold(0.0, step));
            }
        }
    }
    c
}

/// Values in `[-1.5, 1.5)` from a seeded generator, whose products round.
fn draws(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 3.0
    }
}

/// `[m,k] x [k,n]` (each stored transposed where `ta`/`tb`), a stack of `batch` of them when
/// `batch > 1`.
fn matmul_func(batch: usize, (m, k, n): (usize, usize, usize), ta: bool, tb: bool) -> Func {
    let b = Builder::new("mm");
    let lead = |s: [usize; 2]| {
        if batch > 1 {
            vec![batch, s[0], s[1]]
        } else {
            s.to_vec()
        }
    };
    let x = b.param("a", &lead(if ta { [k, m] } else { [m, k] }));
    let y = b.param("b", &lead(if tb { [n, k] } else { [k, n] }));
    b.finish(&[x.matmul_t(y, ta, tb)]).unwrap()
}

/// Every transpose of each `(batch, m, k, n)` product, on operands from `draw`, computes the
/// fma chains in both executors; returns whether some case tells the chains from a separate
/// multiply and add.
fn chains_agree(shapes: &[(usize, usize, usize, usize)], draw: &mut impl FnMut() -> f64) -> bool {
    let mut separate_differs = false;
    for &(batch, m, k, n) in shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let f = matmul_func(batch, (m, k, n), ta, tb);
            let inputs = matmul_operands(batch, (m, k, n), draw);
            let want = fma_chain((batch, m, k, n), (ta, tb), &inputs, true);
            let name = format!("[{batch}] {m}x{k}x{n} ta={ta} tb={tb}");
            agrees_with_chain(&name, &f, &inputs, &want);
            let separate = fma_chain((batch, m, k, n), (ta, tb), &inputs, false);
            separate_differs |= difference(&[want], &[separate]) != 0.0;
        }
    }
    separate_differs
}

#[test]
fn matmul_tiles_and_their_edges_are_one_fma_chain_per_element() {
    // Sizes around the tiles (2x8 vectors, 7x1 scalars) and their remainders, every transpose,
    // plain and batched; values whose products round, so a separate multiply and add differs.
    let mut draw = draws(7);
    let shapes = [
        (1, 7, 5, 13),
        (1, 3, 1, 6),
        (2, 5, 3, 8),
        (1, 1, 9, 7),
        (1, 8, 4, 1),
        (2, 4, 2, 3),
        (1, 4, 3, 17),
        (1, 15, 2, 1),
    ];
    let separate_differs = chains_agree(&shapes, &mut draw);
    assert!(
        separate_differs,
        "no case tells an fma chain from separate multiply and add"
    );
}

#[test]
fn odd_matmul_shapes_are_one_fma_chain_per_element() {
    // Every transpose of every product of sizes 1, 2, 3, 5, 7 and 9, plain and batched: the
    // vector tiles and their edges, B read across its rows (`tb`) packed first, or with 2 to 4
    // rows, transposed in registers two columns and two steps at a time (odd `k` and `n`
    // included), single rows and columns on scalar tiles. The packed copy of B takes
    // `batch * k * n` elements of the workspace, which is otherwise empty (the product is
    // computed in its output).
    let mut draw = draws(11);
    let sizes = [1, 2, 3, 5, 7, 9];
    let (mut packed, mut in_place) = (0, 0);
    for batch in [1, 2] {
        for (m, k, n) in sizes
            .iter()
            .flat_map(|&m| sizes.iter().flat_map(move |&k| sizes.map(|n| (m, k, n))))
        {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let f = matmul_func(batch, (m, k, n), ta, tb);
                let inputs = matmul_operands(batch, (m, k, n), &mut draw);
                let name = format!("[{batch}] {m}x{k}x{n} ta={ta} tb={tb}");
                let want = fma_chain((batch, m, k, n), (ta, tb), &inputs, true);
                agrees_with_chain(&name, &f, &inputs, &want);
                // (With k = 1, B^T's rows are B's columns, contiguous: nothing to pack.)
                let across = tb && (2..=4).contains(&m) && k >= 2 && n >= 2;
                let packs = tb && m >= 2 && k >= 2 && n >= 2 && !across;
                packed += usize::from(packs);
                in_place += usize::from(across);
                let work = jit::compile(&f).unwrap().workspace().len();
                assert_eq!(work, if packs { batch * k * n } else { 0 }, "{name}");
            }
        }
    }
    // m of 5, 7, 9 packed; m of 2 and 3 in place (k and n of 2 to 9, both batch sizes).
    assert_eq!(packed, 2 * 3 * 5 * 5 * 2);
    assert_eq!(in_place, 2 * 2 * 5 * 5 * 2);
}

/// Products large enough for the AVX2 kernel (`ops::gemm`, where the CPU has it): its 4x8, 4x4
/// and 4x2 tiles, their single-row and single-element edges, every transpose (B read across its
/// rows is copied into the packing range first), plain and batched, and views as operands.
/// Each element is the fma chain, bit for bit.
#[test]
fn large_matmuls_are_one_fma_chain_per_element() {
    let mut draw = draws(13);
    let shapes = [
        (1, 13, 37, 29),
        (2, 6, 16, 44),
        (1, 32, 64, 128),
        (1, 4, 9, 120),
        (2, 9, 12, 37),
        (1, 3, 200, 12),
        (1, 64, 20, 10),
        (2, 7, 11, 23),
        (1, 5, 30, 15),
    ];
    assert!(chains_agree(&shapes, &mut draw));
    // A row slice of a wider matrix times a column slice of another (strided views).
    let b = Builder::new("views");
    let (a, p) = (b.param("a", &[20, 40]), b.param("p", &[40, 50]));
    let out = a
        .slice(&[3, 5], &[17, 40])
        .matmul(p.slice(&[5, 2], &[40, 47]));
    let f = b.finish(&[out]).unwrap();
    let inputs: Vec<Vec<f64>> = f
        .params
        .iter()
        .map(|p| (0..p.ty.numel()).map(|_| draw()).collect())
        .collect();
    check_agrees("large views", &f, &inputs);
}

#[test]
fn matmuls_of_views_and_registers_agree_with_the_interpreter() {
    // B as a transposed view (contiguous along the contraction: packed by 2x2 transposes, or
    // with 2 to 4 rows transposed in registers, A in memory, splat or broadcast), a
    // permuted rank-3 view (contiguous along neither axis: packed element by element), a
    // broadcast along the columns (stride 0: packed), and registers (a broadcast scalar, a
    // splat constant: vector tiles of one value); A as a transposed view.
    type Case = fn(&Builder, (usize, usize, usize)) -> Var<'_>;
    let cases: [(&str, Case); 9] = [
        ("B transposed view", |b, (m, k, n)| {
            let (a, p) = (b.param("a", &[m, k]), b.param("p", &[n, k]));
            a.matmul(p.transpose(&[1, 0]))
        }),
        ("B permuted rank 3", |b, (m, k, n)| {
            let (a, q) = (b.param("a", &[2, m, k]), b.param("q", &[k, n, 2]));
            a.matmul(q.transpose(&[2, 0, 1]))
        }),
        ("B broadcast along j", |b, (m, k, n)| {
            let (a, u) = (b.param("a", &[m, k]), b.param("u", &[k]));
            a.matmul(u.expand(&[k, n], &[1]))
        }),
        ("B broadcast scalar", |b, (m, k, n)| {
            let (a, s) = (b.param("a", &[m, k]), b.param("s", &[]));
            a.matmul(s.expand(&[k, n], &[0, 1]))
        }),
        ("B splat", |b, (m, k, n)| {
            let a = b.param("a", &[m, k]);
            a.matmul(b.splat(0.75, &[k, n]))
        }),
        ("A splat, B transposed view", |b, (m, k, n)| {
            let p = b.param("p", &[n, k]);
            b.splat(-1.25, &[m, k]).matmul(p.transpose(&[1, 0]))
        }),
        ("A broadcast, B transposed", |b, (m, k, n)| {
            let (s, p) = (b.param("s", &[]), b.param("p", &[n, k]));
            s.expand(&[m, k], &[0, 1]).matmul_t(p, false, true)
        }),
        ("A transposed view", |b, (m, k, n)| {
            let (a, p) = (b.param("a", &[k, m]), b.param("p", &[k, n]));
            a.transpose(&[1, 0]).matmul(p)
        }),
        ("A and B transposed views, tb", |b, (m, k, n)| {
            let (a, p) = (b.param("a", &[k, m]), b.param("p", &[k, n]));
            a.transpose(&[1, 0])
                .matmul_t(p.transpose(&[1, 0]), false, true)
        }),
    ];
    let mut draw = draws(5);
    for (m, k, n) in [
        (1, 3, 5),
        (2, 1, 2),
        (3, 7, 6),
        (4, 8, 9),
        (5, 2, 7),
        (7, 5, 13),
    ] {
        for (what, case) in cases {
            let b = Builder::new("views");
            let out = case(&b, (m, k, n));
            let f = b.finish(&[out]).unwrap();
            let inputs: Vec<Vec<f64>> = f
                .params
                .iter()
                .map(|p| (0..p.ty.numel()).map(|_| draw()).collect())
                .collect();
            check_agrees(&format!("{what} {m}x{k}x{n}"), &f, &inputs);
        }
    }
}

#[test]
fn ieee_specials_match_the_interpreter() {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -2.5,
        1e308,
        5e-324,
    ];
    let n = specials.len();
    let b = Builder::new("specials");
    let x = b.param("x", &[n * n]);
    let y = b.param("y", &[n * n]);
    let mut outs = vec![
        x * y,
        x + y,
        x - y,
        x / y,
        x.max(y),
        x.min(y),
        x.pow(y),
        x.atan2(y),
        b.select(x.lt(y), x, y),
    ];
    for u in adjit::ir::Unary::ALL {
        outs.push(b.op(Op::Unary(u), &[x.value()]));
    }
    outs.push(x.sum_axes(&[0]));
    outs.push(x.max_axes(&[0]));
    let f = b.finish(&outs).unwrap();
    let xs: Vec<f64> = (0..n * n).map(|i| specials[i / n]).collect();
    let ys: Vec<f64> = (0..n * n).map(|i| specials[i % n]).collect();
    check_agrees("specials", &f, &[xs.clone(), ys.clone()]);
    // And as scalars (register code rather than loops).
    for i in 0..n * n {
        let b = Builder::new("scalar_specials");
        let p = b.param("p", &[]);
        let q = b.param("q", &[]);
        let mut outs = vec![
            p * q,
            p.max(q),
            p.min(q),
            p.pow(q),
            p.atan2(q),
            b.select(p.ge(q), p, q),
            p.sign(),
            p.floor(),
        ];
        outs.push(p.sigmoid());
        let f = b.finish(&outs).unwrap();
        check_agrees("scalar specials", &f, &[vec![xs[i]], vec![ys[i]]]);
    }
}

fn two_input_fn() -> Func {
    let b = Builder::new("f");
    let x = b.param("x", &[3]);
    let y = b.param("y", &[3]);
    b.finish(&[(x * y).sum(), x.max(y)]).unwrap()
}

/// What every executor of `two_input_fn` does with calls, through the trait alone: each kind of
/// wrong call is its error (`other` is another executor of the same function, whose workspace
/// is foreign); a right call gives the values, again with the workspace reused; `eval` reports
/// wrong inputs as the call's errors.
fn calls_are_checked<E: Executor>(e: &E, other: &E) {
    let mut ws = e.workspace();
    let (x, y) = ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]);
    let (mut s, mut m) = ([0.0], [0.0; 3]);
    let err = e.call(&mut ws, &[&x], &mut [&mut s, &mut m]);
    let count = CallError::InputCount {
        expected: 2,
        got: 1,
    };
    assert_eq!(err, Err(count.clone()));
    let err = e.call(&mut ws, &[&x, &y[..2]], &mut [&mut s, &mut m]);
    let err = err.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::InputLength {
                index: 1,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    let message = "'y': f64[3]) needs 3 elements, got 2";
    assert!(err.to_string().contains(message), "{err}");
    let err = e.call(&mut ws, &[&x, &y], &mut [&mut s]);
    let want = CallError::OutputCount {
        expected: 2,
        got: 1,
    };
    assert_eq!(err, Err(want));
    let mut short = [0.0; 2];
    let err = e.call(&mut ws, &[&x, &y], &mut [&mut s, &mut short]);
    assert!(
        matches!(
            err,
            Err(CallError::OutputLength {
                index: 1,
                got: 2,
                ..
            })
        ),
        "{err:?}"
    );
    let mut foreign = other.workspace();
    let err = e.call(&mut foreign, &[&x, &y], &mut [&mut s, &mut m]);
    assert_eq!(err, Err(CallError::ForeignWorkspace));
    e.call(&mut ws, &[&x, &y], &mut [&mut s, &mut m]).unwrap();
    assert_eq!((s, m), ([32.0], [4.0, 5.0, 6.0]));
    // The workspace is reused: a second call gives the same answer.
    e.call(&mut ws, &[&y, &x], &mut [&mut s, &mut m]).unwrap();
    assert_eq!((s, m), ([32.0], [4.0, 5.0, 6.0]));

    assert_eq!(e.eval(&[x.to_vec()]), Err(EvalError::Call(count)));
    let err = e.eval(&[x.to_vec(), y[..2].to_vec()]).unwrap_err();
    assert!(err.to_string().contains(message), "{err}");
    assert!(matches!(
        err,
        EvalError::Call(CallError::InputLength { .. })
    ));
    let got = e.eval(&[x.to_vec(), y.to_vec()]);
    assert_eq!(got, Ok(vec![vec![32.0], vec![4.0, 5.0, 6.0]]));
}

#[test]
fn both_executors_check_calls_alike() {
    let f = two_input_fn();
    calls_are_checked(&Program::new(&f).unwrap(), &Program::new(&f).unwrap());
    calls_are_checked(&jit::compile(&f).unwrap(), &jit::compile(&f).unwrap());
}

/// The output lengths (`try_outputs`) and values (`eval`) of any executor of `f`.
fn shape_and_values<E: Executor>(
    e: &E,
    f: &Func,
    inputs: &[Vec<f64>],
) -> (Vec<usize>, Vec<Vec<f64>>) {
    assert_eq!(
        e.signature().name,
        f.name,
        "the signature names the function"
    );
    let lens = e.try_outputs().unwrap().iter().map(Vec::len).collect();
    (lens, e.eval(inputs).unwrap())
}

#[test]
fn both_executors_agree_through_the_trait() {
    let f = ir::parse(adjit::models::find("mlp").unwrap().text).unwrap();
    let g = adjit::ad::grad(&f, None).unwrap();
    let inputs = adjit::inputs::defaults(&g, 3);
    let interpreted = shape_and_values(&Program::new(&g).unwrap(), &g, &inputs);
    let compiled = shape_and_values(&jit::compile(&g).unwrap(), &g, &inputs);
    assert_eq!(interpreted.0, compiled.0);
    assert_eq!(difference(&interpreted.1, &compiled.1), 0.0);
}

#[test]
fn four_threads_share_one_compiled_function() {
    let f = ir::parse(adjit::models::find("mlp").unwrap().text).unwrap();
    let g = adjit::ad::grad(&f, None).unwrap();
    let c = Arc::new(jit::compile(&g).unwrap());
    let inputs: Vec<Vec<Vec<f64>>> = (0..4).map(|t| adjit::inputs::defaults(&g, t)).collect();
    let alone: Vec<Vec<Vec<f64>>> = inputs.iter().map(|i| c.eval(i).unwrap()).collect();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (c, inputs) = (Arc::clone(&c), inputs[t].clone());
            std::thread::spawn(move || {
                let mut ws = c.workspace();
                let mut outs = c.try_outputs().unwrap();
                let mut last = Vec::new();
                for _ in 0..200 {
                    c.call_vecs(&mut ws, &inputs, &mut outs).unwrap();
                    if !last.is_empty() {
                        assert_eq!(last, outs, "a call gave a different answer");
                    }
                    last = outs.clone();
                }
                last
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), alone[t], "thread {t}");
    }
}

#[test]
fn a_million_instructions_compile() {
    const N: usize = 1_000_000;
    let b = Builder::new("big");
    let x = b.param("x", &[]);
    let mut v = x.sin();
    for k in 2..=N {
        v = if k % 2 == 0 { v + x } else { v.sin() };
    }
    let f = b.finish(&[v]).unwrap();
    assert_eq!(f.insts.len(), N);
    let c = jit::compile(&f).unwrap();
    assert!(
        c.num_chunks() > 10,
        "a million instructions in {} chunks",
        c.num_chunks()
    );
    let got = c.eval(&[vec![0.3]]).unwrap();
    let x = 0.3f64;
    // The op's definition (libmvec's sin where the process has it, else the C library's).
    let sin = adjit::ops::unary::adjit_sin;
    let mut want = sin(x);
    for k in 2..=N {
        want = if k % 2 == 0 { want + x } else { sin(want) };
    }
    assert_eq!(got[0][0].to_bits(), want.to_bits());
}

#[test]
fn results_that_are_inputs_views_or_repeated_are_copied() {
    let b = Builder::new("copies");
    let x = b.param("x", &[2, 3]);
    let s = b.param("s", &[]);
    let e = x.exp();
    let f = b
        .finish(&[
            x,
            x.t(),
            e,
            e,
            s,
            x.slice(&[1, 0], &[2, 3]),
            b.splat(2.5, &[3]),
            s.broadcast_to(&[2]),
        ])
        .unwrap();
    let inputs = vec![vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], vec![7.0]];
    check_agrees("copies", &f, &inputs);
}

#[test]
fn compiled_functions_are_send_and_sync_and_workspaces_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Compiled>();
    send::<jit::Workspace>();
}

#[test]
fn the_generator_reaches_edge_shapes() {
    // The random graphs above are only as good as the shapes they make: rank 0, size-1 axes
    // and empty axes must all be common, in parameters and in computed values.
    let (mut scalar, mut unit_axis, mut empty, mut empty_inst) = (0, 0, 0, 0);
    for seed in 0..200 {
        let f = random_func(seed, 16);
        let types = f
            .params
            .iter()
            .map(|p| p.ty)
            .chain(f.insts.iter().map(|i| i.ty));
        for t in types {
            scalar += usize::from(t.rank() == 0);
            unit_axis += usize::from(t.shape.iter().any(|d| d == 1) && t.rank() > 0);
            empty += usize::from(t.numel() == 0);
        }
        empty_inst += usize::from(f.insts.iter().any(|i| i.ty.numel() == 0));
    }
    assert!(
        scalar > 200 && unit_axis > 200 && empty > 200,
        "{scalar} {unit_axis} {empty}"
    );
    assert!(
        empty_inst > 40,
        "{empty_inst} of 200 functions compute an empty value"
    );
}
