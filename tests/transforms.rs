//! Property tests of the transforms on random well-typed graphs over the whole op set:
//! simplification never changes a result (bit for bit, NaN matching NaN), grad, hvp and vjp
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
