//! The C header of an exported object: the calling convention, documented once, and each
//! function's declarations with its arguments and results listed by name and shape.

use super::Entry;
use crate::ir::Type;
use std::fmt::Write;

/// The header for `entries`, whose workspaces hold `work[i]` doubles; `stem` names the
/// object (`stem.o`) and the include guard.
pub fn header(stem: &str, entries: &[Entry], work: &[usize], target: Option<&str>) -> String {
    let mut h = String::new();
    let target_line = match target {
        None => "this machine's, with its instruction-set extensions (FMA, AVX, ...).".to_string(),
        Some(t) => format!("{t}, baseline (no extensions beyond the architecture's base)."),
    };
    let guard = format!("ADJIT_{}_H", stem.to_ascii_uppercase());
    h += &format!(
        "/* {stem}.h: the C interface of {stem}.o, written by `adjit export` (adjit {}).
 *
 * Every function F declared here follows one convention:
 *   int F(const double *const *arg, double *const *res, double *work);
 *     arg   one pointer per argument, in the order listed below, each to the argument's
 *           elements: row-major, contiguous;
 *     res   one pointer per result, likewise; the call writes them. Results must overlap
 *           neither the arguments nor each other (not checked);
 *     work  F_work() doubles of scratch memory, provided by the caller;
 *     returns 0, or 1 if arg, res or work is NULL where F needs it. The pointers inside arg
 *     and res are not checked: each must point to its buffer.
 *   Constants are built in, so the first call needs no setup. F allocates nothing and keeps no
 *   global state: it is reentrant, and threads may call it at once, each with its own work.
 *   Queries, for sizing buffers:
 *     size_t F_work(void);  int F_n_in(void);  int F_n_out(void);
 *     const char *F_name_in(int i);  int F_rank_in(int i);
 *     const size_t *F_shape_in(int i);  size_t F_numel_in(int i);
 *   and the same with _out for results; out of range they return NULL, -1, NULL and 0.
 *
 * CPU: TARGET_LINE
 * Link with the C math library:  cc main.c {stem}.o -lm
 */
#ifndef {guard}
#define {guard}

#include <stddef.h>

#ifdef __cplusplus
extern \"C\" {{
#endif
",
        env!("CARGO_PKG_VERSION")
    )
    .replace("TARGET_LINE", &target_line);
    for (e, &work) in entries.iter().zip(work) {
        entry(&mut h, e, work);
    }
    let _ = write!(
        h,
        "
#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"
    );
    h
}

/// The declarations of one entry, after a comment listing its arguments and results.
fn entry(h: &mut String, e: &Entry, work: usize) {
    let f = &e.name;
    let _ = writeln!(h, "\n/* {f}");
    let _ = writeln!(h, " *   arguments (arg[i]):");
    for (i, p) in e.func.params.iter().enumerate() {
        let _ = writeln!(h, " *     {i}  {}", described(&p.name, p.ty));
    }
    let _ = writeln!(h, " *   results (res[i]):");
    for (i, (name, ty)) in e.outputs.iter().zip(e.func.result_types()).enumerate() {
        let _ = writeln!(h, " *     {i}  {}", described(name, ty));
    }
    let _ = writeln!(h, " *   work: {work} doubles\n */");
    let _ = writeln!(
        h,
        "int {f}(const double *const *arg, double *const *res, double *work);"
    );
    let _ = writeln!(h, "size_t {f}_work(void);");
    let _ = writeln!(h, "int {f}_n_in(void);");
    let _ = writeln!(h, "int {f}_n_out(void);");
    for side in ["in", "out"] {
        let _ = writeln!(h, "const char *{f}_name_{side}(int i);");
        let _ = writeln!(h, "int {f}_rank_{side}(int i);");
        let _ = writeln!(h, "const size_t *{f}_shape_{side}(int i);");
        let _ = writeln!(h, "size_t {f}_numel_{side}(int i);");
    }
}

/// `name: double[2,3] (6 elements)`, safe inside a C comment.
fn described(name: &str, ty: Type) -> String {
    let dims: Vec<String> = ty.shape.iter().map(|d| d.to_string()).collect();
    let kind = if ty.dtype == crate::ir::DType::F64 {
        "double"
    } else {
        "bool as double"
    };
    if ty.rank() == 0 {
        return format!(
            "{}: {kind}, a scalar (1 element)",
            name.replace("*/", "* /")
        );
    }
    let count = match ty.numel() {
        1 => "1 element".to_string(),
        n => format!("{n} elements"),
    };
    format!(
        "{}: {kind}[{}] ({count})",
        name.replace("*/", "* /"),
        dims.join(",")
    )
}
