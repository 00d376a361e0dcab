//! A call of the interpreter allocates nothing: a counting global allocator proves it on every
//! shipped model. (Its own test binary, because the allocator is process-wide.)

use adjit::interp::Program;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
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
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..3 {
            p.run(&mut ws, &ins, &mut [&mut out]).unwrap();
        }
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            0,
            "{}: {} allocations in 3 calls",
            m.name,
            after - before
        );
    }
}
