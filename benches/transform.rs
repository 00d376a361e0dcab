//! Reverse-mode transform plus simplification on growing graphs (scalar Rosenbrock, about nine
//! instructions per variable): time per call and instructions per second, to show linear growth
//! up to a function of one million instructions.

use adjit::ad;
use adjit::models::rosenbrock_scalar;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn transform(c: &mut Criterion) {
    let mut g = c.benchmark_group("ad/grad");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for n in [1_000usize, 10_000, 111_112] {
        let f = rosenbrock_scalar(n);
        g.throughput(Throughput::Elements(f.insts.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("rosenbrock_scalar_instructions", f.insts.len()),
            &f,
            |b, f| b.iter(|| ad::grad(f, None).unwrap()),
        );
    }
    g.finish();
    let mut g = c.benchmark_group("ad/hvp");
    g.sample_size(10);
    let f = rosenbrock_scalar(10_000);
    g.throughput(Throughput::Elements(f.insts.len() as u64));
    g.bench_function(
        BenchmarkId::new("rosenbrock_scalar_instructions", f.insts.len()),
        |b| b.iter(|| ad::hvp(&f, None).unwrap()),
    );
    g.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
