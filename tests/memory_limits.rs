//! Running out of memory is an error, not an abort: the `adjit` binary under an address-space
//! limit (`ulimit -v`, which is `setrlimit(RLIMIT_AS)` in the child shell) reports what it could
//! not allocate and exits with status 1.

use std::io::Write;
use std::process::Command;

/// 4 GB of address space: enough to start, far too little for a 60000 x 60000 tensor.
const LIMIT_KB: u64 = 4_000_000;

/// Runs `adjit ARGS` on `text` (written to a temporary file) under the limit: status, stderr.
fn under_limit(name: &str, text: &str, args: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("adjit-oom-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.ir"));
    std::fs::File::create(&file)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let script = format!("ulimit -v {LIMIT_KB} && exec \"$0\" {args} \"$1\"",);
    let o = Command::new("sh")
        .args([
            "-c",
            &script,
            env!("CARGO_BIN_EXE_adjit"),
            file.to_str().unwrap(),
        ])
        .output()
        .expect("sh runs");
    std::fs::remove_dir_all(&dir).ok();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fails_cleanly(name: &str, text: &str, args: &str, want: &[&str]) {
    let (code, err) = under_limit(name, text, args);
    assert_eq!(code, Some(1), "{name} {args}: {err}");
    for w in want {
        assert!(err.contains(w), "{name} {args}: stderr lacks {w:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{name} {args} panicked:\n{err}");
    assert!(err.len() < 1000, "{name} {args}: a long message:\n{err}");
}

/// The broadcast and exp are materialized by the interpreter (the JIT keeps them as a view and
/// a fused loop, and needs no big workspace).
const BROADCAST: &str = "func @b(y: f64[]) -> (f64[]) {
    x: f64[60000,60000] = broadcast y [axes=[0,1], shape=[60000,60000]]
    e: f64[60000,60000] = exp x
    s: f64[] = reduce_sum e [axes=[0,1]]
    return s
}
";

#[test]
fn the_interpreters_workspace() {
    let want = [
        "out of memory",
        "57600000008 bytes",
        "workspace of @b",
        "f64[60000,60000]",
    ];
    fails_cleanly("b", BROADCAST, "eval -i y=0 --interp", &want);
    fails_cleanly("b", BROADCAST, "grad -i y=0 --interp", &want[..2]);
    // The compiled function keeps the broadcast a view and fuses the product into the sum:
    // it needs no big workspace (and 4e8 products take a fraction of a second).
    let squares = "func @q(y: f64[]) -> (f64[]) {
    x: f64[20000,20000] = broadcast y [axes=[0,1], shape=[20000,20000]]
    e: f64[20000,20000] = mul x, x
    s: f64[] = reduce_sum e [axes=[0,1]]
    return s
}
";
    let (code, err) = under_limit("q", squares, "eval -i y=0.5 --json");
    assert_eq!(code, Some(0), "{err}");
    fails_cleanly(
        "q",
        squares,
        "eval -i y=0.5 --interp",
        &["6400000008 bytes"],
    );
}

#[test]
fn the_compiled_functions_workspace() {
    let text = "func @t(y: f64[]) -> (f64[]) {
    x: f64[60000,60000] = broadcast y [axes=[0,1], shape=[60000,60000]]
    t: f64[60000,60000] = transpose x [perm=[1,0]]
    m: f64[60000,60000] = matmul x, t
    s: f64[] = reduce_sum m [axes=[0,1]]
    return s
}
";
    fails_cleanly(
        "t",
        text,
        "eval -i y=1",
        &["out of memory", "workspace of @t"],
    );
}

#[test]
fn default_inputs_and_outputs() {
    let big_input = "func @i(x: f64[60000,60000]) -> (f64[]) {
    s: f64[] = reduce_sum x [axes=[0,1]]
    return s
}
";
    fails_cleanly("i", big_input, "eval", &["out of memory", "input 'x'"]);
    let big_output = "func @o(y: f64[]) -> (f64[60000,60000]) {
    x: f64[60000,60000] = broadcast y [axes=[0,1], shape=[60000,60000]]
    return x
}
";
    fails_cleanly(
        "o",
        big_output,
        "eval -i y=1",
        &["out of memory", "output 0"],
    );
}
