//! The limits a transform's values must stay within (`MAX_RANK` axes, `MAX_ELEMENTS`
//! elements), checked before building so that a function whose derivative would pass them gets
//! `AdError::TooLarge`, naming the value, rather than a failure inside the builder: vector
//! mode's directions axis in front of every value and beside the steps a scan stacks its
//! per-step outputs along, and the residuals a scan's adjoint stores per step.

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
        let (name, k_dirs) = (label(f, v), directions(k));
        let what = || format!("value '{name}' ({t}) with an axis of {k_dirs} in front");
        fits(&f.name, what, t.rank() + 1, t.numel().saturating_mul(k))?;
    }
    for inst in &f.insts {
        if let Op::Scan { body, .. } = &inst.op {
            fits_vector(body.func(), k)?;
        }
    }
    scan_outputs_fit(f, k)
}

/// Checks that the per-step outputs the scans of `f` (not of their bodies: `fits_vector`
/// recurses) stack along their steps fit a value with `k` directions beside the steps.
fn scan_outputs_fit(f: &Func, k: usize) -> Result<(), AdError> {
    for inst in &f.insts {
        let Op::Scan {
            body,
            length,
            carries,
            ..
        } = &inst.op
        else {
            continue;
        };
        let b = body.func();
        for &v in &b.results[*carries as usize..] {
            let t = b.value_type(v);
            let (name, k_dirs) = (label(b, v), directions(k));
            let what = || {
                format!(
                    "value '{name}' ({t}) of @{}, stacked over {length} steps with {k_dirs}",
                    b.name
                )
            };
            let numel = t.numel().saturating_mul(*length as usize).saturating_mul(k);
            fits(&f.name, what, t.rank() + 2, numel)?;
        }
    }
    Ok(())
}

/// Checks that each of `values` of a scan body `body`, stored at each of `length` steps (the
/// residuals its adjoint reads), fits a value.
pub(super) fn stored_fit(body: &Func, values: &[Value], length: u32) -> Result<(), AdError> {
    for &v in values {
        let t = body.value_type(v);
        let name = label(body, v);
        let what = || {
            format!(
                "value '{name}' ({t}) of @{}, stored at each of {length} steps",
                body.name
            )
        };
        fits(
            &body.name,
            what,
            t.rank() + 1,
            t.numel().saturating_mul(length as usize),
        )?;
    }
    Ok(())
}

/// A value's name as messages give it: its own, else `v<n>`.
fn label(f: &Func, v: Value) -> String {
    f.value_name(v).map_or_else(|| v.to_string(), String::from)
}

/// "1 direction" or "k directions".
fn directions(k: usize) -> String {
    format!("{k} direction{}", if k == 1 { "" } else { "s" })
}
