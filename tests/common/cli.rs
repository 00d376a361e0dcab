//! Running the `adjit` binary in tests: from the repository or from a scratch directory, with
//! its output as text or JSON, and the check that a failure is clean (a status, a message, no
//! panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `adjit ARGS` from `dir`.
pub fn adjit_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// Runs `adjit ARGS` from the repository root.
pub fn adjit(args: &[&str]) -> Output {
    adjit_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON printed by a command that must succeed.
pub fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

/// Asserts that `o` (of `args`) failed with status `code` and an error containing `want`,
/// without a panic.
pub fn assert_fails(o: &Output, args: &[&str], code: i32, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(want),
        "{args:?}: stderr lacks {want:?}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
}

/// Runs a command (from the repository root) that must fail as `assert_fails` says.
pub fn fails(args: &[&str], code: i32, want: &str) {
    assert_fails(&adjit(args), args, code, want);
}

/// A fresh directory for one test's files, removed when dropped (also when the test fails).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("adjit-{test}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` to `name` in the directory and returns `name`, for commands run there.
    pub fn write<'a>(&self, name: &'a str, text: &str) -> &'a str {
        std::fs::write(self.0.join(name), text).unwrap();
        name
    }

    /// Writes `text` to `name` in the directory and returns its full path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The numbers of a JSON value (nested arrays flattened), in order.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(xs) => xs.iter().flat_map(floats).collect(),
        x => vec![x.as_f64().expect("a number")],
    }
}

/// A function of two results of different shapes and a data input: y = exp(x) * s (f64[3])
/// and z = sum(x^2) * sin(sum(w^2)) (scalar), the value `z` returned by name.
pub const TWO: &str = "\
func @two(x: f64[3], w: f64[2], data s: f64[]) -> (f64[3], f64[]) {
    e: f64[3] = exp x
    sb: f64[3] = broadcast s [axes=[0], shape=[3]]
    y: f64[3] = mul e, sb
    q: f64[3] = mul x, x
    z0: f64[] = reduce_sum q [axes=[0]]
    ww: f64[2] = mul w, w
    z1: f64[] = reduce_sum ww [axes=[0]]
    z2: f64[] = sin z1
    z: f64[] = mul z0, z2
    return y, z
}
";
