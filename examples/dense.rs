//! Measures the dense derivatives of issue 11, compiled: the Jacobian of `bratu` (n = 1,000)
//! in forward vector mode (and reverse), and the Hessian of `rosenbrock` (n = 100), per call.
//! Each figure is the median (and the fastest) of 15 batches of the mean time per call,
//! workspace reused; the fastest batch is the figure least disturbed by other load.
//!
//! Then, for every shipped model, the jvp (value and one directional derivative) against `f`.
//!
//! `cargo run --release --example dense`

use adjit::ad::{self, JacobianMode};
use adjit::call::Executor;
use adjit::inputs::defaults;
use adjit::ir::Func;
use std::time::Instant;

/// Prints and returns the median time per call of `f`, compiled.
fn measure(label: &str, f: &Func) -> f64 {
    let t0 = Instant::now();
    let c = adjit::jit::compile(f).expect("compiles");
    let compile = t0.elapsed();
    let inputs = defaults(f, 0);
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs = c
        .signature()
        .outputs
        .iter()
        .map(|t| vec![0.0; t.numel()])
        .collect::<Vec<_>>();
    let mut ws = c.workspace();
    let mut call = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            let mut o: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
            c.call(&mut ws, &ins, &mut o).expect("runs");
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    // Calls per batch: about 20 ms each.
    let once = call(1).max(1e-9);
    let n = ((0.02 / once) as usize).clamp(1, 1_000_000);
    let mut times: Vec<f64> = (0..15).map(|_| call(n)).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{label:40} {:>10.2} us per call (fastest batch {:.2} us; {} instructions, compiled in {:.1} ms, workspace {} KiB)",
        times[7] * 1e6,
        times[0] * 1e6,
        f.insts.len(),
        compile.as_secs_f64() * 1e3,
        c.workspace_len() * 8 / 1024
    );
    times[7]
}

fn main() {
    let bratu = adjit::models::bratu_n(1000);
    let rosen = adjit::models::rosenbrock(100);
    measure("bratu f", &bratu);
    let fwd = ad::jacobian(&bratu, None, JacobianMode::Forward).expect("jacobian");
    measure("bratu jacobian, forward vector mode", &fwd);
    let vector = ad::jvp_vector(&bratu, None, 1000).expect("jvp_vector");
    measure("bratu jvp_vector, k = 1000 given", &vector);
    let rev = ad::jacobian(&bratu, None, JacobianMode::Reverse).expect("jacobian");
    measure("bratu jacobian, reverse vector mode", &rev);
    measure("rosenbrock f", &rosen);
    measure("rosenbrock f+grad", &ad::grad(&rosen, None).expect("grad"));
    measure(
        "rosenbrock hessian (value, grad, H)",
        &ad::hessian(&rosen, None).expect("hessian"),
    );
    let mut ratios = Vec::new();
    for m in adjit::models::ALL {
        let f = (m.build)();
        let t_f = measure(&format!("{} f", m.name), &f);
        let t_jvp = measure(&format!("{} jvp", m.name), &ad::jvp(&f, None).expect("jvp"));
        ratios.push(format!("{} {:.2}", m.name, t_jvp / t_f));
    }
    println!("jvp / f: {}", ratios.join(", "));
}
