//! Compiled scans: loops whose body is compiled once and called per step. Results are checked
//! bit for bit against plain Rust loops and against the same body math unrolled with the
//! Builder (elementwise math and sums in index order are the same either way), under both
//! tiers, with small chunks (bodies of several functions), and against the interpreter. Also:
//! grads and hvps of scans under every checkpointing policy, and compiled code that does not
//! grow with the length.

mod common;

use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::Role;
use adjit::ir::{Body, Builder, Checkpoint, Func, Op, ScanOptions, Var};
use adjit::jit::{Compiled, Jit, JitOptions, Tier};

/// Deterministic values in [-1, 1).
fn data(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn bits(v: &[Vec<f64>]) -> Vec<Vec<u64>> {
    v.iter()
        .map(|x| x.iter().map(|y| y.to_bits()).collect())
        .collect()
}

fn compile(f: &Func, tier: Tier, chunk_cost: Option<usize>) -> Compiled {
    Jit::new(JitOptions {
        tier,
        verify: true,
        chunk_cost,
    })
    .compile(f)
    .unwrap_or_else(|e| panic!("@{}: {e}", f.name))
}

/// The compiled results of `f` on `inputs`, the same bits under both tiers, with tiny chunks,
/// and from the interpreter.
fn run(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let want = compile(f, Tier::FastCode, None).eval(inputs).unwrap();
    for (tier, chunks) in [(Tier::FastCompile, None), (Tier::FastCode, Some(3))] {
        let got = compile(f, tier, chunks).eval(inputs).unwrap();
        assert_eq!(bits(&got), bits(&want), "@{}: {tier:?} {chunks:?}", f.name);
    }
    interpreter_agrees(f, inputs, &want);
    want
}

/// The interpreter gives the same bits.
fn interpreter_agrees(f: &Func, inputs: &[Vec<f64>], want: &[Vec<f64>]) {
    let p = Program::new(f).unwrap_or_else(|e| panic!("@{}: {e}", f.name));
    let got = p.eval(inputs).unwrap();
    assert_eq!(bits(&got), bits(want), "@{}: interpreter differs", f.name);
}

fn assert_bits(name: &str, got: &[f64], want: &[f64]) {
    let (g, w): (Vec<u64>, Vec<u64>) = (
        got.iter().map(|x| x.to_bits()).collect(),
        want.iter().map(|x| x.to_bits()).collect(),
    );
    assert_eq!(g, w, "{name}: {got:?} != {want:?}");
}

#[test]
fn a_rank0_carry_equals_a_rust_loop() {
    let b = Builder::new("sumsq");
    let x = b.param("x", &[7]);
    let acc0 = b.scalar(0.5);
    let out = b.scan(
        ScanOptions::new("step", 7),
        &[],
        &[acc0],
        &[x],
        |_, _, h, x| (vec![h[0] * 0.9 + x[0] * x[0]], vec![]),
    );
    let f = b.finish(&[out.carries[0]]).unwrap();
    let xs = data(1, 7);
    let got = run(&f, std::slice::from_ref(&xs));
    let want = xs.iter().fold(0.5, |h, x| h * 0.9 + x * x);
    assert_bits("sumsq", &got[0], &[want]);
}

/// One step of a body with three carries (`f64[3]`, `f64[2,2]`, `f64[]`), two consts, two xs
/// and three outputs of different shapes.
fn step<'c>(c: &[Var<'c>], h: &[Var<'c>], x: &[Var<'c>]) -> (Vec<Var<'c>>, Vec<Var<'c>>) {
    let (a, m) = (c[0], c[1]);
    let (hv, cm, t) = (h[0], h[1], h[2]);
    let (xv, w) = (x[0], x[1]);
    let h1 = (hv * xv + a * w).tanh();
    let c1 = cm.matmul(m) * 0.5 + t;
    let t1 = t + xv.sum() * 0.25;
    (vec![h1, c1, t1], vec![hv * a, hv.sum(), cm])
}

/// The scan of `step` over `length` steps, or the same steps unrolled; results are the final
/// carries then the stacked outputs.
fn several(length: usize, reverse: bool, unrolled: bool) -> Func {
    let b = Builder::new(if unrolled { "unrolled" } else { "scanned" });
    let a = b.param("a", &[3]);
    let m = b.param("m", &[2, 2]);
    let h0 = b.param("h", &[3]);
    let c0 = b.param("c", &[2, 2]);
    let t0 = b.param("t", &[]);
    let x = b.param("x", &[length, 3]);
    let w = b.param("w", &[length]);
    let (carries, ys) = if unrolled {
        let mut h = vec![h0, c0, t0];
        let mut ys: Vec<Vec<Var>> = vec![Vec::new(); 3];
        let order: Vec<usize> = if reverse {
            (0..length).rev().collect()
        } else {
            (0..length).collect()
        };
        for i in order {
            let xi = x.slice(&[i, 0], &[i + 1, 3]).reshape(&[3]);
            let (next, y) = step(&[a, m], &h, &[xi, w.at(i)]);
            h = next;
            for (j, yj) in y.into_iter().enumerate() {
                let mut shape = vec![1];
                shape.extend(yj.shape());
                ys[j].push(yj.reshape(&shape));
            }
        }
        if reverse {
            ys.iter_mut().for_each(|y| y.reverse());
        }
        let stacked = ys
            .iter()
            .zip([vec![length, 3], vec![length], vec![length, 2, 2]])
            .map(|(y, shape)| {
                if y.is_empty() {
                    b.splat(0.0, &shape)
                } else {
                    b.concat(y, 0)
                }
            })
            .collect();
        (h, stacked)
    } else {
        let opts = ScanOptions::new("step", length).reverse(reverse);
        let out = b.scan(opts, &[a, m], &[h0, c0, t0], &[x, w], |_, c, h, x| {
            step(c, h, x)
        });
        (out.carries, out.ys)
    };
    let results: Vec<Var> = carries.into_iter().chain(ys).collect();
    b.finish(&results).unwrap()
}

fn several_inputs(length: usize) -> Vec<Vec<f64>> {
    [3, 4, 3, 4, 1, 3 * length, length]
        .iter()
        .enumerate()
        .map(|(k, &n)| data(10 + k as u64, n))
        .collect()
}

#[test]
fn several_carries_and_outputs_equal_the_unrolled_steps() {
    for length in [0, 1, 2, 3, 8] {
        for reverse in [false, true] {
            let inputs = several_inputs(length);
            let got = run(&several(length, reverse, false), &inputs);
            let want = run(&several(length, reverse, true), &inputs);
            assert_eq!(
                bits(&got),
                bits(&want),
                "length {length}, reverse {reverse}"
            );
            if length == 0 {
                assert_eq!(
                    &got[..3],
                    &inputs[2..5],
                    "length 0 returns the initial carries"
                );
            }
        }
    }
}

#[test]
fn reverse_steps_count_down_and_store_ys_at_their_index() {
    let b = Builder::new("rev");
    let x = b.param("x", &[5]);
    let h0 = b.scalar(0.0);
    let opts = ScanOptions::new("step", 5).reverse(true);
    let out = b.scan(opts, &[], &[h0], &[x], |_, _, h, x| {
        let h1 = h[0] * 2.0 + x[0];
        (vec![h1], vec![h1])
    });
    let f = b.finish(&[out.carries[0], out.ys[0]]).unwrap();
    let xs = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let got = run(&f, std::slice::from_ref(&xs));
    let mut h = 0.0;
    let mut ys = vec![0.0; 5];
    for i in (0..5).rev() {
        h = h * 2.0 + xs[i];
        ys[i] = h;
    }
    assert_bits("final", &got[0], &[h]);
    assert_bits("ys", &got[1], &ys);
}

#[test]
fn nested_scans_equal_rust_loops() {
    let (rows, cols) = (4, 5);
    let b = Builder::new("nested");
    let x = b.param("x", &[rows, cols]);
    let k = b.param("k", &[]);
    let s0 = b.scalar(1.0);
    let outer = b.scan(
        ScanOptions::new("row", rows),
        &[k],
        &[s0],
        &[x],
        |bb, c, h, x| {
            let inner = bb.scan(ScanOptions::new("col", cols), &[c[0]], &[h[0]], &[x[0]], {
                |_, c, h, x| {
                    let s = h[0] * c[0] + x[0] * x[0];
                    (vec![s], vec![s])
                }
            });
            (vec![inner.carries[0]], vec![inner.ys[0]])
        },
    );
    let f = b.finish(&[outer.carries[0], outer.ys[0]]).unwrap();
    let xs = data(3, rows * cols);
    let got = run(&f, &[xs.clone(), vec![0.75]]);
    let mut s = 1.0;
    let mut ys = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            s = s * 0.75 + xs[r * cols + c] * xs[r * cols + c];
            ys.push(s);
        }
    }
    assert_bits("final", &got[0], &[s]);
    assert_bits("ys", &got[1], &ys);
}

#[test]
fn empty_size1_and_rank0_carries_and_outputs() {
    let b = Builder::new("shapes");
    let e0 = b.param("e", &[0]);
    let one0 = b.param("one", &[1]);
    let r0 = b.param("r", &[]);
    let x = b.param("x", &[3, 0]);
    let z = b.param("z", &[3, 1]);
    let opts = ScanOptions::new("step", 3);
    let out = b.scan(opts, &[], &[e0, one0, r0], &[x, z], |_, _, h, x| {
        let one = h[1] + x[1] * 2.0;
        let r = h[2] - one.sum();
        (vec![h[0] + x[0], one, r], vec![x[0], one, r, h[0]])
    });
    let results: Vec<Var> = out.carries.iter().chain(&out.ys).copied().collect();
    let f = b.finish(&results).unwrap();
    let zs = vec![0.5, -1.25, 2.0];
    let got = run(&f, &[vec![], vec![3.0], vec![1.5], vec![], zs.clone()]);
    let (mut one, mut r) = (3.0, 1.5);
    let (mut ones, mut rs) = (Vec::new(), Vec::new());
    for z in &zs {
        one += z * 2.0;
        r -= one;
        ones.push(one);
        rs.push(r);
    }
    let want = [vec![], vec![one], vec![r], vec![], ones, rs, vec![]];
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_bits(&format!("result {k}"), g, w);
    }
}

/// `h <- h * 0.999 + x_i` over `length` steps.
fn decay(length: usize) -> Func {
    let b = Builder::new("decay");
    let x = b.param("x", &[length]);
    let h0 = b.param("h", &[]);
    let out = b.scan(
        ScanOptions::new("step", length),
        &[],
        &[h0],
        &[x],
        |_, _, h, x| (vec![h[0] * 0.999 + x[0]], vec![]),
    );
    b.finish(&[out.carries[0]]).unwrap()
}

#[test]
fn a_long_scan_compiles_to_the_same_code_as_a_short_one() {
    for tier in [Tier::FastCode, Tier::FastCompile] {
        let size = |length| {
            let c = compile(&decay(length), tier, None);
            (c.code_bytes(), c.num_chunks())
        };
        let (short, thousand, long) = (size(10), size(1000), size(100_000));
        // Only immediates differ (a length of 10 fits in one byte).
        assert_eq!(thousand, long, "{tier:?}");
        assert_eq!(short.1, long.1, "{tier:?}");
        assert!(
            short.0.abs_diff(long.0) <= 16,
            "{tier:?}: {short:?} {long:?}"
        );
    }
    let xs = data(4, 100_000);
    let got = run(&decay(100_000), &[xs.clone(), vec![0.25]]);
    let want = xs.iter().fold(0.25, |h, x| h * 0.999 + x);
    assert_bits("decay", &got[0], &[want]);
}

/// The body of `views`: reads every const and xs, so each staging path is used.
fn views_step<'c>(c: &[Var<'c>], h: &[Var<'c>], x: &[Var<'c>]) -> (Vec<Var<'c>>, Vec<Var<'c>>) {
    let v = (h[0] + c[0] * x[0] - c[1] * c[2]) * c[3] + x[1] - c[6].sum_axes(&[0]);
    let u = h[1] * c[4] + x[2] * c[5] - v.sum();
    let w = h[2] + c[6].sum();
    (vec![v.sin(), u, w], vec![v, u * c[4]])
}

/// Consts, carries and xs that are registers, a load, a scalar parameter, splats, broadcasts
/// and transposed or sliced views; scanned or unrolled.
fn views(unrolled: bool) -> Func {
    let b = Builder::new("views");
    let p = b.param("p", &[4]);
    let q = b.param("q", &[3, 2]);
    let s = b.param("s", &[]);
    let xt = b.param("xt", &[3, 4]);
    let reg = (s * 2.0).exp();
    let load = p.at(1);
    let consts = [
        b.splat(1.5, &[3]),
        p.slice(&[1], &[4]),
        q.t().slice(&[0, 0], &[1, 3]).reshape(&[3]),
        reg,
        load,
        s,
        p.slice(&[0], &[3]).expand(&[2, 3], &[0]),
    ];
    let init = [reg.expand(&[3], &[0]), b.splat(0.25, &[]), load * s];
    let xs = [xt.t(), b.splat(2.0, &[4, 3]), s.expand(&[4], &[0])];
    if !unrolled {
        let out = b.scan(
            ScanOptions::new("step", 4),
            &consts,
            &init,
            &xs,
            |_, c, h, x| views_step(c, h, x),
        );
        let r: Vec<Var> = out.carries.iter().chain(&out.ys).copied().collect();
        return b.finish(&r).unwrap();
    }
    let (mut h, mut y0, mut y1) = (init.to_vec(), Vec::new(), Vec::new());
    for i in 0..4 {
        let x: Vec<Var> = xs
            .iter()
            .map(|x| {
                let shape = x.shape();
                let mut lo = vec![0; shape.len()];
                let mut hi = shape.clone();
                (lo[0], hi[0]) = (i, i + 1);
                x.slice(&lo, &hi).reshape(&shape[1..])
            })
            .collect();
        let (next, y) = views_step(&consts, &h, &x);
        h = next;
        y0.push(y[0].reshape(&[1, 3]));
        y1.push(y[1].reshape(&[1]));
    }
    let r: Vec<Var> = h
        .into_iter()
        .chain([b.concat(&y0, 0), b.concat(&y1, 0)])
        .collect();
    b.finish(&r).unwrap()
}

#[test]
fn operands_from_registers_splats_and_strided_views() {
    let inputs = vec![data(5, 4), data(6, 6), vec![0.3], data(7, 12)];
    let got = run(&views(false), &inputs);
    let want = run(&views(true), &inputs);
    assert_eq!(bits(&got), bits(&want));
}

/// A replay scan (they run in reverse): consts `a`, replay carry `r: f64[2]` stepped by `r <- r * a + x_i` (the replay
/// takes the leading xs `x` only), carry `h` stepped by `h <- h * 0.5 + sum(r_i * x_i) + z_i`,
/// and outputs `r_i` and `h`.
fn replayed(length: usize, checkpoint: Checkpoint) -> Func {
    let rb = Builder::new("replay");
    let (a, r, x) = (rb.param("a", &[]), rb.param("r", &[2]), rb.param("x", &[2]));
    let replay = rb.finish(&[r * a + x]).unwrap();
    let bb = Builder::new("body");
    let p = |name: &str, shape: &[usize]| {
        let t = adjit::ir::Type::f64(shape);
        bb.param_with(name, t, Role::Wrt, None)
    };
    let (_a, r, h, x, z) = (
        p("a", &[]),
        p("r", &[2]),
        p("h", &[]),
        p("x", &[2]),
        p("z", &[]),
    );
    let h1 = h * 0.5 + (r * x).sum() + z;
    let body = bb.finish(&[h1, r, h1]).unwrap();
    let b = Builder::new("replayed");
    let args = [
        b.param("a", &[]),
        b.param("r0", &[2]),
        b.param("h0", &[]),
        b.param("x", &[length, 2]),
        b.param("z", &[length]),
    ];
    let op = Op::Scan {
        body: Body::new(body),
        replay: Some(Body::new(replay)),
        consts: 1,
        carries: 1,
        length: length as u32,
        reverse: true,
        checkpoint,
    };
    let values: Vec<_> = args.iter().map(|v| v.value()).collect();
    let out = b.unpack_scan(b.op(op, &values));
    let results: Vec<Var> = out.carries.iter().chain(&out.ys).copied().collect();
    b.finish(&results).unwrap()
}

#[test]
fn replay_scans_see_every_state() {
    let policies = [
        Checkpoint::All,
        Checkpoint::Binomial(2),
        Checkpoint::Binomial(40),
    ];
    for length in [0, 1, 2, 7, 30] {
        let inputs = vec![
            vec![0.75],
            vec![0.5, -0.25],
            vec![1.0],
            data(8, 2 * length),
            data(9, length),
        ];
        let (a, x, z) = (inputs[0][0], &inputs[3], &inputs[4]);
        let mut states = vec![inputs[1].clone(); length.min(1)];
        for i in 1..length {
            let r = &states[i - 1];
            states.push(vec![r[0] * a + x[2 * i - 2], r[1] * a + x[2 * i - 1]]);
        }
        // Replay scans run in reverse (the shape rule); step i sees state r_i.
        let mut h = 1.0;
        let mut hs = vec![0.0; length];
        for i in (0..length).rev() {
            let r = &states[i];
            h = h * 0.5 + (r[0] * x[2 * i] + r[1] * x[2 * i + 1]) + z[i];
            hs[i] = h;
        }
        let rs: Vec<f64> = states.iter().flatten().copied().collect();
        for policy in policies {
            let got = run(&replayed(length, policy), &inputs);
            let name = format!("length {length} {policy}");
            assert_bits(&name, &got[0], &[h]);
            assert_bits(&name, &got[1], &rs);
            assert_bits(&name, &got[2], &hs);
        }
    }
}

#[test]
fn scan_results_returned_whole_in_a_concat_and_of_one_element() {
    let b = Builder::new("placed");
    let x = b.param("x", &[4]);
    let h0 = b.param("h", &[]);
    let first = b.scan(
        ScanOptions::new("one", 4),
        &[],
        &[h0],
        &[x],
        |_, _, h, x| (vec![h[0] + x[0]], vec![]),
    );
    // A one-element packed result, read as a register.
    let one = first.packed * 3.0;
    let second = b.scan(
        ScanOptions::new("two", 4),
        &[],
        &[h0],
        &[x],
        |_, _, h, x| (vec![h[0] * x[0]], vec![h[0]]),
    );
    // Chained: the third scan's xs are the second's stacked outputs.
    let third = b.scan(
        ScanOptions::new("three", 4),
        &[one],
        &[h0],
        &[second.ys[0]],
        |_, c, h, x| (vec![h[0] - x[0] * c[0].reshape(&[])], vec![]),
    );
    let joined = b.concat(&[third.packed, x, second.packed], 0);
    let f = b.finish(&[second.packed, joined, one]).unwrap();
    let xs = vec![1.5, -2.0, 0.5, 3.0];
    let got = run(&f, &[xs.clone(), vec![0.25]]);
    let sum = xs.iter().fold(0.25, |h, x| h + x);
    let mut h = 0.25;
    let mut ys = Vec::new();
    for x in &xs {
        ys.push(h);
        h *= x;
    }
    let second_packed: Vec<f64> = std::iter::once(h).chain(ys.iter().copied()).collect();
    let third = ys.iter().fold(0.25, |h, y| h - y * (sum * 3.0));
    assert_bits("second", &got[0], &second_packed);
    let joined: Vec<f64> = [vec![third], xs, second_packed]
        .into_iter()
        .flatten()
        .collect();
    assert_bits("joined", &got[1], &joined);
    assert_bits("one", &got[2], &[sum * 3.0]);
}

#[test]
fn bodies_with_tensor_constants_nested_or_not() {
    let b = Builder::new("consts");
    let x = b.param("x", &[3, 2]);
    let h0 = b.tensor(&[2], &[1.0, -1.0]);
    let out = b.scan(
        ScanOptions::new("outer", 3),
        &[],
        &[h0],
        &[x],
        |bb, _, h, x| {
            let w = bb.tensor(&[2], &[0.5, 0.25]);
            let inner = bb.scan(ScanOptions::new("inner", 2), &[w], &[h[0]], &[x[0]], {
                |ib, c, h, x| {
                    let k = ib.tensor(&[2], &[2.0, -3.0]);
                    (vec![h[0] * c[0] + k * x[0]], vec![])
                }
            });
            (vec![inner.carries[0] + w], vec![inner.carries[0]])
        },
    );
    let f = b.finish(&[out.carries[0], out.ys[0]]).unwrap();
    let xs = data(11, 6);
    let got = run(&f, std::slice::from_ref(&xs));
    let (w, k) = ([0.5, 0.25], [2.0, -3.0]);
    let mut h = [1.0, -1.0];
    let mut ys = Vec::new();
    for i in 0..3 {
        for j in 0..2 {
            let xj = xs[2 * i + j];
            h = [h[0] * w[0] + k[0] * xj, h[1] * w[1] + k[1] * xj];
        }
        ys.extend(h);
        h = [h[0] + w[0], h[1] + w[1]];
    }
    assert_bits("final", &got[0], &h);
    assert_bits("ys", &got[1], &ys);
}

/// One RK4 step of `y' = -k * y + sin(y)` over 40 elements, with step `dt`.
fn rk4<'c>(y: Var<'c>, k: Var<'c>, dt: f64) -> Var<'c> {
    let f = |y: Var<'c>| -(k * y) + y.sin();
    let k1 = f(y);
    let k2 = f(y + k1 * (dt / 2.0));
    let k3 = f(y + k2 * (dt / 2.0));
    let k4 = f(y + k3 * dt);
    y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (dt / 6.0)
}

/// `steps` RK4 steps, as a scan or unrolled.
fn integrate(steps: usize, unrolled: bool) -> Func {
    let b = Builder::new("rk4");
    let y0 = b.param("y", &[40]);
    let k = b.param("k", &[40]);
    let y = if unrolled {
        (0..steps).fold(y0, |y, _| rk4(y, k, 0.01))
    } else {
        let xs = b.splat(0.0, &[steps, 0]);
        let out = b.scan(
            ScanOptions::new("step", steps),
            &[k],
            &[y0],
            &[xs],
            |_, c, h, _| (vec![rk4(h[0], c[0], 0.01)], vec![]),
        );
        out.carries[0]
    };
    b.finish(&[y]).unwrap()
}

#[test]
fn rk4_scan_equals_the_unrolled_steps() {
    let inputs = vec![data(12, 40), data(13, 40)];
    let got = run(&integrate(20, false), &inputs);
    let want = run(&integrate(20, true), &inputs);
    assert_eq!(bits(&got), bits(&want));
}

/// Norm-wise relative difference of two result lists (0 when equal).
fn rel_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = (a.concat(), b.concat());
    let scale = y.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    x.iter()
        .zip(&y)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
        / scale
}

#[test]
fn gradients_and_hvps_through_scans_under_every_policy() {
    let (steps, dt) = (12, 0.05);
    let policies = [
        Checkpoint::Auto,
        Checkpoint::All,
        Checkpoint::Carry,
        Checkpoint::Binomial(1),
        Checkpoint::Binomial(3),
        Checkpoint::Binomial(50),
    ];
    let unrolled = adjit::models::pendulum_unrolled_of("unrolled", steps, dt);
    let inputs = adjit::inputs::defaults(&unrolled, 3);
    let f_want = run(&unrolled, &inputs);
    let g_want = run(&adjit::ad::grad(&unrolled, None).unwrap(), &inputs);
    let h = adjit::ad::hvp(&unrolled, None).unwrap();
    let hvp_inputs = adjit::inputs::defaults(&h, 4);
    let h_want = run(&h, &hvp_inputs);
    let mut first_g = None;
    for policy in policies {
        let f = adjit::models::pendulum_scan_of("scanned", steps, dt, policy);
        assert_eq!(bits(&run(&f, &inputs)), bits(&f_want), "f under {policy}");
        let g = run(&adjit::ad::grad(&f, None).unwrap(), &inputs);
        let dg = rel_diff(&g, &g_want);
        assert!(
            dg <= 1e-13,
            "{policy}: grad differs from the unrolled one by {dg:e}"
        );
        let h = run(&adjit::ad::hvp(&f, None).unwrap(), &hvp_inputs);
        let dh = rel_diff(&h, &h_want);
        assert!(
            dh <= 1e-13,
            "{policy}: hvp differs from the unrolled one by {dh:e}"
        );
        // Every policy computes the same gradient operations, only stored or recomputed. (Not
        // so the hvp's: under `carry` a few of its last bits differ.)
        let g0 = first_g.get_or_insert_with(|| g.clone());
        assert_eq!(bits(&g), bits(g0), "grad under {policy}");
    }
}

#[test]
fn the_scan_models_and_their_gradients_compile() {
    for f in [adjit::models::rnn(), adjit::models::pendulum_long()] {
        for g in [adjit::ad::grad(&f, None).unwrap(), f] {
            let inputs = adjit::inputs::defaults(&g, 1);
            let got = run(&g, &inputs);
            assert!(got.concat().iter().all(|x| x.is_finite()), "@{}", g.name);
        }
    }
}

#[test]
fn binomial_replay_scans_keep_few_states() {
    let n = 1000;
    let inputs = vec![
        vec![0.999],
        vec![0.5, -0.25],
        vec![1.0],
        data(15, 2 * n),
        data(16, n),
    ];
    let all = run(&replayed(n, Checkpoint::All), &inputs);
    let size = |policy| compile(&replayed(n, policy), Tier::FastCode, None).workspace_bytes();
    for s in [1, 3, 10] {
        let got = run(&replayed(n, Checkpoint::Binomial(s)), &inputs);
        assert_eq!(bits(&got), bits(&all), "binomial({s})");
        // The trajectory (2 elements per state) is gone; a few states remain.
        let (small, big) = (size(Checkpoint::Binomial(s)), size(Checkpoint::All));
        assert!(
            small + 8 * 2 * (n as u64 - 20) <= big,
            "binomial({s}): {small} vs {big}"
        );
    }
}

/// A loss over nested scans whose checkpointing policy is `policy`, outer and inner.
fn nested_policy(policy: Checkpoint) -> Func {
    let (rows, cols) = (6, 5);
    let b = Builder::new("nested_policy");
    let x = b.param("x", &[rows, cols]);
    let k = b.param("k", &[]);
    let s0 = b.param("s0", &[2]);
    let outer = ScanOptions::new("row", rows).checkpoint(policy);
    let out = b.scan(outer, &[k], &[s0], &[x], |bb, c, h, x| {
        let inner = ScanOptions::new("col", cols).checkpoint(policy);
        let r = bb.scan(inner, &[c[0]], &[h[0]], &[x[0]], |_, c, h, x| {
            let s = (h[0] * c[0] + x[0]).sin();
            (vec![s], vec![s.sum()])
        });
        (vec![r.carries[0] * 0.5], vec![r.ys[0]])
    });
    let loss = out.carries[0].sum() + (out.ys[0] * out.ys[0]).sum();
    b.finish(&[loss]).unwrap()
}

#[test]
fn nested_scans_differentiate_under_every_policy() {
    let inputs = vec![data(17, 30), vec![0.9], vec![0.3, -0.2]];
    let mut first = None;
    for policy in [
        Checkpoint::All,
        Checkpoint::Carry,
        Checkpoint::Binomial(1),
        Checkpoint::Binomial(2),
    ] {
        let g = run(
            &adjit::ad::grad(&nested_policy(policy), None).unwrap(),
            &inputs,
        );
        let g0 = first.get_or_insert_with(|| g.clone());
        assert_eq!(bits(&g), bits(g0), "{policy}");
    }
}

#[test]
fn bodies_that_swap_their_carries_or_return_operands() {
    let b = Builder::new("swap");
    let (p, q, c) = (b.param("p", &[2]), b.param("q", &[2]), b.param("c", &[2]));
    let x = b.param("x", &[5, 2]);
    let out = b.scan(
        ScanOptions::new("step", 5),
        &[c],
        &[p, q],
        &[x],
        |_, c, h, x| (vec![h[1], h[0] + x[0]], vec![c[0], x[0], h[1]]),
    );
    let results: Vec<Var> = out.carries.iter().chain(&out.ys).copied().collect();
    let f = b.finish(&results).unwrap();
    let inputs = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0], data(18, 10)];
    let got = run(&f, &inputs);
    let (mut p, mut q) = (inputs[0].clone(), inputs[1].clone());
    let (mut cs, mut xs, mut hs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let x = &inputs[3][2 * i..2 * i + 2];
        cs.extend(&inputs[2]);
        xs.extend(x);
        hs.extend(&q);
        (p, q) = (q.clone(), vec![p[0] + x[0], p[1] + x[1]]);
    }
    for (k, want) in [p, q, cs, xs, hs].iter().enumerate() {
        assert_bits(&format!("result {k}"), &got[k], want);
    }
}

/// Random functions holding scans (the generator of `tests/jit.rs`, scans of lengths 0 to 3 with
/// nested bodies), their grads and hvps: compiled under both tiers and with tiny chunks, equal
/// to the interpreter. (`tests/jit.rs` also checks their text round trip.)
#[test]
fn random_functions_with_scans_agree_with_the_interpreter() {
    let mut seen = 0;
    for seed in 0..600u64 {
        let f = common::random_graph::random_func(seed, 1 + (seed as usize * 7) % 23);
        if !f.insts.iter().any(|i| matches!(i.op, Op::Scan { .. })) {
            continue;
        }
        seen += 1;
        let inputs = adjit::inputs::defaults(&f, seed);
        run_nan(&f, &inputs);
        run_nan(&adjit::ad::grad(&f, None).unwrap(), &inputs);
        for mode in [adjit::ad::HvpMode::FwdRev, adjit::ad::HvpMode::RevRev] {
            let h = adjit::ad::hvp_with(&f, None, mode).unwrap();
            run_nan(&h, &adjit::inputs::defaults(&h, seed));
        }
    }
    assert!(seen >= 100, "only {seen} functions with scans");
}

/// Reduced from the forward-over-reverse hvp of a random graph: a scan computed in place inside
/// the concat that reads it (here once the empty slice is dropped) still gets the ranges it uses
/// while running; they once defaulted to offset 0 and overwrote `v6`, read after the scan.
#[test]
fn a_scan_result_joined_to_an_empty_slice_of_itself() {
    let f = adjit::ir::parse(
        "func @body(c0: f64[2], t_c0: f64[2], h0: f64[4], x0: f64[4]) -> (f64[4], f64[2]) {
    v8: f64[2] = div t_c0, c0
    return x0, v8
}

func @main(p0: f64[2], p1: f64[4], v_p0: f64[2]) -> (f64[]) {
    v6: f64[4] = expm1 p1
    v10: f64[4] = sign v6
    v11: f64[4] = abs v10
    v16: f64[1,4] = broadcast v10 [axes=[0], shape=[1,4]]
    v17: f64[6] = scan p0, v_p0, v11, v16 [body=@body, carries=1, consts=2, length=1]
    v18: f64[0] = slice v17 [start=[4], stop=[4]]
    v20: f64[6] = concat v17, v18 [axis=0]
    v21: f64[] = reduce_sum v6 [axes=[0]]
    v28: f64[] = reduce_sum v20 [axes=[0]]
    v29: f64[] = add v21, v28
    return v29
}
",
    )
    .unwrap();
    let inputs = vec![vec![1.0, 2.0], vec![1.0, -2.0, 3.0, 4.0], vec![1.0, 1.0]];
    run_nan(&f, &inputs);
}

/// `run`, with any NaN equal to any other (payloads may differ between executors).
fn run_nan(f: &Func, inputs: &[Vec<f64>]) {
    let quiet = |v: Vec<Vec<f64>>| -> Vec<Vec<u64>> {
        let q = v.into_iter().map(|x| {
            x.into_iter()
                .map(|y| if y.is_nan() { f64::NAN } else { y })
                .collect()
        });
        bits(&q.collect::<Vec<Vec<f64>>>())
    };
    let want = quiet(adjit::interp::eval(f, inputs).unwrap());
    for (tier, chunks) in [(Tier::FastCode, None), (Tier::FastCompile, Some(3))] {
        let got = compile(f, tier, chunks).eval(inputs).unwrap();
        assert_eq!(quiet(got), want, "@{} ({tier:?}, {chunks:?}):\n{f}", f.name);
    }
}
