//! A call of the interpreter or of compiled code allocates nothing: a counting global allocator
//! proves it on every shipped model, for f, grad and hvp. (Its own test binary, because the
//! allocator is process-wide.)

use adjit::interp::Program;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread (tests run on several threads at once).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
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

#[test]
fn interpreter_calls_do_not_allocate() {
    for m in adjit::models::ALL {
        let f = adjit::ir::parse(m.text).unwrap();
        let p = Program::new(&f).unwrap();
        let mut ws = p.workspace();
        let inputs = adjit::inputs::defaults(&f, 0);
        let ins: Vec<&[f64]> = inputs.iter().map(|x| x.as_slice()).collect();
        let mut out = vec![0.0; 1];
        let before = allocations();
        for _ in 0..3 {
            p.run(&mut ws, &ins, &mut [&mut out]).unwrap();
        }
        let after = allocations();
        assert_eq!(
            after - before,
            0,
            "{}: {} allocations in 3 calls",
            m.name,
            after - before
        );
    }
}

#[test]
fn compiled_calls_do_not_allocate() {
    for m in adjit::models::ALL {
        let f = adjit::ir::parse(m.text).unwrap();
        let g = adjit::ad::grad(&f, None).unwrap();
        let h = adjit::ad::hvp(&f, None).unwrap();
        for func in [&f, &g, &h] {
            let c = adjit::jit::compile(func).unwrap();
            let mut ws = c.workspace();
            let inputs = adjit::inputs::defaults(func, 0);
            let ins: Vec<&[f64]> = inputs.iter().map(|x| x.as_slice()).collect();
            let mut outs: Vec<Vec<f64>> = c
                .signature()
                .outputs
                .iter()
                .map(|t| vec![0.0; t.numel()])
                .collect();
            let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
            let before = allocations();
            for _ in 0..3 {
                c.call(&mut ws, &ins, &mut refs).unwrap();
            }
            let after = allocations();
            assert_eq!(
                after - before,
                0,
                "@{}: {} allocations in 3 calls",
                func.name,
                after - before
            );
        }
    }
}
