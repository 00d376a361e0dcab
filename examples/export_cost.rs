//! What `adjit export` costs (issue 12's targets), measured on this machine:
//! - the time to export each shipped model's f and grad (`Jit::export`, object and header; the
//!   median of 5, transform excluded, and separately with the transform);
//! - the time per call of `tiny`'s gradient through the exported C function (a C program built
//!   by the system compiler, `examples/c/bench_call.c`) against the JIT's `call_unchecked`,
//!   both timed the same way, in turns (5 rounds of 3 runs of 5,000,000 calls each): the
//!   fastest run of each.
//!
//! `cargo run --release --example export_cost`

use adjit::ad;
use adjit::ir::Func;
use adjit::jit::export::Entry;
use adjit::jit::Jit;
use adjit::models;
use std::process::Command;
use std::time::Instant;

const CALLS: usize = 5_000_000;
const RUNS: usize = 3;
const ROUNDS: usize = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median seconds to export `f` and its gradient, without and with computing the gradient, and
/// to compile both with the JIT.
fn export_time(f: &Func) -> (f64, f64, f64) {
    let jit = Jit::default();
    let mut bare = Vec::new();
    let mut total = Vec::new();
    let mut compile = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let g = ad::grad(f, None).expect("differentiates");
        let transform = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let c = (
            jit.compile(f).expect("compiles"),
            jit.compile(&g).expect("compiles"),
        );
        compile.push(t1.elapsed().as_secs_f64());
        drop(c);
        let entries = [
            Entry {
                name: "f".into(),
                func: f,
                outputs: vec!["value".into()],
            },
            Entry {
                name: "f_grad".into(),
                func: &g,
                outputs: (0..g.results.len()).map(|i| format!("r{i}")).collect(),
            },
        ];
        let t2 = Instant::now();
        jit.export("f", &entries, None).expect("exports");
        let export = t2.elapsed().as_secs_f64();
        bare.push(export);
        total.push(export + transform);
    }
    (median(bare), median(total), median(compile))
}

/// Nanoseconds per call of the JIT's `tiny` gradient through `call_unchecked`.
fn jit_call_ns() -> f64 {
    let g = ad::grad(&models::tiny(), None).unwrap();
    let c = adjit::jit::compile(&g).unwrap();
    let mut ws = c.workspace();
    let x = [0.3, 0.7];
    let (mut y, mut gr) = (0.0, [0.0; 2]);
    let ins = [x.as_ptr()];
    let outs = [&mut y as *mut f64, gr.as_mut_ptr()];
    let mut best = f64::INFINITY;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        for _ in 0..CALLS {
            // SAFETY: the pointers are to buffers of the signature's sizes (x: 2, value: 1,
            // grad: 2), which do not overlap, and `ws` is this function's workspace.
            unsafe { c.call_unchecked(&mut ws, std::hint::black_box(&ins), &outs) };
        }
        best = best.min(t0.elapsed().as_secs_f64() * 1e9 / CALLS as f64);
    }
    std::hint::black_box((y, gr));
    best
}

/// Builds the C program that times the exported `tiny_grad`; returns its path.
fn build_c_bench() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("adjit-export-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let f = models::tiny();
    let g = ad::grad(&f, None).unwrap();
    let entries = [Entry {
        name: "tiny_grad".into(),
        func: &g,
        outputs: vec!["value".into(), "grad_x".into()],
    }];
    let out = Jit::default()
        .export("tiny", &entries, None)
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tiny.o"), out.object).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tiny.h"), out.header).map_err(|e| e.to_string())?;
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/c/bench_call.c");
    let exe = dir.join("bench_call");
    let status = Command::new("cc")
        .args(["-O2", "-I"])
        .arg(&dir)
        .arg(src)
        .arg(dir.join("tiny.o"))
        .args(["-lm", "-o"])
        .arg(&exe)
        .status()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !status.success() {
        return Err("cc failed".into());
    }
    Ok(exe)
}

/// Nanoseconds per call of the exported `tiny_grad`: the fastest of `RUNS` runs of the C
/// program `exe`.
fn c_call_ns(exe: &std::path::Path) -> Result<f64, String> {
    let run = Command::new(exe)
        .args([CALLS.to_string(), RUNS.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&run.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("bench_call printed no number: {e}"))
}

fn main() {
    println!(
        "f and grad, median of 5 (ms): export | export with the gradient transform | JIT compile"
    );
    for m in models::ALL.iter().filter(|m| m.scalar()) {
        let (bare, total, compile) = export_time(&(m.build)());
        println!(
            "  {:<14} {:>8.1} | {:>8.1} | {:>8.1}",
            m.name,
            bare * 1e3,
            total * 1e3,
            compile * 1e3
        );
    }
    let exe = build_c_bench();
    let (mut jit, mut c) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..ROUNDS {
        jit = jit.min(jit_call_ns());
        if let Ok(exe) = &exe {
            c = c.min(c_call_ns(exe).unwrap_or(f64::INFINITY));
        }
    }
    println!("tiny grad per call, fastest of {ROUNDS} x {RUNS} runs of {CALLS} calls:");
    println!("  JIT call_unchecked   {jit:.2} ns");
    match exe {
        Ok(exe) => {
            println!("  exported, from C     {c:.2} ns ({:+.2} ns)", c - jit);
            if let Some(dir) = exe.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Err(e) => println!("  exported, from C     not measured: {e}"),
    }
}
