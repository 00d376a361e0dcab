//! The C API's functions (`adjit_func`): parsing and verifying `.ir` text, printing it, and
//! the transforms of `crate::ad` (grad, vjp, jvp, hvp, dense Jacobian and Hessian), each of
//! which also names the results it adds (`grad_x`, `hvp_x`, ...) for the signature queries.

use super::*;
use crate::ad::{resolve_wrt, HvpMode, JacobianMode};
use crate::ir::{self, Func};
use std::ffi::{c_char, c_int, CStr};

/// A verification failure with `line:col` of each issue's instruction, as the command line
/// reports it.
fn invalid(text: &str, lines: &[u32], e: &ir::VerifyError) -> String {
    let source: Vec<&str> = text.lines().collect();
    let issues: Vec<String> = e
        .issues
        .iter()
        .map(|issue| {
            let line = issue
                .inst
                .and_then(|k| lines.get(k))
                .map_or(1, |&l| l as usize);
            let indent = source
                .get(line - 1)
                .map_or(0, |l| l.len() - l.trim_start().len());
            let (quoted, _) = ir::read::quote(&issue.line, 1);
            format!("{line}:{}: {}\n    {quoted}", indent + 1, issue.message)
        })
        .collect();
    issues.join("\n")
}

/// Parses and verifies `.ir` text (its entry function, with the functions its scans call).
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn adjit_parse(
    text: *const c_char,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            out_slot(out)?;
            if text.is_null() {
                return Err(fail(ADJIT_ERR_NULL, "the text is NULL"));
            }
            let bytes = CStr::from_ptr(text).to_bytes();
            let (func, lines) =
                ir::read::parse_bytes(bytes).map_err(|e| fail(ADJIT_ERR_PARSE, e.to_string()))?;
            if let Err(e) = ir::verify(&func) {
                let text = String::from_utf8_lossy(bytes);
                return Err(fail(ADJIT_ERR_PARSE, invalid(&text, &lines, &e)));
            }
            let outputs = func.result_names();
            give(out, AdjitFunc { func, outputs });
            Ok(())
        })
    }
}

/// The function as `.ir` text (which `adjit_parse` reads back), in `*out`.
///
/// # Safety
/// `f` is NULL or a live `adjit_func`; `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn adjit_func_text(
    f: *const AdjitFunc,
    out: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            out_slot(out)?;
            let f = object(f, "the function")?;
            *out = c_string(f.func.to_string()).into_raw();
            Ok(())
        })
    }
}

/// Frees a function. NULL is a no-op.
///
/// # Safety
/// `f` is NULL or a live `adjit_func` that no other thread is using; it is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn adjit_func_free(f: *mut AdjitFunc) {
    if !f.is_null() {
        let free = || {
            // SAFETY: the caller's promise: it came from `Box::into_raw` in `give`.
            drop(unsafe { Box::from_raw(f) });
            Ok(())
        };
        // SAFETY: no message pointer to write.
        unsafe { guard(std::ptr::null_mut(), free) };
    }
}

/// Runs `body` with `ad`'s `wrt` argument read from C: NULL (with `n_wrt` 0) for the default.
///
/// # Safety
/// `wrt` is NULL or points to `n_wrt` NUL-terminated strings.
unsafe fn with_wrt<T>(
    wrt: *const *const c_char,
    n_wrt: usize,
    body: impl FnOnce(Option<&[&str]>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    if wrt.is_null() {
        if n_wrt != 0 {
            return Err(fail(
                ADJIT_ERR_NULL,
                format!("wrt is NULL but n_wrt is {n_wrt}"),
            ));
        }
        return body(None);
    }
    // SAFETY: the caller's promise: `n_wrt` pointers.
    let ptrs = unsafe { std::slice::from_raw_parts(wrt, n_wrt) };
    let names: Result<Vec<&str>, Failure> = ptrs
        .iter()
        .enumerate()
        // SAFETY: the caller's promise: each is NULL or a string.
        .map(|(k, &p)| unsafe { text_arg(p, &format!("wrt[{k}]")) })
        .collect();
    body(Some(&names?))
}

/// The parsed `hvp` mode.
fn hvp_mode(mode: c_int) -> Result<HvpMode, Failure> {
    match mode {
        ADJIT_HVP_FWDREV => Ok(HvpMode::FwdRev),
        ADJIT_HVP_REVREV => Ok(HvpMode::RevRev),
        _ => Err(fail(ADJIT_ERR_ARGUMENT, format!("unknown hvp mode {mode}"))),
    }
}

/// The parsed `jacobian` mode.
fn jacobian_mode(mode: c_int) -> Result<JacobianMode, Failure> {
    match mode {
        ADJIT_JAC_AUTO => Ok(JacobianMode::Auto),
        ADJIT_JAC_FORWARD => Ok(JacobianMode::Forward),
        ADJIT_JAC_REVERSE => Ok(JacobianMode::Reverse),
        _ => Err(fail(
            ADJIT_ERR_ARGUMENT,
            format!("unknown jacobian mode {mode}"),
        )),
    }
}

/// The names of the inputs `wrt` of `f` selects.
fn wrt_names(f: &Func, wrt: Option<&[&str]>) -> Result<Vec<String>, Failure> {
    let wrt = resolve_wrt(f, wrt).map_err(transform_failure)?;
    Ok(wrt.iter().map(|&i| f.params[i].name.clone()).collect())
}

/// The transform's result as a new `adjit_func` in `*out`, its results named by `names` (of
/// the differentiated inputs' names and `f`'s results' names); generic names if they do not
/// match its results (they always should).
///
/// # Safety
/// `f` is NULL or a live `adjit_func`; `wrt` as `with_wrt` needs; `out` and `error` are NULL or
/// writable.
unsafe fn transform(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
    run: impl FnOnce(&Func, Option<&[&str]>) -> Result<Func, Failure>,
    names: impl FnOnce(&[String], &[String]) -> Vec<String>,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        guard(error, || {
            out_slot(out)?;
            let f = object(f, "the function")?;
            with_wrt(wrt, n_wrt, |wrt| {
                let inputs = wrt_names(&f.func, wrt)?;
                let func = run(&f.func, wrt)?;
                let mut outputs = names(&inputs, &f.outputs);
                if outputs.len() != func.results.len() {
                    outputs = (0..func.results.len()).map(|k| format!("y{k}")).collect();
                }
                give(out, AdjitFunc { func, outputs });
                Ok(())
            })
        })
    }
}

/// A transform of `crate::ad` with its error as a failure.
fn adapt(
    t: fn(&Func, Option<&[&str]>) -> Result<Func, AdError>,
) -> impl FnOnce(&Func, Option<&[&str]>) -> Result<Func, Failure> {
    move |f, wrt| t(f, wrt).map_err(transform_failure)
}

/// `first` followed by `prefix_x` for each input `x`.
fn prefixed(first: &[String], prefix: &str, inputs: &[String]) -> Vec<String> {
    let added = inputs.iter().map(|x| format!("{prefix}_{x}"));
    first.iter().cloned().chain(added).collect()
}

/// `(y, grad...)`: value and gradient (`crate::ad::grad`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_grad(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    let names = |x: &[String], y: &[String]| prefixed(&y[..1.min(y.len())], "grad", x);
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, adapt(ad::grad), names) }
}

/// `(outputs..., vjp...)`: vector-Jacobian product (`crate::ad::vjp`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_vjp(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    let names = |x: &[String], y: &[String]| prefixed(y, "vjp", x);
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, adapt(ad::vjp), names) }
}

/// `(outputs..., jvp...)`: Jacobian-vector product, one tangent per result (`crate::ad::jvp`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_jvp(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    let names = |_: &[String], y: &[String]| prefixed(y, "jvp", y);
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, adapt(ad::jvp), names) }
}

/// `(y, grad..., hvp...)`: Hessian-vector product in a mode (`crate::ad::hvp_with`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_hvp(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    mode: c_int,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe { hvp_transform(f, wrt, n_wrt, mode, out, error, false) }
}

/// `(hvp...)`: the Hessian-vector product alone, in a mode (`crate::ad::hvp_only`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_hvp_only(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    mode: c_int,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe { hvp_transform(f, wrt, n_wrt, mode, out, error, true) }
}

/// `adjit_hvp`, or with `only` `adjit_hvp_only`: outputs `(y, grad..., hvp...)` or `(hvp...)`.
///
/// # Safety
/// As `transform`.
unsafe fn hvp_transform(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    mode: c_int,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
    only: bool,
) -> c_int {
    let run = |f: &Func, wrt: Option<&[&str]>| {
        let mode = hvp_mode(mode)?;
        let h = if only {
            ad::hvp_only(f, wrt, mode)
        } else {
            ad::hvp_with(f, wrt, mode)
        };
        h.map_err(transform_failure)
    };
    let names = |x: &[String], y: &[String]| {
        let grad = match only {
            true => Vec::new(),
            false => prefixed(&y[..1.min(y.len())], "grad", x),
        };
        prefixed(&grad, "hvp", x)
    };
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, run, names) }
}

/// `(outputs..., jac...)`: dense Jacobians, one per result and input (`crate::ad::jacobian`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_jacobian(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    mode: c_int,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    let run = |f: &Func, wrt: Option<&[&str]>| {
        ad::jacobian(f, wrt, jacobian_mode(mode)?).map_err(transform_failure)
    };
    let names = |x: &[String], y: &[String]| {
        let blocks = y
            .iter()
            .flat_map(|r| x.iter().map(move |a| format!("jac_{r}_{a}")));
        y.iter().cloned().chain(blocks).collect()
    };
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, run, names) }
}

/// `(y, grad..., hess...)`: value, gradient and dense Hessian blocks (`crate::ad::hessian`).
///
/// # Safety
/// As `transform`.
#[no_mangle]
pub unsafe extern "C" fn adjit_hessian(
    f: *const AdjitFunc,
    wrt: *const *const c_char,
    n_wrt: usize,
    out: *mut *mut AdjitFunc,
    error: *mut *mut c_char,
) -> c_int {
    let names = |x: &[String], y: &[String]| {
        let grad = prefixed(&y[..1.min(y.len())], "grad", x);
        let blocks = x
            .iter()
            .flat_map(|a| x.iter().map(move |b| format!("hess_{a}_{b}")));
        grad.into_iter().chain(blocks).collect()
    };
    // SAFETY: the caller's promises, passed on.
    unsafe { transform(f, wrt, n_wrt, out, error, adapt(ad::hessian), names) }
}
