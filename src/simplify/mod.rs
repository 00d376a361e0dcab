//! Simplification: common-subexpression elimination, constant folding, algebraic identities and
//! dead-code elimination, as passes from IR to IR.
//!
//! `simplify` rebuilds a function through a hash-consing `Builder` (CSE), routing every
//! instruction through the rewrite rules of `rules` (folding and identities), then drops what no
//! result needs (`dce`); it repeats while that shrinks the function. Every rule is exact in IEEE
//! arithmetic: a simplified function returns the same bits as the original for every input
//! (NaN payloads aside). The public entry verifies its input first. Knows nothing of Cranelift.

mod batch;
mod rules;

pub use batch::batch_products;

use crate::ir::{verify, Builder, Func, Value, VerifyError};

/// Simplifies `f`: one rewriting pass, then dead-code elimination. The result has the same
/// signature. The rules only look at operands, which the pass has already simplified, so a
/// second pass would change nothing. `f` is verified first: an invalid function (for example
/// one from `Builder::finish_unverified`) is returned as the verifier's error, never a panic.
pub fn simplify(f: &Func) -> Result<Func, VerifyError> {
    verify(f)?;
    Ok(dce(rewrite(f)))
}

/// A builder that simplifies as it goes: every op passes through the rewrite rules, then
/// hash-consing. Transforms that emit through it need only `dce` afterwards.
pub fn simplifying_builder(name: impl Into<String>, capacity: usize) -> Builder {
    Builder::with_rewrite(name, capacity, rules::rewrite)
}

/// One pass of rewriting: every live instruction goes through the rules and the hash-consing
/// builder, in order. `f` must be valid.
fn rewrite(f: &Func) -> Func {
    let live = live_values(f);
    let b = simplifying_builder(f.name.clone(), f.insts.len());
    let mut map: Vec<Value> = Vec::with_capacity(f.num_values());
    for p in &f.params {
        map.push(b.param_with(&p.name, p.ty, p.role, p.init).value());
    }
    let mut args = Vec::new();
    for (k, inst) in f.insts.iter().enumerate() {
        if !live[f.params.len() + k] {
            // Never read: keep the numbering dense with a placeholder that is never used.
            map.push(Value(u32::MAX));
            continue;
        }
        args.clear();
        args.extend(inst.args.iter().map(|a| map[a.index()]));
        let v = b.op(inst.op.clone(), &args).value();
        if let Some(n) = &inst.name {
            b.name_if_unnamed(v, n);
        }
        map.push(v);
    }
    let results: Vec<Value> = f.results.iter().map(|r| map[r.index()]).collect();
    b.finish_unverified(&results)
}

/// Which values a result depends on (parameters always count as live).
fn live_values(f: &Func) -> Vec<bool> {
    let np = f.params.len();
    let mut live = vec![false; f.num_values()];
    live[..np].fill(true);
    for &r in &f.results {
        live[r.index()] = true;
    }
    for k in (0..f.insts.len()).rev() {
        if live[np + k] {
            for &a in f.insts[k].args.iter() {
                live[a.index()] = true;
            }
        }
    }
    live
}

/// Dead-code elimination: drops instructions no result depends on, renumbering the rest
/// (in place: instructions are moved, not copied). `f` must be valid: the transforms call it on
/// their own output.
pub(crate) fn dce(mut f: Func) -> Func {
    let live = live_values(&f);
    let np = f.params.len();
    let mut map: Vec<u32> = (0..np as u32).collect();
    let mut next = np as u32;
    for k in 0..f.insts.len() {
        if live[np + k] {
            map.push(next);
            next += 1;
        } else {
            map.push(u32::MAX);
        }
    }
    let mut k = 0;
    f.insts.retain_mut(|inst| {
        let keep = live[np + k];
        k += 1;
        if keep {
            for a in inst.args.iter_mut() {
                *a = Value(map[a.index()]);
            }
        }
        keep
    });
    for r in f.results.iter_mut() {
        *r = Value(map[r.index()]);
    }
    f
}
