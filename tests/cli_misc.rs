//! The `adjit` binary: usage checks made before any work (`check` that would check nothing,
//! `bench --plot` to a path that cannot be written) and `check` at points where the function is
//! not smooth.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn adjit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adjit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adjit-misc-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_refuses_to_check_nothing() {
    let o = adjit(&[
        "check",
        "ir/models/tiny.ir",
        "--coordinates",
        "0",
        "--directions",
        "0",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("would check nothing"), "{err}");
    assert!(!stdout(&o).contains("ok"), "{}", stdout(&o));
    // Either one alone is a real check.
    for args in [["--coordinates", "0"], ["--directions", "0"]] {
        let o = adjit(&["check", "ir/models/tiny.ir", args[0], args[1]]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn bench_plot_to_an_unwritable_path_fails_before_measuring() {
    let bad = format!("/nonexistent-adjit-{}/dir/x.svg", std::process::id());
    let start = Instant::now();
    let o = adjit(&["bench", "--quick", "--plot", &bad]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&bad) && err.contains("cannot draw the plot"),
        "{err}"
    );
    // No model was measured: the progress lines never appeared.
    assert!(!err.contains("[1/"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // A directory is not a writable file either.
    let dir = scratch("plotdir");
    let o = adjit(&["bench", "--quick", "--plot", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("[1/"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}
