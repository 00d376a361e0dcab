//! Derivative checking for `adjit check`: the gradient against central differences of the
//! function, and the Hessian-vector product against central differences of the gradient.
//!
//! Step rule: central differences with steps `h` and `h/2`, `h = 1e-3 * max(1, |x|_inf)`,
//! combined by Richardson extrapolation (`(4 D(h/2) - D(h)) / 3`, error O(h^4)). Each check is
//! made along single coordinates (the first few of every input) and along random directions.
//! Errors are relative, with a floor: derivatives below `1e-4 * max(1, |f(x)|)` are compared
//! against that floor, since differences cannot resolve them better.

use crate::ad::{self, AdError};
use crate::inputs::Rng;
use crate::interp::Program;
use crate::ir::Func;

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Coordinates checked per input (the first ones).
    pub coordinates: usize,
    /// Random directions checked.
    pub directions: usize,
    pub seed: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            coordinates: 4,
            directions: 3,
            seed: 0,
        }
    }
}

/// The largest relative error of one kind of derivative, and where it occurred.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    pub error: f64,
    pub at: String,
    pub computed: f64,
    pub differenced: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    pub value: f64,
    pub gradient: Worst,
    pub hvp: Worst,
    pub checks: usize,
}

/// Runs one function on many inputs with one plan and one workspace.
struct Runner {
    prog: Program,
    ws: crate::interp::Workspace,
    outs: Vec<Vec<f64>>,
}

impl Runner {
    fn new(f: &Func) -> Runner {
        let prog = Program::new(f).expect("transforms produce verified functions");
        let ws = prog.workspace();
        let outs = f
            .result_types()
            .iter()
            .map(|t| vec![0.0; t.numel()])
            .collect();
        Runner { prog, ws, outs }
    }

    fn run(&mut self, inputs: &[Vec<f64>]) -> &[Vec<f64>] {
        let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
        let mut refs: Vec<&mut [f64]> = self.outs.iter_mut().map(Vec::as_mut_slice).collect();
        self.prog
            .run(&mut self.ws, &ins, &mut refs)
            .expect("inputs match the signature");
        &self.outs
    }
}

fn dot(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .sum()
}

/// Richardson-extrapolated central difference of `phi` at 0 with step `h`.
fn difference(h: f64, mut phi: impl FnMut(f64) -> f64) -> f64 {
    let mut d = |h: f64| (phi(h) - phi(-h)) / (2.0 * h);
    let (coarse, fine) = (d(h), d(h / 2.0));
    (4.0 * fine - coarse) / 3.0
}

/// Checks the gradient and the hvp of `f` (one scalar result) at `inputs`.
pub fn check(
    f: &Func,
    wrt: Option<&[&str]>,
    inputs: &[Vec<f64>],
    opts: &CheckOptions,
) -> Result<CheckReport, AdError> {
    let idx = ad::resolve_wrt(f, wrt)?;
    let mut fr = Runner::new(f);
    let mut gr = Runner::new(&ad::grad(f, wrt)?);
    let mut hr = Runner::new(&ad::hvp(f, wrt)?);
    let value = fr.run(inputs)[0][0];
    let grad: Vec<Vec<f64>> = gr.run(inputs)[1..].to_vec();
    let floor = 1e-4 * value.abs().max(1.0);
    let scale = idx
        .iter()
        .flat_map(|&i| inputs[i].iter())
        .fold(1.0f64, |m, x| m.max(x.abs()));
    let h = 1e-3 * if scale.is_finite() { scale } else { 1.0 };

    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    let mut random_dir = || -> Vec<Vec<f64>> {
        idx.iter()
            .map(|&i| (0..inputs[i].len()).map(|_| rng.range(-1.0, 1.0)).collect())
            .collect()
    };
    // Directions: unit coordinates first, then random ones.
    let mut dirs: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for (j, &i) in idx.iter().enumerate() {
        for c in 0..inputs[i].len().min(opts.coordinates) {
            let mut d: Vec<Vec<f64>> = idx.iter().map(|&k| vec![0.0; inputs[k].len()]).collect();
            d[j][c] = 1.0;
            let at = if inputs[i].len() == 1 {
                f.params[i].name.clone()
            } else {
                format!("{}[{c}]", f.params[i].name)
            };
            dirs.push((at, d));
        }
    }
    for k in 0..opts.directions {
        dirs.push((format!("random direction {}", k + 1), random_dir()));
    }
    let v = random_dir();
    let mut hin = inputs.to_vec();
    hin.extend(v.iter().cloned());
    let hv: Vec<Vec<f64>> = hr.run(&hin)[1 + idx.len()..].to_vec();

    let moved = |u: &[Vec<f64>], t: f64| -> Vec<Vec<f64>> {
        let mut x = inputs.to_vec();
        for (j, &i) in idx.iter().enumerate() {
            for (a, d) in x[i].iter_mut().zip(&u[j]) {
                *a += t * d;
            }
        }
        x
    };
    let none = || Worst {
        error: 0.0,
        at: String::new(),
        computed: 0.0,
        differenced: 0.0,
    };
    let (mut wg, mut wh) = (none(), none());
    let record = |w: &mut Worst, at: &str, computed: f64, differenced: f64| {
        let e = (computed - differenced).abs() / computed.abs().max(differenced.abs()).max(floor);
        let e = if e.is_nan() { f64::INFINITY } else { e };
        if e >= w.error {
            *w = Worst {
                error: e,
                at: at.to_string(),
                computed,
                differenced,
            };
        }
    };
    for (at, u) in &dirs {
        let d = difference(h, |t| fr.run(&moved(u, t))[0][0]);
        record(&mut wg, at, dot(&grad, u), d);
        let s = difference(h, |t| dot(&gr.run(&moved(u, t))[1..], &v));
        record(&mut wh, at, dot(&hv, u), s);
    }
    Ok(CheckReport {
        value,
        gradient: wg,
        hvp: wh,
        checks: dirs.len(),
    })
}
