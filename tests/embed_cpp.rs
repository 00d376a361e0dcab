//! The C API from C and C++ programs built with the system compiler: `examples/cpp/threads.cpp`
//! (an .ir file's gradient compiled once and called from 4 threads, each with its own
//! workspace) prints the bits of the Rust JIT's results, and `examples/c/grad.c`, the README's
//! example, compiles as strict C99 and prints the gradient.
//!
//! Both link the `libadjit.so` that cargo built for this very test run. `cargo test` writes the
//! cdylib to `target/<profile>/deps/` (beside this test's executable) and copies it up to
//! `target/<profile>/` only for `cargo build`, so the test links the one in `deps/`: the
//! library of the same build as the Rust it is compared with.

use adjit::call::Executor;
use adjit::ir::DType;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the `libadjit.so` built with this test.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    assert!(
        deps.join("libadjit.so").exists(),
        "no libadjit.so beside {} (is crate-type cdylib in Cargo.toml?)",
        exe.display()
    );
    deps
}

/// Builds `source` with `compiler` and `flags` into the test's temporary directory, linked
/// against libadjit.so (found at run time through the rpath): the executable.
fn build(compiler: &str, flags: &[&str], source: &str, name: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let lib = lib_dir();
    let o = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source))
        .arg("-L")
        .arg(&lib)
        .arg("-ladjit")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        o.status.success(),
        "{compiler} {source} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Runs a built program: its stdout, after checking that it succeeded and wrote no stderr.
fn run(exe: &Path, args: &[PathBuf]) -> String {
    let o = Command::new(exe).args(args).output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{} failed:\n{out}{err}", exe.display());
    assert!(err.is_empty(), "{} wrote to stderr:\n{err}", exe.display());
    out
}

/// The inputs `threads.cpp` builds: element j of input i is `0.1 * ((7 i + 3 j) % 11) - 0.5`,
/// `j % 2` for bool inputs (the same operations in the same order, so the same bits).
fn inputs(sig: &adjit::call::Signature) -> Vec<Vec<f64>> {
    let element = |i: usize, j: usize, dtype| match dtype {
        DType::Bool => (j % 2) as f64,
        DType::F64 => 0.1 * ((7 * i + 3 * j) % 11) as f64 - 0.5,
    };
    let input = |(i, (_, ty)): (usize, &(String, adjit::ir::Type))| {
        (0..ty.numel()).map(|j| element(i, j, ty.dtype)).collect()
    };
    sig.inputs.iter().enumerate().map(input).collect()
}

#[test]
fn threads_cpp_equals_the_rust_jit() {
    let flags = [
        "-std=c++17",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        "-pthread",
    ];
    let exe = build("c++", &flags, "examples/cpp/threads.cpp", "threads");
    for model in ["rosenbrock", "pendulum_scan"] {
        let file = root().join(format!("ir/models/{model}.ir"));
        let out = run(&exe, std::slice::from_ref(&file));
        assert!(out.contains("threads 4 x 25 calls: identical"), "{out}");

        let f = adjit::ir::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let g = adjit::ad::grad(&f, None).unwrap();
        let compiled = adjit::jit::compile(&g).unwrap();
        let want = compiled.eval(&inputs(compiled.signature())).unwrap();
        let wrt = adjit::ad::resolve_wrt(&f, None).unwrap();
        let names = std::iter::once("y".to_string())
            .chain(wrt.iter().map(|&i| format!("grad_{}", f.params[i].name)));

        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("out ")).collect();
        assert_eq!(lines.len(), want.len(), "{model}: outputs:\n{out}");
        for ((line, values), name) in lines.iter().zip(&want).zip(names) {
            let mut words = line.split(' ').skip(1);
            assert_eq!(words.next(), Some(name.as_str()), "{model}: {line}");
            let got: Vec<u64> = words.map(|w| u64::from_str_radix(w, 16).unwrap()).collect();
            let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, bits, "{model} {name}: C++ differs from the Rust JIT");
        }
    }
}

#[test]
fn threads_cpp_reports_errors() {
    let flags = ["-std=c++17", "-pthread"];
    let exe = build("c++", &flags, "examples/cpp/threads.cpp", "threads_errors");
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad.ir");
    let text = "func @f(x: f64[2]) -> (f64[]) {\n    y: f64[] = frob x\n    return y\n}\n";
    std::fs::write(&bad, text).unwrap();
    let o = Command::new(&exe).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ADJIT_ERR_PARSE: 2:16: unknown op 'frob'"),
        "{err}"
    );
}

#[test]
fn the_readme_c_example_runs() {
    let flags = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"];
    let exe = build("cc", &flags, "examples/c/grad.c", "grad");
    assert_eq!(run(&exe, &[]), "f = 14, grad = [2, 4, 6]\n");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = std::fs::read_to_string(root().join("examples/c/grad.c")).unwrap();
    assert!(
        readme.contains(&example),
        "README.md does not show examples/c/grad.c as it is"
    );
}
