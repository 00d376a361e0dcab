//! Binomial checkpointing (Griewank–Walther "revolve"): the schedule that reverses `n` steps of
//! a trajectory `r_0 → r_1 → … → r_{n-1}` keeping at most `s` stored states, with the fewest
//! forward steps. Pure index logic, shared by both executors (the interpreter's replay scans,
//! and the JIT's Rust driver of compiled step functions); it knows nothing of the IR.
//!
//! # The model
//!
//! The executor holds one *current state* (working memory, not counted as a snapshot) and `s`
//! numbered snapshot *slots*. It implements [`Reverser`]:
//!
//! - `store(slot, step)`: copy the current state, which is `r_step`, into `slot`;
//! - `restore(slot, step)`: make the current state `r_step`, copied from `slot` (which holds it);
//! - `advance(step)`: one forward step, current state `r_step` → `r_{step+1}` (the counted,
//!   recomputing operation);
//! - `reverse(step)`: the adjoint step `step`, reading the current state, `r_step`. It must
//!   leave the current state unchanged (the schedule restores or advances from it).
//!
//! [`run`] drives it: when it starts, the current state must be `r_0`; it then calls
//! `reverse(n-1)`, `reverse(n-2)`, …, `reverse(0)`, each exactly once, with `advance`, `store`
//! and `restore` in between so that each `reverse(i)` sees `r_i`. Every slot it names is below
//! `slots(n, s)` (so below `s`), and `restore` only names a slot last `store`d with that step.
//!
//! # The convention: `s` counts the snapshot of `r_0`
//!
//! `binomial(s)` means `s` snapshots *including* the one that holds the initial state `r_0`
//! (slot 0 holds `r_0` whenever `n >= 2`). The current state is extra. Under this convention the
//! number of `advance` calls is the Griewank–Walther optimum
//!
//! ```text
//! t(n, s) = r·n − C(s + r, r − 1),   r = the smallest repeat count with C(s + r, s) ≥ n
//! ```
//!
//! ([`forward_steps`]); the tests check it against the dynamic program over all schedules,
//! `T(1, s) = 0`, `T(n, 0) = ∞` for `n ≥ 2` (with no snapshot only the current state remains,
//! enough for one step), and `T(n, s) = min over 1 ≤ m < n of m + T(n − m, s − 1) + T(m, s)`:
//! advance `m` steps, store `r_m`, reverse the last `n − m` steps with the other `s − 1` slots,
//! then restore `r_0` and reverse the first `m` with all `s`. For example `s = 1` costs
//! `n(n−1)/2`, and `s ≥ n − 1` stores every state: `n − 1` advances, the fewest possible. More
//! snapshots than `n − 1` are never used.
//!
//! # Memory and cost
//!
//! The driver allocates nothing and does not recurse: the snapshot positions live in a
//! caller-provided `stack` of at least `slots(n, s)` entries (the executor reserves it once,
//! beside the snapshots themselves). Its own work is `O(r)` per stored snapshot.
//!
//! ```
//! use adjit::revolve::{self, Reverser};
//! /// Reverses a running sum: states are partial sums of `xs`.
//! struct Sums<'a> { xs: &'a [f64], cur: f64, slots: Vec<f64>, seen: Vec<f64> }
//! impl Reverser for Sums<'_> {
//!     fn store(&mut self, slot: usize, _: usize) { self.slots[slot] = self.cur; }
//!     fn restore(&mut self, slot: usize, _: usize) { self.cur = self.slots[slot]; }
//!     fn advance(&mut self, step: usize) { self.cur += self.xs[step]; }
//!     fn reverse(&mut self, _: usize) { self.seen.push(self.cur); }
//! }
//! let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
//! let (n, s) = (xs.len(), 2);
//! let mut r = Sums { xs: &xs, cur: 0.0, slots: vec![0.0; revolve::slots(n, s)], seen: vec![] };
//! let mut stack = vec![0; revolve::slots(n, s)];
//! revolve::run(n, s, &mut stack, &mut r);
//! assert_eq!(r.seen, [10.0, 6.0, 3.0, 1.0, 0.0]); // r_4, r_3, …, r_0
//! assert_eq!(revolve::forward_steps(n, s), 6); // r = 2: 2·5 − C(4, 1)
//! ```

/// What the executor does at the schedule's command; see the module doc for the contract.
pub trait Reverser {
    /// Copies the current state, `r_step`, into snapshot `slot`.
    fn store(&mut self, slot: usize, step: usize);
    /// Makes the current state `r_step`, from snapshot `slot`.
    fn restore(&mut self, slot: usize, step: usize);
    /// One forward step: the current state `r_step` becomes `r_{step+1}`.
    fn advance(&mut self, step: usize);
    /// The adjoint of step `step`, reading the current state `r_step` and leaving it unchanged.
    fn reverse(&mut self, step: usize);
}

/// The number of snapshot slots (and `stack` entries) `run(n, snapshots, ..)` uses at most:
/// `min(snapshots, n − 1)`, with `snapshots = 0` counted as 1. Zero for `n ≤ 1`.
pub fn slots(n: usize, snapshots: usize) -> usize {
    snapshots.max(1).min(n.saturating_sub(1))
}

/// `C(s + r, s)` for `r = 0, 1, …`: the most steps `s` snapshots reverse with `r` repeats.
/// Saturates at `cap` so nothing overflows.
#[derive(Clone, Copy)]
struct Beta {
    s: u128,
    r: u128,
    value: u128,
}

impl Beta {
    fn new(s: usize) -> Beta {
        Beta {
            s: s as u128,
            r: 0,
            value: 1,
        }
    }

    /// Moves to `r + 1`: `C(s + r + 1, s) = C(s + r, s) · (s + r + 1) / (r + 1)`, exact while
    /// below `cap`, and `cap` from there on.
    fn next(&mut self, cap: u128) {
        self.r += 1;
        self.value = if self.value >= cap {
            cap
        } else {
            (self.value * (self.s + self.r) / self.r).min(cap)
        };
    }
}

/// The repeat count `r ≥ 1` of reversing `n ≥ 2` steps with `s ≥ 1` snapshots (the smallest with
/// `C(s + r, s) ≥ n`), and the split: advance `m` steps, then store. Any `m` between
/// `n − C(s − 1 + r, s − 1)` and `C(s + r − 1, s)` keeps the schedule optimal as long as both
/// parts need their full repeat counts (`r` for the upper part with `s − 1` snapshots, `r − 1`
/// for the lower part with `s`); the largest such lower part is taken.
fn split(n: usize, s: usize) -> usize {
    let cap = n as u128;
    let (mut upper, mut lower) = (Beta::new(s - 1), Beta::new(s));
    // Invariant: `lower` is C(s + r − 1, s), `upper` is C(s − 1 + r − 1, s − 1), for the r
    // being tried; stop at the first r with C(s + r, s) = lower + upper' ≥ n.
    loop {
        let mut upper_next = upper;
        upper_next.next(cap);
        if lower.value + upper_next.value >= cap {
            // r found: m = min(C(s + r − 1, s), n − C(s + r − 2, s − 1)).
            return (lower.value.min(cap - upper.value)) as usize;
        }
        lower.next(cap);
        upper = upper_next;
    }
}

/// Reverses steps `n − 1, …, 0` under the binomial schedule with `snapshots` snapshots (see the
/// module doc; 0 counts as 1), calling `r`. `stack` holds the positions of the stored states
/// and needs at least `slots(n, snapshots)` entries; a shorter one is a caller bug and panics.
/// Allocation-free; the number of `advance` calls is `forward_steps(n, snapshots)`.
pub fn run(n: usize, snapshots: usize, stack: &mut [usize], r: &mut impl Reverser) {
    if n == 0 {
        return;
    }
    let s = slots(n, snapshots).max(1);
    assert!(
        stack.len() >= slots(n, snapshots),
        "revolve::run: a stack of {} entries for {n} steps and {snapshots} snapshots, which \
         need {}",
        stack.len(),
        slots(n, snapshots)
    );
    if n == 1 {
        r.reverse(0);
        return;
    }
    // Frame k: slot k holds r_{stack[k]}; the steps stack[k] .. end are still to reverse, with
    // slots k .. s available. `cur` is the step of the current state.
    stack[0] = 0;
    r.store(0, 0);
    let (mut k, mut cur, mut end) = (0usize, 0usize, n);
    loop {
        let base = stack[k];
        let len = end - base;
        if len == 0 {
            if k == 0 {
                return;
            }
            k -= 1;
            continue;
        }
        if cur != base {
            r.restore(k, base);
            cur = base;
        }
        if len == 1 {
            r.reverse(base);
            end = base;
            continue;
        }
        let m = split(len, s - k);
        for step in base..base + m {
            r.advance(step);
        }
        cur = base + m;
        if end - cur == 1 {
            // The upper part is one step: reverse it from the current state, no snapshot.
            r.reverse(cur);
            end = cur;
        } else {
            k += 1;
            stack[k] = cur;
            r.store(k, cur);
        }
    }
}

/// The number of `advance` calls of `run(n, snapshots, ..)`, by the Griewank–Walther formula
/// `r·n − C(s + r, r − 1)` with `r` the smallest repeat count such that `C(s + r, s) ≥ n` (and
/// `s = slots(n, snapshots)`, at least 1). Saturates at `u64::MAX`; `O(r)` time.
pub fn forward_steps(n: usize, snapshots: usize) -> u64 {
    if n <= 1 {
        return 0;
    }
    let s = slots(n, snapshots).max(1);
    let cap = n as u128;
    let (mut beta, mut r) = (Beta::new(s), 0u128);
    while beta.value < cap {
        beta.next(cap);
        r += 1;
    }
    // C(s + r, r − 1) = C(s + 1 + (r − 1), s + 1): r − 1 steps of the s + 1 sequence. It is at
    // most n·(s + r)/(s + 1) (C(s + r − 1, s) < n), so it fits without a cap.
    let mut c = Beta::new(s + 1);
    for _ in 1..r {
        c.next(u128::MAX);
    }
    let t = r * cap - c.value;
    u64::try_from(t).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every contract of the module doc and counts advances.
    struct Checker {
        s: usize,
        cur: usize,
        slot_step: Vec<Option<usize>>,
        next_reverse: usize,
        advances: u64,
    }

    impl Checker {
        fn run(n: usize, s: usize) -> u64 {
            let slots = slots(n, s);
            let mut c = Checker {
                s: s.max(1),
                cur: 0,
                slot_step: vec![None; slots],
                next_reverse: n,
                advances: 0,
            };
            let mut stack = vec![0; slots];
            run(n, s, &mut stack, &mut c);
            assert_eq!(c.next_reverse, 0, "n={n} s={s}: not every step reversed");
            c.advances
        }
    }

    impl Reverser for Checker {
        fn store(&mut self, slot: usize, step: usize) {
            assert!(slot < self.s && slot < self.slot_step.len());
            assert_eq!(self.cur, step);
            self.slot_step[slot] = Some(step);
        }
        fn restore(&mut self, slot: usize, step: usize) {
            assert_eq!(self.slot_step[slot], Some(step));
            self.cur = step;
        }
        fn advance(&mut self, step: usize) {
            assert_eq!(self.cur, step);
            assert!(
                step + 1 < self.next_reverse,
                "advance past what is left to reverse"
            );
            self.cur += 1;
            self.advances += 1;
        }
        fn reverse(&mut self, step: usize) {
            assert_eq!(self.cur, step, "reverse({step}) sees state {}", self.cur);
            assert_eq!(step + 1, self.next_reverse, "steps reversed out of order");
            self.next_reverse = step;
        }
    }

    /// The optimal number of advances over all schedules, by dynamic programming.
    fn dp(max_n: usize, max_s: usize) -> Vec<Vec<u64>> {
        let inf = u64::MAX / 4;
        let mut t = vec![vec![inf; max_s + 1]; max_n + 1];
        for row in t.iter_mut().take(2) {
            row.fill(0);
        }
        for n in 2..=max_n {
            for s in 1..=max_s {
                t[n][s] = (1..n)
                    .map(|m| m as u64 + t[n - m][s - 1] + t[m][s])
                    .min()
                    .unwrap();
            }
        }
        t
    }

    #[test]
    fn schedule_and_formula_are_optimal() {
        let (max_n, max_s) = (70, 9);
        let t = dp(max_n, max_s);
        for (n, row) in t.iter().enumerate().skip(1) {
            for (s, &best) in row.iter().enumerate().skip(1) {
                assert_eq!(forward_steps(n, s), best, "formula, n={n} s={s}");
                assert_eq!(Checker::run(n, s), best, "schedule, n={n} s={s}");
            }
        }
    }

    /// Under the other convention (the initial state free, `s` snapshots besides it) the
    /// optimum is `T(n, s + 1)`, which the formula does not give.
    #[test]
    fn the_initial_state_takes_a_snapshot() {
        let t = dp(20, 5);
        assert!((3..=20).all(|n| (1..=4).all(|s| forward_steps(n, s) == t[n][s])));
        assert!((3..=20).any(|n| (1..=4).any(|s| forward_steps(n, s) != t[n][s + 1])));
    }

    #[test]
    fn small_cases() {
        assert_eq!(Checker::run(0, 3), 0);
        assert_eq!(Checker::run(1, 1), 0);
        assert_eq!(Checker::run(2, 1), 1);
        assert_eq!(forward_steps(10, 1), 45);
        assert_eq!(Checker::run(10, 1), 45);
        for s in [9, 10, 11, 1000] {
            assert_eq!(Checker::run(10, s), 9, "s={s} stores everything");
        }
        assert_eq!(Checker::run(5, 0), Checker::run(5, 1));
        assert_eq!(slots(10, 1000), 9);
        assert_eq!(slots(1, 5), 0);
    }
}
