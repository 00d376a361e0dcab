//! Compiled code against the tape interpreter against hand-written Rust (`hand.rs`) on the
//! models with hand-derived gradients; the safe call's overhead; and compile time (text or
//! Builder to callable f+grad) on big graphs, in instructions per second.

#[path = "hand.rs"]
mod hand;

use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::{Builder, Func, Var};
use adjit::{ad, inputs, ir, jit, models};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use std::hint::black_box;
use std::time::Duration;

/// Benchmarks `e`'s checked call on the default inputs of `g` under `group/id`.
fn bench_call<E: Executor>(grp: &mut BenchmarkGroup<'_, WallTime>, id: String, e: &E, g: &Func) {
    let ins_owned = inputs::defaults(g, 0);
    let ins: Vec<&[f64]> = ins_owned.iter().map(Vec::as_slice).collect();
    let mut outs = e.try_outputs().expect("outputs fit");
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    let mut ws = e.workspace();
    grp.bench_function(id, |b| {
        b.iter(|| e.call(&mut ws, black_box(&ins), &mut refs).unwrap())
    });
}

/// Benchmarks compiled and interpreted `g` on its default inputs under `group/label`.
fn jit_and_interp(c: &mut Criterion, group: &str, label: &str, g: &Func) {
    let mut grp = c.benchmark_group(group);
    let compiled = jit::compile(g).unwrap();
    bench_call(&mut grp, format!("jit/{label}"), &compiled, g);
    let prog = Program::new(g).unwrap();
    bench_call(&mut grp, format!("interp/{label}"), &prog, g);
    grp.finish();
}

fn model(name: &str) -> Func {
    ir::parse(models::find(name).unwrap().text).unwrap()
}

fn per_call(c: &mut Criterion) {
    for name in ["tiny", "rosenbrock", "logistic", "pendulum"] {
        let f = model(name);
        jit_and_interp(c, name, "f", &f);
        jit_and_interp(c, name, "f+grad", &ad::grad(&f, None).unwrap());
        jit_and_interp(c, name, "hvp", &ad::hvp(&f, None).unwrap());
    }
    let x = inputs::defaults(&model("tiny"), 0);
    let mut g = [0.0; 2];
    c.bench_function("tiny/hand/f+grad", |b| {
        b.iter(|| hand::tiny(black_box(&x[0]), &mut g))
    });
    let x = inputs::defaults(&model("rosenbrock"), 0);
    let mut g = vec![0.0; 100];
    c.bench_function("rosenbrock/hand/f+grad", |b| {
        b.iter(|| hand::rosenbrock(black_box(&x[0]), &mut g))
    });
    let x = inputs::defaults(&model("logistic"), 0);
    let mut g = vec![0.0; 100];
    c.bench_function("logistic/hand/f+grad", |b| {
        b.iter(|| hand::logistic(black_box(&x[0]), &x[1], &x[2], &mut g))
    });
    let x = inputs::defaults(&model("pendulum"), 0);
    let mut g = vec![0.0; 43];
    let mut p = hand::Pendulum::default();
    c.bench_function("pendulum/hand/f+grad", |b| {
        b.iter(|| p.value_and_grad(black_box(&x[0]), &x[1], &mut g))
    });

    // Rosenbrock over 10,000 variables in tensor form.
    let big = models::rosenbrock(10_000);
    jit_and_interp(
        c,
        "rosenbrock_10k",
        "f+grad",
        &ad::grad(&big, None).unwrap(),
    );
    let x = inputs::defaults(&big, 0);
    let mut g = vec![0.0; 10_000];
    c.bench_function("rosenbrock_10k/hand/f+grad", |b| {
        b.iter(|| hand::rosenbrock(black_box(&x[0]), &mut g))
    });
}

/// The safe call's checks against the unchecked entry point, on a one-multiply function.
fn call_overhead(c: &mut Criterion) {
    let b = Builder::new("double");
    let x = b.param("x", &[]);
    let f = b.finish(&[x * 2.0]).unwrap();
    let compiled = jit::compile(&f).unwrap();
    let mut ws = compiled.workspace();
    let input = [0.5];
    let mut out = [0.0];
    let mut grp = c.benchmark_group("call");
    grp.bench_function("safe", |b| {
        b.iter(|| {
            compiled
                .call(&mut ws, &[black_box(&input[..])], &mut [&mut out])
                .unwrap()
        })
    });
    let out_ptr = out.as_mut_ptr();
    grp.bench_function("unchecked", |b| {
        // SAFETY: the pointers are to buffers of the signature's sizes, and do not overlap.
        b.iter(|| unsafe {
            compiled.call_unchecked(&mut ws, &[black_box(input.as_ptr())], &[out_ptr])
        })
    });
    grp.finish();
}

/// A straight-line function of `n` scalar instructions whose operands are random earlier
/// values (the worst case for register allocation).
fn random_scalar_graph(n: usize) -> Func {
    let b = Builder::new("random");
    let x = b.param("x", &[8]);
    let mut vals: Vec<Var> = (0..8).map(|i| x.at(i)).collect();
    let mut rng = inputs::Rng::new(42);
    while b.len() < n {
        let a = vals[rng.below(vals.len())];
        let c = vals[vals.len() - 1 - rng.below(vals.len().min(64))];
        let v = match rng.below(4) {
            0 => a + c,
            1 => a * c,
            2 => a - c,
            _ => (a * 0.5).sin(),
        };
        vals.push(v);
    }
    let last = vals[vals.len() - 1];
    b.finish(&[last]).unwrap()
}

fn compile_time(c: &mut Criterion) {
    let mut grp = c.benchmark_group("compile");
    grp.sample_size(10)
        .measurement_time(Duration::from_secs(15));
    // Text to callable f+grad for the shipped models.
    for name in ["tiny", "logistic", "mlp", "pendulum"] {
        let text = models::find(name).unwrap().text;
        grp.bench_function(BenchmarkId::new("text_to_grad", name), |b| {
            b.iter(|| {
                let f = ir::parse(text).unwrap();
                jit::compile(&ad::grad(&f, None).unwrap()).unwrap()
            })
        });
    }
    // Builder graphs to callable f+grad.
    for (name, f) in [
        ("rosenbrock_tensor_10k", models::rosenbrock(10_000)),
        ("rosenbrock_scalar_10k", models::rosenbrock_scalar(10_000)),
    ] {
        let g = ad::grad(&f, None).unwrap();
        grp.throughput(Throughput::Elements((f.insts.len() + g.insts.len()) as u64));
        grp.bench_function(BenchmarkId::new("builder_to_grad", name), |b| {
            b.iter(|| jit::compile(&ad::grad(&f, None).unwrap()).unwrap())
        });
    }
    grp.finish();
    let mut grp = c.benchmark_group("compile_1m");
    grp.sample_size(10)
        .measurement_time(Duration::from_secs(40));
    let f = random_scalar_graph(1_000_000);
    grp.throughput(Throughput::Elements(f.insts.len() as u64));
    grp.bench_function("random_scalar_graph", |b| {
        b.iter(|| jit::compile(&f).unwrap())
    });
    grp.finish();
}

criterion_group!(benches, per_call, call_overhead, compile_time);
criterion_main!(benches);
