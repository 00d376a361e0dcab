//! Batch calls (`adjit::batch`): 256 `pendulum` gradients (f+grad, compiled) in one batch call
//! on 1 and 2 threads, and the 256 sequential calls they replace. Criterion reports the time per
//! batch; the speed-up of 2 threads is the ratio of the two batch times. (`adjit bench
//! --batch` measures the same and prints the ratio.)

use adjit::batch::Batch;
use adjit::call::Executor;
use adjit::{ad, inputs, ir, jit, models};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const SETS: usize = 256;

fn pendulum_batch(c: &mut Criterion) {
    let f = ir::parse(models::find("pendulum").unwrap().text).unwrap();
    let g = ad::grad(&f, None).unwrap();
    let compiled = jit::compile(&g).unwrap();
    // Set i: the default inputs of seed i, one flat buffer per parameter.
    let sets: Vec<Vec<Vec<f64>>> = (0..SETS as u64).map(|i| inputs::defaults(&g, i)).collect();
    let flat: Vec<Vec<f64>> = (0..sets[0].len())
        .map(|k| sets.iter().flat_map(|s| s[k].iter().copied()).collect())
        .collect();
    let ins: Vec<&[f64]> = flat.iter().map(Vec::as_slice).collect();

    let mut grp = c.benchmark_group("batch256/pendulum/f+grad");
    grp.throughput(Throughput::Elements(SETS as u64));
    grp.measurement_time(Duration::from_secs(5));
    for threads in [1, 2] {
        let batch = Batch::new(&compiled, threads).unwrap();
        let mut out = batch.try_outputs(SETS).unwrap();
        let mut refs: Vec<&mut [f64]> = out.iter_mut().map(Vec::as_mut_slice).collect();
        grp.bench_function(format!("threads={threads}"), |b| {
            b.iter(|| batch.call(SETS, black_box(&ins), &mut refs).unwrap())
        });
    }
    let mut ws = compiled.workspace();
    let mut out = compiled.try_outputs().unwrap();
    let mut refs: Vec<&mut [f64]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    let per_set: Vec<Vec<&[f64]>> = sets
        .iter()
        .map(|s| s.iter().map(Vec::as_slice).collect())
        .collect();
    grp.bench_function("sequential", |b| {
        b.iter(|| {
            for set in &per_set {
                compiled.call(&mut ws, black_box(set), &mut refs).unwrap();
            }
        })
    });
    grp.finish();
}

criterion_group!(benches, pendulum_batch);
criterion_main!(benches);
