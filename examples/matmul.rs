//! Measures compiled matmuls on the shapes of `mlp`'s f, gradient and hvp (transposed operands
//! included), in GFLOP/s (2 flops per multiply-add), against the peak of what Cranelift emits
//! on x86-64: two-lane (128-bit) vectors, two FMA units, two flops per lane, at the clock
//! `/proc/cpuinfo` reports. Each figure is the median of 41 batches of about 5 ms, workspace
//! reused; the fastest batch is printed beside it (the figure least disturbed by other load).
//! An argument keeps only the shapes whose label contains it.
//!
//! `cargo run --release --example matmul`

use adjit::inputs::defaults;
use adjit::ir::{Builder, Func};
use std::time::Instant;

/// `[m,k] x [k,n]` with the given transposes of the stored operands.
fn product(m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Func {
    let b = Builder::new("mm");
    let sa = if ta { [k, m] } else { [m, k] };
    let sb = if tb { [n, k] } else { [k, n] };
    let x = b.param("a", &sa);
    let y = b.param("b", &sb);
    b.finish(&[x.matmul_t(y, ta, tb)]).expect("verifies")
}

/// Median and fastest seconds per call of `f`, compiled.
fn measure(f: &Func) -> (f64, f64) {
    let c = adjit::jit::compile(f).expect("compiles");
    let inputs = defaults(f, 0);
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let mut out = vec![0.0; c.signature().outputs[0].numel()];
    let mut ws = c.workspace();
    let mut call = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            c.call(&mut ws, &ins, &mut [&mut out]).expect("runs");
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    let once = call(10).max(1e-9);
    let n = ((0.005 / once) as usize).clamp(1, 1_000_000);
    let mut times: Vec<f64> = (0..41).map(|_| call(n)).collect();
    times.sort_by(f64::total_cmp);
    (times[20], times[0])
}

/// The clock in GHz that `/proc/cpuinfo` reports for the first CPU, if it does.
fn clock_ghz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(mhz / 1e3)
}

fn main() {
    let ghz = clock_ghz();
    let peak = ghz.map(|g| 2.0 * 2.0 * 2.0 * g);
    match (ghz, peak) {
        (Some(g), Some(p)) => println!(
            "clock {g:.3} GHz (/proc/cpuinfo); peak 2 lanes x 2 FMA units x 2 flops x clock = \
             {p:.2} GFLOP/s"
        ),
        _ => println!("no clock in /proc/cpuinfo; no peak"),
    }
    // (m, k, n, ta, tb, where mlp computes it)
    let shapes = [
        (32, 64, 128, false, false, "f: X W1"),
        (32, 128, 128, false, false, "f: h1 W2"),
        (32, 128, 1, false, false, "f: h2 W3"),
        (32, 128, 128, false, true, "grad: G W2^T"),
        (128, 32, 128, true, false, "grad: h1^T G"),
        (64, 32, 128, true, false, "grad: X^T G"),
        (32, 1, 128, false, true, "grad: g W3^T"),
        (128, 32, 1, true, false, "grad: h2^T g"),
    ];
    // An argument picks the shapes whose label contains it.
    let only = std::env::args().nth(1).unwrap_or_default();
    let mut total = (0.0, 0.0, 0.0);
    for (m, k, n, ta, tb, what) in shapes.into_iter().filter(|s| s.5.contains(&only)) {
        let (median, fastest) = measure(&product(m, k, n, ta, tb));
        let flops = 2.0 * (m * k * n) as f64;
        let gflops = flops / median / 1e9;
        total = (total.0 + flops, total.1 + median, total.2 + fastest);
        let frac = peak.map_or(String::new(), |p| {
            format!("{:5.1}% of peak", 100.0 * gflops / p)
        });
        println!(
            "{what:14} [{m:3},{k:3}]x[{k:3},{n:3}] ta={ta:5} tb={tb:5} {:9.2} us (fastest {:8.2}) \
             {gflops:6.2} GFLOP/s {frac} (fastest {:6.2} GFLOP/s)",
            median * 1e6,
            fastest * 1e6,
            flops / fastest / 1e9,
        );
    }
    let all = total.0 / total.1 / 1e9;
    let frac = peak.map_or(String::new(), |p| {
        format!("{:5.1}% of peak", 100.0 * all / p)
    });
    let best = total.0 / total.2 / 1e9;
    println!(
        "all shapes, flops over summed medians: {all:.2} GFLOP/s {frac}; over summed fastest: \
         {best:.2} GFLOP/s"
    );
}
