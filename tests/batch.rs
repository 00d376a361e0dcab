//! Batch calls (`adjit::batch`): on 1, 2 and 4 threads, in the flat and the per-set layout,
//! compiled and interpreted, the results equal sequential `Executor::call`s bit for bit; shared
//! inputs; more buffers than the stack lists hold; and every malformed call is a `CallError`
//! that writes no output.

use adjit::batch::Batch;
use adjit::call::{CallError, Executor};
use adjit::interp::Program;
use adjit::ir::{Builder, Func, Role};
use adjit::jit::{self, Compiled};

fn model(name: &str) -> Func {
    adjit::ir::parse(adjit::models::find(name).unwrap().text).unwrap()
}

/// `sets` input sets of `f` (seeds 1..), each input batched, or shared (seed 0) where `shared`
/// says so: the flat buffers and the per-set lists.
fn input_sets(f: &Func, sets: usize, shared: impl Fn(usize) -> bool) -> Vec<Vec<Vec<f64>>> {
    let one = adjit::inputs::defaults(f, 0);
    (0..sets)
        .map(|i| {
            let mut set = adjit::inputs::defaults(f, 1 + i as u64);
            for (k, x) in set.iter_mut().enumerate() {
                if shared(k) {
                    x.clone_from(&one[k]);
                }
            }
            set
        })
        .collect()
}

/// Flat buffers of `sets` (one set only where `shared`).
fn flatten(sets: &[Vec<Vec<f64>>], shared: impl Fn(usize) -> bool) -> Vec<Vec<f64>> {
    (0..sets[0].len())
        .map(|k| {
            if shared(k) {
                sets[0][k].clone()
            } else {
                sets.iter().flat_map(|s| s[k].iter().copied()).collect()
            }
        })
        .collect()
}

fn bits(v: &[Vec<f64>]) -> Vec<Vec<u64>> {
    v.iter()
        .map(|x| x.iter().map(|y| y.to_bits()).collect())
        .collect()
}

/// The results of sequential calls, laid out flat.
fn sequential<E: Executor>(e: &E, sets: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let mut ws = e.workspace();
    let mut flat: Vec<Vec<f64>> = vec![Vec::new(); e.signature().outputs.len()];
    for set in sets {
        let mut out = e.try_outputs().unwrap();
        e.call_vecs(&mut ws, set, &mut out).unwrap();
        for (f, o) in flat.iter_mut().zip(out) {
            f.extend(o);
        }
    }
    flat
}

/// Batch results (flat and per set) on `threads` threads.
fn batched<E>(
    e: &E,
    threads: usize,
    sets: &[Vec<Vec<f64>>],
    shared: &dyn Fn(usize) -> bool,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>)
where
    E: Executor + Sync,
    E::Workspace: Send,
{
    let batch = Batch::new(e, threads).unwrap();
    assert_eq!(batch.threads(), threads);
    let flat_in = flatten(sets, shared);
    let ins: Vec<&[f64]> = flat_in.iter().map(Vec::as_slice).collect();
    let mut flat_out = batch.try_outputs(sets.len()).unwrap();
    let mut outs: Vec<&mut [f64]> = flat_out.iter_mut().map(Vec::as_mut_slice).collect();
    batch.call(sets.len(), &ins, &mut outs).unwrap();

    let set_ins: Vec<Vec<&[f64]>> = sets
        .iter()
        .map(|s| s.iter().map(Vec::as_slice).collect())
        .collect();
    let set_ins: Vec<&[&[f64]]> = set_ins.iter().map(Vec::as_slice).collect();
    let mut set_out: Vec<Vec<Vec<f64>>> = sets.iter().map(|_| e.try_outputs().unwrap()).collect();
    let mut set_refs: Vec<Vec<&mut [f64]>> = set_out
        .iter_mut()
        .map(|o| o.iter_mut().map(Vec::as_mut_slice).collect())
        .collect();
    let mut set_refs: Vec<&mut [&mut [f64]]> = set_refs.iter_mut().map(Vec::as_mut_slice).collect();
    batch.call_sets(&set_ins, &mut set_refs).unwrap();
    let mut per_set: Vec<Vec<f64>> = vec![Vec::new(); flat_out.len()];
    for o in set_out {
        for (f, x) in per_set.iter_mut().zip(o) {
            f.extend(x);
        }
    }
    (flat_out, per_set)
}

/// On 1, 2 and 4 threads, both layouts give the sequential calls' bits.
fn agrees<E>(f: &Func, e: &E, sets: usize, shared: &dyn Fn(usize) -> bool)
where
    E: Executor + Sync,
    E::Workspace: Send,
{
    let name = &e.signature().name;
    let sets = input_sets(f, sets, shared);
    let want = bits(&sequential(e, &sets));
    assert!(want.iter().all(|x| !x.is_empty()), "@{name}: empty results");
    for threads in [1, 2, 4] {
        let (flat, per_set) = batched(e, threads, &sets, shared);
        assert_eq!(
            bits(&flat),
            want,
            "@{name}: flat layout on {threads} threads"
        );
        assert_eq!(
            bits(&per_set),
            want,
            "@{name}: per-set layout on {threads} threads"
        );
    }
}

#[test]
fn compiled_batches_equal_sequential_calls_on_any_thread_count() {
    for name in ["pendulum", "tiny", "mlp", "pendulum_scan", "bratu"] {
        let f = model(name);
        let g = if adjit::models::find(name).unwrap().scalar() {
            adjit::ad::grad(&f, None).unwrap()
        } else {
            adjit::ad::jvp(&f, None).unwrap()
        };
        let c = jit::compile(&g).unwrap();
        agrees(&g, &c, 37, &|_| false);
    }
}

#[test]
fn shared_inputs_are_read_by_every_set() {
    // logistic's data (X, y) shared, its weights batched.
    let f = adjit::ad::hvp(&model("logistic"), None).unwrap();
    let data: Vec<bool> = f.params.iter().map(|p| p.role == Role::Data).collect();
    assert!(data.iter().any(|&d| d) && data.iter().any(|&d| !d));
    let c = jit::compile(&f).unwrap();
    agrees(&f, &c, 9, &|k| data[k]);
    // Shared inputs differ from batched ones only in layout: the same sets, all batched.
    let sets = input_sets(&f, 9, |k| data[k]);
    let all = flatten(&sets, |_| false);
    let some = flatten(&sets, |k| data[k]);
    let run = |flat: &[Vec<f64>]| {
        let batch = Batch::new(&c, 2).unwrap();
        let ins: Vec<&[f64]> = flat.iter().map(Vec::as_slice).collect();
        let mut out = batch.try_outputs(9).unwrap();
        let mut refs: Vec<&mut [f64]> = out.iter_mut().map(Vec::as_mut_slice).collect();
        batch.call(9, &ins, &mut refs).unwrap();
        bits(&out)
    };
    assert_eq!(run(&all), run(&some));
}

#[test]
fn interpreted_batches_equal_sequential_calls() {
    for name in ["pendulum", "rnn"] {
        let g = adjit::ad::grad(&model(name), None).unwrap();
        agrees(&g, &Program::new(&g).unwrap(), 11, &|_| false);
    }
}

/// More inputs and outputs than the batch keeps on the stack (16).
fn wide(n: usize) -> Func {
    let b = Builder::new("wide");
    let xs: Vec<_> = (0..n).map(|i| b.param(&format!("x{i}"), &[2])).collect();
    let ys: Vec<_> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| (*x * (i as f64 + 1.0)).sin().sum())
        .collect();
    b.finish(&ys).unwrap()
}

#[test]
fn functions_of_many_buffers_batch_too() {
    let f = wide(20);
    let c = jit::compile(&f).unwrap();
    agrees(&f, &c, 13, &|k| k % 3 == 0);
}

#[test]
fn zero_sets_is_a_call_that_does_nothing() {
    let f = adjit::ad::grad(&model("tiny"), None).unwrap();
    let c = jit::compile(&f).unwrap();
    let batch = Batch::new(&c, 2).unwrap();
    let (mut y, mut dy) = (Vec::<f64>::new(), Vec::<f64>::new());
    batch.call(0, &[&[]], &mut [&mut y, &mut dy]).unwrap();
    batch
        .call(0, &[&[0.5, 1.0]], &mut [&mut y, &mut dy])
        .unwrap();
    batch.call_sets(&[], &mut []).unwrap();
}

/// `call` on `ins` fails with `want`, and writes no output.
fn refused(c: &Compiled, sets: usize, ins: &[&[f64]], lens: &[usize], want: CallError) {
    let batch = Batch::new(c, 2).unwrap();
    let mut outs: Vec<Vec<f64>> = lens.iter().map(|&n| vec![7.0; n]).collect();
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    let got = batch.call(sets, ins, &mut refs).unwrap_err();
    assert_eq!(got, want);
    assert!(!got.to_string().is_empty());
    assert!(
        outs.iter().flatten().all(|&v| v == 7.0),
        "{want}: output written"
    );
}

#[test]
fn malformed_batches_are_errors() {
    let f = adjit::ad::grad(&model("tiny"), None).unwrap();
    let c = jit::compile(&f).unwrap();
    let ty = c.signature().inputs[0].1;
    let (y, dy) = (c.signature().outputs[0], c.signature().outputs[1]);
    let x = vec![0.25; 6];
    refused(
        &c,
        3,
        &[],
        &[3, 6],
        CallError::InputCount {
            expected: 1,
            got: 0,
        },
    );
    refused(
        &c,
        3,
        &[&x],
        &[3],
        CallError::OutputCount {
            expected: 2,
            got: 1,
        },
    );
    refused(
        &c,
        3,
        &[&x[..5]],
        &[3, 6],
        CallError::BatchInputLength {
            index: 0,
            name: "x".into(),
            ty,
            sets: 3,
            got: 5,
        },
    );
    refused(
        &c,
        3,
        &[&x],
        &[3, 5],
        CallError::BatchOutputLength {
            index: 1,
            ty: dy,
            sets: 3,
            got: 5,
        },
    );
    refused(
        &c,
        2,
        &[&x],
        &[3, 6],
        CallError::BatchInputLength {
            index: 0,
            name: "x".into(),
            ty,
            sets: 2,
            got: 6,
        },
    );
    // A count whose buffers would overflow (the input shared).
    refused(
        &c,
        usize::MAX,
        &[&x[..2]],
        &[0, 0],
        CallError::BatchOutputLength {
            index: 0,
            ty: y,
            sets: usize::MAX,
            got: 0,
        },
    );

    let batch = Batch::new(&c, 2).unwrap();
    let (mut a, mut b) = ([7.0], [7.0; 2]);
    let mut set: [&mut [f64]; 2] = [&mut a, &mut b];
    let err = batch
        .call_sets(&[&[&x[..2]], &[&x[..2]]], &mut [&mut set])
        .unwrap_err();
    assert_eq!(
        err,
        CallError::SetCount {
            inputs: 2,
            outputs: 1
        }
    );
    let err = batch.call_sets(&[&[&x[..3]]], &mut [&mut set]).unwrap_err();
    assert_eq!(
        err,
        CallError::InSet {
            set: 0,
            error: Box::new(CallError::InputLength {
                index: 0,
                name: "x".into(),
                ty,
                got: 3
            })
        }
    );
    assert!(err.to_string().starts_with("set 0: "));
    assert_eq!((a, b), ([7.0], [7.0; 2]));
}

/// A batch call on flat buffers.
type BatchCall<'a> = dyn Fn(&[&[f64]], &mut [&mut [f64]]) + 'a;

#[test]
fn batches_share_a_pool() {
    let f = adjit::ad::grad(&model("tiny"), None).unwrap();
    let c = jit::compile(&f).unwrap();
    let p = Program::new(&f).unwrap();
    let pool = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap(),
    );
    let (bc, bp) = (
        Batch::with_pool(&c, pool.clone()).unwrap(),
        Batch::with_pool(&p, pool).unwrap(),
    );
    assert_eq!((bc.threads(), bp.threads()), (3, 3));
    let x: Vec<f64> = (0..40).map(|i| 0.1 * i as f64).collect();
    let run = |b: &BatchCall| {
        let (mut y, mut dy) = (vec![0.0; 20], vec![0.0; 40]);
        b(&[&x], &mut [&mut y, &mut dy]);
        (bits(&[y]), bits(&[dy]))
    };
    let compiled = run(&|i, o| bc.call(20, i, o).unwrap());
    let interpreted = run(&|i, o| bp.install(|| bp.call(20, i, o).unwrap()));
    assert_eq!(compiled, interpreted);
    assert_ne!(compiled.0[0][0], compiled.0[0][1]);
}
