//! Reverse mode through `scan`: the forward scan stores what its adjoint needs, and the adjoint
//! is a second scan running the other way.
//!
//! The body `B(consts, carries, x) -> (carries', y)` is differentiated once, as a function: its
//! VJP `V` (`super::transform` on the body, so nested scans follow by the same code). `V`'s
//! instructions split into primal ones (no cotangent among their inputs) and adjoint ones. What
//! crosses from the first to the second must reach the adjoint step, by the scan's policy
//! (`Checkpoint`):
//! - `all`: the forward scan's body also returns, as extra per-step outputs, every primal value
//!   the adjoint reads that varies from step to step (bool ones are recomputed from their
//!   operands; values of the consts alone are recomputed each step);
//! - `carry`: the forward body also returns the carry it was given; the adjoint body recomputes
//!   the step from it;
//! - `binomial(s)`: the forward scan stores nothing; the adjoint is a replay scan (see
//!   `crate::ir::scan`) that the executors run with `s` snapshots (a forward scan that runs in
//!   `reverse` falls back to `carry`, as replay scans run in reverse only);
//! - `auto`: `all` if its residuals take at most `AUTO_ALL_BYTES`, else `carry`.
//!
//! The adjoint scan's carries are the carry cotangents and the accumulated cotangents of the
//! differentiated consts; its per-step inputs are the xs, the stored values and the cotangents
//! of the ys; its per-step outputs are the cotangents of the differentiated xs. A replay scan
//! met by the transform (the hvp of a `binomial` scan) is first written as the scan of its
//! trajectory and an ordinary scan over it (`expand_replays`), so the transform stays closed.

use super::{finish, transform, AdError, Seed};
use crate::ir::scan::AUTO_ALL_BYTES;
use crate::ir::{
    Body, Builder, Checkpoint, Func, Op, Role, ScanOptions, ScanOut, ScanShape, Type, Value, Var,
};
use crate::ops::Cotangent;
use crate::simplify::simplifying_builder;
use std::collections::HashMap;

/// What the forward sweep left for one scan's adjoint.
pub(super) struct Tape<'b> {
    body: Body,
    /// The body's VJP: parameters the body's, then one cotangent per body result; results the
    /// body's, then one cotangent per `wrt` parameter.
    vjp: Func,
    /// The body parameters differentiated: active consts, every carry, active xs.
    wrt: Vec<usize>,
    shape: ScanShape,
    reverse: bool,
    checkpoint: Checkpoint,
    args: Vec<Var<'b>>,
    /// `Some(s)`: the adjoint replays the carries with `s` snapshots; `None`: they are stored.
    replay: Option<u32>,
    /// Values of `vjp` stored per step, and their stacks (views of the forward scan).
    stored: Vec<Value>,
    stacks: Vec<Var<'b>>,
}

/// The scan attributes, unpacked.
struct Attrs<'a> {
    body: &'a Body,
    consts: u32,
    carries: u32,
    length: u32,
    reverse: bool,
    checkpoint: Checkpoint,
}

fn attrs(op: &Op) -> Attrs<'_> {
    match op {
        Op::Scan {
            body,
            consts,
            carries,
            length,
            reverse,
            checkpoint,
            ..
        } => Attrs {
            body,
            consts: *consts,
            carries: *carries,
            length: *length,
            reverse: *reverse,
            checkpoint: *checkpoint,
        },
        other => panic!("internal: scan AD on {}", other.name()),
    }
}

/// Emits the forward scan of `op` on `args` storing what the adjoint needs (`needs[i]`: operand
/// `i` wants a cotangent). Returns the value that stands for the original scan's result.
pub(super) fn forward<'b>(
    b: &'b Builder,
    op: &Op,
    args: Vec<Var<'b>>,
    needs: &[bool],
) -> Result<(Var<'b>, Tape<'b>), AdError> {
    let a = attrs(op);
    let body = a.body.func();
    let shape = ScanShape::new(body, None, a.consts, a.carries, a.length, args.len())
        .map_err(|e| internal(body, e))?;
    let wrt: Vec<usize> = (0..body.params.len())
        .filter(|&i| (i >= shape.carry_start() && i < shape.xs_start()) || needs[i])
        .collect();
    let keep: Vec<usize> = (0..body.results.len()).collect();
    let name = format!("{}.vjp", body.name);
    let vjp = finish(transform(body, name, &wrt, Seed::Params, &keep)?)?;
    // Residuals are found once; `auto` weighs them, `all` stores them.
    let all = matches!(a.checkpoint, Checkpoint::All | Checkpoint::Auto)
        .then(|| residuals(&vjp, &shape))
        .unwrap_or_default();
    let policy = match a.checkpoint {
        Checkpoint::Binomial(s) if !a.reverse => Policy::Replay(s),
        Checkpoint::Binomial(_) | Checkpoint::Carry => Policy::Carry,
        Checkpoint::All => Policy::All,
        Checkpoint::Auto => {
            let per_step: usize = all.iter().map(|&v| vjp.value_type(v).numel()).sum();
            let bytes = (per_step as u64) * 8 * u64::from(a.length);
            if bytes <= AUTO_ALL_BYTES {
                Policy::All
            } else {
                Policy::Carry
            }
        }
    };
    let stored: Vec<Value> = match policy {
        Policy::All => all,
        Policy::Carry => (shape.carry_start()..shape.xs_start())
            .map(|i| vjp.param_value(i))
            .collect(),
        Policy::Replay(_) => Vec::new(),
    };
    super::limits::stored_fit(&vjp, &stored, a.length)?;
    let fwd = if stored.is_empty() {
        a.body.clone()
    } else {
        Body::new(forward_body(body, &vjp, &stored)?)
    };
    let opts = ScanOptions::new(&body.name, a.length as usize)
        .reverse(a.reverse)
        .checkpoint(a.checkpoint);
    let out = b
        .try_scan_func(fwd, shape.consts, shape.carries, &args, &opts)
        .map_err(|e| internal(body, e.message))?;
    let total = shape.parts().map_err(|e| internal(body, e))?.1;
    let value = if stored.is_empty() {
        out.packed
    } else {
        out.packed.slice(&[0], &[total])
    };
    let stacks = out.ys[shape.ys..].to_vec();
    let replay = match policy {
        Policy::Replay(s) => Some(s),
        Policy::All | Policy::Carry => None,
    };
    let tape = Tape {
        body: a.body.clone(),
        vjp,
        wrt,
        shape,
        reverse: a.reverse,
        checkpoint: a.checkpoint,
        args,
        replay,
        stored,
        stacks,
    };
    Ok((value, tape))
}

#[derive(Clone, Copy)]
enum Policy {
    All,
    Carry,
    Replay(u32),
}

fn internal(body: &Func, message: String) -> AdError {
    AdError::Internal(crate::ir::VerifyError {
        func: body.name.clone(),
        issues: vec![crate::ir::verify::VerifyIssue {
            inst: None,
            line: String::new(),
            message: format!("scan adjoint: {message}"),
        }],
    })
}

/// Which of the VJP's values depend on the values `roots` marks (a forward pass).
fn depends(v: &Func, roots: impl Fn(usize) -> bool) -> Vec<bool> {
    let np = v.params.len();
    let mut dep: Vec<bool> = (0..v.num_values()).map(|i| i < np && roots(i)).collect();
    for (k, inst) in v.insts.iter().enumerate() {
        dep[np + k] = inst.args.iter().any(|a| dep[a.index()]);
    }
    dep
}

/// The step-varying primal values the adjoint instructions read, for `all`: f64 values are
/// stored; a bool one is recomputed from its operands; values of the consts alone are
/// recomputed. Body parameters among them: carries are stored, consts and xs are at hand.
fn residuals(v: &Func, s: &ScanShape) -> Vec<Value> {
    let nb = s.xs_start() + s.xs;
    let adjoint = depends(v, |i| i >= nb);
    let varying = depends(v, |i| i >= s.carry_start() && i < nb);
    let mut stack: Vec<Value> = Vec::new();
    for (k, inst) in v.insts.iter().enumerate() {
        if adjoint[v.inst_value(k).index()] {
            stack.extend(inst.args.iter().filter(|a| !adjoint[a.index()]));
        }
    }
    let nr = s.carries + s.ys;
    stack.extend(v.results[nr..].iter().filter(|r| !adjoint[r.index()]));
    let mut seen = vec![false; v.num_values()];
    let mut stored = Vec::new();
    while let Some(p) = stack.pop() {
        if std::mem::replace(&mut seen[p.index()], true) || !varying[p.index()] {
            continue;
        }
        let is_xs = p.index() >= s.xs_start() && p.index() < nb;
        if is_xs {
            continue;
        }
        match v.def(p) {
            crate::ir::Def::Inst(k) if v.insts[k].ty.dtype != crate::ir::DType::F64 => {
                stack.extend(v.insts[k].args.iter().copied());
            }
            crate::ir::Def::Inst(_) | crate::ir::Def::Param(_) => stored.push(p),
        }
    }
    stored.sort_unstable();
    stored
}

/// The forward body: the body's results, then the `stored` values of the VJP.
fn forward_body(body: &Func, vjp: &Func, stored: &[Value]) -> Result<Func, AdError> {
    let fb = simplifying_builder(format!("{}.fwd", body.name), vjp.insts.len());
    let mut map = HashMap::new();
    for (i, p) in body.params.iter().enumerate() {
        let v = fb.param_with(&p.name, p.ty, Role::Wrt, None).value();
        map.insert(vjp.param_value(i), v);
    }
    let wanted: Vec<Value> = vjp.results[..body.results.len()]
        .iter()
        .chain(stored)
        .copied()
        .collect();
    let outs = emit_needed(&fb, vjp, &mut map, &wanted);
    finish(fb.finish_unverified(&outs))
}

/// Emits into `b` the instructions of `f` that `outputs` need, reading the values `map` already
/// maps (in `b`) instead of computing them; returns the outputs' values in `b`.
fn emit_needed(
    b: &Builder,
    f: &Func,
    map: &mut HashMap<Value, Value>,
    outputs: &[Value],
) -> Vec<Value> {
    let np = f.params.len();
    let mut needed = vec![false; f.num_values()];
    for &o in outputs {
        needed[o.index()] = true;
    }
    for k in (0..f.insts.len()).rev() {
        let v = f.inst_value(k);
        if needed[v.index()] && !map.contains_key(&v) {
            for a in f.insts[k].args.iter() {
                needed[a.index()] = true;
            }
        }
    }
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        if !needed[np + k] || map.contains_key(&v) {
            continue;
        }
        let args: Vec<Value> = inst.args.iter().map(|a| map[a]).collect();
        map.insert(v, b.op(inst.op.clone(), &args).value());
    }
    outputs.iter().map(|o| map[o]).collect()
}

/// The cotangents of the scan's operands, given the cotangent `g` of its packed result.
pub(super) fn adjoint<'b>(
    b: &'b Builder,
    t: &Tape<'b>,
    g: Var<'b>,
) -> Result<Vec<Option<Cotangent<'b>>>, AdError> {
    let s = &t.shape;
    let body = t.body.func();
    let (parts, _) = s.parts().map_err(|e| internal(body, e))?;
    let part = |j: usize| piece(b, g, parts[j].0, parts[j].1);
    let ct_final: Vec<Var<'b>> = (0..s.carries)
        .map(|j| part(j).unwrap_or_else(|| b.splat(0.0, &parts[j].1.shape.to_vec())))
        .collect();
    let ct_ys: Vec<Option<Var<'b>>> = (0..s.ys).map(|j| part(s.carries + j)).collect();
    let consts: Vec<usize> = t.wrt.iter().copied().filter(|&i| i < s.consts).collect();
    let xs: Vec<usize> = t
        .wrt
        .iter()
        .copied()
        .filter(|&i| i >= s.xs_start())
        .collect();
    let g_body = adjoint_body(t, &ct_ys, &consts, &xs)?;
    let mut operands: Vec<Value> = t.args[..s.consts].iter().map(|v| v.value()).collect();
    if t.replay.is_some() {
        operands.extend(
            t.args[s.carry_start()..s.xs_start()]
                .iter()
                .map(|v| v.value()),
        );
    }
    operands.extend(ct_final.iter().map(|v| v.value()));
    for &i in &consts {
        operands.push(b.splat(0.0, &t.args[i].shape()).value());
    }
    operands.extend(t.args[s.xs_start()..].iter().map(|v| v.value()));
    operands.extend(t.stacks.iter().map(|v| v.value()));
    operands.extend(ct_ys.iter().flatten().map(|v| v.value()));
    let op = Op::Scan {
        body: Body::new(g_body),
        replay: match t.replay {
            Some(_) => Some(Body::new(replay_body(body, s)?)),
            None => None,
        },
        consts: s.consts as u32,
        carries: (s.carries + consts.len()) as u32,
        length: s.length as u32,
        reverse: !t.reverse,
        checkpoint: t.replay.map_or(t.checkpoint, Checkpoint::Binomial),
    };
    let packed = b
        .try_op(op, &operands)
        .map_err(|e| internal(body, e.message))?;
    let out: ScanOut<'b> = b.unpack_scan(packed);
    let mut cts: Vec<Option<Cotangent<'b>>> = vec![None; t.args.len()];
    for j in 0..s.carries {
        cts[s.carry_start() + j] = Some(Cotangent::Dense(out.carries[j]));
    }
    for (n, &i) in consts.iter().enumerate() {
        cts[i] = Some(Cotangent::Dense(out.carries[s.carries + n]));
    }
    for (n, &i) in xs.iter().enumerate() {
        cts[i] = Some(Cotangent::Dense(out.ys[n]));
    }
    Ok(cts)
}

/// Elements `off..off + ty.numel()` of the packed cotangent `g`, shaped `ty`, or `None` where
/// they are known zeros. Looks through the concat the transform assembles placed pieces into.
fn piece<'b>(b: &'b Builder, g: Var<'b>, off: usize, ty: Type) -> Option<Var<'b>> {
    let (mut g, mut off) = (g, off);
    let n = ty.numel();
    loop {
        if let Some(lit) = b.literal(g.value()) {
            if lit.as_splat() == Some(0.0) {
                return None;
            }
        }
        let Some((Op::Concat { .. }, _)) = b.definition(g.value()) else {
            break;
        };
        let mut at = 0;
        let mut inner = None;
        for p in b.operands(g.value()) {
            let len = b.type_of(p).numel();
            if off >= at && off + n <= at + len {
                inner = Some((b.var(p), off - at));
            }
            at += len;
        }
        let Some((p, o)) = inner else { break };
        (g, off) = (p, o);
    }
    let flat = g.slice(&[off], &[off + n]);
    Some(flat.reshape(&ty.shape.to_vec()))
}

/// The adjoint body: parameters `[consts][replay carries][carry cotangents, const accumulators]
/// [xs][stored][nonzero ys cotangents]`; results: the carry cotangents before the step, the
/// accumulators plus this step's const cotangents, and the cotangents of the active xs.
fn adjoint_body(
    t: &Tape<'_>,
    ct_ys: &[Option<Var<'_>>],
    consts: &[usize],
    xs: &[usize],
) -> Result<Func, AdError> {
    let s = &t.shape;
    let body = t.body.func();
    let v = &t.vjp;
    let nb = body.params.len();
    let gb = simplifying_builder(format!("{}.adj", body.name), v.insts.len());
    let mut map: HashMap<Value, Value> = HashMap::new();
    // New parameters get names no body parameter has (bodies may be adjoints themselves).
    let fresh = std::cell::RefCell::new(super::FreshNames(
        body.params.iter().map(|p| p.name.clone()).collect(),
    ));
    let param = |name: String, ty: Type| gb.param_with(&name, ty, Role::Wrt, None).value();
    let new_param = |base: String, ty: Type| param(fresh.borrow_mut().get(&base), ty);
    for i in 0..s.consts {
        map.insert(
            v.param_value(i),
            param(body.params[i].name.clone(), body.params[i].ty),
        );
    }
    if t.replay.is_some() {
        for i in s.carry_start()..s.xs_start() {
            let p = &body.params[i];
            map.insert(v.param_value(i), param(p.name.clone(), p.ty));
        }
    }
    for j in 0..s.carries {
        let ty = body.params[s.carry_start() + j].ty;
        map.insert(v.param_value(nb + j), new_param(format!("ct_h{j}"), ty));
    }
    let accs: Vec<Value> = consts
        .iter()
        .map(|&i| new_param(format!("acc_{}", body.params[i].name), body.params[i].ty))
        .collect();
    for i in s.xs_start()..nb {
        map.insert(
            v.param_value(i),
            param(body.params[i].name.clone(), body.params[i].ty),
        );
    }
    for (n, &r) in t.stored.iter().enumerate() {
        map.insert(r, new_param(format!("r{n}"), v.value_type(r)));
    }
    for (j, ct) in ct_ys.iter().enumerate() {
        if ct.is_some() {
            let value = new_param(format!("ct_y{j}"), s.y_types[j]);
            map.insert(v.param_value(nb + s.carries + j), value);
        }
    }
    // Zero cotangents are constants, made after the last parameter.
    for (j, ct) in ct_ys.iter().enumerate() {
        if ct.is_none() {
            let zero = gb.splat(0.0, &s.y_types[j].shape.to_vec()).value();
            map.insert(v.param_value(nb + s.carries + j), zero);
        }
    }
    let nr = body.results.len();
    let outs = emit_needed(&gb, v, &mut map, &v.results[nr..]);
    let ct_of = |i: usize| outs[t.wrt.iter().position(|&w| w == i).expect("in wrt")];
    let mut results: Vec<Value> = (s.carry_start()..s.xs_start()).map(ct_of).collect();
    for (n, &i) in consts.iter().enumerate() {
        results.push((gb.var(accs[n]) + gb.var(ct_of(i))).value());
    }
    results.extend(xs.iter().map(|&i| ct_of(i)));
    finish(gb.finish_unverified(&results))
}

/// The replay step of a `binomial` adjoint: the body's new carries only.
fn replay_body(body: &Func, s: &ScanShape) -> Result<Func, AdError> {
    let rb = simplifying_builder(format!("{}.replay", body.name), body.insts.len());
    let mut map = HashMap::new();
    for (i, p) in body.params.iter().enumerate() {
        map.insert(
            body.param_value(i),
            rb.param_with(&p.name, p.ty, Role::Wrt, None).value(),
        );
    }
    let outs = emit_needed(&rb, body, &mut map, &body.results[..s.carries]);
    finish(rb.finish_unverified(&outs))
}

/// `f` with every replay scan that depends on an input in `wrt` written as two ordinary scans:
/// the trajectory (a scan of the replay step that also returns the carry it was given) and the
/// body over it. `None` if there is none.
pub(super) fn expand_replays(f: &Func, wrt: &[usize]) -> Result<Option<Func>, AdError> {
    let mut active = vec![false; f.num_values()];
    for &i in wrt {
        active[i] = true;
    }
    let mut any = false;
    for (k, inst) in f.insts.iter().enumerate() {
        let on = inst.args.iter().any(|a| active[a.index()]);
        active[f.inst_value(k).index()] = on;
        any |= on
            && matches!(
                inst.op,
                Op::Scan {
                    replay: Some(_),
                    ..
                }
            );
    }
    if !any {
        return Ok(None);
    }
    let b = Builder::new(f.name.clone());
    let mut map: Vec<Value> = f
        .params
        .iter()
        .map(|p| b.param_with(&p.name, p.ty, p.role, p.init).value())
        .collect();
    for (k, inst) in f.insts.iter().enumerate() {
        let args: Vec<Var<'_>> = inst.args.iter().map(|a| b.var(map[a.index()])).collect();
        let v = match &inst.op {
            Op::Scan {
                replay: Some(r), ..
            } if active[f.inst_value(k).index()] => expand_one(&b, &inst.op, r, &args)?,
            _ => {
                let vals: Vec<Value> = args.iter().map(|a| a.value()).collect();
                b.op(inst.op.clone(), &vals).value()
            }
        };
        if let Some(n) = &inst.name {
            b.name_if_unnamed(v, n);
        }
        map.push(v);
    }
    let results: Vec<Value> = f.results.iter().map(|r| map[r.index()]).collect();
    Ok(Some(b.finish_unverified(&results)))
}

/// One replay scan as a trajectory scan and an ordinary scan of the body over it.
fn expand_one<'b>(
    b: &'b Builder,
    op: &Op,
    replay: &Body,
    args: &[Var<'b>],
) -> Result<Value, AdError> {
    let a = attrs(op);
    let body = a.body.func();
    let r = replay.func();
    let s = ScanShape::new(body, Some(r), a.consts, a.carries, a.length, args.len())
        .map_err(|e| internal(body, e))?;
    // The trajectory: carries r_i, returning r_i as a per-step output (forward in time).
    let traj_body = {
        let tb = Builder::new(format!("{}.traj", r.name));
        let mut map = HashMap::new();
        for (i, p) in r.params.iter().enumerate() {
            map.insert(
                r.param_value(i),
                tb.param_with(&p.name, p.ty, Role::Wrt, None).value(),
            );
        }
        let mut outs = emit_needed(&tb, r, &mut map, &r.results);
        outs.extend((s.consts..s.consts + s.replays).map(|i| map[&r.param_value(i)]));
        finish(tb.finish_unverified(&outs))?
    };
    let n_rx = r.params.len() - s.consts - s.replays;
    let mut traj_args: Vec<Var<'b>> = args[..s.carry_start()].to_vec();
    traj_args.extend(&args[s.xs_start()..s.xs_start() + n_rx]);
    let traj_opts = ScanOptions::new(&r.name, s.length).checkpoint(a.checkpoint);
    let traj = b
        .try_scan_func(
            Body::new(traj_body),
            s.consts,
            s.replays,
            &traj_args,
            &traj_opts,
        )
        .map_err(|e| internal(body, e.message))?;
    // The body with its replay carries moved to the end of its xs.
    let moved = {
        let mb = Builder::new(format!("{}.over", body.name));
        let order: Vec<usize> = (0..s.consts)
            .chain(s.carry_start()..body.params.len())
            .chain(s.consts..s.carry_start())
            .collect();
        let mut map = HashMap::new();
        for &i in &order {
            let p = &body.params[i];
            map.insert(
                body.param_value(i),
                mb.param_with(&p.name, p.ty, Role::Wrt, None).value(),
            );
        }
        let outs = emit_needed(&mb, body, &mut map, &body.results);
        finish(mb.finish_unverified(&outs))?
    };
    let mut main_args: Vec<Var<'b>> = args[..s.consts].to_vec();
    main_args.extend(&args[s.carry_start()..]);
    main_args.extend(&traj.ys);
    let opts = ScanOptions::new(&body.name, s.length)
        .reverse(a.reverse)
        .checkpoint(a.checkpoint);
    let out = b
        .try_scan_func(Body::new(moved), s.consts, s.carries, &main_args, &opts)
        .map_err(|e| internal(body, e.message))?;
    Ok(out.packed.value())
}
