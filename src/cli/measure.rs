//! Measuring models for `adjit bench`: per-call times of f, f+grad and hvp, interpreted and
//! compiled, and the time from text to a callable f+grad. The hvp is the product alone
//! (`ad::hvp_only`), as JAX's `jvp(grad(f))[1]` and hand-written code compute it, in the
//! default mode; the other mode, and the default mode's function that also returns the value
//! and gradient (`ad::hvp`, what `adjit hvp` prints), are timed compiled only.
//!
//! Timing: a warm-up, then repeated batches of calls, each batch sized to take about
//! `Budget::batch` seconds; the per-call time of each batch is one sample. Reported: the median
//! sample and the spread (the ratio of the slowest to the fastest of the middle half of the
//! samples, minus one: 0.05 means the middle half lies within 5%).

use adjit::ad::{self, AdError, HvpMode};
use adjit::call::{try_outputs, AllocError, Executor};
use adjit::interp::Program;
use adjit::ir::{self, Func};
use adjit::jit::{self, Compiled, JitError};
use std::fmt;
use std::time::Instant;

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Warm-up time before the samples.
    pub warmup: f64,
    /// Target duration of one batch.
    pub batch: f64,
    /// Number of batches (samples).
    pub samples: usize,
}

impl Budget {
    /// The default: about 0.6 s per measured function.
    pub const NORMAL: Budget = Budget {
        warmup: 0.05,
        batch: 0.02,
        samples: 25,
    };
    /// `--quick`: about 0.05 s per measured function.
    pub const QUICK: Budget = Budget {
        warmup: 0.005,
        batch: 0.005,
        samples: 7,
    };
}

/// A measured time per call, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub median: f64,
    pub spread: f64,
}

/// Times `call`: warm-up, then `budget.samples` batches.
pub fn time(budget: Budget, mut call: impl FnMut()) -> Timing {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed().as_secs_f64() < budget.warmup || calls == 0 {
        call();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let batch = ((budget.batch / per_call.max(1e-9)) as u64).clamp(1, 1 << 24);
    let mut samples: Vec<f64> = (0..budget.samples.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                call();
            }
            t.elapsed().as_secs_f64() / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = samples[n / 2];
    let (lo, hi) = (samples[n / 4], samples[(3 * n) / 4]);
    Timing {
        median,
        spread: if lo > 0.0 { hi / lo - 1.0 } else { 0.0 },
    }
}

/// Why a model could not be measured.
#[derive(Debug)]
pub enum BenchError {
    Parse(ir::ParseError),
    Verify(ir::VerifyError),
    Ad(AdError),
    Jit(JitError),
    Alloc(AllocError),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Parse(e) => write!(f, "{}:{}: {}", e.line, e.col, e.message),
            BenchError::Verify(e) => e.fmt(f),
            BenchError::Ad(e) => e.fmt(f),
            BenchError::Jit(e) => e.fmt(f),
            BenchError::Alloc(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BenchError {}

/// Everything `adjit bench` reports for one model.
#[derive(Clone, Debug)]
pub struct Report {
    pub model: String,
    pub instructions_f: usize,
    pub instructions_grad: usize,
    pub instructions_hvp: usize,
    /// Text to callable f+grad: parse, verify, differentiate, simplify, compile (median of a few).
    pub compile_s: f64,
    /// The same for the hvp function.
    pub compile_hvp_s: f64,
    pub interp: [Timing; 3],
    pub jit: [Timing; 3],
    /// Bytes of the compiled workspace of f, f+grad and hvp.
    pub workspace_bytes: [u64; 3],
    /// Compiled hvp in each mode (`HvpMode::ALL`'s order; the default's is `jit[2]`).
    pub jit_hvp_modes: [(HvpMode, Timing); 2],
    /// Compiled value, gradient and hvp in one function (`ad::hvp`), in the default mode.
    pub jit_hvp_with_grad: Timing,
}

impl Report {
    /// Compiled f+grad over compiled f.
    pub fn grad_over_f(&self) -> f64 {
        self.jit[1].median / self.jit[0].median
    }

    /// Compiled hvp over compiled f+grad.
    pub fn hvp_over_grad(&self) -> f64 {
        self.jit[2].median / self.jit[1].median
    }

    /// Compiled hvp in `mode` over compiled f+grad.
    pub fn hvp_mode_over_grad(&self, mode: HvpMode) -> f64 {
        let t = self.jit_hvp_modes.iter().find(|(m, _)| *m == mode);
        t.map_or(f64::NAN, |(_, t)| t.median / self.jit[1].median)
    }

    /// Interpreter time over compiled time, for f+grad.
    pub fn speedup(&self) -> f64 {
        self.interp[1].median / self.jit[1].median
    }
}

/// Calls of one function on fixed inputs, with the buffers prepared once.
struct Bound {
    inputs: Vec<Vec<f64>>,
    outputs: Vec<Vec<f64>>,
}

impl Bound {
    fn new(f: &Func, seed: u64) -> Result<Bound, AllocError> {
        Ok(Bound {
            inputs: adjit::inputs::try_defaults(f, seed)?,
            outputs: try_outputs(&f.name, &f.result_types())?,
        })
    }

    /// Times `exec`'s checked call on these buffers (the slice lists are built once, so the
    /// timed calls allocate nothing).
    fn time<E: Executor>(&mut self, exec: &E, budget: Budget) -> Result<Timing, BenchError> {
        let mut ws = exec.try_workspace().map_err(BenchError::Alloc)?;
        let ins: Vec<&[f64]> = self.inputs.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [f64]> = self.outputs.iter_mut().map(Vec::as_mut_slice).collect();
        Ok(time(budget, || {
            exec.call(&mut ws, std::hint::black_box(&ins), &mut outs)
                .expect("buffers match the signature");
        }))
    }
}

/// Text to a callable function: parse, verify, transform (with `make`), compile.
fn compile_from_text(
    text: &str,
    make: fn(&Func) -> Result<Func, AdError>,
) -> Result<(Func, Compiled, f64), BenchError> {
    let start = Instant::now();
    let f = ir::parse(text).map_err(BenchError::Parse)?;
    ir::verify(&f).map_err(BenchError::Verify)?;
    let g = make(&f).map_err(BenchError::Ad)?;
    let c = jit::compile(&g).map_err(BenchError::Jit)?;
    Ok((g, c, start.elapsed().as_secs_f64()))
}

/// The median time from text to callable, over a few repetitions (fewer for slow models).
fn compile_time(
    text: &str,
    make: fn(&Func) -> Result<Func, AdError>,
    quick: bool,
) -> Result<(Func, Compiled, f64), BenchError> {
    let (g, c, first) = compile_from_text(text, make)?;
    let reps = if quick || first > 0.2 {
        1
    } else if first > 0.02 {
        3
    } else {
        7
    };
    let mut times = vec![first];
    for _ in 1..reps {
        times.push(compile_from_text(text, make)?.2);
    }
    times.sort_by(f64::total_cmp);
    Ok((g, c, times[times.len() / 2]))
}

fn grad_of(f: &Func) -> Result<Func, AdError> {
    ad::grad(f, None)
}

fn hvp_of(f: &Func) -> Result<Func, AdError> {
    ad::hvp_only(f, None, HvpMode::DEFAULT)
}

/// The hvp in the mode that is not the default.
fn other_hvp_of(f: &Func) -> Result<Func, AdError> {
    let other = HvpMode::ALL.into_iter().find(|&m| m != HvpMode::DEFAULT);
    ad::hvp_only(f, None, other.unwrap_or(HvpMode::DEFAULT))
}

fn hvp_with_grad_of(f: &Func) -> Result<Func, AdError> {
    ad::hvp(f, None)
}

fn identity(f: &Func) -> Result<Func, AdError> {
    Ok(f.clone())
}

/// Measures one model given as `.ir` text (one scalar result).
pub fn measure(model: &str, text: &str, budget: Budget) -> Result<Report, BenchError> {
    let quick = budget.samples < Budget::NORMAL.samples;
    let f = ir::parse(text).map_err(BenchError::Parse)?;
    let (_, cf, _) = compile_from_text(text, identity)?;
    let (g, cg, compile_s) = compile_time(text, grad_of, quick)?;
    let (h, ch, compile_hvp_s) = compile_time(text, hvp_of, true)?;
    let mut interp = [Timing {
        median: 0.0,
        spread: 0.0,
    }; 3];
    let mut compiled = interp;
    let workspace_bytes = [&cf, &cg, &ch].map(|c| c.workspace_bytes());
    for (k, (func, c)) in [(&f, &cf), (&g, &cg), (&h, &ch)].into_iter().enumerate() {
        let mut bound = Bound::new(func, 0).map_err(BenchError::Alloc)?;
        let prog = Program::new(func).map_err(BenchError::Verify)?;
        interp[k] = bound.time(&prog, budget)?;
        compiled[k] = bound.time(c, budget)?;
    }
    let compiled_only = |make| -> Result<Timing, BenchError> {
        let (o, co, _) = compile_from_text(text, make)?;
        Bound::new(&o, 0)
            .map_err(BenchError::Alloc)?
            .time(&co, budget)
    };
    let other = compiled_only(other_hvp_of)?;
    let jit_hvp_with_grad = compiled_only(hvp_with_grad_of)?;
    let jit_hvp_modes = HvpMode::ALL.map(|m| {
        (
            m,
            if m == HvpMode::DEFAULT {
                compiled[2]
            } else {
                other
            },
        )
    });
    Ok(Report {
        model: model.to_string(),
        instructions_f: f.insts.len(),
        instructions_grad: g.insts.len(),
        instructions_hvp: h.insts.len(),
        compile_s,
        compile_hvp_s,
        interp,
        jit: compiled,
        workspace_bytes,
        jit_hvp_modes,
        jit_hvp_with_grad,
    })
}

/// A duration for tables: `812 ns`, `3.41 us`, `1.20 ms`, `2.5 s`.
pub fn human(seconds: f64) -> String {
    let ns = seconds.max(0.0) * 1e9;
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A size for tables, in binary units as `AllocError` prints them: `0 B`, `1023 B`,
/// `1.5 KiB`, `53.6 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Step up while the value would print as 1024.0 or more.
    while v >= 1023.95 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_is_positive_and_ordered() {
        let mut x = 0u64;
        let t = time(Budget::QUICK, || {
            for i in 0..1000 {
                x = x.wrapping_add(std::hint::black_box(i));
            }
        });
        assert!(t.median > 0.0 && t.spread >= 0.0, "{t:?}");
        assert_eq!(human(1.5e-9), "1.5 ns");
        assert_eq!(human(2.5e-3), "2.50 ms");
    }

    #[test]
    fn byte_sizes_print_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(8), "8 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes((1 << 20) - 1), "1.0 MiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        // As `AllocError` says it: 60000x60000 f64s.
        assert_eq!(human_bytes(60_000 * 60_000 * 8), "26.8 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
