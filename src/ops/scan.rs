//! The shape rule of `scan`: operand groups and types against the body (and the replay step),
//! and the packed result type (`crate::ir::scan`). Running a scan belongs to the executors;
//! its adjoint, which changes what the forward scan stores, to `crate::ad`.

use super::{refuse, ShapeError};
use crate::ir::{DType, Func, Op, ScanShape, Type};

/// The packed result type of `op` (a scan) on operands of types `args`.
pub fn shape(op: &Op, args: &[Type]) -> Result<Type, ShapeError> {
    let fail = |why: String| refuse(op, args, why);
    let s = ScanShape::of(op, args.len()).map_err(fail)?;
    let Op::Scan {
        body,
        replay,
        reverse,
        ..
    } = op
    else {
        return Err(fail("not a scan".into()));
    };
    let replay = replay.as_ref().map(|r| r.func());
    let body = body.func();
    if let Some(t) = args.iter().find(|t| t.dtype != DType::F64) {
        return Err(fail(format!("every operand of a scan is f64, not {t}")));
    }
    for (i, (&arg, p)) in args.iter().zip(&body.params).enumerate() {
        let want = if i >= s.xs_start() {
            s.stacked(p.ty).map_err(fail)?
        } else {
            p.ty
        };
        if arg != want {
            let group = group_name(&s, i);
            return Err(fail(format!(
                "operand {i} ({group}) is {arg}, but body @{} takes '{}: {}'{}",
                body.name,
                p.name,
                p.ty,
                if i >= s.xs_start() {
                    format!(", so the operand must be {want} (length {})", s.length)
                } else {
                    String::new()
                }
            )));
        }
    }
    for (j, &r) in body.results.iter().enumerate() {
        let t = body.value_type(r);
        if t.dtype != DType::F64 {
            return Err(fail(format!(
                "body @{} returns {t}: results are f64",
                body.name
            )));
        }
        if j < s.carries && t != s.carry_types[j] {
            return Err(fail(format!(
                "body @{} returns {t} for carry {j}, which it takes as {}",
                body.name, s.carry_types[j]
            )));
        }
    }
    if let Some(r) = replay {
        if !reverse {
            return Err(fail("a scan with a replay step runs in reverse".into()));
        }
        replay_problem(&s, r, body).map_err(fail)?;
    }
    s.result_type().map_err(fail)
}

fn group_name(s: &ScanShape, i: usize) -> &'static str {
    if i < s.consts {
        "a const"
    } else if i < s.carry_start() {
        "a replay carry"
    } else if i < s.xs_start() {
        "a carry"
    } else {
        "an xs"
    }
}

/// The replay step takes `(consts, replay carries, some leading xs)` of the body's types and
/// returns the replay carries.
fn replay_problem(s: &ScanShape, r: &Func, body: &Func) -> Result<(), String> {
    let fixed = s.consts + s.replays;
    if r.params.len() < fixed || r.params.len() - fixed > s.xs {
        return Err(format!(
            "replay @{} takes {} parameters: it must take the {} consts, {} replay carries and \
             at most the {} xs",
            r.name,
            r.params.len(),
            s.consts,
            s.replays,
            s.xs
        ));
    }
    for (i, p) in r.params.iter().enumerate() {
        let at = if i < fixed {
            i
        } else {
            s.xs_start() + i - fixed
        };
        let want = body.params[at].ty;
        if p.ty != want {
            return Err(format!(
                "replay @{} takes '{}: {}' where body @{} takes {want}",
                r.name, p.name, p.ty, body.name
            ));
        }
    }
    for (j, &v) in r.results.iter().enumerate() {
        let t = r.value_type(v);
        if t != r.params[s.consts + j].ty {
            return Err(format!(
                "replay @{} returns {t} for replay carry {j}, which it takes as {}",
                r.name,
                r.params[s.consts + j].ty
            ));
        }
    }
    Ok(())
}
