//! The C API's compiled code (`adjit_compiled`): compiling an `adjit_func`, the signature
//! queries (names, ranks, shapes, element counts, element types of inputs and outputs),
//! workspaces, and `adjit_call`, which checks every buffer the caller passes before running the
//! code without allocating.

use super::*;
use crate::ir::{DType, Type};
use std::ffi::{c_char, c_int};

/// A port of a signature: name, shape, element count, element type.
fn port(name: &str, ty: Type) -> Port {
    Port {
        name: c_string(name.to_string()),
        shape: ty.shape.to_vec().into_boxed_slice(),
        len: ty.numel(),
        dtype: ty.dtype,
    }
}

/// Compiles with the default options.
fn compile(f: &AdjitFunc) -> Result<AdjitCompiled, Failure> {
    let compiled = jit::compile(&f.func).map_err(compile_failure)?;
    let sig = compiled.signature();
    let inputs = sig.inputs.iter().map(|(n, t)| port(n, *t)).collect();
    let outputs = sig
        .outputs
        .iter()
        .zip(&f.outputs)
        .map(|(t, n)| port(n, *t))
        .collect();
    Ok(AdjitCompiled {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name: c_string(sig.name.clone()),
        inputs,
        outputs,
        compiled,
    })
}

/// Compiles a function to native code (`crate::jit::compile`, default options).
///
/// # Safety
/// `f` is NULL or a live `adjit_func`; `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn adjit_compile(
    f: *const AdjitFunc,
    out: *mut *mut AdjitCompiled,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            out_slot(out)?;
            let c = compile(object(f, "the function")?)?;
            give(out, c);
            Ok(())
        })
    }
}

/// Frees compiled code. NULL is a no-op.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled` that no thread is using; it is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn adjit_compiled_free(c: *mut AdjitCompiled) {
    if !c.is_null() {
        let free = || {
            // SAFETY: the caller's promise: it came from `Box::into_raw` in `give`.
            drop(unsafe { Box::from_raw(c) });
            Ok(())
        };
        // SAFETY: no message pointer to write.
        unsafe { guard(std::ptr::null_mut(), free) };
    }
}

// ---------------------------------------------------------------------------------------------
// Signature queries: plain values, with a documented answer for NULL or an index out of range.

/// Input (`output` false) or output `i` of `c`, if both exist.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`.
unsafe fn port_of<'a>(c: *const AdjitCompiled, output: bool, i: usize) -> Option<&'a Port> {
    // SAFETY: the caller's promise.
    let c = unsafe { c.as_ref() }?;
    if output {
        c.outputs.get(i)
    } else {
        c.inputs.get(i)
    }
}

/// The function's name (without `@`), owned by `c`; NULL if `c` is NULL.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`.
#[no_mangle]
pub unsafe extern "C" fn adjit_name(c: *const AdjitCompiled) -> *const c_char {
    // SAFETY: the caller's promise.
    unsafe { c.as_ref() }.map_or(std::ptr::null(), |c| c.name.as_ptr())
}

/// Number of inputs; 0 if `c` is NULL.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`.
#[no_mangle]
pub unsafe extern "C" fn adjit_n_in(c: *const AdjitCompiled) -> usize {
    // SAFETY: the caller's promise.
    unsafe { c.as_ref() }.map_or(0, |c| c.inputs.len())
}

/// Number of outputs; 0 if `c` is NULL.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`.
#[no_mangle]
pub unsafe extern "C" fn adjit_n_out(c: *const AdjitCompiled) -> usize {
    // SAFETY: the caller's promise.
    unsafe { c.as_ref() }.map_or(0, |c| c.outputs.len())
}

/// Defines the queries of one input and one output: `$in`/`$out`, with `$default` for NULL or
/// an index out of range, and `$get` reading the port.
macro_rules! port_queries {
    ($(#[$doc:meta])* $in:ident, $out:ident, $ret:ty, $default:expr, $get:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `c` is NULL or a live `adjit_compiled`.
        #[no_mangle]
        pub unsafe extern "C" fn $in(c: *const AdjitCompiled, i: usize) -> $ret {
            // SAFETY: the caller's promise.
            unsafe { port_of(c, false, i) }.map_or($default, $get)
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// `c` is NULL or a live `adjit_compiled`.
        #[no_mangle]
        pub unsafe extern "C" fn $out(c: *const AdjitCompiled, i: usize) -> $ret {
            // SAFETY: the caller's promise.
            unsafe { port_of(c, true, i) }.map_or($default, $get)
        }
    };
}

port_queries!(
    /// The name of input or output `i`, owned by `c`; NULL if there is none.
    adjit_name_in, adjit_name_out, *const c_char, std::ptr::null(), |p| p.name.as_ptr()
);
port_queries!(
    /// The rank of input or output `i`; -1 if there is none.
    adjit_rank_in, adjit_rank_out, c_int, -1, |p| p.shape.len() as c_int
);
port_queries!(
    /// The shape of input or output `i` (rank elements; not NULL for rank 0), owned by `c`;
    /// NULL if there is none.
    adjit_shape_in, adjit_shape_out, *const usize, std::ptr::null(), |p| p.shape.as_ptr()
);
port_queries!(
    /// The element count of input or output `i`; 0 if there is none.
    adjit_len_in, adjit_len_out, usize, 0, |p| p.len
);
port_queries!(
    /// The element type of input or output `i`: `ADJIT_F64` (0) or `ADJIT_BOOL` (1); -1 if
    /// there is none.
    adjit_dtype_in, adjit_dtype_out, c_int, -1, |p| match p.dtype {
        DType::F64 => ADJIT_F64,
        DType::Bool => ADJIT_BOOL,
    }
);

/// Size of a workspace in doubles (constants included); 0 if `c` is NULL.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`.
#[no_mangle]
pub unsafe extern "C" fn adjit_workspace_len(c: *const AdjitCompiled) -> usize {
    // SAFETY: the caller's promise.
    unsafe { c.as_ref() }.map_or(0, |c| crate::call::Executor::workspace_len(&c.compiled))
}

// ---------------------------------------------------------------------------------------------
// Workspaces and calls

/// A new workspace for calls of `c`, its constants in place.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`; `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn adjit_workspace_new(
    c: *const AdjitCompiled,
    out: *mut *mut AdjitWorkspace,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            out_slot(out)?;
            let c = object(c, "the compiled function")?;
            let ws = c.compiled.try_workspace().map_err(alloc_failure)?;
            give(out, AdjitWorkspace { owner: c.id, ws });
            Ok(())
        })
    }
}

/// Frees a workspace. NULL is a no-op.
///
/// # Safety
/// `ws` is NULL or a live `adjit_workspace` that no thread is using; it is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn adjit_workspace_free(ws: *mut AdjitWorkspace) {
    if !ws.is_null() {
        let free = || {
            // SAFETY: the caller's promise: it came from `Box::into_raw` in `give`.
            drop(unsafe { Box::from_raw(ws) });
            Ok(())
        };
        // SAFETY: no message pointer to write.
        unsafe { guard(std::ptr::null_mut(), free) };
    }
}

/// `n` elements of a C array, empty (and not read) if `n` is 0, or `ADJIT_ERR_NULL`.
///
/// # Safety
/// `p` is NULL or points to `n` elements, unchanged during the borrow.
unsafe fn array<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(fail(ADJIT_ERR_NULL, format!("{what} is NULL")));
    }
    // SAFETY: the caller's promise; not NULL, and a C array is aligned.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Checks buffers against ports: non-NULL, aligned, exactly as long as the port.
fn check_buffers<T>(
    ptrs: &[*const T],
    lens: &[usize],
    ports: &[Port],
    what: &str,
) -> Result<(), Failure> {
    for (k, ((&p, &got), port)) in ptrs.iter().zip(lens).zip(ports).enumerate() {
        let name = port.name.to_string_lossy();
        if p.is_null() {
            return Err(fail(
                ADJIT_ERR_NULL,
                format!("{what} {k} ('{name}') is NULL"),
            ));
        }
        if !(p as usize).is_multiple_of(std::mem::align_of::<f64>()) {
            return Err(fail(
                ADJIT_ERR_ARGUMENT,
                format!("{what} {k} ('{name}') is not aligned for doubles"),
            ));
        }
        if got != port.len {
            let code = if got < port.len {
                ADJIT_ERR_SHORT_BUFFER
            } else {
                ADJIT_ERR_LONG_BUFFER
            };
            let need = port.len;
            return Err(fail(
                code,
                format!("{what} {k} ('{name}') needs {need} doubles, got {got}"),
            ));
        }
    }
    Ok(())
}

/// The byte range of a buffer of `len` doubles at `p`.
fn bytes<T>(p: *const T, len: usize) -> std::ops::Range<usize> {
    let start = p as usize;
    start..start.saturating_add(len.saturating_mul(std::mem::size_of::<f64>()))
}

/// Checks that no output overlaps an input or another output (empty buffers overlap nothing).
fn check_overlap(
    ins: &[*const f64],
    in_len: &[usize],
    outs: &[*mut f64],
    out_len: &[usize],
) -> Result<(), Failure> {
    let overlap = |a: std::ops::Range<usize>, b: std::ops::Range<usize>| {
        !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
    };
    for (k, (&y, &n)) in outs.iter().zip(out_len).enumerate() {
        let out = bytes(y, n);
        let input = (ins.iter().zip(in_len)).position(|(&x, &m)| overlap(out.clone(), bytes(x, m)));
        if let Some(i) = input {
            let msg = format!("output buffer {k} overlaps input buffer {i}");
            return Err(fail(ADJIT_ERR_OVERLAP, msg));
        }
        let other = (outs.iter().zip(out_len).take(k))
            .position(|(&z, &m)| overlap(out.clone(), bytes(z, m)));
        if let Some(j) = other {
            let msg = format!("output buffers {j} and {k} overlap");
            return Err(fail(ADJIT_ERR_OVERLAP, msg));
        }
    }
    Ok(())
}

/// Calls compiled code: `n_in` input buffers `inputs[i]` of `in_len[i]` doubles and `n_out`
/// output buffers likewise, checked against the signature, with a workspace made for `c`.
/// Allocates nothing unless it fails.
///
/// # Safety
/// `c` is NULL or a live `adjit_compiled`; `ws` is NULL or a live `adjit_workspace` no other
/// thread is using; the arrays are NULL or hold `n_in` (`n_out`) elements; each buffer is NULL
/// or valid for `in_len[i]` reads (`out_len[i]` writes) of doubles; `error` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn adjit_call(
    c: *const AdjitCompiled,
    ws: *mut AdjitWorkspace,
    inputs: *const *const f64,
    in_len: *const usize,
    n_in: usize,
    outputs: *const *mut f64,
    out_len: *const usize,
    n_out: usize,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            let c = object(c, "the compiled function")?;
            let ws = ws
                .as_mut()
                .ok_or_else(|| fail(ADJIT_ERR_NULL, "the workspace is NULL"))?;
            if ws.owner != c.id {
                return Err(call_failure(CallError::ForeignWorkspace));
            }
            for (what, got, expected) in [
                ("inputs", n_in, c.inputs.len()),
                ("outputs", n_out, c.outputs.len()),
            ] {
                if got != expected {
                    let msg = format!("expected {expected} {what}, got {got}");
                    return Err(fail(ADJIT_ERR_COUNT, msg));
                }
            }
            let ins = array(inputs, n_in, "the inputs array")?;
            let in_len = array(in_len, n_in, "the in_len array")?;
            let outs = array(outputs, n_out, "the outputs array")?;
            let out_len = array(out_len, n_out, "the out_len array")?;
            check_buffers(ins, in_len, &c.inputs, "input buffer")?;
            let outs_read: &[*const f64] = std::slice::from_raw_parts(outs.as_ptr().cast(), n_out);
            check_buffers(outs_read, out_len, &c.outputs, "output buffer")?;
            check_overlap(ins, in_len, outs, out_len)?;
            // Checked above: the workspace is `c`'s, one aligned buffer per parameter and per
            // result of exactly its length, outputs overlapping nothing; the caller promised
            // the buffers are valid for those lengths.
            c.compiled.call_unchecked(&mut ws.ws, ins, outs);
            Ok(())
        })
    }
}
