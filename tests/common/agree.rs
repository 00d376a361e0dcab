//! Compiled code against the interpreter, bit for bit: the comparison the JIT suites share.

use adjit::call::Executor;
use adjit::interp;
use adjit::ir::Func;
use adjit::jit::{self, Jit, JitOptions, Tier};

/// 0 when bit-identical (NaN matching NaN); otherwise the largest norm-wise relative difference
/// of an output, `max |a - b| / max |a|` (infinite if NaN-ness differs), for the message.
pub fn difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        let scale = x.iter().fold(
            0.0f64,
            |m, v| if v.is_finite() { m.max(v.abs()) } else { m },
        );
        for (&p, &q) in x.iter().zip(y) {
            if p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()) {
                continue;
            }
            let d = if p == q { 0.0 } else { (p - q).abs() / scale };
            worst = worst.max(if d.is_nan() {
                f64::INFINITY
            } else {
                d.max(f64::MIN_POSITIVE)
            });
        }
    }
    worst
}

/// Compiles `f` in both tiers and asserts each agrees with the interpreter bit for bit.
pub fn check_agrees(name: &str, f: &Func, inputs: &[Vec<f64>]) {
    let want = interp::eval(f, inputs).unwrap();
    for tier in [Tier::FastCode, Tier::FastCompile] {
        let c = Jit::new(JitOptions {
            tier,
            verify: true,
            chunk_cost: None,
        })
        .compile(f)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = c.eval(inputs).unwrap();
        let d = difference(&want, &got);
        assert_eq!(
            d, 0.0,
            "{name} ({tier:?}): JIT differs from the interpreter by {d:e}"
        );
    }
}

/// The interpreter's results of `f` at `inputs`, and the compiled code's written into outputs
/// that start as NaN (so an element left unwritten shows).
pub fn compiled_over_nan(f: &Func, inputs: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let want = interp::eval(f, inputs).unwrap();
    let c = jit::compile(f).unwrap();
    let mut outs: Vec<Vec<f64>> = want.iter().map(|w| vec![f64::NAN; w.len()]).collect();
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    c.call(&mut c.workspace(), &ins, &mut refs).unwrap();
    (want, outs)
}
