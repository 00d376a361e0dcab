//! The binomial checkpointing schedule (`adjit::revolve`) through its public interface: a
//! checking `Reverser` verifies the contract (each step reversed once, in reverse order, seeing
//! its own state; snapshots restored only as stored; slot numbers below `s`), and the number of
//! advances equals the Griewank–Walther formula, up to a million steps.

use adjit::revolve::{self, Reverser};

/// Checks the contract of `revolve::run` and counts advances.
struct Checker {
    s: usize,
    cur: usize,
    slot_step: Vec<usize>,
    next_reverse: usize,
    advances: u64,
}

impl Reverser for Checker {
    fn store(&mut self, slot: usize, step: usize) {
        assert!(slot < self.s, "slot {slot} of {}", self.s);
        assert_eq!(self.cur, step);
        self.slot_step[slot] = step;
    }
    fn restore(&mut self, slot: usize, step: usize) {
        assert_eq!(self.slot_step[slot], step, "restore({slot}, {step})");
        self.cur = step;
    }
    fn advance(&mut self, step: usize) {
        assert_eq!(self.cur, step);
        self.cur += 1;
        self.advances += 1;
    }
    fn reverse(&mut self, step: usize) {
        assert_eq!(self.cur, step, "reverse({step}) sees state {}", self.cur);
        assert_eq!(step + 1, self.next_reverse, "steps reversed out of order");
        self.next_reverse = step;
    }
}

/// Runs the schedule for `n` steps and `s` snapshots under the checker; returns the advances.
fn check(n: usize, s: usize) -> u64 {
    let slots = revolve::slots(n, s);
    assert!(slots <= s.max(1));
    let mut c = Checker {
        s: s.max(1),
        cur: 0,
        slot_step: vec![usize::MAX; slots],
        next_reverse: n,
        advances: 0,
    };
    let mut stack = vec![0; slots];
    revolve::run(n, s, &mut stack, &mut c);
    assert_eq!(c.next_reverse, 0, "n={n} s={s}: not every step reversed");
    c.advances
}

#[test]
fn advances_equal_the_formula() {
    for n in 1..=300 {
        for s in (1..=12).chain([n / 2, n - 1, n, n + 7]) {
            assert_eq!(check(n, s), revolve::forward_steps(n, s), "n={n} s={s}");
        }
    }
}

#[test]
fn closed_forms() {
    // One snapshot: n(n-1)/2. Enough to store everything: n - 1.
    for n in [1usize, 2, 3, 10, 1000] {
        let all = n.saturating_sub(1) as u64;
        assert_eq!(revolve::forward_steps(n, 1), (n * (n - 1) / 2) as u64);
        assert_eq!(revolve::forward_steps(n, n), all);
        assert_eq!(revolve::forward_steps(n, n.saturating_sub(1)), all);
        assert_eq!(revolve::forward_steps(n, usize::MAX), all);
    }
    assert_eq!(revolve::forward_steps(0, 5), 0);
    // Textbook values: C(s + r, s) steps exactly, with s = 3, r = 3 (20 steps) cost
    // 3·20 − C(6, 2) = 45.
    assert_eq!(revolve::forward_steps(20, 3), 45);
    assert_eq!(check(20, 3), 45);
}

#[test]
fn a_million_steps() {
    let n = 1_000_000;
    for s in [10, 100, 1000] {
        assert_eq!(check(n, s), revolve::forward_steps(n, s), "s={s}");
    }
    // The formula alone, where the schedule would take too long to run.
    assert_eq!(
        revolve::forward_steps(n, 1),
        (n as u64) * (n as u64 - 1) / 2
    );
    // r = 13: C(23, 10) = 1144066 is the first C(10 + r, 10) >= 10^6; C(23, 12) = 1352078.
    assert_eq!(revolve::forward_steps(n, 10), 13 * n as u64 - 1_352_078);
}
