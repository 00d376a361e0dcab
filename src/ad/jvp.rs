//! Forward mode as an IR transform: `jvp` takes a function and returns
//! `(inputs..., tangents...) -> (outputs..., tangent outputs...)`.
//!
//! One sweep in program order: each instruction is re-emitted, and where an operand has a
//! tangent, the op's JVP rule (`crate::ops::jvp`) emits the tangent of its result beside it.
//! Tangents are `Option`s (absent is zero), so only values that depend on a differentiated
//! input get one. A `scan` with tangents becomes one scan of its body's JVP, carrying the
//! tangents alongside (`scan_jvp`); replay scans are first written as two ordinary scans
//! (`super::scan::expand_replays`). The output is simplified and verified like reverse mode's,
//! and is itself differentiable in either mode.

use super::{
    direction_name, finish, resolve_wrt, scan::expand_replays, verified, AdError, FreshNames,
    HvpResults,
};
use crate::ir::{
    Body, Builder, DType, Dims, Func, Op, Role, ScanOptions, ScanShape, Type, Value, Var,
    VerifyError,
};
use crate::simplify::simplifying_builder;

/// The name of the tangent parameter for input `name` in a jvp function (unless taken).
pub fn tangent_name(name: &str) -> String {
    format!("t_{name}")
}

/// `f.jvp(inputs..., t...) -> (outputs..., tangents...)`: the Jacobian-vector product for any
/// `f`, one tangent parameter `t_<name>` per input in `wrt` (marked data; in `wrt`'s order),
/// and one tangent per result of `f` (zeros where a result does not depend on those inputs; a
/// bool result's tangent is f64 zeros of its shape).
pub fn jvp(f: &Func, wrt: Option<&[&str]>) -> Result<Func, AdError> {
    jvp_with(f, wrt, None)
}

/// Vector mode: `f.jvp(inputs..., t...) -> (outputs..., tangents...)` for `k` directions at
/// once. Each tangent parameter has type `[k] + input.shape` and each tangent result
/// `[k] + result.shape`; row `j` of every tangent result is the jvp along row `j` of the
/// tangents, computed by the same operations in the same order as `jvp` (so bit for bit equal),
/// in one pass: the rules broadcast primal partials along the directions axis.
pub fn jvp_vector(f: &Func, wrt: Option<&[&str]>, k: usize) -> Result<Func, AdError> {
    jvp_with(f, wrt, Some(k))
}

fn jvp_with(f: &Func, wrt: Option<&[&str]>, k: Option<usize>) -> Result<Func, AdError> {
    verified(f)?;
    if let Some(k) = k {
        super::limits::fits_vector(f, k)?;
    }
    let wrt = resolve_wrt(f, wrt)?;
    let b = simplifying_builder(format!("{}.jvp", f.name), 3 * f.insts.len());
    let params: Vec<Var<'_>> = f
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init))
        .collect();
    let mut fresh = FreshNames::of(f);
    let mut tangents: Vec<Option<Var<'_>>> = vec![None; f.params.len()];
    for &i in &wrt {
        let n = fresh.get(&tangent_name(&f.params[i].name));
        let ty = f.params[i]
            .ty
            .with_shape(Dims::new(&tshape(k, f.params[i].ty)));
        tangents[i] = Some(b.param_with(&n, ty, Role::Data, None));
    }
    let (outs, touts) = emit(&b, f, &params, &tangents, k)?;
    let mut results: Vec<Value> = outs.iter().map(|v| v.value()).collect();
    results.extend(
        outs.iter()
            .zip(&touts)
            .map(|(y, t)| or_zero(&b, *t, y.ty(), k).value()),
    );
    finish(b.finish_unverified(&results))
}

/// Forward over reverse: the jvp of `g = grad(f)` (parameters `f`'s, results `(y, grad...)`)
/// along directions for the inputs `wrt`, named and ordered as reverse over reverse names
/// them (`direction_name`). Returns `(y, grad..., Hv...)`, or `(Hv...)` alone; the tangent of
/// `y` is dropped.
pub(super) fn hvp_fwdrev(
    name: String,
    g: &Func,
    wrt: &[usize],
    wanted: HvpResults,
) -> Result<Func, AdError> {
    let b = simplifying_builder(name, 3 * g.insts.len());
    let params: Vec<Var<'_>> = g
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init))
        .collect();
    let mut fresh = FreshNames::of(g);
    let mut tangents: Vec<Option<Var<'_>>> = vec![None; g.params.len()];
    for &i in wrt {
        let n = fresh.get(&direction_name(&g.params[i].name));
        tangents[i] = Some(b.param_with(&n, g.params[i].ty, Role::Data, None));
    }
    let (outs, touts) = emit(&b, g, &params, &tangents, None)?;
    let mut results: Vec<Value> = match wanted {
        HvpResults::WithGrad => outs.iter().map(|v| v.value()).collect(),
        HvpResults::ProductOnly => Vec::new(),
    };
    results.extend(
        outs.iter()
            .zip(&touts)
            .skip(1)
            .map(|(y, t)| or_zero(&b, *t, y.ty(), None).value()),
    );
    finish(b.finish_unverified(&results))
}

/// The shape of a tangent of a value of type `ty`: `[k] + shape` in vector mode.
pub(super) fn tshape(k: Option<usize>, ty: Type) -> Vec<usize> {
    k.into_iter().chain(ty.shape.iter()).collect()
}

/// A tangent, or f64 zeros of the tangent's shape where it is symbolically zero.
pub(super) fn or_zero<'b>(
    b: &'b Builder,
    t: Option<Var<'b>>,
    ty: Type,
    k: Option<usize>,
) -> Var<'b> {
    t.unwrap_or_else(|| b.splat(0.0, &tshape(k, ty)))
}

/// The results of a function emitted with tangents, and their tangents.
type WithTangents<'b> = (Vec<Var<'b>>, Vec<Option<Var<'b>>>);

/// Emits `f` into `b` on `params`, with the tangents of its values beside them, starting from
/// the parameters' `tangents` (of shape `[k] + shape` in vector mode). Returns the results of
/// `f` and their tangents.
pub(super) fn emit<'b>(
    b: &'b Builder,
    f: &Func,
    params: &[Var<'b>],
    tangents: &[Option<Var<'b>>],
    k: Option<usize>,
) -> Result<WithTangents<'b>, AdError> {
    let wrt: Vec<usize> = (0..tangents.len())
        .filter(|&i| tangents[i].is_some())
        .collect();
    let expanded = expand_replays(f, &wrt)?;
    let f = expanded.as_ref().unwrap_or(f);
    let mut map: Vec<Var<'b>> = params.to_vec();
    let mut tan: Vec<Option<Var<'b>>> = tangents.to_vec();
    map.reserve(f.insts.len());
    tan.reserve(f.insts.len());
    for inst in &f.insts {
        let args: Vec<Var<'b>> = inst.args.iter().map(|a| map[a.index()]).collect();
        let ts: Vec<Option<Var<'b>>> = inst.args.iter().map(|a| tan[a.index()]).collect();
        let active = inst.ty.dtype == DType::F64 && ts.iter().any(Option::is_some);
        let values: Vec<Value> = args.iter().map(|a| a.value()).collect();
        let (y, t) = if active && matches!(inst.op, Op::Scan { .. }) {
            scan_jvp(b, &inst.op, &args, &ts, k)?
        } else {
            let y = b.op(inst.op.clone(), &values);
            let t = if active {
                crate::ops::jvp(&inst.op, &args, y, &ts).map_err(|e| AdError::NoJvpRule {
                    func: f.name.clone(),
                    op: e.op.to_string(),
                })?
            } else {
                None
            };
            (y, t)
        };
        if let Some(n) = &inst.name {
            b.name_if_unnamed(y.value(), n);
        }
        map.push(y);
        tan.push(t);
    }
    let outs = f.results.iter().map(|r| map[r.index()]).collect();
    let touts = f.results.iter().map(|r| tan[r.index()]).collect();
    Ok((outs, touts))
}

/// The JVP of a scan with some operand tangents: a scan of the body's JVP over
/// `(consts, const tangents)`, `(carries, carry tangents)` and `(xs, x tangents)`, returning
/// `(ys, y tangents)`, under the same direction and policy. Only active operands and results
/// have tangents in the loop (`scan_activity`); the others' are zeros outside it. Returns the
/// scan's packed result and its tangent, each assembled from the new scan's parts. In vector
/// mode the tangents of the xs and ys run with the step axis first (`[length, k] + shape`).
fn scan_jvp<'b>(
    b: &'b Builder,
    op: &Op,
    args: &[Var<'b>],
    ts: &[Option<Var<'b>>],
    k: Option<usize>,
) -> Result<(Var<'b>, Option<Var<'b>>), AdError> {
    let Op::Scan {
        body,
        replay: None,
        consts,
        carries,
        length,
        reverse,
        checkpoint,
    } = op
    else {
        let why = "a replay scan reached forward mode";
        return Err(internal(op.name(), why.into()));
    };
    let bf = body.func();
    let s = ScanShape::new(bf, None, *consts, *carries, *length, args.len())
        .map_err(|e| internal(&bf.name, e))?;
    let given: Vec<bool> = ts.iter().map(Option::is_some).collect();
    let (on, out_on) = scan_activity(bf, &s, &given);
    if !out_on.iter().any(|&a| a) {
        return Ok((b.op(op.clone(), &values(args)), None));
    }
    let groups = [
        0..s.carry_start(),
        s.carry_start()..s.xs_start(),
        s.xs_start()..args.len(),
    ];
    let new_body = body_jvp(bf, &s, &on, &out_on, &groups, k)?;
    let mut operands: Vec<Var<'b>> = Vec::new();
    for range in &groups {
        operands.extend(range.clone().map(|i| args[i]));
        let tangents = range.clone().filter(|&i| on[i]);
        operands.extend(tangents.map(|i| {
            let t = or_zero(b, ts[i], args[i].ty(), k);
            if i >= s.xs_start() {
                swap_lead(t, k)
            } else {
                t
            }
        }));
    }
    let count = |r: &std::ops::Range<usize>| r.len() + r.clone().filter(|&i| on[i]).count();
    let opts = ScanOptions::new(&bf.name, s.length)
        .reverse(*reverse)
        .checkpoint(*checkpoint);
    let out = b
        .try_scan_func(
            Body::new(new_body),
            count(&groups[0]),
            count(&groups[1]),
            &operands,
            &opts,
        )
        .map_err(|e| internal(&bf.name, e.message))?;
    let flat = |v: Var<'b>| v.reshape(&[v.ty().numel()]);
    let (nc, ny) = (s.carries, s.ys);
    let primal: Vec<Var<'b>> = out.carries[..nc]
        .iter()
        .chain(&out.ys[..ny])
        .map(|&v| flat(v))
        .collect();
    // Tangent parts in the packed order: the loop's where active, zeros elsewhere.
    let ys_t = out.ys[ny..].iter().map(|&y| swap_lead(y, k));
    let mut carried = out.carries[nc..].iter().copied().chain(ys_t);
    let mut tangent = Vec::with_capacity(primal.len());
    for (j, p) in primal.iter().enumerate() {
        let t = if out_on[j] { carried.next() } else { None };
        // `p` is flat: its tangent is `[k, p.numel()]` (also with no direction at all).
        let flat_like_p = |t: Var<'b>| t.reshape(&tshape(k, p.ty()));
        tangent.push(t.map_or_else(|| b.splat(0.0, &tshape(k, p.ty())), flat_like_p));
    }
    let axis = usize::from(k.is_some());
    Ok((b.concat(&primal, 0), Some(b.concat(&tangent, axis))))
}

/// Swaps the first two axes in vector mode (`[k, length, ...]` and `[length, k, ...]`).
fn swap_lead(t: Var<'_>, k: Option<usize>) -> Var<'_> {
    if k.is_none() {
        return t;
    }
    let mut perm: Vec<usize> = (0..t.rank()).collect();
    perm.swap(0, 1);
    t.transpose(&perm)
}

/// Which body parameters get tangents (`given` operands, and the carries the body gives one
/// to: a fixpoint over the steps) and which body results have them (a carry's result exactly
/// when its parameter does). Dependence is by data
/// flow, so a result may be active with a symbolically zero tangent; it then gets zeros.
fn scan_activity(bf: &Func, s: &ScanShape, given: &[bool]) -> (Vec<bool>, Vec<bool>) {
    let np = bf.params.len();
    let mut on = given.to_vec();
    loop {
        let mut dep: Vec<bool> = on.clone();
        dep.resize(bf.num_values(), false);
        for (k, inst) in bf.insts.iter().enumerate() {
            dep[np + k] = inst.ty.dtype == DType::F64 && inst.args.iter().any(|a| dep[a.index()]);
        }
        let mut out: Vec<bool> = bf.results.iter().map(|r| dep[r.index()]).collect();
        let mut changed = false;
        for (j, o) in out.iter_mut().take(s.carries).enumerate() {
            let c = s.carry_start() + j;
            changed |= *o && !on[c];
            on[c] |= *o;
            // A carry's tangent goes in and out of the loop alike.
            *o = on[c];
        }
        if !changed {
            return (on, out);
        }
    }
}

fn values(args: &[Var<'_>]) -> Vec<Value> {
    args.iter().map(|a| a.value()).collect()
}

/// The body of a scan's JVP: parameters, group by group (consts, carries, xs), the body's
/// then the tangents of those `on`; results: the carries, the tangents of the active ones
/// (`out_on`), the ys, the tangents of the active ones.
fn body_jvp(
    bf: &Func,
    s: &ScanShape,
    on: &[bool],
    out_on: &[bool],
    groups: &[std::ops::Range<usize>; 3],
    k: Option<usize>,
) -> Result<Func, AdError> {
    let jb = simplifying_builder(format!("{}.jvp", bf.name), 3 * bf.insts.len());
    let mut fresh = FreshNames(bf.params.iter().map(|p| p.name.clone()).collect());
    let mut params: Vec<Option<Var<'_>>> = vec![None; bf.params.len()];
    let mut tangents: Vec<Option<Var<'_>>> = vec![None; bf.params.len()];
    for range in groups {
        for i in range.clone() {
            let p = &bf.params[i];
            params[i] = Some(jb.param_with(&p.name, p.ty, Role::Wrt, None));
        }
        for i in range.clone().filter(|&i| on[i]) {
            let p = &bf.params[i];
            let n = fresh.get(&tangent_name(&p.name));
            let ty = p.ty.with_shape(Dims::new(&tshape(k, p.ty)));
            tangents[i] = Some(jb.param_with(&n, ty, Role::Wrt, None));
        }
    }
    let params: Vec<Var<'_>> = params.into_iter().flatten().collect();
    let (outs, touts) = emit(&jb, bf, &params, &tangents, k)?;
    let nc = s.carries;
    let t = |j: &usize| or_zero(&jb, touts[*j], outs[*j].ty(), k);
    let active = |r: std::ops::Range<usize>| r.filter(|&j| out_on[j]).collect::<Vec<_>>();
    let mut results: Vec<Var<'_>> = outs[..nc].to_vec();
    results.extend(active(0..nc).iter().map(t));
    results.extend_from_slice(&outs[nc..]);
    results.extend(active(nc..outs.len()).iter().map(t));
    finish(jb.finish_unverified(&values(&results)))
}

fn internal(func: &str, message: String) -> AdError {
    AdError::Internal(VerifyError {
        func: func.to_string(),
        issues: vec![crate::ir::verify::VerifyIssue {
            inst: None,
            line: String::new(),
            message: format!("scan jvp: {message}"),
        }],
    })
}
