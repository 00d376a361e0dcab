//! Values computed in the reduction nest that alone reads them: an elementwise value of a
//! partial-reduction nest's shape, read only by the nest's roots and their fused values, joins
//! the group of the first root that reads it instead of being stored by a loop of its own
//! (`share_in_reductions`, after `fusion::merge_loops`).

use super::fusion::{Groups, MAX_LOOP_VALUES};
use super::kinds::{readers, Uses};
use super::{inst, Kind, Unit, ValueMap};
use crate::ir::{Func, Op, Value};
use crate::ops::vmath;
use std::collections::{HashMap, HashSet};

/// Elementwise values of a partial-reduction nest's shape that only that nest reads (several of
/// its roots, or one root through two members) made fused into the group of the first root
/// that reads them, without a loop of their own: a later root finds them computed (`lower::
/// reduce`). `softmax`'s jvp stored its row-maximum mask for the two sums that read it, and
/// `nbody`'s the pair differences for the two sums of squares and products; both are now
/// computed in the sums' nest instead of in a loop that stored them.
pub(super) fn share_in_reductions(
    f: &Func,
    uses: &Uses,
    groups: &mut Groups,
    (units, loop_roots): (&mut Vec<Unit>, &mut Vec<Value>),
    kinds: &mut ValueMap<Kind>,
) {
    let readers = readers(f);
    let computed_by_unit: HashSet<Value> = units
        .iter()
        .flat_map(|u| super::unit_values(u, loop_roots).iter().copied())
        .collect();
    let mut dropped = Vec::new();
    for u in units.iter() {
        let roots = super::unit_values(u, loop_roots);
        let partial = |r: Value| {
            inst(f, r).is_some_and(|i| i.op.reduction().is_some())
                && matches!(kinds[r], Kind::Mem(m) if m.storage == r)
        };
        if roots.is_empty() || !roots.iter().all(|&r| partial(r)) {
            continue;
        }
        let nest = Nest {
            f,
            groups,
            readers: &readers,
            roots,
        };
        let shareable = |c: Value| {
            matches!(kinds[c], Kind::Mem(m) if m.storage == c)
                && !uses.returned[c]
                && computed_by_unit.contains(&c)
                && inst(f, c).is_some_and(|ci| {
                    let four_lane = matches!(ci.op, Op::Unary(u) if vmath::is_four_lane(u));
                    ci.op.is_elementwise() && !four_lane
                })
        };
        let shared = nest.shared(&shareable);
        let owners = nest.owners(&shared);
        let adding: usize = shared.iter().map(|&c| 1 + groups.members(c).len()).sum();
        let present: usize = roots.iter().map(|&r| 1 + groups.members(r).len()).sum();
        if shared.is_empty() || present + adding > MAX_LOOP_VALUES {
            continue;
        }
        for (&c, &owner) in shared.iter().zip(&owners) {
            kinds[c] = Kind::Fused;
            groups.adopt(c, owner);
            dropped.push(c);
        }
    }
    if !dropped.is_empty() {
        (*units, *loop_roots) = without_roots(units, loop_roots, &dropped);
    }
}

/// A partial-reduction nest, for `share_in_reductions`.
struct Nest<'a> {
    f: &'a Func,
    groups: &'a Groups,
    readers: &'a ValueMap<Vec<Value>>,
    roots: &'a [Value],
}

impl Nest<'_> {
    /// The values the nest can compute instead of reading (in instruction order): `shareable`
    /// ones of the nest's shape whose every reader is in the nest, or is one of them, or is
    /// fused into one of them.
    fn shared(&self, shareable: &dyn Fn(Value) -> bool) -> Vec<Value> {
        let f = self.f;
        let Some(first) = inst(f, self.roots[0]) else {
            return Vec::new();
        };
        let shape = f.value_type(first.args[0]).shape;
        let mut shared: Vec<Value> = Vec::new();
        let mut grew = true;
        while grew {
            grew = false;
            let owners: Vec<Value> = self.roots.iter().chain(&shared).copied().collect();
            let computed: Vec<Value> = owners
                .iter()
                .flat_map(|&o| self.groups.members(o).iter().copied().chain([o]))
                .collect();
            for c in computed
                .iter()
                .filter_map(|&v| inst(f, v))
                .flat_map(|i| i.args.to_vec())
            {
                let read_inside = |x: Value| owners.contains(&self.groups.root(x).unwrap_or(x));
                if !shared.contains(&c)
                    && f.value_type(c).shape == shape
                    && shareable(c)
                    && self.readers[c].iter().all(|&x| read_inside(x))
                {
                    shared.push(c);
                    grew = true;
                }
            }
        }
        shared.sort_unstable();
        shared
    }

    /// The root whose group computes each of `shared` (in instruction order): the first in the
    /// nest whose group reads it, directly or through other shared values (so every root finds
    /// what it reads computed by itself or an earlier root).
    fn owners(&self, shared: &[Value]) -> Vec<Value> {
        let position = |r: Value| {
            self.roots
                .iter()
                .position(|&x| x == r)
                .unwrap_or(usize::MAX)
        };
        let mut owner: HashMap<Value, Value> = HashMap::new();
        // Readers come after what they read: assign from the last shared value back.
        for &c in shared.iter().rev() {
            let first = self.readers[c]
                .iter()
                .map(|&x| {
                    let root = self.groups.root(x).unwrap_or(x);
                    owner.get(&root).or(owner.get(&x)).copied().unwrap_or(root)
                })
                .min_by_key(|&r| position(r))
                .expect("a shared value is read");
            owner.insert(c, first);
        }
        shared.iter().map(|c| owner[c]).collect()
    }
}

/// `units` and `loop_roots` with the values `dropped` no longer computed: a loop left with one
/// root is a plain unit, one with none is gone.
fn without_roots(
    units: &[Unit],
    loop_roots: &[Value],
    dropped: &[Value],
) -> (Vec<Unit>, Vec<Value>) {
    let mut kept_units = Vec::with_capacity(units.len());
    let mut kept_roots = Vec::with_capacity(loop_roots.len());
    for u in units {
        let Unit::Loop { .. } = u else {
            if !matches!(u, Unit::Compute(v) if dropped.contains(v)) {
                kept_units.push(*u);
            }
            continue;
        };
        let roots: Vec<Value> = super::unit_values(u, loop_roots)
            .iter()
            .copied()
            .filter(|r| !dropped.contains(r))
            .collect();
        match roots.len() {
            0 => {}
            1 => kept_units.push(Unit::Compute(roots[0])),
            n => {
                kept_units.push(Unit::Loop {
                    first: kept_roots.len() as u32,
                    count: n as u32,
                });
                kept_roots.extend(roots);
            }
        }
    }
    (kept_units, kept_roots)
}
