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

/// `max |a - b| <= rel * max(|a|, |b|)` over the elements, equal ones (infinities, NaN with
/// NaN) aside.
fn normwise_close(a: &[f64], b: &[f64], rel: f64) -> bool {
    let pairs = || {
        a.iter()
            .zip(b)
            .filter(|(x, y)| x != y && !(x.is_nan() && y.is_nan()))
    };
    let scale = a
        .iter()
        .chain(b)
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    a.len() == b.len() && pairs().all(|(x, y)| (x - y).abs() <= rel * scale)
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
        let rr = interp::eval(&h, &hin).unwrap();
        // Forward over reverse: the same function, to rounding.
        let fr = interp::eval(&ad::hvp_with(&f, None, ad::HvpMode::FwdRev).unwrap(), &hin).unwrap();
        let rr = if ad::HvpMode::DEFAULT == ad::HvpMode::RevRev {
            rr
        } else {
            interp::eval(&ad::hvp_with(&f, None, ad::HvpMode::RevRev).unwrap(), &hin).unwrap()
        };
        for (a, b) in fr.iter().zip(&rr) {
            prop_assert!(normwise_close(a, b, 1e-13), "fwdrev {a:?} vs revrev {b:?} on\n{f}");
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
