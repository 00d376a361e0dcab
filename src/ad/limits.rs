//! The limits a transform's values must stay within (`MAX_RANK` axes, `MAX_ELEMENTS`
//! elements), checked before building so that a function whose derivative would pass them gets
//! `AdError::TooLarge`, naming the value, rather than a failure inside the builder: vector
//! mode's directions axis in front of every value, and the steps a scan stacks its per-step
//! outputs and, differentiated in reverse, its residuals along.

use super::AdError;
use crate::ir::{Func, Op, Value, MAX_ELEMENTS, MAX_RANK};

/// Checks that a value of `rank` axes and `numel` elements, which `what` describes, can exist.
pub(super) fn fits(
    func: &str,
    what: impl FnOnce() -> String,
    rank: usize,
    numel: usize,
) -> Result<(), AdError> {
    let beyond = if rank > MAX_RANK {
        format!("rank {rank} (at most {MAX_RANK})")
    } else if numel as u64 > MAX_ELEMENTS {
        format!("{numel} elements (at most {MAX_ELEMENTS})")
    } else {
        return Ok(());
    };
    Err(AdError::TooLarge {
        func: func.to_string(),
        what: format!("{}, of {beyond}", what()),
    })
}

/// Checks that every value of `f` (and of the scan bodies it calls) with `k` directions in
/// front fits a value.
pub(super) fn fits_vector(f: &Func, k: usize) -> Result<(), AdError> {
    for v in (0..f.num_values()).map(|i| Value(i as u32)) {
        let t = f.value_type(v);
        let name = f.value_name(v).map_or_else(|| v.to_string(), String::from);
        let s = if k == 1 { "" } else { "s" };
        let what = || format!("value '{name}' ({t}) with an axis of {k} direction{s} in front");
        fits(&f.name, what, t.rank() + 1, t.numel().saturating_mul(k))?;
    }
    for inst in &f.insts {
        if let Op::Scan { body, .. } = &inst.op {
            fits_vector(body.func(), k)?;
        }
    }
    scan_stacks_fit(f, Some(k), false)
}

/// Checks that what the scans of `f` stack along their steps fits a value: the per-step
/// outputs of each body, and in reverse mode (`residuals`) any value of a body, which the
/// adjoint may save per step; in vector mode (`k`) with the directions axis besides. A scan
/// nested in a body is stacked by its own steps and again by the outer scan's.
pub(super) fn scan_stacks_fit(f: &Func, k: Option<usize>, residuals: bool) -> Result<(), AdError> {
    stacks_fit(f, k, residuals, Outer { axes: 0, steps: 1 })
}

/// The stacking the scans around a body add to its values.
#[derive(Clone, Copy)]
struct Outer {
    axes: usize,
    steps: usize,
}

fn stacks_fit(f: &Func, k: Option<usize>, residuals: bool, outer: Outer) -> Result<(), AdError> {
    for inst in &f.insts {
        let Op::Scan {
            body,
            length,
            consts,
            ..
        } = &inst.op
        else {
            continue;
        };
        let b = body.func();
        let here = Outer {
            axes: outer.axes + 1,
            steps: outer.steps.saturating_mul(*length as usize),
        };
        // Every value but the constants (the same at every step) may be saved per step.
        let stacked: Vec<Value> = if residuals {
            (*consts as usize..b.num_values())
                .map(|i| Value(i as u32))
                .collect()
        } else {
            b.results.clone()
        };
        let (extra, wide) = (usize::from(k.is_some()), k.unwrap_or(1));
        for v in stacked {
            let t = b.value_type(v);
            let name = b.value_name(v).map_or_else(|| v.to_string(), String::from);
            let what = || {
                format!(
                    "value '{name}' ({t}) of @{}, stacked over {length} steps",
                    b.name
                )
            };
            let numel = t.numel().saturating_mul(here.steps).saturating_mul(wide);
            fits(&f.name, what, t.rank() + here.axes + extra, numel)?;
        }
        stacks_fit(b, k, residuals, here)?;
    }
    Ok(())
}
