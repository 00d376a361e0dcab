//! The C API (`include/adjit.h`, `src/capi/`), called from Rust through its `extern "C"`
//! functions: on every shipped model its f, grad and hvp (jvp and Jacobian for vector-valued
//! models) equal the interpreter bit for bit, and its signature queries describe the function;
//! bad text, NULL pointers, wrong counts, short and long buffers, overlapping buffers, foreign
//! workspaces, bad modes and a workspace beyond memory each return their code and a message.
//! (Leaks and allocation-free calls are checked in `capi_leak.rs`, its own binary.)

use adjit::call::Executor;
use adjit::capi::*;
use adjit::ir::{DType, Func};
use adjit::ops::unary::{adjit_exp, adjit_sin};
use adjit::{ad, interp, ir};
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut};

/// A status and the message that came with it (freed).
type Status = (c_int, String);

/// Takes an error message from the library, freeing it.
fn message(e: *mut c_char) -> String {
    if e.is_null() {
        return String::new();
    }
    // SAFETY: a string from the library, freed once here.
    unsafe {
        let s = CStr::from_ptr(e).to_string_lossy().into_owned();
        adjit_string_free(e);
        s
    }
}

/// `Ok` for `ADJIT_OK` (which must come with no message), else the code and message.
fn status(code: c_int, e: *mut c_char) -> Result<(), Status> {
    let m = message(e);
    if code == ADJIT_OK {
        assert!(m.is_empty(), "success with a message: {m}");
        Ok(())
    } else {
        assert!(!m.is_empty(), "{code} without a message");
        Err((code, m))
    }
}

/// Frees its objects when dropped.
#[derive(Default)]
struct Owned {
    funcs: Vec<*mut AdjitFunc>,
    compiled: Vec<*mut AdjitCompiled>,
    workspaces: Vec<*mut AdjitWorkspace>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: each pointer came from the library and is freed once, here.
        unsafe {
            self.workspaces
                .iter()
                .for_each(|&w| adjit_workspace_free(w));
            self.compiled.iter().for_each(|&c| adjit_compiled_free(c));
            self.funcs.iter().for_each(|&f| adjit_func_free(f));
        }
    }
}

impl Owned {
    fn parse(&mut self, text: &str) -> Result<*mut AdjitFunc, Status> {
        let text = CString::new(text).unwrap();
        let (mut f, mut e) = (null_mut(), null_mut());
        // SAFETY: valid string and out pointers.
        let code = unsafe { adjit_parse(text.as_ptr(), &mut f, &mut e) };
        status(code, e)?;
        assert!(!f.is_null());
        self.funcs.push(f);
        Ok(f)
    }

    /// `t` of `f` (grad, hvp, ...) for the default inputs.
    fn derive(&mut self, f: *const AdjitFunc, t: Transform) -> Result<*mut AdjitFunc, Status> {
        let (mut g, mut e) = (null_mut(), null_mut());
        // SAFETY: a live function and valid out pointers.
        let code = unsafe { t(f, null(), 0, &mut g, &mut e) };
        status(code, e)?;
        self.funcs.push(g);
        Ok(g)
    }

    fn compile(&mut self, f: *const AdjitFunc) -> Result<*mut AdjitCompiled, Status> {
        let (mut c, mut e) = (null_mut(), null_mut());
        // SAFETY: a live function and valid out pointers.
        let code = unsafe { adjit_compile(f, &mut c, &mut e) };
        status(code, e)?;
        self.compiled.push(c);
        Ok(c)
    }

    fn workspace(&mut self, c: *const AdjitCompiled) -> Result<*mut AdjitWorkspace, Status> {
        let (mut w, mut e) = (null_mut(), null_mut());
        // SAFETY: a live compiled function and valid out pointers.
        let code = unsafe { adjit_workspace_new(c, &mut w, &mut e) };
        status(code, e)?;
        self.workspaces.push(w);
        Ok(w)
    }
}

/// The shape of `adjit_grad`, `adjit_jvp`, ... (with a mode bound for hvp and jacobian).
type Transform = unsafe extern "C" fn(
    *const AdjitFunc,
    *const *const c_char,
    usize,
    *mut *mut AdjitFunc,
    *mut *mut c_char,
) -> c_int;

/// `$name`, a `Transform`: `$api` with its mode bound to `$mode`.
macro_rules! with_mode {
    ($name:ident, $api:ident, $mode:expr) => {
        unsafe extern "C" fn $name(
            f: *const AdjitFunc,
            w: *const *const c_char,
            n: usize,
            out: *mut *mut AdjitFunc,
            e: *mut *mut c_char,
        ) -> c_int {
            // SAFETY: the caller's promises, passed on.
            unsafe { $api(f, w, n, $mode, out, e) }
        }
    };
}

with_mode!(hvp_fwdrev, adjit_hvp, ADJIT_HVP_FWDREV);
with_mode!(hvp_revrev, adjit_hvp, ADJIT_HVP_REVREV);
with_mode!(hvp_only_fwdrev, adjit_hvp_only, ADJIT_HVP_FWDREV);
with_mode!(hvp_only_revrev, adjit_hvp_only, ADJIT_HVP_REVREV);
with_mode!(jacobian_forward, adjit_jacobian, ADJIT_JAC_FORWARD);

/// `adjit_call` on vectors: lengths from the vectors, so tests can make them wrong.
fn call(
    c: *const AdjitCompiled,
    ws: *mut AdjitWorkspace,
    inputs: &[Vec<f64>],
    outputs: &mut [Vec<f64>],
) -> Result<(), Status> {
    let ins: Vec<*const f64> = inputs.iter().map(|x| x.as_ptr()).collect();
    let in_len: Vec<usize> = inputs.iter().map(Vec::len).collect();
    let outs: Vec<*mut f64> = outputs.iter_mut().map(|y| y.as_mut_ptr()).collect();
    let out_len: Vec<usize> = outputs.iter().map(Vec::len).collect();
    let mut e = null_mut();
    // SAFETY: every buffer holds the length given.
    let code = unsafe {
        adjit_call(
            c,
            ws,
            ins.as_ptr(),
            in_len.as_ptr(),
            ins.len(),
            outs.as_ptr(),
            out_len.as_ptr(),
            outs.len(),
            &mut e,
        )
    };
    status(code, e)
}

/// Zeroed outputs of the lengths the C API reports.
fn outputs_of(c: *const AdjitCompiled) -> Vec<Vec<f64>> {
    // SAFETY: a live compiled function.
    let n = unsafe { adjit_n_out(c) };
    (0..n)
        // SAFETY: a live compiled function, an index in range.
        .map(|j| vec![0.0; unsafe { adjit_len_out(c, j) }])
        .collect()
}

fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        })
}

fn c_str(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: a string owned by a live object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The signature queries of `c` describe `f`, whose outputs are named `names`.
fn check_signature(c: *const AdjitCompiled, f: &Func, names: Option<&[&str]>) {
    let sig = adjit::call::Signature::of(f);
    // SAFETY: a live compiled function; indices in range, then one past.
    unsafe {
        assert_eq!(c_str(adjit_name(c)), sig.name);
        assert_eq!(adjit_n_in(c), sig.inputs.len());
        assert_eq!(adjit_n_out(c), sig.outputs.len());
        for (i, (name, ty)) in sig.inputs.iter().enumerate() {
            assert_eq!(c_str(adjit_name_in(c, i)), *name);
            assert_eq!(adjit_rank_in(c, i), ty.rank() as c_int);
            let shape = std::slice::from_raw_parts(adjit_shape_in(c, i), ty.rank());
            assert_eq!(shape, ty.shape.to_vec().as_slice());
            assert_eq!(adjit_len_in(c, i), ty.numel());
            let dtype = if ty.dtype == DType::F64 {
                ADJIT_F64
            } else {
                ADJIT_BOOL
            };
            assert_eq!(adjit_dtype_in(c, i), dtype);
        }
        for (j, ty) in sig.outputs.iter().enumerate() {
            assert_eq!(adjit_rank_out(c, j), ty.rank() as c_int);
            let shape = std::slice::from_raw_parts(adjit_shape_out(c, j), ty.rank());
            assert_eq!(shape, ty.shape.to_vec().as_slice());
            assert_eq!(adjit_len_out(c, j), ty.numel());
            assert!(!adjit_name_out(c, j).is_null());
            if let Some(names) = names {
                assert_eq!(c_str(adjit_name_out(c, j)), names[j]);
            }
        }
        let (n_in, n_out) = (sig.inputs.len(), sig.outputs.len());
        assert!(adjit_name_in(c, n_in).is_null() && adjit_name_out(c, n_out).is_null());
        assert_eq!((adjit_rank_in(c, n_in), adjit_rank_out(c, n_out)), (-1, -1));
        assert!(adjit_shape_in(c, n_in).is_null() && adjit_shape_out(c, n_out).is_null());
        assert_eq!((adjit_len_in(c, n_in), adjit_len_out(c, n_out)), (0, 0));
        assert_eq!(
            (adjit_dtype_in(c, n_in), adjit_dtype_out(c, n_out)),
            (-1, -1)
        );
    }
}

/// Derives `t` of a model through the C API and through Rust (`rust`), compiles the first,
/// and checks its signature and its values on default inputs against the interpreter.
fn agrees(name: &str, text: &str, t: Option<Transform>, rust: impl Fn(&Func) -> Func) {
    let mut o = Owned::default();
    let f = o.parse(text).unwrap();
    let g = match t {
        Some(t) => o.derive(f, t).unwrap_or_else(|e| panic!("{name}: {e:?}")),
        None => f,
    };
    let c = o.compile(g).unwrap();
    let want_func = rust(&ir::parse(text).unwrap());
    check_signature(c, &want_func, None);
    let inputs = adjit::inputs::defaults(&want_func, 2);
    let want = interp::eval(&want_func, &inputs).unwrap();
    let ws = o.workspace(c).unwrap();
    let mut got = outputs_of(c);
    call(c, ws, &inputs, &mut got).unwrap();
    assert!(
        same_bits(&got, &want),
        "{name}: C API differs from the interpreter"
    );
    // A second call on the same workspace gives the same bits.
    let mut again = outputs_of(c);
    call(c, ws, &inputs, &mut again).unwrap();
    assert!(same_bits(&again, &want), "{name}: second call differs");
}

#[test]
fn every_model_f_grad_hvp_equal_the_interpreter() {
    for m in adjit::models::ALL {
        agrees(&format!("{} f", m.name), m.text, None, Func::clone);
        if m.scalar() {
            let grad = |f: &Func| ad::grad(f, None).unwrap();
            agrees(&format!("{} grad", m.name), m.text, Some(adjit_grad), grad);
            let hvp = |f: &Func| ad::hvp(f, None).unwrap();
            agrees(&format!("{} hvp", m.name), m.text, Some(hvp_fwdrev), hvp);
        } else {
            let jvp = |f: &Func| ad::jvp(f, None).unwrap();
            agrees(&format!("{} jvp", m.name), m.text, Some(adjit_jvp), jvp);
            let mode = ad::JacobianMode::Forward;
            let jac = |f: &Func| ad::jacobian(f, None, mode).unwrap();
            agrees(
                &format!("{} jac", m.name),
                m.text,
                Some(jacobian_forward),
                jac,
            );
        }
    }
}

#[test]
fn other_transforms_equal_the_interpreter() {
    let m = adjit::models::find("neuron").unwrap();
    let revrev = |f: &Func| ad::hvp_with(f, None, ad::HvpMode::RevRev).unwrap();
    agrees("neuron hvp revrev", m.text, Some(hvp_revrev), revrev);
    let only = |f: &Func| ad::hvp_only(f, None, ad::HvpMode::FwdRev).unwrap();
    agrees("neuron hvp_only", m.text, Some(hvp_only_fwdrev), only);
    let only = |f: &Func| ad::hvp_only(f, None, ad::HvpMode::RevRev).unwrap();
    agrees(
        "neuron hvp_only revrev",
        m.text,
        Some(hvp_only_revrev),
        only,
    );
    let vjp = |f: &Func| ad::vjp(f, None).unwrap();
    agrees("neuron vjp", m.text, Some(adjit_vjp), vjp);
    let hessian = |f: &Func| ad::hessian(f, None).unwrap();
    agrees("neuron hessian", m.text, Some(adjit_hessian), hessian);
    let b = adjit::models::find("bratu").unwrap();
    let jvp = |f: &Func| ad::jvp(f, None).unwrap();
    agrees("bratu jvp", b.text, Some(adjit_jvp), jvp);
}

const TWO: &str = "func @two(x: f64[2], s: f64[]) -> (f64[]) {
    e: f64[2] = exp x
    t: f64[] = reduce_sum e [axes=[0]]
    f: f64[] = mul t, s
    return f
}
";

#[test]
fn outputs_are_named_by_the_transform() {
    let mut o = Owned::default();
    let f = o.parse(TWO).unwrap();
    let rust = ir::parse(TWO).unwrap();
    let c = o.compile(f).unwrap();
    check_signature(c, &rust, Some(&["f"]));
    let ws_len = adjit::jit::compile(&rust).unwrap().workspace_len();
    // SAFETY: a live compiled function.
    assert_eq!(unsafe { adjit_workspace_len(c) }, ws_len);
    let g = o.derive(f, hvp_fwdrev).unwrap();
    let c = o.compile(g).unwrap();
    let names = ["f", "grad_x", "grad_s", "hvp_x", "hvp_s"];
    check_signature(c, &ad::hvp(&rust, None).unwrap(), Some(&names));
    let g = o.derive(f, hvp_only_fwdrev).unwrap();
    let c = o.compile(g).unwrap();
    let only = ad::hvp_only(&rust, None, ad::HvpMode::FwdRev).unwrap();
    check_signature(c, &only, Some(&["hvp_x", "hvp_s"]));
    let h = o.derive(f, adjit_hessian).unwrap();
    let c = o.compile(h).unwrap();
    let names = [
        "f", "grad_x", "grad_s", "hess_x_x", "hess_x_s", "hess_s_x", "hess_s_s",
    ];
    check_signature(c, &ad::hessian(&rust, None).unwrap(), Some(&names));
    // With wrt: only s.
    let wrt = [c"s".as_ptr()];
    let (mut g, mut e) = (null_mut(), null_mut());
    // SAFETY: a live function, one name, valid out pointers.
    let code = unsafe { adjit_grad(f, wrt.as_ptr(), 1, &mut g, &mut e) };
    status(code, e).unwrap();
    o.funcs.push(g);
    let c = o.compile(g).unwrap();
    let want = ad::grad(&rust, Some(&["s"])).unwrap();
    check_signature(c, &want, Some(&["f", "grad_s"]));
    let m = adjit::models::find("tiny").unwrap();
    let f = o.parse(m.text).unwrap();
    let g = o.derive(f, adjit_grad).unwrap();
    let c = o.compile(g).unwrap();
    check_signature(
        c,
        &ad::grad(&ir::parse(m.text).unwrap(), None).unwrap(),
        Some(&["y", "grad_x"]),
    );
}

#[test]
fn text_round_trips() {
    let mut o = Owned::default();
    let f = o.parse(TWO).unwrap();
    let g = o.derive(f, adjit_grad).unwrap();
    let (mut text, mut e) = (null_mut(), null_mut());
    // SAFETY: a live function and valid out pointers.
    let code = unsafe { adjit_func_text(g, &mut text, &mut e) };
    status(code, e).unwrap();
    let text = message(text);
    let want = ad::grad(&ir::parse(TWO).unwrap(), None).unwrap();
    assert_eq!(text, want.to_string());
    assert_eq!(ir::parse(&text).unwrap(), want);
}

#[test]
fn bad_text_is_a_parse_error_with_line_and_column() {
    let mut o = Owned::default();
    let cases = [
        (
            "func @f(x: f64[2]) -> (f64[]) {\n    y: f64[] = frobnicate x\n    return y\n}\n",
            "2:16:",
        ),
        (
            "func @f(x: f64[2]) -> (f64[]) {\n    y: f64[] = exp x\n    return y\n}\n",
            "2:",
        ),
        ("func @f(x: f64[2]) -> (f64[]) {\n    return z\n}\n", "2:"),
        ("func @f(x: f64[2) -> (f64[]) {\n", "1:"),
        ("", "1:1:"),
    ];
    for (text, want) in cases {
        let (code, msg) = o.parse(text).unwrap_err();
        assert_eq!(code, ADJIT_ERR_PARSE, "{text}: {msg}");
        assert!(
            msg.starts_with(want),
            "{text}: message {msg:?} lacks {want}"
        );
    }
    // Not UTF-8: the position of the bad byte.
    let bytes = b"func @f(x: f64[2]) -> (f64[]) {\n    y\xff\n}\0";
    let (mut f, mut e) = (null_mut(), null_mut());
    // SAFETY: a NUL-terminated string, valid out pointers.
    let code = unsafe { adjit_parse(bytes.as_ptr().cast(), &mut f, &mut e) };
    let (code, msg) = status(code, e).unwrap_err();
    assert_eq!(code, ADJIT_ERR_PARSE);
    assert!(msg.starts_with("2:6:") && msg.contains("UTF-8"), "{msg}");
    assert!(f.is_null());
}

/// The transforms taking `(f, wrt, n_wrt, out, error)`, modes fixed.
const TRANSFORMS: [Transform; 6] = [
    adjit_grad,
    adjit_vjp,
    adjit_jvp,
    adjit_hessian,
    hvp_fwdrev,
    hvp_only_fwdrev,
];

#[test]
fn null_pointers_are_refused() {
    let mut o = Owned::default();
    let f = o.parse(TWO).unwrap();
    let c = o.compile(f).unwrap();
    let mut e = null_mut();
    let mut fo = null_mut();
    let mut co = null_mut();
    let mut wo = null_mut();
    let mut s = null_mut();
    let x = [1.0, 2.0];
    let y = [3.0];
    // SAFETY: every pointer is NULL or valid; the library must refuse the NULLs.
    unsafe {
        let expect_null = |code: c_int, e: *mut c_char| {
            let (code, msg) = status(code, e).unwrap_err();
            assert_eq!(code, ADJIT_ERR_NULL, "{msg}");
            assert!(msg.contains("NULL"), "{msg}");
        };
        expect_null(adjit_parse(null(), &mut fo, &mut e), e);
        expect_null(adjit_parse(c"".as_ptr(), null_mut(), &mut e), e);
        expect_null(adjit_func_text(null(), &mut s, &mut e), e);
        expect_null(adjit_func_text(f, null_mut(), &mut e), e);
        for t in TRANSFORMS {
            expect_null(t(null(), null(), 0, &mut fo, &mut e), e);
            expect_null(t(f, null(), 0, null_mut(), &mut e), e);
            expect_null(t(f, null(), 1, &mut fo, &mut e), e);
            let wrt = [null()];
            expect_null(t(f, wrt.as_ptr(), 1, &mut fo, &mut e), e);
            assert!(fo.is_null());
        }
        expect_null(adjit_compile(null(), &mut co, &mut e), e);
        expect_null(adjit_compile(f, null_mut(), &mut e), e);
        expect_null(adjit_workspace_new(null(), &mut wo, &mut e), e);
        expect_null(adjit_workspace_new(c, null_mut(), &mut e), e);
        assert!(co.is_null() && wo.is_null());
        let ws = o.workspace(c).unwrap();
        let ins = [x.as_ptr(), y.as_ptr()];
        let lens = [2, 1];
        let mut out = [0.0];
        let outs = [out.as_mut_ptr()];
        let out_len = [1];
        let call = |c, ws, ins, in_len, outs, out_len, e| {
            adjit_call(c, ws, ins, in_len, 2, outs, out_len, 1, e)
        };
        expect_null(
            call(
                null(),
                ws,
                ins.as_ptr(),
                lens.as_ptr(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        expect_null(
            call(
                c,
                null_mut(),
                ins.as_ptr(),
                lens.as_ptr(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        expect_null(
            call(
                c,
                ws,
                null(),
                lens.as_ptr(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        expect_null(
            call(
                c,
                ws,
                ins.as_ptr(),
                null(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        expect_null(
            call(
                c,
                ws,
                ins.as_ptr(),
                lens.as_ptr(),
                null(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        expect_null(
            call(
                c,
                ws,
                ins.as_ptr(),
                lens.as_ptr(),
                outs.as_ptr(),
                null(),
                &mut e,
            ),
            e,
        );
        let null_in = [x.as_ptr(), null()];
        expect_null(
            call(
                c,
                ws,
                null_in.as_ptr(),
                lens.as_ptr(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        let null_out = [null_mut()];
        expect_null(
            call(
                c,
                ws,
                ins.as_ptr(),
                lens.as_ptr(),
                null_out.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        );
        // The error pointer itself may be NULL: the code alone comes back.
        assert_eq!(adjit_compile(null(), &mut co, null_mut()), ADJIT_ERR_NULL);
        // Queries answer NULL objects; frees accept NULL.
        assert!(adjit_name(null()).is_null());
        assert_eq!((adjit_n_in(null()), adjit_n_out(null())), (0, 0));
        assert_eq!(adjit_rank_in(null(), 0), -1);
        assert_eq!(adjit_workspace_len(null()), 0);
        adjit_func_free(null_mut());
        adjit_compiled_free(null_mut());
        adjit_workspace_free(null_mut());
        adjit_string_free(null_mut());
        // The call with every pointer valid works, and computes (e^1 + e^2) * 3.
        status(
            call(
                c,
                ws,
                ins.as_ptr(),
                lens.as_ptr(),
                outs.as_ptr(),
                out_len.as_ptr(),
                &mut e,
            ),
            e,
        )
        .unwrap();
        assert_eq!(out[0], (adjit_exp(1.0) + adjit_exp(2.0)) * 3.0);
    }
}

#[test]
fn calls_are_checked() {
    let mut o = Owned::default();
    let f = o.parse(TWO).unwrap();
    let c = o.compile(f).unwrap();
    let other = o.compile(f).unwrap();
    let ws = o.workspace(c).unwrap();
    let foreign = o.workspace(other).unwrap();
    let good = vec![vec![1.0, 2.0], vec![3.0]];
    let mut out = vec![vec![0.0]];
    let code = |r: Result<(), Status>| {
        let (code, msg) = r.unwrap_err();
        assert!(!msg.is_empty());
        (code, msg)
    };
    let (k, msg) = code(call(c, ws, &good[..1], &mut out));
    assert_eq!(k, ADJIT_ERR_COUNT, "{msg}");
    assert!(msg.contains("expected 2 inputs, got 1"), "{msg}");
    let (k, _) = code(call(c, ws, &good, &mut [vec![0.0], vec![0.0]]));
    assert_eq!(k, ADJIT_ERR_COUNT);
    let (k, _) = code(call(c, ws, &good, &mut []));
    assert_eq!(k, ADJIT_ERR_COUNT);
    let (k, msg) = code(call(c, ws, &[vec![1.0], vec![3.0]], &mut out));
    assert_eq!(k, ADJIT_ERR_SHORT_BUFFER, "{msg}");
    assert!(msg.contains("'x'") && msg.contains("needs 2"), "{msg}");
    let (k, _) = code(call(c, ws, &[vec![1.0, 2.0, 3.0], vec![3.0]], &mut out));
    assert_eq!(k, ADJIT_ERR_LONG_BUFFER);
    let (k, _) = code(call(c, ws, &good, &mut [vec![]]));
    assert_eq!(k, ADJIT_ERR_SHORT_BUFFER);
    let (k, _) = code(call(c, ws, &good, &mut [vec![0.0, 0.0]]));
    assert_eq!(k, ADJIT_ERR_LONG_BUFFER);
    let (k, msg) = code(call(c, foreign, &good, &mut out));
    assert_eq!(k, ADJIT_ERR_FOREIGN_WORKSPACE, "{msg}");
    assert_eq!(out[0][0], 0.0, "a refused call wrote an output");
    call(c, ws, &good, &mut out).unwrap();
    call(other, foreign, &good, &mut out).unwrap();
}

#[test]
fn overlapping_and_misaligned_buffers_are_refused() {
    let mut o = Owned::default();
    let text = "func @g(x: f64[2]) -> (f64[2], f64[2]) {\n    e: f64[2] = exp x\n    s: f64[2] = sin x\n    return e, s\n}\n";
    let f = o.parse(text).unwrap();
    let c = o.compile(f).unwrap();
    let ws = o.workspace(c).unwrap();
    let mut buf = [0.5f64; 6];
    let p = buf.as_mut_ptr();
    let run = |ins: [*const f64; 1], outs: [*mut f64; 2]| {
        let mut e = null_mut();
        // SAFETY: every pointer is into `buf`, with room for two doubles.
        let code = unsafe {
            adjit_call(
                c,
                ws,
                ins.as_ptr(),
                [2].as_ptr(),
                1,
                outs.as_ptr(),
                [2, 2].as_ptr(),
                2,
                &mut e,
            )
        };
        status(code, e)
    };
    // SAFETY: offsets within `buf`.
    unsafe {
        let (k, msg) = run([p], [p.add(1), p.add(3)]).unwrap_err();
        assert_eq!(k, ADJIT_ERR_OVERLAP, "{msg}");
        let (k, msg) = run([p], [p.add(2), p.add(3)]).unwrap_err();
        assert_eq!(k, ADJIT_ERR_OVERLAP, "{msg}");
        assert!(msg.contains("output buffers 0 and 1"), "{msg}");
        let (k, msg) = run([p.cast::<u8>().add(4).cast()], [p.add(2), p.add(4)]).unwrap_err();
        assert_eq!(k, ADJIT_ERR_ARGUMENT, "{msg}");
        assert!(msg.contains("aligned"), "{msg}");
        // Adjacent buffers do not overlap.
        run([p], [p.add(2), p.add(4)]).unwrap();
    }
    assert_eq!(buf[2], adjit_exp(0.5));
    assert_eq!(buf[5], adjit_sin(0.5));
}

#[test]
fn transform_errors_and_bad_modes() {
    let mut o = Owned::default();
    let bratu = o.parse(adjit::models::find("bratu").unwrap().text).unwrap();
    let (k, msg) = o.derive(bratu, adjit_grad).unwrap_err();
    assert_eq!(k, ADJIT_ERR_TRANSFORM, "{msg}");
    assert!(msg.contains("one scalar f64 result"), "{msg}");
    let f = o.parse(TWO).unwrap();
    let wrt = [c"nope".as_ptr()];
    let mut g = null_mut();
    let mut e = null_mut();
    // SAFETY: a live function, one name, valid out pointers.
    let code = unsafe { adjit_grad(f, wrt.as_ptr(), 1, &mut g, &mut e) };
    let (k, msg) = status(code, e).unwrap_err();
    assert_eq!(k, ADJIT_ERR_TRANSFORM);
    assert!(msg.contains("no input 'nope'"), "{msg}");
    let bad = [c"\xff".as_ptr()];
    // SAFETY: as above; the name is not UTF-8.
    let code = unsafe { adjit_jvp(f, bad.as_ptr(), 1, &mut g, &mut e) };
    assert_eq!(status(code, e).unwrap_err().0, ADJIT_ERR_ARGUMENT);
    // SAFETY: as above; the modes are unknown.
    unsafe {
        let code = adjit_hvp(f, null(), 0, 7, &mut g, &mut e);
        let (k, msg) = status(code, e).unwrap_err();
        assert_eq!(k, ADJIT_ERR_ARGUMENT);
        assert!(msg.contains("hvp mode 7"), "{msg}");
        let code = adjit_hvp_only(f, null(), 0, 7, &mut g, &mut e);
        let (k, msg) = status(code, e).unwrap_err();
        assert_eq!(k, ADJIT_ERR_ARGUMENT);
        assert!(msg.contains("hvp mode 7"), "{msg}");
        let code = adjit_jacobian(f, null(), 0, -1, &mut g, &mut e);
        assert_eq!(status(code, e).unwrap_err().0, ADJIT_ERR_ARGUMENT);
    }
    assert!(g.is_null());
}

#[test]
fn status_names() {
    let names = [
        (ADJIT_OK, "ADJIT_OK"),
        (ADJIT_ERR_NULL, "ADJIT_ERR_NULL"),
        (ADJIT_ERR_PARSE, "ADJIT_ERR_PARSE"),
        (ADJIT_ERR_SHORT_BUFFER, "ADJIT_ERR_SHORT_BUFFER"),
        (ADJIT_ERR_INTERNAL, "ADJIT_ERR_INTERNAL"),
        (13, "unknown status"),
        (-1, "unknown status"),
    ];
    for (code, want) in names {
        assert_eq!(c_str(adjit_status_name(code)), want);
    }
    // The header's enum and the library's constants agree.
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/adjit.h")).unwrap();
    for code in 0..=ADJIT_ERR_INTERNAL {
        let name = c_str(adjit_status_name(code));
        assert!(
            header.contains(&format!("{name} = {code}")),
            "adjit.h lacks {name} = {code}"
        );
    }
}

/// The compiled function of `memory_limits.rs` whose workspace needs 28.8 GB.
const HUGE: &str = "func @t(y: f64[]) -> (f64[]) {
    x: f64[60000,60000] = broadcast y [axes=[0,1], shape=[60000,60000]]
    t: f64[60000,60000] = transpose x [perm=[1,0]]
    m: f64[60000,60000] = matmul x, t
    s: f64[] = reduce_sum m [axes=[0,1]]
    return s
}
";

/// Run under an address-space limit by the test of the same name (this binary, re-run).
const CHILD: &str = "ADJIT_CAPI_OOM_CHILD";

#[test]
fn a_workspace_beyond_memory_is_an_error() {
    if std::env::var_os(CHILD).is_some() {
        let mut o = Owned::default();
        let f = o.parse(HUGE).unwrap();
        let c = o.compile(f).unwrap();
        let (k, msg) = o.workspace(c).unwrap_err();
        assert_eq!(k, ADJIT_ERR_OUT_OF_MEMORY, "{msg}");
        assert!(
            msg.contains("out of memory") && msg.contains("workspace of @t"),
            "{msg}"
        );
        println!("child: refused as expected");
        return;
    }
    // 4 GB of address space, as in memory_limits.rs.
    let me = std::env::current_exe().unwrap();
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 4000000 && exec \"$0\" --exact a_workspace_beyond_memory_is_an_error --nocapture"])
        .arg(&me)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("child: refused as expected") && out.contains("1 passed"),
        "{out}"
    );
}

#[test]
fn one_compiled_function_serves_four_threads() {
    let m = adjit::models::find("rosenbrock").unwrap();
    let mut o = Owned::default();
    let f = o.parse(m.text).unwrap();
    let g = o.derive(f, adjit_grad).unwrap();
    let c = o.compile(g).unwrap();
    let rust = ad::grad(&ir::parse(m.text).unwrap(), None).unwrap();
    let inputs = adjit::inputs::defaults(&rust, 5);
    let want = adjit::jit::compile(&rust).unwrap().eval(&inputs).unwrap();
    let shared = c as usize;
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (inputs, want) = (&inputs, &want);
            s.spawn(move || {
                let c = shared as *const AdjitCompiled;
                let mut mine = Owned::default();
                let ws = mine.workspace(c).unwrap();
                for _ in 0..100 {
                    let mut got = outputs_of(c);
                    call(c, ws, inputs, &mut got).unwrap();
                    assert!(same_bits(&got, want));
                }
            });
        }
    });
}
