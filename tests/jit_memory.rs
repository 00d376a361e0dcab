//! Compiling and dropping functions returns their code memory (its own test binary, so that
//! other tests' allocations do not move the resident size it measures).

use adjit::jit;

fn resident_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

#[test]
fn compiling_and_dropping_does_not_leak_code() {
    let f = adjit::ir::parse(adjit::models::find("softmax").unwrap().text).unwrap();
    let g = adjit::ad::grad(&f, None).unwrap();
    for _ in 0..50 {
        drop(jit::compile(&g).unwrap());
    }
    let before = resident_kib();
    for _ in 0..1000 {
        let c = jit::compile(&g).unwrap();
        let mut ws = c.workspace();
        let _ = &mut ws;
    }
    let after = resident_kib();
    // Each compiled function maps at least 2 pages of code and data; 1000 leaked ones would
    // add 8 MB or more.
    assert!(
        after < before + 4096,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
