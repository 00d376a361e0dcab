//! The C API leaks nothing and its calls allocate nothing: 1,000 cycles of parse, grad,
//! compile, workspace, call (and failed calls, whose messages are freed) leave the live bytes of
//! a counting global allocator and the resident size where they were, and a call allocates
//! nothing. (Its own test binary: the allocator is process-wide, and other tests would move the
//! resident size.)

use adjit::capi::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};

struct Counting;

thread_local! {
    /// Bytes this thread allocated minus the bytes it freed.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Allocations this thread made.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note(bytes: i64, allocations: u64) {
    LIVE.with(|c| c.set(c.get() + bytes));
    ALLOCATIONS.with(|c| c.set(c.get() + allocations));
}

// SAFETY: every method forwards to the system allocator; counting touches only const-initialized
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, 1);
        // SAFETY: the caller's promise, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64, 1);
        // SAFETY: the caller's promise, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64), 0);
        // SAFETY: the caller's promise, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as i64 - layout.size() as i64, 1);
        // SAFETY: the caller's promise, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn resident_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Asserts success, freeing any message.
fn ok(code: i32, e: *mut c_char) {
    // SAFETY: `e` is NULL or a message from the library, freed once.
    unsafe { adjit_string_free(e) };
    assert_eq!(code, ADJIT_OK);
}

/// One cycle: parse, grad, compile, workspace, a good call, a refused call, a parse error, the
/// text of the gradient; everything freed. Returns the gradient's first element.
fn cycle(text: &CString, x: &[f64; 2]) -> f64 {
    let mut e = null_mut();
    let (mut f, mut g, mut c, mut ws) = (null_mut(), null_mut(), null_mut(), null_mut());
    let (mut y, mut dy) = (0.0f64, [0.0f64; 2]);
    // SAFETY: valid strings, out pointers and buffers of the lengths given.
    unsafe {
        ok(adjit_parse(text.as_ptr(), &mut f, &mut e), e);
        ok(adjit_grad(f, null(), 0, &mut g, &mut e), e);
        ok(adjit_compile(g, &mut c, &mut e), e);
        ok(adjit_workspace_new(c, &mut ws, &mut e), e);
        let ins = [x.as_ptr()];
        let outs = [&mut y as *mut f64, dy.as_mut_ptr()];
        let call = |n: usize, e: *mut *mut c_char| {
            adjit_call(
                c,
                ws,
                ins.as_ptr(),
                [2].as_ptr(),
                1,
                outs.as_ptr(),
                [1, n].as_ptr(),
                2,
                e,
            )
        };
        ok(call(2, &mut e), e);
        assert_eq!(call(1, &mut e), ADJIT_ERR_SHORT_BUFFER);
        adjit_string_free(e);
        let mut bad = null_mut();
        assert_eq!(
            adjit_parse(c"func @".as_ptr(), &mut bad, &mut e),
            ADJIT_ERR_PARSE
        );
        adjit_string_free(e);
        let mut shown = null_mut();
        ok(adjit_func_text(g, &mut shown, &mut e), e);
        adjit_string_free(shown);
        adjit_workspace_free(ws);
        adjit_compiled_free(c);
        adjit_func_free(g);
        adjit_func_free(f);
    }
    dy[0]
}

#[test]
fn a_thousand_cycles_leak_nothing() {
    let text = CString::new(adjit::models::find("tiny").unwrap().text).unwrap();
    let x = [0.5, 2.0];
    let want = 0.5f64.cos() * 2.0f64.exp() + 2.0;
    for _ in 0..50 {
        cycle(&text, &x);
    }
    let (bytes, kib) = (live(), resident_kib());
    for _ in 0..1000 {
        let d = cycle(&text, &x);
        assert!((d - want).abs() < 1e-12, "{d} != {want}");
    }
    let (grown, kib_after) = (live() - bytes, resident_kib());
    // One leaked 8-byte allocation per cycle would be 8,000 bytes; one leaked object, far more.
    assert!(
        grown < 1024,
        "live heap grew by {grown} bytes over 1,000 cycles"
    );
    // Compiled code is mapped memory, outside the allocator: each leaked function would keep
    // at least two pages, 8 MB over 1,000 cycles.
    assert!(
        kib_after < kib + 4096,
        "resident memory grew from {kib} KiB to {kib_after} KiB"
    );
}

#[test]
fn a_call_allocates_nothing() {
    let text = CString::new(adjit::models::find("rosenbrock").unwrap().text).unwrap();
    let mut e = null_mut();
    let (mut f, mut g, mut c, mut ws) = (null_mut(), null_mut(), null_mut(), null_mut());
    let x = vec![0.3; 100];
    let mut y = 0.0f64;
    let mut dy = vec![0.0; 100];
    // SAFETY: valid strings, out pointers and buffers of the lengths given.
    unsafe {
        ok(adjit_parse(text.as_ptr(), &mut f, &mut e), e);
        ok(adjit_grad(f, null(), 0, &mut g, &mut e), e);
        ok(adjit_compile(g, &mut c, &mut e), e);
        ok(adjit_workspace_new(c, &mut ws, &mut e), e);
        let ins = [x.as_ptr()];
        let outs = [&mut y as *mut f64, dy.as_mut_ptr()];
        let (in_len, out_len) = ([100usize], [1usize, 100]);
        let before = allocations();
        for _ in 0..3 {
            let code = adjit_call(
                c,
                ws,
                ins.as_ptr(),
                in_len.as_ptr(),
                1,
                outs.as_ptr(),
                out_len.as_ptr(),
                2,
                &mut e,
            );
            assert_eq!(code, ADJIT_OK);
        }
        assert_eq!(allocations(), before, "adjit_call allocated");
        adjit_workspace_free(ws);
        adjit_compiled_free(c);
        adjit_func_free(g);
        adjit_func_free(f);
    }
    // rosenbrock at x = 0.3 everywhere: 99 terms of 100 (0.3 - 0.09)^2 + 0.7^2.
    let want = 99.0 * (100.0 * 0.21f64.powi(2) + 0.49);
    assert!((y - want).abs() < 1e-9 * want, "{y} != {want}");
}
