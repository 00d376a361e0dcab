//! Numerical helpers of the derivative tests: running a function, inner products of result
//! lists, moving inputs along a direction, and Richardson-extrapolated central differences.

use adjit::interp::eval;
use adjit::ir::Func;

/// The interpreter's results of `f`, or a panic naming the function.
pub fn run(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    eval(f, inputs).unwrap_or_else(|e| panic!("@{}: {e}", f.name))
}

/// The inner product of two lists of tensors.
pub fn dot(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .sum()
}

/// `inputs` moved by `t * u` along the parameters in `wrt`.
pub fn shifted(inputs: &[Vec<f64>], wrt: &[usize], u: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
    let mut out = inputs.to_vec();
    for (j, &i) in wrt.iter().enumerate() {
        for (x, d) in out[i].iter_mut().zip(&u[j]) {
            *x += t * d;
        }
    }
    out
}

/// Richardson-extrapolated central difference of `phi` at 0.
pub fn derivative(phi: impl Fn(f64) -> f64) -> f64 {
    let h = 1e-3;
    let d = |h: f64| (phi(h) - phi(-h)) / (2.0 * h);
    (4.0 * d(h / 2.0) - d(h)) / 3.0
}

/// Relative error with a floor, so that two derivatives near zero compare absolutely.
pub fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}
