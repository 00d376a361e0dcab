//! Builds the Rosenbrock function with the Builder, differentiates and compiles it once, then
//! minimizes it by gradient descent with momentum, calling the compiled gradient a hundred
//! thousand times; finally evaluates gradients from four threads sharing one `Compiled` (each
//! through `Executor::eval`, which makes the thread's own workspace).
//!
//! Run with `cargo run --release --example optimize`.

use adjit::call::{EvalError, Executor};
use adjit::ir::Builder;
use adjit::{ad, jit};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 10;
    let b = Builder::new("rosenbrock");
    let x = b.param("x", &[n]);
    let (head, tail) = (x.slice(&[0], &[n - 1]), x.slice(&[1], &[n]));
    let a = tail - head * head;
    let c = 1.0 - head;
    let f = b.finish(&[(100.0 * (a * a) + c * c).sum()])?;

    let grad = jit::compile(&ad::grad(&f, None)?)?;
    let mut ws = grad.workspace();
    let (mut xs, mut velocity) = (vec![-1.2; n], vec![0.0; n]);
    let (mut value, mut g) = ([0.0], vec![0.0; n]);
    let start = std::time::Instant::now();
    let steps = 100_000;
    for _ in 0..steps {
        grad.call(&mut ws, &[&xs], &mut [&mut value, &mut g])?;
        for i in 0..n {
            velocity[i] = 0.9 * velocity[i] - 2e-4 * g[i];
            xs[i] += velocity[i];
        }
    }
    let elapsed = start.elapsed();
    println!(
        "after {steps} steps ({:.1} ns per step): f = {:.3e}, x[0] = {:.6}, x[{}] = {:.6}",
        elapsed.as_nanos() as f64 / steps as f64,
        value[0],
        xs[0],
        n - 1,
        xs[n - 1]
    );

    // One compiled function, four threads, each with its own workspace.
    let grad = Arc::new(grad);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let grad = Arc::clone(&grad);
            std::thread::spawn(move || -> Result<f64, EvalError> {
                // `eval` (of `call::Executor`) makes this thread's workspace and outputs.
                let x = vec![0.5 + 0.1 * t as f64; 10];
                Ok(grad.eval(&[x])?[0][0])
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let y = h.join().expect("thread finished")?;
        println!("thread {t}: f = {y:.6}");
    }
    Ok(())
}
