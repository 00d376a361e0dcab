//! `adjit bench --batch SETS`: one batch call (`adjit::batch`) of SETS compiled f+grad
//! evaluations, set `i` the seeded default inputs of seed `i`, timed on each thread count asked
//! for, beside SETS sequential calls on one workspace; the results of every thread count are
//! checked bit for bit against the sequential calls'.

use super::measure::{human, time, BenchError, Budget, Timing};
use super::{CliError, CliResult};
use adjit::batch::Batch;
use adjit::call::try_outputs;
use adjit::jit::{self, Compiled};
use adjit::{ad, ir};
use serde_json::{json, Value as Json};

/// What `--batch` reports for one model.
pub struct BatchReport {
    pub model: String,
    pub sets: usize,
    /// SETS sequential calls on one thread.
    pub sequential: Timing,
    /// Per thread count, one batch call of SETS sets.
    pub batches: Vec<(usize, Timing)>,
}

impl BatchReport {
    /// The batch call's speed-up on `threads` threads over the batch call on the first count.
    fn speedup(&self, k: usize) -> f64 {
        self.batches[0].1.median / self.batches[k].1.median
    }
}

/// The inputs of `sets` sets in the flat layout: per parameter, the sets' values one after
/// another.
fn flat_inputs(g: &ir::Func, sets: usize) -> Result<Vec<Vec<f64>>, BenchError> {
    let per_set = (0..sets as u64)
        .map(|i| adjit::inputs::try_defaults(g, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BenchError::Alloc)?;
    Ok((0..g.params.len())
        .map(|k| per_set.iter().flat_map(|s| s[k].iter().copied()).collect())
        .collect())
}

/// SETS sequential calls: their time, and their results in the flat layout.
fn sequential(
    c: &Compiled,
    flat: &[Vec<f64>],
    sets: usize,
    budget: Budget,
) -> Result<(Timing, Vec<Vec<f64>>), BenchError> {
    let sig = c.signature();
    let in_n: Vec<usize> = sig.inputs.iter().map(|(_, t)| t.numel()).collect();
    let per_set: Vec<Vec<&[f64]>> = (0..sets)
        .map(|i| {
            flat.iter()
                .zip(&in_n)
                .map(|(x, n)| &x[i * n..(i + 1) * n])
                .collect()
        })
        .collect();
    let mut ws = c.try_workspace().map_err(BenchError::Alloc)?;
    let mut outs = try_outputs(&sig.name, &sig.outputs).map_err(BenchError::Alloc)?;
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); outs.len()];
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    let mut run = |keep: bool| {
        for ins in &per_set {
            c.call(&mut ws, std::hint::black_box(ins), &mut refs)
                .expect("buffers match the signature");
            if keep {
                results
                    .iter_mut()
                    .zip(&refs)
                    .for_each(|(r, o)| r.extend(&**o));
            }
        }
    };
    run(true);
    let t = time(budget, || run(false));
    Ok((t, results))
}

/// Measures one model (one scalar result) given as `.ir` text.
pub fn measure(
    model: &str,
    text: &str,
    sets: usize,
    threads: &[usize],
    budget: Budget,
) -> CliResult<BatchReport> {
    let fail = |e: BenchError| CliError(format!("{model}: {e}"));
    let f = ir::parse(text).map_err(|e| fail(BenchError::Parse(e)))?;
    let g = ad::grad(&f, None).map_err(|e| fail(BenchError::Ad(e)))?;
    let c = jit::compile(&g).map_err(|e| fail(BenchError::Jit(e)))?;
    let flat = flat_inputs(&g, sets).map_err(fail)?;
    let (seq, want) = sequential(&c, &flat, sets, budget).map_err(fail)?;
    let ins: Vec<&[f64]> = flat.iter().map(Vec::as_slice).collect();
    let mut batches = Vec::new();
    for &n in threads {
        let batch = Batch::new(&c, n).map_err(|e| CliError(format!("{model}: {e}")))?;
        let mut outs = batch
            .try_outputs(sets)
            .map_err(|e| fail(BenchError::Alloc(e)))?;
        let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        let mut call = || {
            batch
                .call(sets, std::hint::black_box(&ins), &mut refs)
                .expect("buffers match the signature");
        };
        call();
        let t = time(budget, call);
        let same = outs
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(CliError(format!(
                "{model}: the batch on {n} threads differs from sequential calls (a bug)"
            )));
        }
        batches.push((n, t));
    }
    Ok(BatchReport {
        model: model.to_string(),
        sets,
        sequential: seq,
        batches,
    })
}

/// The table: per model the sequential time, each thread count's batch time and speed-up.
pub fn table(reports: &[BatchReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}: {} f+grad sets, compiled; results bit-equal to sequential calls on every \
             thread count\n  sequential calls  {}\n",
            r.model,
            r.sets,
            human(r.sequential.median)
        ));
        for (k, (n, t)) in r.batches.iter().enumerate() {
            out.push_str(&format!(
                "  batch, {n} thread{}  {}  ({:.2}x over {} thread{}; {:.2}x over sequential)\n",
                if *n == 1 { " " } else { "s" },
                human(t.median),
                r.speedup(k),
                r.batches[0].0,
                if r.batches[0].0 == 1 { "" } else { "s" },
                r.sequential.median / t.median,
            ));
        }
    }
    out.push_str("times are medians per batch of all sets\n");
    out
}

pub fn to_json(reports: &[BatchReport]) -> Json {
    Json::Array(
        reports
            .iter()
            .map(|r| {
                json!({
                    "model": r.model,
                    "sets": r.sets,
                    "sequential_s": r.sequential.median,
                    "batches": r.batches.iter().map(|(n, t)| json!({
                        "threads": n,
                        "median_s": t.median,
                        "spread": t.spread,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
