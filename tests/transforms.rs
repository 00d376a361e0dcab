//! Property tests of the transforms on random well-typed graphs over the whole op set:
//! simplification and batching never change a result (bit for bit, NaN matching NaN), grad, hvp and vjp
//! always produce functions that verify and run, and both hvp modes agree to 1e-13.

mod common;

use adjit::{ad, interp, ir, simplify};
use common::random_graph::random_func;
use proptest::prelude::*;

fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        })
}

/// Every f64 value `f` computes on `inputs` (a scan's packed result holds its final carries
/// and its stacked outputs).
fn all_values(f: &ir::Func, inputs: &[Vec<f64>]) -> Vec<f64> {
    let mut all = f.clone();
    all.results = (0..f.insts.len())
        .filter(|&k| f.insts[k].ty.dtype == ir::DType::F64)
        .map(|k| f.inst_value(k))
        .collect();
    interp::eval(&all, inputs).map_or(Vec::new(), |outs| outs.concat())
}

/// The largest finite magnitude among the f64 values `f` computes on `inputs` (at least 1).
fn largest_value(f: &ir::Func, inputs: &[Vec<f64>]) -> f64 {
    all_values(f, inputs)
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, x| m.max(x.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn simplify_preserves_results(seed in any::<u64>(), ops in 1usize..25) {
        let f = random_func(seed, ops);
        let s = simplify::simplify(&f).unwrap();
        ir::verify(&s).unwrap();
        prop_assert!(s.insts.len() <= f.insts.len());
        let inputs = adjit::inputs::defaults(&f, seed);
        let (a, b) = (interp::eval(&f, &inputs).unwrap(), interp::eval(&s, &inputs).unwrap());
        prop_assert!(same_bits(&a, &b), "simplify changed the result of\n{f}\ninto\n{s}\n{a:?} vs {b:?}");
        let batched = simplify::batch_products(s.clone());
        ir::verify(&batched).unwrap();
        let c = interp::eval(&batched, &inputs).unwrap();
        prop_assert!(same_bits(&a, &c), "batching changed the result of\n{s}\ninto\n{batched}");
    }

    #[test]
    fn transforms_verify_and_run(seed in any::<u64>(), ops in 1usize..20) {
        let f = random_func(seed, ops);
        let inputs = adjit::inputs::defaults(&f, seed);
        let g = ad::grad(&f, None).unwrap();
        let y = interp::eval(&f, &inputs).unwrap();
        let gy = interp::eval(&g, &inputs).unwrap();
        // The value computed by grad is the function's, bit for bit.
        prop_assert!(same_bits(&y[..1], &gy[..1]));
        let h = ad::hvp(&f, None).unwrap();
        let mut hin = inputs.clone();
        for p in &f.params {
            hin.push(vec![0.5; p.ty.numel()]);
        }
        interp::eval(&h, &hin).unwrap();
        // Both modes: the same function, to rounding (relative to the largest value either
        // computes, as cancellation may leave rounding residue where the other has a zero).
        let hs = ad::HvpMode::ALL.map(|m| ad::hvp_with(&f, None, m).unwrap());
        let [fr, rr] = hs.each_ref().map(|h| interp::eval(h, &hin).unwrap());
        // Where either mode computes an infinity or NaN (a partial such as `ln(x)` of `pow` at
        // a negative base, or a value in a dead scan carry), the modes may differ: one
        // multiplies it by a tangent or cotangent that is a materialized zero and gets NaN,
        // the other skips a symbolic zero and gets 0.
        let finite = |h: &ir::Func| all_values(h, &hin).iter().all(|x| x.is_finite());
        if !hs.iter().all(finite) {
            return Ok(());
        }
        let scale = largest_value(&hs[0], &hin).max(largest_value(&hs[1], &hin));
        for (a, b) in fr.iter().flatten().zip(rr.iter().flatten()) {
            let close = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-13 * scale;
            prop_assert!(close, "fwdrev {a} vs revrev {b} (scale {scale:e}) on\n{f}");
        }
        let v = ad::vjp(&f, None).unwrap();
        ir::verify(&v).unwrap();
    }
}

#[test]
fn concat_of_adjacent_slices_is_one_slice() {
    let b = ir::Builder::new("joined");
    let x = b.param("x", &[3, 6]);
    let y = b.param("y", &[3, 2]);
    let whole = b.concat(&[x.slice_axis(1, 0, 2), x.slice_axis(1, 2, 6)], 1);
    let part = b.concat(
        &[
            x.slice_axis(1, 1, 3),
            x.slice_axis(1, 3, 4),
            y,
            x.slice_axis(1, 5, 6),
        ],
        1,
    );
    let gap = b.concat(&[x.slice_axis(1, 0, 1), x.slice_axis(1, 2, 3)], 1);
    let f = b
        .finish(&[whole.sum() + part.sum() + gap.sum(), part])
        .unwrap();
    let s = simplify::simplify(&f).unwrap();
    let text = s.to_string();
    // `whole` is x itself; `part` joins its first two slices into one; `gap` is left alone.
    let concats = text.matches("concat").count();
    assert_eq!(concats, 2, "{text}");
    assert!(text.contains("slice x [start=[0,1], stop=[3,4]]"), "{text}");
    let inputs = adjit::inputs::defaults(&f, 3);
    assert!(same_bits(
        &interp::eval(&f, &inputs).unwrap(),
        &interp::eval(&s, &inputs).unwrap()
    ));
}

/// `x` as a column.
fn col(x: ir::Var<'_>) -> ir::Var<'_> {
    x.reshape(&[x.shape()[0], 1])
}

/// The shipped model `name`, parsed.
fn model(name: &str) -> ir::Func {
    let path = common::repo_path(&format!("ir/models/{name}.ir"));
    ir::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rnn_derivatives_sum_the_weight_outer_products_after_their_loops() {
    // Each reverse step adds `delta h^T` into dW and `delta x^T` into dU; both sums move after
    // the loop as one product over the stacked steps, so no scan carries a matrix, in the
    // gradient or in the forward-over-reverse hvp built on it.
    let f = model("rnn");
    let grad = ad::grad(&f, None).unwrap();
    let hvp = ad::hvp_with(&f, None, ad::HvpMode::FwdRev).unwrap();
    for g in [&grad, &hvp] {
        let mut scans = 0;
        for inst in &g.insts {
            let Ok(shape) = ir::ScanShape::of(&inst.op, inst.args.len()) else {
                continue;
            };
            scans += 1;
            let ranks: Vec<usize> = shape.carry_types.iter().map(|t| t.rank()).collect();
            assert!(
                ranks.iter().all(|&r| r <= 1),
                "{}: carries of ranks {ranks:?}",
                g.name
            );
        }
        assert_eq!(scans, 2, "{}", g.name);
        // The weights' cotangents are products over the 200 steps.
        let long = g.insts.iter().filter(|i| {
            matches!(i.op, ir::Op::Matmul { ta: true, .. })
                && g.value_type(i.args[0]).shape.get(0) == 200
        });
        assert!(long.count() >= 2, "{}", g.name);
    }
}

/// How many matmuls `f` and its scan bodies hold.
fn matmuls(f: &ir::Func) -> usize {
    f.insts
        .iter()
        .map(|i| match &i.op {
            ir::Op::Matmul { .. } => 1,
            ir::Op::Scan { body, .. } => matmuls(body.func()),
            _ => 0,
        })
        .sum()
}

/// `f` has `before` products and, batched, `after`, and both give the same bits on the
/// default inputs of `seed`, the batched function compiled too.
fn assert_batched(f: &ir::Func, before: usize, after: usize, seed: u64) {
    let g = simplify::batch_products(f.clone());
    ir::verify(&g).unwrap();
    assert_eq!(matmuls(f), before, "{f}");
    assert_eq!(matmuls(&g), after, "{g}");
    let inputs = adjit::inputs::defaults(f, seed);
    let want = interp::eval(f, &inputs).unwrap();
    assert!(same_bits(&want, &interp::eval(&g, &inputs).unwrap()), "{g}");
    let compiled = adjit::jit::Jit::new(adjit::jit::JitOptions::default())
        .compile(&g)
        .unwrap();
    assert!(same_bits(
        &want,
        &adjit::call::Executor::eval(&compiled, &inputs).unwrap()
    ));
}

/// Products of a vector with a shared matrix become one product of the stacked rows, with the
/// same bits: `A w` with `A v` (columns); `A^T u`, `u^T A` (one row, shared) and `A^T (A w)`
/// (rows, the other way round, its vector read from the first group); a product whose vector
/// reads its own group's result left out; products of a small matrix left alone; and a pair
/// inside a scan body. Two matrices whose products read each other's: one is batched.
#[test]
fn products_sharing_a_matrix_are_batched_with_the_same_bits() {
    let b = ir::Builder::new("shared");
    let a = b.param("a", &[10, 7]);
    let (w, v) = (b.param("w", &[7]), b.param("v", &[7]));
    let u = b.param("u", &[10]);
    let small = b.param("small", &[3, 3]);
    let aw = a.matmul(col(w));
    let av = a.matmul(col(v));
    let atu = a.matmul_t(col(u), true, false);
    let ua = u.reshape(&[1, 10]).matmul(a);
    // Reads `aw`, of the other group: batched with `atu` and `ua` once `aw` is.
    let chained = a.matmul_t(aw, true, false);
    // Reads `av`, of its own group: left out.
    let own = a.matmul(col(av.reshape(&[10]).slice(&[0], &[7])));
    let s1 = small.matmul(col(w.slice(&[0], &[3])));
    let s2 = small.matmul(col(v.slice(&[0], &[3])));
    let looped = b.scan(
        ir::ScanOptions::new("step", 4),
        &[a],
        &[w, v],
        &[],
        |_, c, h, _| {
            let m = c[0];
            let next = (m.matmul(col(h[0])) + m.matmul(col(h[1])))
                .reshape(&[10])
                .slice(&[0], &[7])
                .sin();
            (vec![next, h[1]], vec![])
        },
    );
    let total = aw.sum() + av.sum() + atu.sum() + ua.sum() + chained.sum() + own.sum();
    let f = b
        .finish(&[total, av, ua, s1 + s2, looped.carries[0]])
        .unwrap();
    // aw+av, atu+ua+chained and the body's pair each become one product; own and the small
    // matrix's stay.
    assert_batched(&f, 10, 6, 7);

    // S x and S (T y) are batched; then T y and T (S x) are not, as S x now waits on T y.
    let b = ir::Builder::new("crossed");
    let s = b.param("s", &[8, 8]);
    let t = b.param("t", &[8, 8]);
    let (x, y) = (b.param("x", &[8]), b.param("y", &[8]));
    let sx = s.matmul(col(x));
    let ty = t.matmul(col(y));
    let s_ty = s.matmul(ty);
    let t_sx = t.matmul(sx);
    let f = b.finish(&[(s_ty + t_sx).sum()]).unwrap();
    let g = simplify::batch_products(f.clone());
    ir::verify(&g).unwrap();
    assert_eq!(matmuls(&g), 3, "{g}");
    let inputs = adjit::inputs::defaults(&f, 1);
    assert!(same_bits(
        &interp::eval(&f, &inputs).unwrap(),
        &interp::eval(&g, &inputs).unwrap()
    ));
}

/// Products of matrices that share their right operand become one product of the stacked left
/// operands, with the same bits: `H W`, `(H + T) W` and `T W` (their results sliced back by
/// rows, one of them a result of the function), and `H V^T`, `T V^T` with the operand read
/// transposed; `(H W) W` reads its own group's result and stays; products whose left operand
/// is read transposed, and those of a small matrix, stay.
#[test]
fn matrix_products_sharing_their_right_operand_are_batched_with_the_same_bits() {
    let b = ir::Builder::new("blocks");
    let (h, t) = (b.param("h", &[6, 9]), b.param("t", &[4, 9]));
    let (w, v) = (b.param("w", &[9, 9]), b.param("v", &[8, 9]));
    let (x, small) = (b.param("x", &[9, 4]), b.param("small", &[3, 3]));
    let (hw, sum_w, tw) = (h.matmul(w), (h + h).matmul(w), t.matmul(w));
    let (hv, tv) = (h.matmul_t(v, false, true), t.matmul_t(v, false, true));
    let twice = hw.matmul(w);
    let (xw, ww) = (x.matmul_t(w, true, false), w.matmul_t(w, true, false));
    let s1 = h.slice(&[0, 0], &[2, 3]).matmul(small);
    let s2 = t.slice(&[0, 0], &[2, 3]).matmul(small);
    let total = sum_w.sum() + tw.sum() + hv.sum() + tv.sum() + twice.sum();
    let f = b
        .finish(&[total, hw, xw.sum() + ww.sum(), (s1 * s2).sum()])
        .unwrap();
    // hw, sum_w, tw become one product, hv and tv another; twice, xw, ww, s1, s2 stay.
    assert_batched(&f, 10, 7, 5);
}

/// Narrow products (2 to 15 columns) that share their left operand become one product by the
/// joined right operands, sliced back by columns, with the same bits: `X W` and `X V`, and
/// `X^T G`, `X^T H` with the operand read transposed; a
/// product 16 columns wide, one whose right operand reads its own group's result, and those
/// of a small matrix stay.
#[test]
fn narrow_products_sharing_their_left_operand_are_batched_with_the_same_bits() {
    let b = ir::Builder::new("columns");
    let x = b.param("x", &[12, 9]);
    let (w, v) = (b.param("w", &[9, 5]), b.param("v", &[9, 3]));
    let (g, h) = (b.param("g", &[12, 4]), b.param("h", &[12, 4]));
    let wide = b.param("wide", &[9, 16]);
    let small = b.param("small", &[3, 3]);
    let (xw, xv, xw2) = (x.matmul(w), x.matmul(v), x.matmul(w) * 2.0);
    let (xg, xh) = (x.matmul_t(g, true, false), x.matmul_t(h, true, false));
    let xwide = x.matmul(wide);
    let chained = x.matmul(xw.slice(&[0, 0], &[9, 5]));
    let s1 = small.matmul(small.slice(&[0, 0], &[3, 2]));
    let s2 = small.matmul(small.slice(&[0, 1], &[3, 3]));
    let total = xv.sum() + xw2.sum() + xh.sum() + xwide.sum() + chained.sum() + (s1 * s2).sum();
    let f = b.finish(&[total, xw, xg]).unwrap();
    // xw (which xw2 reads too: the builder emits one product) and xv become one product, xg
    // and xh another; xwide, chained, s1 and s2 stay.
    assert_batched(&f, 8, 6, 6);
}

/// `softmax`'s jvp multiplies `X` by its weights and their tangent in one product.
#[test]
fn softmax_jvp_multiplies_by_x_once() {
    let f = model("softmax");
    let j = ad::jvp(&f, None).unwrap();
    assert_eq!(matmuls(&j), 1, "{j}");
}

/// The forward-over-reverse hvp of `mlp` multiplies by its weights in fewer products: a layer's
/// activations and their tangent share each product with the next weight matrix.
#[test]
fn mlp_hvp_batches_products_of_one_weight_matrix() {
    let f = model("mlp");
    assert_eq!(matmuls(&ad::hvp(&f, None).unwrap()), 17);
    assert_eq!(matmuls(&ad::jvp(&f, None).unwrap()), 6);
}

/// The forward-over-reverse hvp of logistic regression reads `X` twice, not four times: its
/// two pairs of products with `X` are batched.
#[test]
fn logistic_hvp_batches_its_products_with_x() {
    let f = model("logistic");
    let h = ad::hvp(&f, None).unwrap();
    assert_eq!(matmuls(&h), 2, "{h}");
    let j = ad::jvp(&f, None).unwrap();
    assert_eq!(matmuls(&j), 1, "{j}");
}

/// A slice within one part of a concat is a slice of that part: the concat goes away when
/// nothing else reads it. One across a boundary keeps it.
#[test]
fn slice_within_one_part_of_a_concat_slices_the_part() {
    let b = ir::Builder::new("parts");
    let x = b.param("x", &[3, 4]);
    let y = b.param("y", &[3, 5]);
    let joined = b.concat(&[x, y], 1);
    let inside = joined.slice(&[1, 5], &[3, 8]);
    let first = joined.slice(&[0, 0], &[3, 4]);
    let f = b.finish(&[inside, first.sum()]).unwrap();
    let s = simplify::simplify(&f).unwrap();
    let text = s.to_string();
    assert_eq!(text.matches("concat").count(), 0, "{text}");
    assert!(text.contains("slice y [start=[1,1], stop=[3,4]]"), "{text}");
    let b = ir::Builder::new("across");
    let (x, y) = (b.param("x", &[3, 4]), b.param("y", &[3, 5]));
    let across = b
        .finish(&[b.concat(&[x, y], 1).slice(&[0, 3], &[3, 6])])
        .unwrap();
    let s2 = simplify::simplify(&across).unwrap();
    assert_eq!(s2.to_string().matches("concat").count(), 1, "{s2}");
    for (f, s) in [(&f, &s), (&across, &s2)] {
        let inputs = adjit::inputs::defaults(f, 3);
        assert!(same_bits(
            &interp::eval(f, &inputs).unwrap(),
            &interp::eval(s, &inputs).unwrap()
        ));
    }
}

/// A slice of a pad reads the padded value: a slice of it within it, zeros within the
/// padding, a concat of zeros and a slice of it across its edge along one axis; across two
/// axes it stays a slice of the pad. The bits are those of the unsimplified function, in the
/// interpreter and compiled.
#[test]
fn slices_of_a_pad_read_the_padded_value() {
    let b = ir::Builder::new("pads");
    let x = b.param("x", &[3, 4]);
    let p = x.pad(&[1, 2], &[2, 1]); // [6, 7]: x at rows 1..4, columns 2..6
    let f = b
        .finish(&[
            p.slice(&[1, 2], &[4, 6]),
            p.slice(&[2, 3], &[4, 5]),
            p.slice(&[0, 0], &[1, 7]),
            p.slice(&[1, 0], &[4, 4]),
            p.slice(&[2, 3], &[6, 5]),
            p.slice(&[0, 0], &[3, 3]),
        ])
        .unwrap();
    let s = simplify::simplify(&f).unwrap();
    let text = s.to_string();
    assert_eq!(text.matches("= pad").count(), 1, "{text}");
    assert_eq!(text.matches("= concat").count(), 2, "{text}");
    assert!(text.contains("slice x [start=[1,1], stop=[3,3]]"), "{text}");
    assert!(
        text.contains("concat v") && text.contains("[axis=1]"),
        "{text}"
    );
    assert!(text.contains("[axis=0]"), "{text}");
    assert_eq!(s.results[0], s.param_value(0), "{text}");
    let inputs = adjit::inputs::defaults(&f, 5);
    let want = interp::eval(&f, &inputs).unwrap();
    assert!(same_bits(&want, &interp::eval(&s, &inputs).unwrap()));
    let compiled = adjit::jit::compile(&s).unwrap();
    let got = adjit::call::Executor::eval(&compiled, &inputs).unwrap();
    assert!(same_bits(&want, &got));
}
