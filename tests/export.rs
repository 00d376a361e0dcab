//! `adjit export`: object files and headers, compiled and called from C with the system C
//! compiler (`cc`). For every shipped model, exported f, grad and hvp (jac for vector-valued
//! ones) equal the interpreter bit for bit, and their queries report the signature; two
//! exported models link into one program; the C examples build and run; bad requests fail
//! cleanly.

mod common;

use adjit::ad::{self, JacobianMode};
use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::Func;
use adjit::models;
use common::cli::{adjit, assert_fails, stderr, stdout, Scratch};
use common::repo_path;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `cc ARGS` in `dir`, which must succeed.
fn cc(dir: &Path, args: &[&str]) {
    let out = Command::new("cc")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the system C compiler `cc` runs");
    assert!(out.status.success(), "cc {args:?}:\n{}", stderr(&out));
}

/// Exports `file` as `dir/name` with `flags`, which must succeed.
fn export(dir: &Path, file: &str, name: &str, flags: &[&str]) {
    let path = repo_path(file);
    let target = dir.join(name);
    let mut args = vec![
        "export",
        path.to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let out = adjit(&args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("exported {name}")));
}

/// Builds the driver for exported function `entry` of `object`, runs it on `inputs` and
/// returns its output lines.
fn drive(dir: &Path, object: &str, entry: &str, inputs: &[Vec<f64>]) -> Vec<String> {
    let exe = format!("drive_{entry}");
    let driver = repo_path("tests/c/driver.c");
    cc(
        dir,
        &[
            "-O1",
            &format!("-DF={entry}"),
            "-include",
            &format!("{object}.h"),
            driver.to_str().unwrap(),
            &format!("{object}.o"),
            "-lm",
            "-o",
            &exe,
        ],
    );
    let mut child = Command::new(dir.join(&exe))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let text: String = inputs
        .iter()
        .flatten()
        .map(|x| format!("{:016x}\n", x.to_bits()))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{exe}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

/// The signature lines the driver prints for `f` with result names `outputs`.
fn signature_lines(f: &Func, outputs: &[String]) -> Vec<String> {
    let line = |side: &str, name: &str, ty: adjit::ir::Type| {
        let mut s = format!("{side} {name} {}", ty.rank());
        for d in ty.shape.iter() {
            s.push_str(&format!(" {d}"));
        }
        format!("{s} : {}", ty.numel())
    };
    let ins = f.params.iter().map(|p| line("in", &p.name, p.ty));
    let outs = outputs
        .iter()
        .zip(f.result_types())
        .map(|(n, t)| line("out", n, t));
    ins.chain(outs).collect()
}

/// Checks exported `entry` of `object` against the interpreter on `f`'s default inputs.
fn check_entry(dir: &Path, object: &str, entry: &str, f: &Func, outputs: &[String]) {
    let inputs = adjit::inputs::defaults(f, 7);
    let want = Program::new(f).unwrap().eval(&inputs).unwrap();
    let lines = drive(dir, object, entry, &inputs);
    let sig = signature_lines(f, outputs);
    assert_eq!(lines[..sig.len()], sig[..], "{entry}: signature");
    let rest = &lines[sig.len()..];
    assert_eq!(rest[..3], ["status 0", "status 0", "null 1"], "{entry}");
    let bits: Vec<String> = want
        .iter()
        .flatten()
        .map(|x| format!("{:016x}", x.to_bits()))
        .collect();
    assert_eq!(
        rest[3..],
        bits[..],
        "{entry}: results differ from the interpreter"
    );
}

fn names(prefix: &[&str], stem: &str, f: &Func) -> Vec<String> {
    let mut v: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    let wrt = ad::resolve_wrt(f, None).unwrap();
    v.extend(wrt.iter().map(|&i| format!("{stem}_{}", f.params[i].name)));
    v
}

#[test]
fn every_model_exported_equals_the_interpreter_bit_for_bit() {
    let dir = Scratch::new("export-models");
    for m in models::ALL {
        let f = (m.build)();
        let file = format!("ir/models/{}.ir", m.name);
        if m.scalar() {
            export(&dir.0, &file, m.name, &["--grad", "--hvp"]);
            assert_eq!(f.result_names(), ["y"]);
            check_entry(&dir.0, m.name, m.name, &f, &["y".to_string()]);
            let g = ad::grad(&f, None).unwrap();
            let grad = format!("{}_grad", m.name);
            check_entry(&dir.0, m.name, &grad, &g, &names(&["y"], "grad", &f));
            let h = ad::hvp(&f, None).unwrap();
            let mut hn = names(&["y"], "grad", &f);
            hn.extend(names(&[], "hvp", &f));
            check_entry(&dir.0, m.name, &format!("{}_hvp", m.name), &h, &hn);
        } else {
            export(&dir.0, &file, m.name, &["--jac"]);
            let outputs = f.result_names();
            check_entry(&dir.0, m.name, m.name, &f, &outputs);
            let j = ad::jacobian(&f, None, JacobianMode::Auto).unwrap();
            let mut jn = outputs.clone();
            assert_eq!(outputs.len(), 1, "the test names one result's blocks");
            jn.extend(names(&[], &format!("jac_{}", outputs[0]), &f));
            check_entry(&dir.0, m.name, &format!("{}_jac", m.name), &j, &jn);
            // --jac-mode picks the mode (auto chose forward: as many inputs as results).
            let rev = format!("{}_rev", m.name);
            export(&dir.0, &file, &rev, &["--jac", "--jac-mode", "rev"]);
            let j = ad::jacobian(&f, None, JacobianMode::Reverse).unwrap();
            check_entry(&dir.0, &rev, &format!("{rev}_jac"), &j, &jn);
        }
    }
}

#[test]
fn two_exported_models_link_into_one_program() {
    let dir = Scratch::new("export-two");
    export(&dir.0, "ir/models/tiny.ir", "tiny", &["--grad"]);
    export(
        &dir.0,
        "ir/models/neuron.ir",
        "neuron",
        &["--grad", "--hvp"],
    );
    let main = dir.file(
        "two.c",
        r#"#include <stdio.h>
#include "tiny.h"
#include "neuron.h"
int main(void) {
    double x[2] = {0.5, -0.25}, y, g[2];
    const double *a[1] = {x};
    double *r[2] = {&y, g};
    if (tiny_grad(a, r, NULL) != 0) return 1;
    printf("%a %a %a\n", y, g[0], g[1]);
    printf("%zu %zu\n", neuron_grad_work(), neuron_hvp_work());
    return 0;
}
"#,
    );
    cc(&dir.0, &[&main, "tiny.o", "neuron.o", "-lm", "-o", "two"]);
    let out = Command::new(dir.0.join("two")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let g = ad::grad(&models::tiny(), None).unwrap();
    let want = Program::new(&g).unwrap().eval(&[vec![0.5, -0.25]]).unwrap();
    let line = stdout(&out).lines().next().unwrap().to_string();
    let got: Vec<f64> = line.split(' ').map(parse_hex_float).collect();
    assert_eq!(got, [want[0][0], want[1][0], want[1][1]]);
}

/// Parses C's `%a` output (`0x1.8p+1`, `-0x0p+0`).
fn parse_hex_float(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let s = s.strip_prefix("0x").expect("a hex float");
    let (mant, exp) = s.split_once('p').expect("an exponent");
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut m = u64::from_str_radix(int, 16).unwrap() as f64;
    for (k, c) in frac.chars().enumerate() {
        let digit = c.to_digit(16).unwrap() as f64;
        m += digit * 16f64.powi(-(k as i32 + 1));
    }
    let x = m * 2f64.powi(exp.parse().unwrap());
    if neg {
        -x
    } else {
        x
    }
}

#[test]
fn the_c_gradient_descent_example_runs_and_descends() {
    let dir = Scratch::new("export-descent");
    export(
        &dir.0,
        "ir/models/pendulum_scan.ir",
        "pendulum",
        &["--grad"],
    );
    let example = repo_path("examples/c/descent.c");
    cc(
        &dir.0,
        &[
            "-O1",
            "-I.",
            example.to_str().unwrap(),
            "pendulum.o",
            "-lm",
            "-o",
            "descent",
        ],
    );
    let out = Command::new(dir.0.join("descent")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("loss "))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert!(losses.len() >= 10, "{text}");
    assert!(losses.windows(2).all(|w| w[1] <= w[0]), "{text}");
    assert!(losses[losses.len() - 1] < 0.5 * losses[0], "{text}");
}

#[test]
fn shared_library_links_with_the_system_compiler() {
    let dir = Scratch::new("export-shared");
    export(
        &dir.0,
        "ir/models/rosenbrock.ir",
        "rosen",
        &["--grad", "--shared"],
    );
    let lib = dir.0.join("rosen.so");
    assert!(lib.exists());
    let out = Command::new("nm").arg("-D").arg(&lib).output().unwrap();
    assert!(stdout(&out).contains(" T rosen_grad"), "{}", stdout(&out));
}

#[test]
fn shared_without_a_c_compiler_says_so() {
    let dir = Scratch::new("export-no-cc");
    let tiny = repo_path("ir/models/tiny.ir");
    let out = dir.0.join("t");
    let args = [
        "export",
        tiny.to_str().unwrap(),
        "--shared",
        "-o",
        out.to_str().unwrap(),
    ];
    let run = Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(args)
        .env("CC", "/no/such/compiler")
        .output()
        .unwrap();
    assert_fails(
        &run,
        &args,
        1,
        "cannot run the C compiler `/no/such/compiler`",
    );
    // The object and header were written before linking failed.
    assert!(dir.0.join("t.o").exists() && dir.0.join("t.h").exists());
}

#[test]
fn other_targets_call_the_scalar_c_library() {
    let dir = Scratch::new("export-musl");
    export(&dir.0, "ir/models/mlp.ir", "here", &["--grad"]);
    export(
        &dir.0,
        "ir/models/mlp.ir",
        "musl",
        &["--grad", "--target", "x86_64-unknown-linux-musl"],
    );
    export(
        &dir.0,
        "ir/models/mlp.ir",
        "gnu",
        &["--grad", "--target", "x86_64-unknown-linux-gnu"],
    );
    let symbols = |o: &str| stdout(&Command::new("nm").arg(dir.0.join(o)).output().unwrap());
    let (here, musl, gnu) = (symbols("here.o"), symbols("musl.o"), symbols("gnu.o"));
    // This CPU's vector function, and for the baseline CPU the two-lane one.
    use adjit::{ir::Unary, ops::vmath};
    if let Some(s) = vmath::symbol(Unary::Tanh) {
        assert!(here.contains(&format!(" U {s}")), "{here}");
    }
    if vmath::two_lane(Unary::Tanh).is_some() {
        assert!(
            gnu.contains(" U _ZGVbN2v_tanh") && !gnu.contains("_ZGVd"),
            "{gnu}"
        );
    }
    assert!(musl.contains(" U tanh") && !musl.contains("_ZGV"), "{musl}");
    let header = std::fs::read_to_string(dir.0.join("musl.h")).unwrap();
    assert!(
        header.contains("x86_64-unknown-linux-musl, baseline"),
        "{header}"
    );
}

#[test]
fn bad_requests_fail_cleanly() {
    let dir = Scratch::new("export-bad");
    let tiny = repo_path("ir/models/tiny.ir");
    let tiny = tiny.to_str().unwrap();
    let bad_name = dir.0.join("2fast");
    let args = ["export", tiny, "-o", bad_name.to_str().unwrap()];
    assert_fails(&adjit(&args), &args, 1, "must be a C identifier");
    let out = dir.0.join("t");
    let args = [
        "export",
        tiny,
        "-o",
        out.to_str().unwrap(),
        "--target",
        "nonsense",
    ];
    assert_fails(&adjit(&args), &args, 1, "`nonsense` is not a target triple");
    let args = [
        "export",
        tiny,
        "-o",
        out.to_str().unwrap(),
        "--target",
        "riscv64gc-unknown-linux-gnu",
    ];
    assert_fails(
        &adjit(&args),
        &args,
        1,
        "--target: target `riscv64gc-unknown-linux-gnu` is not supported",
    );
    let erf = dir.file(
        "erf.ir",
        "func @e(x: f64[3]) -> (f64[]) {\n    v1: f64[3] = erf x\n    v2: f64[] = reduce_sum v1 [axes=[0]]\n    return v2\n}\n",
    );
    let args = ["export", &erf, "-o", out.to_str().unwrap()];
    assert_fails(&adjit(&args), &args, 1, "`erf` is adjit's own function");
    let bratu = repo_path("ir/models/bratu.ir");
    let args = [
        "export",
        bratu.to_str().unwrap(),
        "--grad",
        "-o",
        out.to_str().unwrap(),
    ];
    assert_fails(
        &adjit(&args),
        &args,
        1,
        "--jac exports the Jacobian of any function",
    );
    let args = ["export", tiny, "--wrt", "x", "-o", out.to_str().unwrap()];
    assert_fails(
        &adjit(&args),
        &args,
        1,
        "--wrt chooses the inputs of --grad",
    );
    for (name, why) in [
        ("int", "keyword"),
        ("main", "keyword"),
        ("adjit_model", "run-time C API"),
        ("sin", "C library function"),
        ("fma", "C library function"),
        ("_Model", "reserved"),
    ] {
        let path = dir.0.join(name);
        let args = ["export", tiny, "-o", path.to_str().unwrap()];
        assert_fails(&adjit(&args), &args, 1, why);
    }
    let slash = format!("{}/", dir.0.join("sub").display());
    let args = ["export", tiny, "-o", &slash];
    assert_fails(&adjit(&args), &args, 1, "not a directory");
    let binomial = adjit::ad::grad(
        &models::pendulum_scan_of("p", 20, 0.01, adjit::ir::Checkpoint::Binomial(3)),
        None,
    )
    .unwrap();
    let file = dir.file("binomial.ir", &binomial.to_string());
    let args = ["export", &file, "-o", out.to_str().unwrap()];
    assert_fails(&adjit(&args), &args, 1, "binomial checkpointing");
    // A missing directory is created; one that cannot be (its parent is a file) is an error.
    let nested = dir.0.join("new/dir/tiny");
    let args = ["export", tiny, "-o", nested.to_str().unwrap()];
    assert!(adjit(&args).status.success());
    assert!(dir.0.join("new/dir/tiny.o").exists());
    let under_file = dir.0.join("new/dir/tiny.o/x");
    let args = ["export", tiny, "-o", under_file.to_str().unwrap()];
    assert_fails(&adjit(&args), &args, 1, "cannot create the directory");
}
