//! Compiling a module's functions to machine code while lowering goes on. Lowering is
//! sequential (it declares names in the module), so each function it finishes is queued here;
//! background threads (one per core but the caller's) compile queued functions as they come,
//! the largest first, and `Pool::finish` has the caller compile what is left beside them. Each function is
//! compiled on its own and the results come back in the order they were queued, so the code
//! does not depend on the number of threads or on which thread compiled what.

use super::{codegen, JitError};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::Context;
use cranelift_module::{FuncId, ModuleReloc};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One function's machine code, ready to be defined in a module.
pub struct MachineCode {
    pub bytes: Vec<u8>,
    pub alignment: u64,
    pub relocs: Vec<ModuleReloc>,
}

type Outcome = Result<MachineCode, JitError>;

/// Functions waiting to be compiled, and the results so far, by queue position.
struct Queue {
    waiting: VecDeque<(usize, FuncId, Function)>,
    /// No more functions will come: an idle thread stops.
    closed: bool,
    done: Vec<Option<Outcome>>,
}

impl Queue {
    /// The waiting function of the most instructions (the first queued of those): the longest
    /// compiles start first, so that the last to finish is a short one.
    fn take_largest(&mut self) -> Option<(usize, FuncId, Function)> {
        let (at, _) = (self.waiting.iter().enumerate())
            .max_by_key(|(at, (_, _, f))| (f.dfg.num_insts(), std::cmp::Reverse(*at)))?;
        self.waiting.remove(at)
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a function is queued or the queue is closed.
    more: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A thread that panicked left the queue consistent (it holds the lock only to move
        // an item in or out), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compiles queued functions until the queue is empty and, if `wait`, closed.
    fn work(&self, isa: &dyn TargetIsa, wait: bool) {
        loop {
            let (index, id, func) = {
                let mut q = self.lock();
                loop {
                    if let Some(item) = q.take_largest() {
                        break item;
                    }
                    if q.closed || !wait {
                        return;
                    }
                    q = self.more.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let outcome = compile_one(isa, id, func, false);
            self.lock().done[index] = Some(outcome);
        }
    }
}

/// The compiler of one module's functions.
pub struct Pool {
    isa: OwnedTargetIsa,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Background threads to start at most: the cores but one, none when dumping.
    threads: usize,
    ids: Vec<FuncId>,
    /// Print each function's machine code (`ADJIT_DUMP`); functions are then compiled one
    /// at a time as they are queued, so the dump reads in order.
    dump: bool,
}

impl Pool {
    pub fn new(isa: OwnedTargetIsa, dump: bool) -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool {
            isa,
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    waiting: VecDeque::new(),
                    closed: false,
                    done: Vec::new(),
                }),
                more: Condvar::new(),
            }),
            workers: Vec::new(),
            threads: if dump { 0 } else { cores - 1 },
            ids: Vec::new(),
            dump,
        }
    }

    /// Queues `func`, to be compiled as `id`. A background thread starts with the second
    /// function (a function of one chunk is not worth a thread).
    pub fn submit(&mut self, id: FuncId, func: Function) {
        let index = self.ids.len();
        self.ids.push(id);
        if self.dump {
            let outcome = compile_one(&*self.isa, id, func, true);
            self.shared.lock().done.push(Some(outcome));
            return;
        }
        {
            let mut q = self.shared.lock();
            q.done.push(None);
            q.waiting.push_back((index, id, func));
        }
        self.shared.more.notify_one();
        if index >= 1 && self.workers.len() < self.threads {
            let (shared, isa) = (Arc::clone(&self.shared), Arc::clone(&self.isa));
            // Without a thread (none could be started) the caller compiles everything.
            if let Ok(handle) = std::thread::Builder::new()
                .name("adjit-compile".into())
                .spawn(move || shared.work(&*isa, true))
            {
                self.workers.push(handle);
            }
        }
    }

    /// Compiles what is still queued, beside the background threads, and returns every
    /// function's machine code in the order queued.
    pub fn finish(mut self) -> Result<Vec<(FuncId, MachineCode)>, JitError> {
        self.shared.lock().closed = true;
        self.shared.more.notify_all();
        self.shared.work(&*self.isa, false);
        let mut panicked = false;
        for w in self.workers.drain(..) {
            panicked |= w.join().is_err();
        }
        let done = std::mem::take(&mut self.shared.lock().done);
        let ids = std::mem::take(&mut self.ids);
        ids.into_iter()
            .zip(done)
            .map(|(id, outcome)| match outcome {
                Some(code) => Ok((id, code?)),
                None => Err(JitError::Internal(format!(
                    "a function was not compiled{}",
                    if panicked {
                        " (a compile thread panicked)"
                    } else {
                        ""
                    }
                ))),
            })
            .collect()
    }
}

impl Drop for Pool {
    /// Stops the threads of a pool given up before `finish` (lowering failed): what is still
    /// queued is dropped, not compiled.
    fn drop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.waiting.clear();
            q.closed = true;
        }
        self.shared.more.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Compiles one function.
fn compile_one(isa: &dyn TargetIsa, id: FuncId, func: Function, dump: bool) -> Outcome {
    let mut ctx = Context::for_function(func);
    ctx.set_disasm(dump);
    ctx.compile(isa, &mut ControlPlane::default())
        .map_err(|e| codegen(&format!("{e:?}")))?;
    let code = ctx
        .compiled_code()
        .ok_or_else(|| JitError::Internal("compiled code missing".into()))?;
    if dump {
        eprintln!("{}", code.vcode.as_deref().unwrap_or(""));
    }
    let relocs = code
        .buffer
        .relocs()
        .iter()
        .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, id))
        .collect();
    Ok(MachineCode {
        bytes: code.buffer.data().to_vec(),
        alignment: u64::from(code.buffer.alignment),
        relocs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::isa::CallConv;
    use cranelift_codegen::settings;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    fn isa() -> OwnedTargetIsa {
        let flags = settings::Flags::new(settings::builder());
        cranelift_native::builder().unwrap().finish(flags).unwrap()
    }

    /// `f(x) = (((x * 1 + x) * 2 + x) * 3 + x) ...`, `terms` steps long: functions of distinct
    /// sizes.
    fn function(index: u32, terms: usize) -> Function {
        let config = isa().frontend_config();
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(types::F64));
        sig.returns.push(AbiParam::new(types::F64));
        let mut func = Function::with_name_signature(UserFuncName::user(0, index), sig);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let x = b.block_params(block)[0];
        let mut acc = x;
        for k in 0..terms {
            let c = b.ins().f64const(1.0 + k as f64);
            let t = b.ins().fmul(acc, c);
            acc = b.ins().fadd(t, x);
        }
        b.ins().return_(&[acc]);
        b.seal_all_blocks();
        b.finalize(config);
        func
    }

    #[test]
    fn results_come_back_in_queue_order_with_the_code_of_each_alone() {
        let isa = isa();
        let sizes = [3, 200, 1, 50, 400, 7, 0, 120];
        let mut pool = Pool::new(isa.clone(), false);
        for (i, &n) in sizes.iter().enumerate() {
            pool.submit(FuncId::from_u32(i as u32), function(i as u32, n));
        }
        let done = pool.finish().unwrap();
        assert_eq!(done.len(), sizes.len());
        for (i, (id, code)) in done.iter().enumerate() {
            assert_eq!(id.as_u32(), i as u32);
            let id = FuncId::from_u32(i as u32);
            let alone = compile_one(&*isa, id, function(i as u32, sizes[i]), false).unwrap();
            assert_eq!(code.bytes, alone.bytes, "function {i}");
        }
        // Larger functions have more code: the results were not swapped.
        assert!(done[4].1.bytes.len() > done[1].1.bytes.len());
        assert!(done[1].1.bytes.len() > done[0].1.bytes.len());
    }

    #[test]
    fn no_functions_and_one_function_need_no_thread() {
        let pool = Pool::new(isa(), false);
        assert!(pool.finish().unwrap().is_empty());
        let mut pool = Pool::new(isa(), false);
        pool.submit(FuncId::from_u32(0), function(0, 10));
        assert!(pool.workers.is_empty());
        assert_eq!(pool.finish().unwrap().len(), 1);
    }

    #[test]
    fn the_largest_waiting_function_is_taken_first() {
        let mut q = Queue {
            waiting: VecDeque::new(),
            closed: false,
            done: Vec::new(),
        };
        for (i, n) in [5, 90, 90, 2].into_iter().enumerate() {
            q.waiting
                .push_back((i, FuncId::from_u32(i as u32), function(i as u32, n)));
        }
        let order: Vec<usize> = std::iter::from_fn(|| q.take_largest().map(|t| t.0)).collect();
        assert_eq!(order, [1, 2, 0, 3]);
    }

    #[test]
    fn a_pool_dropped_before_finishing_stops_its_threads() {
        let mut pool = Pool::new(isa(), false);
        for i in 0..20 {
            pool.submit(FuncId::from_u32(i), function(i, 300));
        }
        drop(pool);
    }
}
