//! The C API (`include/adjit.h`, which documents every function): parse `.ir` text,
//! differentiate it, compile it, query the signature, and call it on caller-held buffers with a
//! caller-held workspace, from C, C++ or anything that calls C. The library builds as a
//! `cdylib` and a `staticlib` for it.
//!
//! Every entry point is `unsafe extern "C"` (the caller promises valid pointers, as the header
//! says) and runs inside `guard`: it returns an `adjit_status` code, writes a message the
//! caller frees (`adjit_string_free`) on failure, and catches any panic (a bug in adjit) as
//! `ADJIT_ERR_INTERNAL`, with a panic hook that records the message instead of printing it.
//! Nothing is printed. Objects are boxed Rust values handed out as opaque pointers and taken
//! back by their free functions.
//!
//! `adjit_call` checks counts, NULL pointers, alignment, overlap, exact lengths and the
//! workspace's owner, then calls `Compiled::call_unchecked` on the caller's pointer arrays, so
//! a call allocates nothing and takes no lock (as `Compiled::call`).
//!
//! Here: status codes, the objects, `guard` and the helpers that read arguments; `func.rs`:
//! parsing, printing and the transforms; `compiled.rs`: compiling, the signature queries,
//! workspaces and calls.

use crate::ad::{self, AdError};
use crate::call::{AllocError, CallError};
use crate::ir::{DType, Func};
use crate::jit::{self, Compiled, JitError, Workspace};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

mod compiled;
mod func;

pub use compiled::*;
pub use func::*;

/// `adjit_status` of the header: what every entry point returns.
pub const ADJIT_OK: c_int = 0;
pub const ADJIT_ERR_NULL: c_int = 1;
pub const ADJIT_ERR_ARGUMENT: c_int = 2;
pub const ADJIT_ERR_PARSE: c_int = 3;
pub const ADJIT_ERR_TRANSFORM: c_int = 4;
pub const ADJIT_ERR_COMPILE: c_int = 5;
pub const ADJIT_ERR_COUNT: c_int = 6;
pub const ADJIT_ERR_SHORT_BUFFER: c_int = 7;
pub const ADJIT_ERR_LONG_BUFFER: c_int = 8;
pub const ADJIT_ERR_OVERLAP: c_int = 9;
pub const ADJIT_ERR_FOREIGN_WORKSPACE: c_int = 10;
pub const ADJIT_ERR_OUT_OF_MEMORY: c_int = 11;
pub const ADJIT_ERR_INTERNAL: c_int = 12;

/// `adjit_status_name` of each code, indexed by it.
const STATUS_NAMES: [&CStr; 13] = [
    c"ADJIT_OK",
    c"ADJIT_ERR_NULL",
    c"ADJIT_ERR_ARGUMENT",
    c"ADJIT_ERR_PARSE",
    c"ADJIT_ERR_TRANSFORM",
    c"ADJIT_ERR_COMPILE",
    c"ADJIT_ERR_COUNT",
    c"ADJIT_ERR_SHORT_BUFFER",
    c"ADJIT_ERR_LONG_BUFFER",
    c"ADJIT_ERR_OVERLAP",
    c"ADJIT_ERR_FOREIGN_WORKSPACE",
    c"ADJIT_ERR_OUT_OF_MEMORY",
    c"ADJIT_ERR_INTERNAL",
];

/// `adjit_hvp` and `adjit_hvp_only` modes and `adjit_jacobian` modes, as the header numbers
/// them.
pub const ADJIT_HVP_FWDREV: c_int = 0;
pub const ADJIT_HVP_REVREV: c_int = 1;
pub const ADJIT_JAC_AUTO: c_int = 0;
pub const ADJIT_JAC_FORWARD: c_int = 1;
pub const ADJIT_JAC_REVERSE: c_int = 2;

/// Element types, as the `adjit_dtype_in`/`_out` queries answer.
pub const ADJIT_F64: c_int = 0;
pub const ADJIT_BOOL: c_int = 1;

/// `adjit_func`: a verified function and the names of its results.
pub struct AdjitFunc {
    func: Func,
    outputs: Vec<String>,
}

/// One input or output of an `adjit_compiled`, in the forms the queries hand out.
struct Port {
    name: CString,
    shape: Box<[usize]>,
    len: usize,
    dtype: DType,
}

/// `adjit_compiled`: compiled code and its signature as C strings and `size_t` arrays.
pub struct AdjitCompiled {
    id: u64,
    compiled: Compiled,
    name: CString,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
}

/// `adjit_workspace`: a workspace and the id of the `adjit_compiled` it was made for.
pub struct AdjitWorkspace {
    owner: u64,
    ws: Workspace,
}

// What the header promises about threads, checked by the compiler: functions and compiled
// code are shared by reference between threads, workspaces move between them.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shared::<AdjitFunc>();
    shared::<AdjitCompiled>();
    movable::<AdjitWorkspace>();
};

/// Ids of `adjit_compiled` objects, so a workspace knows its owner even after an address is
/// reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why an entry point failed: a status code and the message for the caller.
struct Failure {
    code: c_int,
    message: String,
}

fn fail(code: c_int, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

type Outcome = Result<(), Failure>;

thread_local! {
    /// How many `guard`s this thread is inside (the panic hook stays quiet there).
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// The message of a panic caught by `guard`, recorded by the hook.
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records the message of a panic inside `guard` instead of
/// printing it, and passes every other panic to the hook it replaced.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) == 0 {
                return previous(info);
            }
            let payload = info.payload();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let place = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{what}{place}")));
        }));
    });
}

/// Runs an entry point's body: clears `*error`, catches a panic, and turns a failure into its
/// code and (if `error` is not NULL) a message in `*error`.
///
/// # Safety
/// `error` is NULL or valid for a write of a pointer.
unsafe fn guard(error: *mut *mut c_char, body: impl FnOnce() -> Outcome) -> c_int {
    install_panic_hook();
    if !error.is_null() {
        // SAFETY: the caller's promise.
        unsafe { *error = std::ptr::null_mut() };
    }
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(body));
    GUARDED.with(|g| g.set(g.get() - 1));
    let failure = match result {
        Ok(Ok(())) => return ADJIT_OK,
        Ok(Err(failure)) => failure,
        Err(_) => {
            let what = PANIC_MESSAGE.with(|m| m.borrow_mut().take());
            let what = what.unwrap_or_else(|| "a panic".to_string());
            fail(
                ADJIT_ERR_INTERNAL,
                format!("internal error, please report: {what}"),
            )
        }
    };
    if !error.is_null() {
        // SAFETY: the caller's promise.
        unsafe { *error = c_string(failure.message).into_raw() };
    }
    failure.code
}

/// `s` as a C string, any NUL shown as `\0`.
fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let shown = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\\0");
        CString::new(shown).unwrap_or_default()
    })
}

/// The object behind a pointer the caller passed, or `ADJIT_ERR_NULL` naming the argument.
///
/// # Safety
/// `p` is NULL or points to a live `T` made by this library, not written during the borrow.
unsafe fn object<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's promise.
    unsafe { p.as_ref() }.ok_or_else(|| fail(ADJIT_ERR_NULL, format!("{what} is NULL")))
}

/// Hands a new object to the caller through `out`.
///
/// # Safety
/// `out` is valid for a write of a pointer (checked non-NULL by `out_slot`).
unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's promise.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Checks an out-pointer and sets `*out` to NULL until there is a result.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
unsafe fn out_slot<T>(out: *mut *mut T) -> Outcome {
    if out.is_null() {
        return Err(fail(ADJIT_ERR_NULL, "the out pointer is NULL"));
    }
    // SAFETY: the caller's promise; not NULL.
    unsafe { *out = std::ptr::null_mut() };
    Ok(())
}

/// A NUL-terminated string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string, unchanged during the call.
unsafe fn text_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(fail(ADJIT_ERR_NULL, format!("{what} is NULL")));
    }
    // SAFETY: the caller's promise; not NULL.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            ADJIT_ERR_ARGUMENT,
            format!("{what} is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Status codes and strings

/// The name of a status code (`"ADJIT_ERR_PARSE"`), or `"unknown status"`: a static string.
#[no_mangle]
pub extern "C" fn adjit_status_name(status: c_int) -> *const c_char {
    usize::try_from(status)
        .ok()
        .and_then(|k| STATUS_NAMES.get(k))
        .map_or(c"unknown status".as_ptr(), |s| s.as_ptr())
}

/// Frees a string this library returned. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn adjit_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the caller's promise: it came from `CString::into_raw`.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The failure for a compile error.
fn compile_failure(e: JitError) -> Failure {
    let code = match e {
        JitError::Internal(_) => ADJIT_ERR_INTERNAL,
        JitError::Verify(_)
        | JitError::Host(_)
        | JitError::Codegen(_)
        | JitError::Unexportable(_)
        | JitError::Target(_) => ADJIT_ERR_COMPILE,
    };
    fail(code, e.to_string())
}

/// The failure for a transform error.
fn transform_failure(e: AdError) -> Failure {
    let code = match e {
        AdError::Internal(_) | AdError::NoJvpRule { .. } => ADJIT_ERR_INTERNAL,
        AdError::NoSuchInput { .. }
        | AdError::NotDifferentiable { .. }
        | AdError::NothingToDifferentiate { .. }
        | AdError::EmptyWrt { .. }
        | AdError::NotScalar { .. }
        | AdError::Invalid(_)
        | AdError::TooLarge { .. } => ADJIT_ERR_TRANSFORM,
    };
    fail(code, e.to_string())
}

/// The failure for a workspace that does not fit in memory.
fn alloc_failure(e: AllocError) -> Failure {
    fail(ADJIT_ERR_OUT_OF_MEMORY, e.to_string())
}

/// The failure for a call whose buffers do not match the signature.
fn call_failure(e: CallError) -> Failure {
    fail(call_code(&e), e.to_string())
}

/// The status code of a call error (the C API makes no batch calls, but every error has one).
fn call_code(e: &CallError) -> c_int {
    let length = |got: usize, needed: usize| {
        if got < needed {
            ADJIT_ERR_SHORT_BUFFER
        } else {
            ADJIT_ERR_LONG_BUFFER
        }
    };
    match e {
        CallError::InputCount { .. } | CallError::OutputCount { .. } => ADJIT_ERR_COUNT,
        CallError::SetCount { .. } => ADJIT_ERR_COUNT,
        CallError::InputLength { ty, got, .. } | CallError::OutputLength { ty, got, .. } => {
            length(*got, ty.numel())
        }
        CallError::BatchInputLength { ty, sets, got, .. }
        | CallError::BatchOutputLength { ty, sets, got, .. } => {
            length(*got, ty.numel().saturating_mul(*sets))
        }
        CallError::ForeignWorkspace => ADJIT_ERR_FOREIGN_WORKSPACE,
        CallError::InSet { error, .. } => call_code(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No entry point can be made to panic from outside (that would be a bug), so `guard` is
    /// given a body that panics: the panic becomes `ADJIT_ERR_INTERNAL` with its message and
    /// place, and the next call on the thread succeeds with no stale message.
    #[test]
    fn guard_turns_a_panic_into_internal() {
        let mut error = std::ptr::null_mut();
        // SAFETY: `error` is writable.
        let code = unsafe { guard(&mut error, || panic!("boom {}", 42)) };
        assert_eq!(code, ADJIT_ERR_INTERNAL);
        assert!(!error.is_null());
        // SAFETY: a message from `guard`, taken back once.
        let message = unsafe { CString::from_raw(error) }.into_string().unwrap();
        assert!(
            message.starts_with("internal error, please report: boom 42 at src/capi/mod.rs:"),
            "{message}"
        );
        // SAFETY: as above.
        let code = unsafe { guard(&mut error, || Ok(())) };
        assert_eq!((code, error.is_null()), (ADJIT_OK, true));
        assert!(PANIC_MESSAGE.with(|m| m.borrow().is_none()));
        assert_eq!(GUARDED.with(Cell::get), 0);
    }
}
