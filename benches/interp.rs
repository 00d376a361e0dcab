//! The tape interpreter on every shipped model (time per call on the seeded default inputs),
//! and on the scalar Rosenbrock graph to give a time per instruction.

use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::Func;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn bench_func(c: &mut Criterion, group: &str, name: &str, f: &Func) {
    let prog = Program::new(f).expect("verified");
    let mut ws = prog.workspace();
    let inputs = adjit::inputs::defaults(f, 0);
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs = prog.try_outputs().expect("outputs fit");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(f.insts.len() as u64));
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    g.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| prog.run(&mut ws, black_box(&ins), &mut refs).unwrap())
    });
    g.finish();
}

fn models(c: &mut Criterion) {
    for m in adjit::models::ALL {
        let f = adjit::ir::parse(m.text).expect("model parses");
        bench_func(c, "interp/f", m.name, &f);
    }
    bench_func(
        c,
        "interp/f",
        "rosenbrock_scalar_10000",
        &adjit::models::rosenbrock_scalar(10_000),
    );
}

criterion_group!(benches, models);
criterion_main!(benches);
