//! A call of the interpreter or of compiled code allocates nothing: a counting global allocator
//! proves it on every shipped model, for f, grad and hvp, for checked and unchecked calls
//! through `call::Executor` (whose unchecked call gives the checked call's bits), and on
//! scans, interpreted and compiled: nested, reverse, and replay scans under binomial
//! checkpointing, whose steps and trajectory use only the workspace. Batch calls
//! (`adjit::batch`), counted on every thread of their pool: none inside `Batch::install`, and
//! from outside the pool only rayon's injector queue's blocks, one per 63 calls. (Its own test
//! binary, because the allocator is process-wide.)

mod common;

use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::Checkpoint;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    /// Allocations made by this thread (tests run on several threads at once).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Where this thread's allocations also count, if anywhere: a batch test's counter, for
    /// the threads of its pool and the test thread that calls them.
    static TRACKED: Cell<Option<&'static AtomicUsize>> = const { Cell::new(None) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
    if let Some(counter) = TRACKED.with(Cell::get) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Three checked and three unchecked calls of `e` (both through `call::Executor`) allocate
/// nothing, and give the same bits.
fn calls_do_not_allocate<E: Executor>(e: &E, inputs: &[Vec<f64>]) {
    let name = &e.signature().name;
    let mut ws = e.workspace();
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs = e.try_outputs().unwrap();
    let mut unchecked = e.try_outputs().unwrap();
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    let mut unchecked_refs: Vec<&mut [f64]> = unchecked.iter_mut().map(Vec::as_mut_slice).collect();
    let before = allocations();
    for _ in 0..3 {
        e.call(&mut ws, &ins, &mut refs).unwrap();
        // SAFETY: the workspace is `e`'s and the buffers come from its signature.
        unsafe { e.call_unchecked(&mut ws, &ins, &mut unchecked_refs) };
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "@{name}: {} allocations in 3 calls",
        after - before
    );
    let bits = |o: &[Vec<f64>]| -> Vec<u64> { o.iter().flatten().map(|v| v.to_bits()).collect() };
    assert_eq!(
        bits(&outs),
        bits(&unchecked),
        "@{name}: unchecked calls differ"
    );
}

/// Every shipped model's f, grad and hvp.
fn functions() -> Vec<adjit::ir::Func> {
    let mut out = Vec::new();
    for m in adjit::models::ALL {
        let f = adjit::ir::parse(m.text).unwrap();
        if m.scalar() {
            out.push(adjit::ad::grad(&f, None).unwrap());
            out.push(adjit::ad::hvp(&f, None).unwrap());
        } else {
            out.push(adjit::ad::jvp(&f, None).unwrap());
        }
        out.push(f);
    }
    out
}

#[test]
fn interpreter_calls_do_not_allocate() {
    for f in functions() {
        let inputs = adjit::inputs::defaults(&f, 0);
        calls_do_not_allocate(&Program::new(&f).unwrap(), &inputs);
    }
}

#[test]
fn interpreted_scans_do_not_allocate() {
    let mut fs = vec![common::scans::nested_scan(5, 4)];
    for policy in [
        Checkpoint::All,
        Checkpoint::Binomial(1),
        Checkpoint::Binomial(3),
    ] {
        fs.push(common::scans::replay_scan(20, 3, policy));
    }
    for f in fs {
        let inputs = adjit::inputs::defaults(&f, 0);
        calls_do_not_allocate(&Program::new(&f).unwrap(), &inputs);
    }
}

#[test]
fn compiled_calls_do_not_allocate() {
    for f in functions() {
        let inputs = adjit::inputs::defaults(&f, 0);
        calls_do_not_allocate(&adjit::jit::compile(&f).unwrap(), &inputs);
    }
}

/// Scans: a nested one (its inner body a function of its own), a reverse one with outputs, and a
/// replay scan (whose trajectory lives in the workspace).
fn scans() -> Vec<adjit::ir::Func> {
    use adjit::ir::{Body, Builder, Op, ScanOptions};
    let b = Builder::new("scans");
    let x = b.param("x", &[6, 4]);
    let h0 = b.param("h", &[4]);
    let nested = b.scan(
        ScanOptions::new("row", 6),
        &[],
        &[h0],
        &[x],
        |bb, _, h, x| {
            let inner = bb.scan(
                ScanOptions::new("col", 4),
                &[],
                &[h[0]],
                &[x[0]],
                |_, _, h, x| (vec![(h[0] * 0.5 + x[0]).tanh()], vec![]),
            );
            (vec![inner.carries[0]], vec![inner.carries[0].sum()])
        },
    );
    let opts = ScanOptions::new("back", 6).reverse(true);
    let back = b.scan(opts, &[h0], &[nested.carries[0]], &[x], |_, c, h, x| {
        let h1 = h[0] * c[0] + x[0].exp();
        (vec![h1], vec![h1.sum()])
    });
    let rb = Builder::new("replay");
    let (r, xr) = (rb.param("r", &[4]), rb.param("x", &[4]));
    let replay = rb.finish(&[r * 0.5 + xr]).unwrap();
    let bb = Builder::new("body");
    let (r, h, xb) = (
        bb.param("r", &[4]),
        bb.param("h", &[4]),
        bb.param("x", &[4]),
    );
    let h1 = h + r * xb;
    let body = bb.finish(&[h1, h1.sum()]).unwrap();
    let op = Op::Scan {
        body: Body::new(body),
        replay: Some(Body::new(replay)),
        consts: 0,
        carries: 1,
        length: 6,
        reverse: true,
        checkpoint: Checkpoint::All,
    };
    let args = [h0.value(), back.carries[0].value(), x.value()];
    let replayed = b.unpack_scan(b.op(op, &args));
    let results = [
        nested.ys[0],
        back.ys[0],
        replayed.carries[0],
        replayed.ys[0],
    ];
    vec![b.finish(&results).unwrap()]
}

#[test]
fn compiled_scans_do_not_allocate() {
    let mut fs = scans();
    fs.push(common::scans::nested_scan(5, 4));
    for policy in [
        Checkpoint::All,
        Checkpoint::Binomial(1),
        Checkpoint::Binomial(3),
    ] {
        fs.push(common::scans::replay_scan(20, 3, policy));
    }
    for f in fs {
        let inputs = adjit::inputs::defaults(&f, 0);
        calls_do_not_allocate(&adjit::jit::compile(&f).unwrap(), &inputs);
    }
}

/// `calls` batch calls of 64 `pendulum` gradients on a pool of 2 tracked threads, after a
/// warm-up, inside `Batch::install` or from the (tracked) test thread: the allocations of the
/// pool's threads and the test thread during the calls. The results are checked against a
/// sequential call.
#[cfg(feature = "batch")]
fn batch_allocations<E>(e: &E, inside: bool, calls: usize) -> usize
where
    E: Executor + Sync,
    E::Workspace: Send,
{
    use adjit::batch::Batch;
    use std::sync::Arc;
    const SETS: usize = 64;
    let counter: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(move |_| TRACKED.with(|t| t.set(Some(counter))))
        .build()
        .unwrap();
    let batch = Batch::with_pool(e, Arc::new(pool)).unwrap();
    let one = adjit::inputs::defaults(&FUNC_OF_BATCH.with(|f| f.clone()), 0);
    // Every set different: the first input scaled per set.
    let mut flat: Vec<Vec<f64>> = one.clone();
    flat[0] = (0..SETS)
        .flat_map(|i| one[0].iter().map(move |v| v * (1.0 + i as f64 / 64.0)))
        .collect();
    let ins: Vec<&[f64]> = flat.iter().map(Vec::as_slice).collect();
    let mut out = batch.try_outputs(SETS).unwrap();
    let mut refs: Vec<&mut [f64]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    let run = |refs: &mut [&mut [f64]], n: usize| {
        for _ in 0..n {
            batch.call(SETS, &ins, refs).unwrap();
        }
    };
    run(&mut refs, 3);
    batch.install(|| run(&mut refs, 3));
    TRACKED.with(|t| t.set(Some(counter)));
    let made = if inside {
        // Counted inside the pool: `install` itself hands one job to rayon's queue.
        batch.install(|| {
            let before = counter.load(Ordering::SeqCst);
            run(&mut refs, calls);
            counter.load(Ordering::SeqCst) - before
        })
    } else {
        let before = counter.load(Ordering::SeqCst);
        run(&mut refs, calls);
        counter.load(Ordering::SeqCst) - before
    };
    TRACKED.with(|t| t.set(None));
    drop(refs);
    // The last set, sequentially.
    let mut last: Vec<&[f64]> = one.iter().map(Vec::as_slice).collect();
    let n = one[0].len();
    last[0] = &flat[0][(SETS - 1) * n..];
    let mut want = e.try_outputs().unwrap();
    let mut want_refs: Vec<&mut [f64]> = want.iter_mut().map(Vec::as_mut_slice).collect();
    e.call(&mut e.workspace(), &last, &mut want_refs).unwrap();
    for (o, w) in out.iter().zip(&want) {
        let tail: Vec<u64> = o[o.len() - w.len()..].iter().map(|v| v.to_bits()).collect();
        assert_eq!(tail, w.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
    made
}

#[cfg(feature = "batch")]
thread_local! {
    /// The function the batch tests call (for its default inputs).
    static FUNC_OF_BATCH: adjit::ir::Func = adjit::ad::grad(
        &adjit::ir::parse(adjit::models::find("pendulum").unwrap().text).unwrap(),
        None,
    )
    .unwrap();
}

#[cfg(feature = "batch")]
#[test]
fn batch_calls_inside_the_pool_do_not_allocate() {
    let g = FUNC_OF_BATCH.with(|f| f.clone());
    let compiled = adjit::jit::compile(&g).unwrap();
    assert_eq!(batch_allocations(&compiled, true, 200), 0, "compiled");
    let interpreted = Program::new(&g).unwrap();
    assert_eq!(batch_allocations(&interpreted, true, 20), 0, "interpreted");
}

#[cfg(feature = "batch")]
#[test]
fn batch_calls_from_outside_the_pool_allocate_only_rayons_queue_blocks() {
    let g = FUNC_OF_BATCH.with(|f| f.clone());
    let compiled = adjit::jit::compile(&g).unwrap();
    let n = batch_allocations(&compiled, false, 252);
    // rayon's injector queue takes a block per 63 jobs: 4 for 252 calls (a call hands it one
    // job), whatever the number of sets.
    assert!(
        n <= 4,
        "{n} allocations in 252 batch calls from outside the pool"
    );
}
