//! The dense Jacobian part of `adjit check`: the Jacobian functions compared with differences
//! ([`JacobianCalls`]: `ad::jacobian` in reverse mode, and in forward mode on `f` itself or, when
//! the differentiated inputs have more elements than there are directions, on `f` restricted
//! to the directions), and `J u` along each direction from both.

use super::{check_inputs, dot, CheckError, CheckOptions, Drawn, Runner};
use crate::ad::{self, AdError, JacobianMode};
use crate::ir::{verify, Builder, Func, Value, Var};

/// The Jacobian functions `check` compares with differences, and the inputs each runs on.
#[derive(Clone, Debug)]
pub struct JacobianCalls {
    /// Forward mode: `ad::jacobian(f, wrt, Forward)` if the differentiated inputs have at most
    /// as many elements as `check` has directions. Else, so that the cost stays one tangent per
    /// direction rather than one per input element, the Jacobian of `f` restricted to the
    /// directions `u_k`, `t -> f(x + sum_k t_k u_k)` with a last input `t: f64[m]`, at `t = 0`:
    /// one result `[J u_1, ..., J u_m]` after the value.
    pub forward: Func,
    /// The inputs `forward` runs on: `check`'s, and `t = 0` when restricted.
    pub forward_inputs: Vec<Vec<f64>>,
    /// Whether `forward` is the Jacobian of the restricted function.
    pub restricted: bool,
    /// Reverse mode: `ad::jacobian(f, wrt, Reverse)`, one cotangent (`f` has one scalar
    /// result); it runs on `check`'s inputs.
    pub reverse: Func,
}

/// The Jacobian functions that `check(f, wrt, inputs, opts)` compares with differences.
pub fn jacobian_calls(
    f: &Func,
    wrt: Option<&[&str]>,
    inputs: &[Vec<f64>],
    opts: &CheckOptions,
) -> Result<JacobianCalls, CheckError> {
    verify(f).map_err(CheckError::Invalid)?;
    check_inputs(f, inputs)?;
    ad::check_scalar(f)?;
    let idx = ad::resolve_wrt(f, wrt)?;
    let drawn = Drawn::new(f, &idx, inputs, opts);
    JacobianCalls::new(f, wrt, &idx, inputs, &drawn.dirs)
}

impl JacobianCalls {
    pub(super) fn new(
        f: &Func,
        wrt: Option<&[&str]>,
        idx: &[usize],
        inputs: &[Vec<f64>],
        dirs: &[(String, Vec<Vec<f64>>)],
    ) -> Result<JacobianCalls, CheckError> {
        let reverse = ad::jacobian(f, wrt, JacobianMode::Reverse)?;
        let elements: usize = idx.iter().map(|&i| inputs[i].len()).sum();
        if elements <= dirs.len() {
            return Ok(JacobianCalls {
                forward: ad::jacobian(f, wrt, JacobianMode::Forward)?,
                forward_inputs: inputs.to_vec(),
                restricted: false,
                reverse,
            });
        }
        let g = restricted(f, idx, dirs)?;
        let t = g.params.last().map(|p| p.name.clone()).unwrap_or_default();
        let mut forward_inputs = inputs.to_vec();
        forward_inputs.push(vec![0.0; dirs.len()]);
        Ok(JacobianCalls {
            forward: ad::jacobian(&g, Some(&[t.as_str()]), JacobianMode::Forward)?,
            forward_inputs,
            restricted: true,
            reverse,
        })
    }

    /// `J u` along each direction `u` of `dirs`, in forward and in reverse mode.
    pub(super) fn columns(
        &self,
        inputs: &[Vec<f64>],
        dirs: &[(String, Vec<Vec<f64>>)],
    ) -> Result<Vec<[f64; 2]>, CheckError> {
        let fwd = Runner::new(&self.forward)?.run(&self.forward_inputs)[1..].to_vec();
        let rev = Runner::new(&self.reverse)?.run(inputs)[1..].to_vec();
        let column = |k: usize, u: &[Vec<f64>]| {
            let forward = if self.restricted {
                fwd[0][k]
            } else {
                dot(&fwd, u)
            };
            [forward, dot(&rev, u)]
        };
        Ok(dirs
            .iter()
            .enumerate()
            .map(|(k, (_, u))| column(k, u))
            .collect())
    }
}

/// `f` restricted to the directions `dirs` over its inputs `idx`: `f(x + sum_k t_k u_k)` of the
/// inputs of `f` and a last one, `t: f64[m]` (named unlike the others). At `t = 0` it is `f(x)`
/// bit for bit: a moved input is `x - V t` with `V = -[u_1 ... u_m]`, and `V 0` is `+0`, which
/// leaves every `x`, `-0` included, as it is.
fn restricted(f: &Func, idx: &[usize], dirs: &[(String, Vec<Vec<f64>>)]) -> Result<Func, AdError> {
    let m = dirs.len();
    let b = Builder::with_capacity(format!("{}.restricted", f.name), f.insts.len() + 4 * m);
    let mut map: Vec<Value> = f
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init).value())
        .collect();
    let mut name = String::from("t");
    while f.param_index(&name).is_some() {
        name.push('_');
    }
    let t = b.param(&name, &[m]).reshape(&[m, 1]);
    for (j, &i) in idx.iter().enumerate() {
        let ty = f.params[i].ty;
        let mut v = vec![0.0; ty.numel() * m];
        for (k, (_, u)) in dirs.iter().enumerate() {
            for (e, &d) in u[j].iter().enumerate() {
                v[e * m + k] = -d;
            }
        }
        let step = b.tensor(&[ty.numel(), m], &v).matmul_t(t, false, false);
        map[i] = (b.var(map[i]) - step.reshape(&ty.shape.to_vec())).value();
    }
    for inst in &f.insts {
        let args: Vec<Value> = inst.args.iter().map(|a| map[a.index()]).collect();
        map.push(b.op(inst.op.clone(), &args).value());
    }
    let results: Vec<Var<'_>> = f.results.iter().map(|r| b.var(map[r.index()])).collect();
    b.finish(&results).map_err(AdError::Internal)
}
