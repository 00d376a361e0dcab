//! Derivative checking for `adjit check`: the gradient and the jvp (forward mode) against
//! central differences of the function, the Hessian-vector product against central differences
//! of the gradient (`<v, H u>` from the hvp along each direction `u`, against the difference of
//! `<grad f, v>` along `u`: the same order of differentiation as the default forward-over-reverse
//! hvp, which matters where a rule's Hessian is not symmetric), the jvp against the vjp by the dot-product test
//! `<w, J u> = <J^T w, u>` (a random cotangent `w`, along every direction `u`), and the dense
//! Jacobian (`ad::jacobian`, forward and reverse mode) against central differences of the
//! function: `J u` along every direction `u`. Forward mode costs one tangent per column, so when
//! the differentiated inputs have more elements than there are directions, it is checked on the
//! function restricted to the directions (see [`JacobianCalls`]).
//!
//! Step rule: central differences with steps `h` and `h/2`, `h = 1e-3 * max(1, |x|_inf)`,
//! combined by Richardson extrapolation (`(4 D(h/2) - D(h)) / 3`, error O(h^4)). Each check is
//! made along single coordinates (the first few of every input) and along random directions.
//! Errors are relative, with a floor: derivatives below `1e-4 * max(1, |f(x)|)` are compared
//! against that floor, since differences cannot resolve them better.
//!
//! Kinks: differences are meaningless across a point where the function is not smooth (`abs`
//! and `sign` at 0, `max`/`min` at ties, `floor` at integers, a comparison or a `reduce_max`
//! changing its answer, and through them `select`). Before differencing along a direction, the
//! check evaluates the function's *kink pattern* (which side of every kink each element is on,
//! see [`kink_pattern`]) at every point the difference formula uses. If the pattern is not the
//! same at all of them, the step shrinks tenfold, up to `SHRINKS` times; if it still changes,
//! the direction is reported as not smooth and not compared. The gradient check uses the kinks
//! of the function, the hvp check those of the gradient function.

use crate::ad::{self, AdError};
use crate::call::{AllocError, Executor};
use crate::inputs::Rng;
use crate::interp::Program;
use crate::ir::{verify, Binary, Builder, Func, Op, Unary, Value, Var, VerifyError};
use std::fmt;

/// How many times the step may shrink tenfold to step over a kink.
mod jacobian;
pub use jacobian::{jacobian_calls, JacobianCalls};

const SHRINKS: usize = 3;

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

/// One kind of derivative (gradient or hvp) checked along every direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The largest error among the directions compared (0 if none was).
    pub worst: Worst,
    /// How many directions were compared.
    pub compared: usize,
    /// Directions along which a kink lies within every step tried: not compared.
    pub not_smooth: Vec<String>,
    /// Directions along which the differenced function is not finite at some point the
    /// difference uses (a domain edge, an overflow, a NaN input): not compared.
    pub not_finite: Vec<String>,
    /// Why this part was not checked at all (the dense Jacobian of a function whose values,
    /// with a directions axis in front, would pass the limits of a value).
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    pub value: f64,
    pub gradient: Part,
    pub hvp: Part,
    /// The jvp against differences of the function.
    pub jvp: Part,
    /// The jvp against the vjp: `computed` is `<w, J u>`, `differenced` is `<J^T w, u>`.
    pub jvp_vjp: Part,
    /// The dense Jacobian against differences of the function: per direction `u`, the worse of
    /// `J u` in forward and in reverse mode, its `at` naming the mode.
    pub jacobian: Part,
    /// Directions tried (coordinates, then random directions).
    pub checks: usize,
}

/// Why a check could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckError {
    /// The function fails verification.
    Invalid(VerifyError),
    /// The input values do not match the function's parameters.
    Inputs(String),
    /// The function cannot be differentiated as asked.
    Ad(AdError),
    /// A workspace or buffer did not fit in memory.
    Alloc(AllocError),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Invalid(e) => write!(f, "invalid function: {e}"),
            CheckError::Inputs(m) => f.write_str(m),
            CheckError::Ad(e) => write!(f, "{e}"),
            CheckError::Alloc(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<AdError> for CheckError {
    fn from(e: AdError) -> Self {
        CheckError::Ad(e)
    }
}

impl From<AllocError> for CheckError {
    fn from(e: AllocError) -> Self {
        CheckError::Alloc(e)
    }
}

/// Runs one function on many inputs with one plan and one workspace.
struct Runner {
    prog: Program,
    ws: crate::interp::Workspace,
    outs: Vec<Vec<f64>>,
}

impl Runner {
    /// Plans `f`, which has been verified (a transform's output, or checked by `check`).
    fn new(f: &Func) -> Result<Runner, AllocError> {
        let prog = Program::new(f).expect("verified before planning");
        let ws = prog.try_workspace()?;
        let outs = prog.try_outputs()?;
        Ok(Runner { prog, ws, outs })
    }

    /// Runs on inputs of the lengths `check` has verified (or extended by transforms).
    fn run(&mut self, inputs: &[Vec<f64>]) -> &[Vec<f64>] {
        self.prog
            .call_vecs(&mut self.ws, inputs, &mut self.outs)
            .expect("inputs match the signature");
        &self.outs
    }
}

/// The kink pattern of `f`: a function of the same inputs whose results say, for every
/// instruction of `f` that is not smooth, which side of its kink each element lies on: the
/// sign of the argument of `abs`; the result of `sign`, `floor` and comparisons; `a >= b` for
/// `max a, b` and `a <= b` for `min` (ties go to `a`); `y >= 0` for `atan2 y, x`; which
/// elements equal the result of a `reduce_max`. `select` is covered by its mask, which is a comparison, a constant or an
/// input. Where the pattern is constant along a segment, `f` is smooth on it. `None` when `f`
/// has no kinks.
pub fn kink_pattern(f: &Func) -> Result<Option<Func>, AdError> {
    let b = Builder::with_capacity(format!("{}.kinks", f.name), 2 * f.insts.len());
    let mut map: Vec<Value> = Vec::with_capacity(f.num_values());
    for p in &f.params {
        map.push(b.param_with(&p.name, p.ty, p.role, p.init).value());
    }
    let mut marks: Vec<Var<'_>> = Vec::new();
    for inst in &f.insts {
        let args: Vec<Var<'_>> = inst.args.iter().map(|a| b.var(map[a.index()])).collect();
        let arg_values: Vec<Value> = args.iter().map(|a| a.value()).collect();
        let y = b.op(inst.op.clone(), &arg_values);
        marks.extend(kink_mark(&inst.op, &args, y));
        map.push(y.value());
    }
    if marks.is_empty() {
        return Ok(None);
    }
    b.finish(&marks).map(Some).map_err(AdError::Internal)
}

/// Which side of its kink each element of `op`'s result lies on (see [`kink_pattern`]).
fn kink_mark<'b>(op: &Op, args: &[Var<'b>], y: Var<'b>) -> Option<Var<'b>> {
    match op {
        Op::Unary(u) => match u {
            Unary::Abs => Some(args[0].sign()),
            Unary::Sign | Unary::Floor => Some(y),
            Unary::Neg
            | Unary::Exp
            | Unary::Log
            | Unary::Log1p
            | Unary::Expm1
            | Unary::Sqrt
            | Unary::Sin
            | Unary::Cos
            | Unary::Tan
            | Unary::Tanh
            | Unary::Sigmoid
            | Unary::Asin
            | Unary::Acos
            | Unary::Atan
            | Unary::Sinh
            | Unary::Cosh
            | Unary::Erf => None,
        },
        Op::Binary(bin) => match bin {
            Binary::Max => Some(args[0].ge(args[1])),
            Binary::Min => Some(args[0].le(args[1])),
            // atan2 jumps across y = 0 where x < 0. No mark can change there alone (the plane
            // without that half-line is connected), so mark the side of y = 0: conservative.
            Binary::Atan2 => Some(args[0].ge(args[0].builder().splat(0.0, &args[0].shape()))),
            // azmul is the product wherever both operands are finite (where one is not, the
            // difference is not finite either): no kink.
            Binary::Add | Binary::Sub | Binary::Mul | Binary::Div | Binary::Pow | Binary::Azmul => {
                None
            }
        },
        Op::Compare(_) => Some(y),
        Op::ReduceMax { axes } => Some(args[0].eq(y.expand(&args[0].shape(), &axes.to_vec()))),
        Op::Const { .. }
        | Op::Select
        | Op::ReduceSum { .. }
        | Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::Matmul { .. } => None,
        // Kinks inside a loop body are not marked (README, "check"): a body holds one step.
        Op::Scan { .. } => None,
    }
}

/// `<a, d>` for a direction `d`: elements `d` does not move are skipped, so that an infinite
/// derivative elsewhere (`sqrt'(0)`) does not make a coordinate's derivative NaN.
fn dot(a: &[Vec<f64>], d: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(d)
        .flat_map(|(x, y)| x.iter().zip(y))
        .filter(|(_, &q)| q != 0.0)
        .map(|(p, q)| p * q)
        .sum()
}

/// Richardson-extrapolated central difference of `phi` at 0 with step `h`.
fn difference(h: f64, mut phi: impl FnMut(f64) -> f64) -> f64 {
    let mut d = |h: f64| (phi(h) - phi(-h)) / (2.0 * h);
    let (coarse, fine) = (d(h), d(h / 2.0));
    (4.0 * fine - coarse) / 3.0
}

/// Equal patterns: every element equal, NaN equal to NaN.
fn same_pattern(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .all(|(x, y)| x == y || x.is_nan() && y.is_nan())
}

/// The largest step, of `h` shrunk tenfold up to `SHRINKS` times, at which the kink pattern
/// (`kinks`, with `center` its value at `t = 0`) is the same at every point `difference` uses;
/// `None` if there is none. Without kinks, `h`.
fn smooth_step(
    kinks: Option<(&mut Runner, &[Vec<f64>])>,
    h: f64,
    at: impl Fn(f64) -> Vec<Vec<f64>>,
) -> Option<f64> {
    let Some((runner, center)) = kinks else {
        return Some(h);
    };
    let mut step = h;
    for _ in 0..=SHRINKS {
        let smooth = [-step, -step / 2.0, step / 2.0, step]
            .iter()
            .all(|&t| same_pattern(runner.run(&at(t)), center));
        if smooth {
            return Some(step);
        }
        step /= 10.0;
    }
    None
}

/// Refuses inputs that do not match the parameters of `f`.
fn check_inputs(f: &Func, inputs: &[Vec<f64>]) -> Result<(), CheckError> {
    if inputs.len() != f.params.len() {
        return Err(CheckError::Inputs(format!(
            "@{} takes {} inputs, but {} were given",
            f.name,
            f.params.len(),
            inputs.len()
        )));
    }
    for (p, x) in f.params.iter().zip(inputs) {
        if x.len() != p.ty.numel() {
            return Err(CheckError::Inputs(format!(
                "input '{}': {} values given, but {} holds {}",
                p.name,
                x.len(),
                p.ty,
                p.ty.numel()
            )));
        }
    }
    Ok(())
}

/// Checks the gradient, the hvp, the jvp and the Jacobian of `f` (one scalar result) at `inputs`.
pub fn check(
    f: &Func,
    wrt: Option<&[&str]>,
    inputs: &[Vec<f64>],
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    verify(f).map_err(CheckError::Invalid)?;
    check_inputs(f, inputs)?;
    let g = ad::grad(f, wrt)?;
    let h = ad::hvp(f, wrt)?;
    let (j, v) = (ad::jvp(f, wrt)?, ad::vjp(f, wrt)?);
    let idx = ad::resolve_wrt(f, wrt)?;
    let drawn = Drawn::new(f, &idx, inputs, opts);
    // A Jacobian beyond the limits of a value skips that part alone.
    let (jac, skipped) = match JacobianCalls::new(f, wrt, &idx, inputs, &drawn.dirs) {
        Ok(jac) => (Some(jac), None),
        Err(CheckError::Ad(e @ AdError::TooLarge { .. })) => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let derivatives = Derivatives {
        f,
        g: &g,
        h: &h,
        j: &j,
        v: &v,
        jac: jac.as_ref(),
        idx: &idx,
    };
    let mut report = derivatives.check(inputs, &drawn)?;
    report.jacobian.skipped = skipped;
    Ok(report)
}

/// A function, its gradient, hvp, jvp, vjp and Jacobian functions (as `ad` makes them, or
/// not, in tests), and the indices of the differentiated inputs.
struct Derivatives<'a> {
    f: &'a Func,
    g: &'a Func,
    h: &'a Func,
    j: &'a Func,
    v: &'a Func,
    /// None where the Jacobian functions pass the limits of a value (that part is skipped).
    jac: Option<&'a JacobianCalls>,
    idx: &'a [usize],
}

/// A runner of a function and one of its kink pattern, with the pattern's value at the point.
struct Probe {
    runner: Runner,
    kinks: Option<(Runner, Vec<Vec<f64>>)>,
}

impl Probe {
    fn new(func: &Func, inputs: &[Vec<f64>]) -> Result<Probe, CheckError> {
        let kinks = match kink_pattern(func)? {
            Some(k) => {
                let mut r = Runner::new(&k)?;
                let center = r.run(inputs).to_vec();
                Some((r, center))
            }
            None => None,
        };
        Ok(Probe {
            runner: Runner::new(func)?,
            kinks,
        })
    }

    fn step(&mut self, h: f64, at: impl Fn(f64) -> Vec<Vec<f64>>) -> Option<f64> {
        let kinks = self.kinks.as_mut().map(|(r, c)| (r, c.as_slice()));
        smooth_step(kinks, h, at)
    }
}

/// What a check moves along, drawn from the seed: labelled directions (unit coordinates, the
/// first `opts.coordinates` of each input, then random directions; none when the
/// differentiated inputs have no elements), the hvp's direction `v` and the vjp's cotangent `w`.
struct Drawn {
    dirs: Vec<(String, Vec<Vec<f64>>)>,
    v: Vec<Vec<f64>>,
    w: f64,
}

impl Drawn {
    fn new(f: &Func, idx: &[usize], inputs: &[Vec<f64>], opts: &CheckOptions) -> Drawn {
        let mut rng = Rng::new(opts.seed ^ 0x5eed);
        let random = |rng: &mut Rng| -> Vec<Vec<f64>> {
            idx.iter()
                .map(|&i| (0..inputs[i].len()).map(|_| rng.range(-1.0, 1.0)).collect())
                .collect()
        };
        let elements: usize = idx.iter().map(|&i| inputs[i].len()).sum();
        let mut dirs = Vec::new();
        if elements > 0 {
            for (j, &i) in idx.iter().enumerate() {
                for c in 0..inputs[i].len().min(opts.coordinates) {
                    let mut d: Vec<Vec<f64>> =
                        idx.iter().map(|&k| vec![0.0; inputs[k].len()]).collect();
                    d[j][c] = 1.0;
                    let name = &f.params[i].name;
                    let at = if inputs[i].len() == 1 {
                        name.clone()
                    } else {
                        format!("{name}[{c}]")
                    };
                    dirs.push((at, d));
                }
            }
            for k in 0..opts.directions {
                dirs.push((format!("random direction {}", k + 1), random(&mut rng)));
            }
        }
        let v = random(&mut rng);
        let w = rng.range(-1.0, 1.0);
        Drawn { dirs, v, w }
    }
}

impl Derivatives<'_> {
    /// The point `inputs + t u`. Elements the direction does not move are left as they are
    /// (adding `t * 0` would turn a `-0` into `+0`, which `atan2` tells apart).
    fn moved(&self, inputs: &[Vec<f64>], u: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
        let mut x = inputs.to_vec();
        for (j, &i) in self.idx.iter().enumerate() {
            for (a, &d) in x[i].iter_mut().zip(&u[j]) {
                if d != 0.0 {
                    *a += t * d;
                }
            }
        }
        x
    }

    /// The difference step: `1e-3` times the largest differentiated input element, at least 1.
    fn step(&self, inputs: &[Vec<f64>]) -> f64 {
        let scale = self
            .idx
            .iter()
            .flat_map(|&i| inputs[i].iter())
            .fold(1.0f64, |m, x| m.max(x.abs()));
        1e-3 * if scale.is_finite() { scale } else { 1.0 }
    }

    fn check(&self, inputs: &[Vec<f64>], drawn: &Drawn) -> Result<CheckReport, CheckError> {
        let mut fp = Probe::new(self.f, inputs)?;
        let mut gp = Probe::new(self.g, inputs)?;
        let mut hr = Runner::new(self.h)?;
        let value = fp.runner.run(inputs)[0][0];
        let grad: Vec<Vec<f64>> = gp.runner.run(inputs)[1..].to_vec();
        let floor = 1e-4 * value.abs().max(1.0);
        let h = self.step(inputs);
        let (dirs, v, w) = (&drawn.dirs, &drawn.v, drawn.w);
        let mut vin = inputs.to_vec();
        vin.push(vec![w]);
        let wj: Vec<Vec<f64>> = Runner::new(self.v)?.run(&vin)[1..].to_vec();
        let mut jr = Runner::new(self.j)?;
        let columns = match self.jac {
            Some(jac) => Some(jac.columns(inputs, dirs)?),
            None => None,
        };

        let (mut pg, mut ph) = (Part::new(), Part::new());
        let (mut pj, mut pjv, mut pjac) = (Part::new(), Part::new(), Part::new());
        for (k, (at, u)) in dirs.iter().enumerate() {
            let column = columns.as_ref().map(|c| c[k]);
            let line = |t: f64| self.moved(inputs, u, t);
            let mut jin = inputs.to_vec();
            jin.extend(u.iter().cloned());
            let ju = jr.run(&jin)[1][0];
            // A NaN input reaches the jvp through zero tangents (0 * NaN); the vjp's dot skips it.
            if ju.is_finite() {
                pjv.record(at, w * ju, dot(&wj, u), floor * w.abs());
            } else {
                pjv.not_finite.push(at.clone());
            }
            match fp.step(h, line) {
                Some(s) => {
                    let d = difference(s, |t| fp.runner.run(&line(t))[0][0]);
                    pg.record(at, dot(&grad, u), d, floor);
                    pj.record(at, ju, d, floor);
                    if let Some([fwd, rev]) = column {
                        pjac.record_worse(at, [("forward", fwd), ("reverse", rev)], d, floor);
                    }
                }
                None => {
                    for p in [&mut pg, &mut pj, &mut pjac] {
                        p.not_smooth.push(at.clone());
                    }
                }
            }
            match gp.step(h, line) {
                Some(s) => {
                    let d = difference(s, |t| dot(&gp.runner.run(&line(t))[1..], v));
                    // <v, H u>: the hvp along u, as the difference of the gradient along u
                    // is (the two orders differ where a rule's Hessian is not symmetric).
                    let hin: Vec<Vec<f64>> = inputs.iter().chain(u).cloned().collect();
                    let hu = &hr.run(&hin)[1 + self.idx.len()..];
                    ph.record(at, dot(hu, v), d, floor);
                }
                None => ph.not_smooth.push(at.clone()),
            }
        }
        Ok(CheckReport {
            value,
            gradient: pg,
            hvp: ph,
            jvp: pj,
            jvp_vjp: pjv,
            jacobian: pjac,
            checks: dirs.len(),
        })
    }
}

/// The relative error of `computed` against `differenced`, with `floor` under the scale; NaN
/// counts as infinite.
fn relative_error(computed: f64, differenced: f64, floor: f64) -> f64 {
    let e = (computed - differenced).abs() / computed.abs().max(differenced.abs()).max(floor);
    if e.is_nan() {
        f64::INFINITY
    } else {
        e
    }
}

impl Part {
    fn new() -> Part {
        Part {
            worst: Worst {
                error: 0.0,
                at: String::new(),
                computed: 0.0,
                differenced: 0.0,
            },
            compared: 0,
            not_smooth: Vec::new(),
            not_finite: Vec::new(),
            skipped: None,
        }
    }

    /// Counts one comparison, keeping it if its relative error is the largest so far. A
    /// difference that is not finite compares nothing: the direction is set aside.
    fn record(&mut self, at: &str, computed: f64, differenced: f64, floor: f64) {
        if !differenced.is_finite() {
            self.not_finite.push(at.to_string());
            return;
        }
        self.compared += 1;
        let e = relative_error(computed, differenced, floor);
        if e >= self.worst.error {
            self.worst = Worst {
                error: e,
                at: at.to_string(),
                computed,
                differenced,
            };
        }
    }

    /// Records the worse of two values computed in two ways (named by `computed`'s labels)
    /// against one difference, as one comparison at `at` with the way that was worse.
    fn record_worse(&mut self, at: &str, computed: [(&str, f64); 2], differenced: f64, floor: f64) {
        if !differenced.is_finite() {
            self.not_finite.push(at.to_string());
            return;
        }
        let [a, b] = computed;
        let error = |c: f64| relative_error(c, differenced, floor);
        let (how, c) = if error(b.1) > error(a.1) { b } else { a };
        self.record(&format!("{at}, {how} mode"), c, differenced, floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum((|x| + max(x, 0) + floor(x) + select(x > 0, exp x, x) + max(x)) * x)`, its
    /// gradient, scaled by `bias` on the smooth term `x * x` (1 is the true function).
    fn kinky(bias: f64) -> Func {
        let b = Builder::new("kinky");
        let x = b.param("x", &[4]);
        let zero = b.splat(0.0, &[4]);
        let top = x.max_axes(&[0]).expand(&[4], &[0]);
        let smooth = b.select(x.gt(zero), x.exp(), x) + bias * x;
        let t = (x.abs() + x.max(zero) + x.floor() + smooth + top) * x;
        b.finish(&[t.sum()]).unwrap()
    }

    /// Checks `f` against the gradient of `g_of` and the hvp of `h_of` at `x`.
    fn run_check(f: &Func, g_of: &Func, h_of: &Func, x: &[f64]) -> CheckReport {
        let opts = CheckOptions {
            coordinates: 4,
            directions: 3,
            seed: 1,
        };
        let inputs = [x.to_vec()];
        let drawn = Drawn::new(f, &[0], &inputs, &opts);
        let jac = JacobianCalls::new(f, None, &[0], &inputs, &drawn.dirs).unwrap();
        derivatives_of(f, g_of, h_of, &jac, x, &opts)
    }

    /// Checks `f` against the gradient of `g_of`, the hvp of `h_of` and the Jacobians `jac`.
    fn derivatives_of(
        f: &Func,
        g_of: &Func,
        h_of: &Func,
        jac: &JacobianCalls,
        x: &[f64],
        opts: &CheckOptions,
    ) -> CheckReport {
        let (g, h) = (ad::grad(g_of, None).unwrap(), ad::hvp(h_of, None).unwrap());
        let (j, v) = (ad::jvp(f, None).unwrap(), ad::vjp(f, None).unwrap());
        let d = Derivatives {
            f,
            g: &g,
            h: &h,
            j: &j,
            v: &v,
            jac: Some(jac),
            idx: &[0],
        };
        let inputs = [x.to_vec()];
        d.check(&inputs, &Drawn::new(f, &[0], &inputs, opts))
            .unwrap()
    }

    #[test]
    fn only_functions_with_kinks_have_a_pattern() {
        let b = Builder::new("smooth");
        let x = b.param("x", &[3]);
        let f = b.finish(&[(x.exp() * x).sum().tanh()]).unwrap();
        assert!(kink_pattern(&f).unwrap().is_none());
        let k = kink_pattern(&kinky(1.0)).unwrap().expect("kinks");
        // abs, max, floor, the comparison and reduce_max: five patterns of four elements.
        assert_eq!(k.result_types().len(), 5, "{k}");
        let at = |x: &[f64]| crate::interp::eval(&k, &[x.to_vec()]).unwrap();
        let x = [0.5, -0.25, 1.5, 2.0];
        assert_eq!(at(&x), at(&[0.6, -0.2, 1.6, 2.1]));
        for moved in [
            [-0.5, -0.25, 1.5, 2.0], // abs, max, the comparison
            [0.5, -0.25, 2.5, 2.0],  // floor, reduce_max
            [0.5, -0.25, 1.5, 1.0],  // floor, reduce_max
        ] {
            assert_ne!(at(&x), at(&moved), "{moved:?}");
        }
    }

    #[test]
    fn correct_derivatives_near_kinks_pass() {
        // Every coordinate within the default step (1e-3 * 3) of a kink: abs, max and the
        // comparison at 0; floor at 1 and 3; the maximum shared nearly by x[2] and x[3].
        let x = [5e-4, -3e-4, 3.0004, 3.0002];
        let f = kinky(1.0);
        let r = run_check(&f, &f, &f, &x);
        assert!(r.gradient.worst.error < 1e-8, "{r:?}");
        assert!(r.hvp.worst.error < 1e-8, "{r:?}");
        assert_eq!((r.gradient.compared, r.hvp.compared), (7, 7), "{r:?}");
        assert!(r.jvp.worst.error < 1e-8 && r.jvp.compared == 7, "{r:?}");
        assert!(
            r.jvp_vjp.worst.error < 1e-13 && r.jvp_vjp.compared == 7,
            "{r:?}"
        );
        // On a kink itself no step avoids it: those directions are not compared.
        let x = [0.0, -3e-4, 2.5, 1.25];
        let r = run_check(&f, &f, &f, &x);
        assert!(r.gradient.worst.error < 1e-8, "{r:?}");
        assert!(r.gradient.not_smooth.contains(&"x[0]".to_string()), "{r:?}");
        assert!(r
            .gradient
            .not_smooth
            .contains(&"random direction 1".to_string()));
        assert_eq!(r.gradient.compared + r.gradient.not_smooth.len(), 7);
        assert_eq!(r.jvp.not_smooth, r.gradient.not_smooth);
        assert_eq!(r.jvp_vjp.compared, 7, "{r:?}");
        assert!(r.hvp.worst.error < 1e-8, "{r:?}");
    }

    #[test]
    fn wrong_derivatives_near_kinks_still_fail() {
        let x = [5e-4, -3e-4, 3.0004, 3.0002];
        let (right, wrong) = (kinky(1.0), kinky(1.5));
        let r = run_check(&right, &wrong, &right, &x);
        assert!(r.gradient.worst.error > 1e-3, "{r:?}");
        assert!(r.gradient.not_smooth.is_empty() && r.hvp.not_smooth.is_empty());
        let r = run_check(&right, &right, &wrong, &x);
        assert!(r.gradient.worst.error < 1e-8, "{r:?}");
        assert!(r.hvp.worst.error > 1e-3, "{r:?}");
        // Only x[0] is wrong-footed by a gradient off at one coordinate near a kink.
        let b = Builder::new("off");
        let p = b.param("x", &[4]);
        let zero = b.splat(0.0, &[4]);
        let off = b.tensor(&[4], &[1e-3, 0.0, 0.0, 0.0]);
        let top = p.max_axes(&[0]).expand(&[4], &[0]);
        let smooth = b.select(p.gt(zero), p.exp(), p) + p + off;
        let t = (p.abs() + p.max(zero) + p.floor() + smooth + top) * p;
        let wrong = b.finish(&[t.sum()]).unwrap();
        let r = run_check(&right, &wrong, &right, &x);
        assert!(r.gradient.worst.error > 1e-5, "{r:?}");
        assert_eq!(r.gradient.worst.at, "x[0]", "{r:?}");
    }

    #[test]
    fn bad_functions_and_inputs_are_errors() {
        let f = kinky(1.0);
        let opts = CheckOptions::default();
        let e = check(&f, None, &[vec![1.0; 3]], &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'x': 3 values given, but f64[4] holds 4"
        );
        let e = check(&f, None, &[], &opts).unwrap_err();
        assert!(matches!(e, CheckError::Inputs(_)), "{e}");
        let b = Builder::new("broken");
        let x = b.param("x", &[2]);
        let y = x.exp();
        let mut bad = b.finish(&[y.sum()]).unwrap();
        bad.results[0] = Value(99);
        let e = check(&bad, None, &[vec![1.0; 2]], &opts).unwrap_err();
        assert!(matches!(e, CheckError::Invalid(_)), "{e}");
    }

    #[test]
    fn signed_zeros_stay_put_along_other_coordinates() {
        // atan2(-0, -1) = -pi but atan2(+0, -1) = +pi: moving along x[1] must not turn y[0]'s
        // -0 into +0, or the difference jumps by 2 pi.
        let b = Builder::new("angle");
        let (y, x) = (b.param("y", &[2]), b.param("x", &[2]));
        let f = b.finish(&[y.atan2(x).sum()]).unwrap();
        let inputs = [vec![-0.0, 1.0], vec![-1.0, 1.0]];
        let r = check(&f, Some(&["x"]), &inputs, &CheckOptions::default()).unwrap();
        assert!(
            r.gradient.compared > 0 && r.gradient.worst.error < 1e-6,
            "{r:?}"
        );
    }

    #[test]
    fn non_finite_differences_are_set_aside_not_failed() {
        // pow(a, b) at a = 0: a step to a < 0 with b not an integer leaves the domain (NaN).
        let b = Builder::new("p");
        let (a, e) = (b.param("a", &[3]), b.param("b", &[3]));
        let f = b.finish(&[a.pow(e).sum()]).unwrap();
        let inputs = [vec![0.0, 0.0, 2.0], vec![2.5, 0.5, 0.0]];
        let r = check(&f, None, &inputs, &CheckOptions::default()).unwrap();
        assert!(!r.gradient.not_finite.is_empty(), "{r:?}");
        assert!(r.gradient.worst.error.is_finite(), "{r:?}");
        // A NaN input makes every difference NaN: nothing is compared, nothing fails.
        let nan = [vec![f64::NAN, 1.0, 2.0], vec![1.0, 1.0, 1.0]];
        let r = check(&f, None, &nan, &CheckOptions::default()).unwrap();
        assert_eq!(r.gradient.worst.error, 0.0, "{r:?}");
        assert!(!r.gradient.not_finite.is_empty(), "{r:?}");
    }

    #[test]
    fn jacobians_are_checked_in_each_mode_whole_or_restricted() {
        let x = [5e-4, -3e-4, 3.0004, 3.0002];
        let inputs = [x.to_vec()];
        let (right, wrong) = (kinky(1.0), kinky(1.5));
        // Seven directions over four elements: the whole forward Jacobian; two: restricted.
        for (coordinates, directions, restricted) in [(4, 3, false), (1, 1, true)] {
            let opts = CheckOptions {
                coordinates,
                directions,
                seed: 1,
            };
            let dirs = Drawn::new(&right, &[0], &inputs, &opts).dirs;
            let good = JacobianCalls::new(&right, None, &[0], &inputs, &dirs).unwrap();
            let bad = JacobianCalls::new(&wrong, None, &[0], &inputs, &dirs).unwrap();
            assert_eq!((good.restricted, bad.restricted), (restricted, restricted));
            let r = derivatives_of(&right, &right, &right, &good, &x, &opts);
            assert!(r.jacobian.worst.error < 1e-8, "{r:?}");
            assert_eq!(r.jacobian.compared, coordinates + directions, "{r:?}");
            // A wrong Jacobian in one mode fails, and the report names that mode.
            let wrong_forward = JacobianCalls {
                reverse: good.reverse.clone(),
                ..bad.clone()
            };
            let wrong_reverse = JacobianCalls {
                reverse: bad.reverse.clone(),
                ..good.clone()
            };
            for (jac, mode) in [(wrong_forward, "forward"), (wrong_reverse, "reverse")] {
                let r = derivatives_of(&right, &right, &right, &jac, &x, &opts);
                assert!(r.jacobian.worst.error > 1e-3, "{mode}: {r:?}");
                assert!(
                    r.jacobian.worst.at.ends_with(&format!(", {mode} mode")),
                    "{r:?}"
                );
                assert!(r.gradient.worst.error < 1e-8, "{r:?}");
            }
        }
    }

    #[test]
    fn the_restricted_function_is_the_function_at_t_0_bit_for_bit() {
        // atan2(-0, -1) = -pi, atan2(+0, -1) = +pi: a -0 turned into +0 shows in the value.
        let b = Builder::new("angle");
        let (y, x) = (b.param("y", &[3]), b.param("t", &[3]));
        let f = b.finish(&[y.atan2(x).sum()]).unwrap();
        let inputs = [vec![-0.0, 0.0, 0.5], vec![-1.0, -1.0, 2.0]];
        let opts = CheckOptions {
            coordinates: 1,
            directions: 1,
            seed: 3,
        };
        let calls = jacobian_calls(&f, Some(&["y"]), &inputs, &opts).unwrap();
        assert!(calls.restricted);
        // The new input is named unlike `t`, the function's own.
        let names: Vec<&str> = calls
            .forward
            .params
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["y", "t", "t_"]);
        let at_0 = crate::interp::eval(&calls.forward, &calls.forward_inputs).unwrap();
        let value = crate::interp::eval(&f, &inputs).unwrap();
        assert_eq!(at_0[0][0].to_bits(), value[0][0].to_bits());
        // Its Jacobian: d/dy atan2(y, x) = x / (x^2 + y^2), along e_0 and a random direction.
        let dirs = Drawn::new(&f, &[0], &inputs, &opts).dirs;
        let grad = [-1.0, -1.0, 2.0 / 4.25];
        for (k, (_, u)) in dirs.iter().enumerate() {
            let want: f64 = grad.iter().zip(&u[0]).map(|(g, d)| g * d).sum();
            assert!((at_0[1][k] - want).abs() < 1e-14, "{k}: {at_0:?}");
        }
        let e = jacobian_calls(&f, Some(&["z"]), &inputs, &opts).unwrap_err();
        assert!(e.to_string().contains("no input 'z'"), "{e}");
    }

    #[test]
    fn no_directions_compare_nothing_and_fail_nothing() {
        let opts = CheckOptions {
            coordinates: 0,
            directions: 0,
            seed: 0,
        };
        let r = check(&kinky(1.0), None, &[vec![0.5, -1.0, 2.0, 3.5]], &opts).unwrap();
        assert_eq!((r.checks, r.jacobian.compared), (0, 0), "{r:?}");
        assert_eq!(r.jacobian.worst.error, 0.0, "{r:?}");
    }
}
