//! Many input sets on many threads (the `batch` feature): a [`Batch`] calls one executor, the
//! interpreter or compiled code alike (anything implementing `call::Executor`), on many input
//! sets at once, on a rayon thread pool, with one warm workspace per pool thread.
//!
//! Two layouts of the sets:
//! - flat (`Batch::call`), what a parameter sweep or an ensemble has: per parameter one
//!   row-major buffer `[sets, ...shape]` (set `i` at `i * numel`), or a buffer of one set
//!   (`numel` elements) that every set shares (data, fixed parameters); per result one buffer
//!   `[sets, ...shape]`;
//! - per set (`Batch::call_sets`): set `i` is exactly what `Executor::call` takes.
//!
//! Every set is computed by the same `Executor::call` on its own buffers, whichever thread
//! runs it, so the results are bit for bit those of sequential calls, whatever the number of
//! threads (`tests/batch.rs`). Buffers are checked before anything runs: a mismatch is a
//! `CallError` naming the buffer (and the set), and no output is written.
//!
//! Work is split by halving the range of sets (`rayon::join`, stolen by idle threads) down to
//! pieces of about a quarter of a thread's share; each piece runs on the workspace of the thread
//! that runs it (a per-thread mutex, never contended: a thread runs one piece at a time and
//! does not yield inside it). A batch call allocates nothing, except that a call made from
//! outside the pool hands one job to rayon's injector queue, which takes a new block of memory
//! every 63 jobs; calls made inside `Batch::install` allocate nothing at all
//! (`tests/no_alloc.rs`).

use crate::call::{try_zeros, AllocError, CallError, Executor};
use rayon::ThreadPool;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Input or output lists of up to this many buffers are kept on the stack; longer ones
/// allocate a list per piece of work.
const STACK_LIST: usize = 16;

/// Why a `Batch` could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// A workspace did not fit in memory.
    Alloc(AllocError),
    /// The thread pool could not be built (rayon's message).
    Pool(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Alloc(e) => e.fmt(f),
            BatchError::Pool(m) => write!(f, "cannot start the batch threads: {m}"),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<AllocError> for BatchError {
    fn from(e: AllocError) -> Self {
        BatchError::Alloc(e)
    }
}

/// An executor, a thread pool and one workspace per pool thread: calls on many input sets.
pub struct Batch<'e, E: Executor> {
    exec: &'e E,
    pool: Arc<ThreadPool>,
    workspaces: Box<[Mutex<E::Workspace>]>,
}

/// Where set `i` of each buffer starts: the element count of a set and whether the buffer is
/// one set shared by all.
#[derive(Clone, Copy, Default)]
struct Layout {
    numel: usize,
    shared: bool,
}

impl Layout {
    fn set<'a>(&self, buf: &'a [f64], i: usize) -> &'a [f64] {
        if self.shared {
            buf
        } else {
            &buf[i * self.numel..(i + 1) * self.numel]
        }
    }
}

/// A list of `k` default values (empty slices), on the stack when `k <= STACK_LIST`, given to
/// `f`.
fn with_list<T: Default, R>(k: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    if k <= STACK_LIST {
        let mut a: [T; STACK_LIST] = std::array::from_fn(|_| T::default());
        f(&mut a[..k])
    } else {
        let mut v: Vec<T> = (0..k).map(|_| T::default()).collect();
        f(&mut v)
    }
}

impl<'e, E> Batch<'e, E>
where
    E: Executor + Sync,
    E::Workspace: Send,
{
    /// A batch on a pool of its own of `threads` threads (0: rayon's default, the
    /// `RAYON_NUM_THREADS` variable or the number of CPUs), each with a workspace.
    pub fn new(exec: &'e E, threads: usize) -> Result<Self, BatchError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("adjit-batch-{i}"))
            .build()
            .map_err(|e| BatchError::Pool(e.to_string()))?;
        Batch::with_pool(exec, Arc::new(pool))
    }

    /// A batch on a pool the caller shares (with other batches, or its own work).
    pub fn with_pool(exec: &'e E, pool: Arc<ThreadPool>) -> Result<Self, BatchError> {
        let workspaces = (0..pool.current_num_threads())
            .map(|_| exec.try_workspace().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Batch {
            exec,
            pool,
            workspaces: workspaces.into_boxed_slice(),
        })
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.workspaces.len()
    }

    /// The thread pool.
    pub fn pool(&self) -> &Arc<ThreadPool> {
        &self.pool
    }

    /// The executor.
    pub fn executor(&self) -> &'e E {
        self.exec
    }

    /// Runs `f` on the pool. Batch calls made inside it hand no job to rayon's injector queue,
    /// so after a warm-up they allocate nothing at all (a loop of calls belongs here).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// One zeroed buffer per output, each holding `sets` values (the flat layout), or an error
    /// naming the output that did not fit.
    pub fn try_outputs(&self, sets: usize) -> Result<Vec<Vec<f64>>, AllocError> {
        let s = self.exec.signature();
        s.outputs
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let n = t.numel().saturating_mul(sets);
                try_zeros(n, || {
                    format!("batch output {k} ({sets} x {t}) of @{}", s.name)
                })
            })
            .collect()
    }

    /// Calls the function on `sets` input sets in the flat layout (module doc): `inputs[k]`
    /// holds `sets` values of parameter `k` one after another, or one value shared by every
    /// set; `outputs[k]` receives `sets` values of result `k`. Results equal `sets` sequential
    /// `Executor::call`s bit for bit.
    pub fn call(
        &self,
        sets: usize,
        inputs: &[&[f64]],
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        with_list(inputs.len(), |layouts: &mut [Layout]| {
            self.check_flat(sets, inputs, outputs, layouts)?;
            let layouts: &[Layout] = layouts;
            let out_numel = |k: usize| self.exec.signature().outputs[k].numel();
            if sets == 0 {
                return Ok(());
            }
            let grain = self.grain(sets);
            self.pool
                .install(|| self.split_flat(0, sets, grain, inputs, layouts, &out_numel, outputs))
        })
    }

    /// Calls the function on input sets in the per-set layout: `inputs[i]` and `outputs[i]`
    /// are the buffers of one `Executor::call`. Every set is checked before any runs.
    pub fn call_sets(
        &self,
        inputs: &[&[&[f64]]],
        outputs: &mut [&mut [&mut [f64]]],
    ) -> Result<(), CallError> {
        if inputs.len() != outputs.len() {
            return Err(CallError::SetCount {
                inputs: inputs.len(),
                outputs: outputs.len(),
            });
        }
        let sig = self.exec.signature();
        for (set, (i, o)) in inputs.iter().zip(outputs.iter()).enumerate() {
            sig.check(i, o).map_err(|e| CallError::InSet {
                set,
                error: Box::new(e),
            })?;
        }
        let grain = self.grain(inputs.len());
        self.pool
            .install(|| self.split_sets(grain, inputs, outputs))
    }

    /// Sets per piece of work: about a quarter of each thread's share, so that idle threads
    /// can take over from slow ones (the machine may be shared).
    fn grain(&self, sets: usize) -> usize {
        sets.div_ceil(4 * self.threads()).max(1)
    }

    /// Checks the flat layout's buffers; `layouts[k]` receives input `k`'s layout.
    fn check_flat(
        &self,
        sets: usize,
        inputs: &[&[f64]],
        outputs: &[&mut [f64]],
        layouts: &mut [Layout],
    ) -> Result<(), CallError> {
        let sig = self.exec.signature();
        if inputs.len() != sig.inputs.len() {
            return Err(CallError::InputCount {
                expected: sig.inputs.len(),
                got: inputs.len(),
            });
        }
        if outputs.len() != sig.outputs.len() {
            return Err(CallError::OutputCount {
                expected: sig.outputs.len(),
                got: outputs.len(),
            });
        }
        for (index, ((name, ty), x)) in sig.inputs.iter().zip(inputs).enumerate() {
            let numel = ty.numel();
            let shared = x.len() == numel;
            if !shared && numel.checked_mul(sets) != Some(x.len()) {
                return Err(CallError::BatchInputLength {
                    index,
                    name: name.clone(),
                    ty: *ty,
                    sets,
                    got: x.len(),
                });
            }
            layouts[index] = Layout { numel, shared };
        }
        for (index, (ty, y)) in sig.outputs.iter().zip(outputs).enumerate() {
            if ty.numel().checked_mul(sets) != Some(y.len()) {
                return Err(CallError::BatchOutputLength {
                    index,
                    ty: *ty,
                    sets,
                    got: y.len(),
                });
            }
        }
        Ok(())
    }

    /// Runs `f` with the workspace of the current pool thread.
    fn with_workspace<R>(&self, f: impl FnOnce(&mut E::Workspace) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.workspaces.len();
        let mut ws = self.workspaces[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut ws)
    }

    /// Sets `start..start + len` of the flat layout, `outputs` holding exactly their results:
    /// halves run by `rayon::join` down to `grain` sets.
    #[allow(clippy::too_many_arguments)]
    fn split_flat(
        &self,
        start: usize,
        len: usize,
        grain: usize,
        inputs: &[&[f64]],
        layouts: &[Layout],
        out_numel: &(impl Fn(usize) -> usize + Sync),
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        if len <= grain {
            return self.run_flat(start, len, inputs, layouts, out_numel, outputs);
        }
        let half = len / 2;
        let k = outputs.len();
        with_list(k, |left: &mut [&mut [f64]]| {
            with_list(k, |right: &mut [&mut [f64]]| {
                for (j, o) in outputs.iter_mut().enumerate() {
                    let (a, b) = o.split_at_mut(half * out_numel(j));
                    left[j] = a;
                    right[j] = b;
                }
                let (a, b) = rayon::join(
                    || self.split_flat(start, half, grain, inputs, layouts, out_numel, left),
                    || {
                        let rest = len - half;
                        self.split_flat(
                            start + half,
                            rest,
                            grain,
                            inputs,
                            layouts,
                            out_numel,
                            right,
                        )
                    },
                );
                a.and(b)
            })
        })
    }

    /// Sets `start..start + len` of the flat layout, one after another on this thread's
    /// workspace.
    fn run_flat(
        &self,
        start: usize,
        len: usize,
        inputs: &[&[f64]],
        layouts: &[Layout],
        out_numel: &impl Fn(usize) -> usize,
        outputs: &mut [&mut [f64]],
    ) -> Result<(), CallError> {
        self.with_workspace(|ws| {
            with_list(inputs.len(), |ins: &mut [&[f64]]| {
                for i in 0..len {
                    for ((slot, x), layout) in ins.iter_mut().zip(inputs).zip(layouts) {
                        *slot = layout.set(x, start + i);
                    }
                    with_list(outputs.len(), |outs: &mut [&mut [f64]]| {
                        for (j, (slot, y)) in outs.iter_mut().zip(outputs.iter_mut()).enumerate() {
                            let n = out_numel(j);
                            *slot = &mut y[i * n..(i + 1) * n];
                        }
                        self.exec.call(ws, ins, outs)
                    })?;
                }
                Ok(())
            })
        })
    }

    /// The per-set layout: halves run by `rayon::join` down to `grain` sets.
    fn split_sets(
        &self,
        grain: usize,
        inputs: &[&[&[f64]]],
        outputs: &mut [&mut [&mut [f64]]],
    ) -> Result<(), CallError> {
        if outputs.len() <= grain {
            return self.with_workspace(|ws| {
                inputs
                    .iter()
                    .zip(outputs.iter_mut())
                    .try_for_each(|(i, o)| self.exec.call(ws, i, o))
            });
        }
        let half = outputs.len() / 2;
        let (il, ir) = inputs.split_at(half);
        let (ol, or) = outputs.split_at_mut(half);
        let (a, b) = rayon::join(
            || self.split_sets(grain, il, ol),
            || self.split_sets(grain, ir, or),
        );
        a.and(b)
    }
}
