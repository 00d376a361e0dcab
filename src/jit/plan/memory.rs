//! Memory: where every storage owner lives (`Home`), the workspace slots of scalars, and the
//! workspace layout. Tensor constants come first (written once per workspace, never reused);
//! then materialized values and scalar slots take ranges that are reused after their last
//! reader; values computed inside a concat live inside the concat's range. Each scan's body
//! and replay step keep a workspace of their own after the constants (never reused, since their
//! constants are written once); its spare carries, replay states and staged operands take
//! ranges for the scan's unit only, as does the packed copy of a matmul's B (`packed_len`).

use super::concat::Inside;
use super::liveness::Liveness;
use super::scan::scan_values;
use super::{unit_values, Constant, Home, Kind, Plan, ScanPlan, Unit, ValueMap};
use crate::call::Ranges;
use crate::ir::{Func, Op, Value};

pub(super) struct Memory {
    pub homes: ValueMap<Option<Home>>,
    pub slots: ValueMap<Option<Home>>,
    pub consts: Vec<Constant>,
    pub workspace_len: usize,
    pub packs: ValueMap<Option<usize>>,
}

/// What the layout reads of the plan so far.
pub(super) struct Facts<'a> {
    pub kinds: &'a ValueMap<Kind>,
    /// The output a value is computed straight into.
    pub output: &'a ValueMap<Option<usize>>,
    pub units: &'a [Unit],
    pub loop_roots: &'a [Value],
    pub inside: &'a ValueMap<Option<Inside>>,
    pub live: &'a Liveness,
}

pub(super) fn memory(
    f: &Func,
    facts: &Facts,
    scans: &mut ValueMap<Option<Box<ScanPlan>>>,
) -> Memory {
    let nv = f.num_values();
    let mut homes = ValueMap::filled(nv, None);
    for (i, p) in f.params.iter().enumerate() {
        if p.ty.numel() != 1 {
            homes[f.param_value(i)] = Some(Home::Input(i));
        }
    }
    for k in 0..f.insts.len() {
        let v = f.inst_value(k);
        homes[v] = facts.output[v].map(|out| Home::Output(out, 0));
    }
    let mut consts = constants(f, facts.kinds, &mut homes);
    let top = consts.last().map_or(0, |c| c.offset + c.len);
    let mut ranges = Ranges::above(top);
    let values: Vec<Value> = scan_values(f, scans).collect();
    for &v in &values {
        let sp = scans[v].as_mut().expect("a scan");
        sp.at.body_ws = own_workspace(&sp.body.plan, &mut ranges, &mut consts);
        if let Some(r) = &sp.replay {
            sp.at.replay_ws = own_workspace(&r.plan, &mut ranges, &mut consts);
        }
    }
    let mut layout = Layout {
        f,
        facts,
        homes,
        slots: ValueMap::filled(nv, None),
        ranges,
        dies: vec![Vec::new(); facts.units.len()],
        scans,
        packs: ValueMap::filled(nv, None),
    };
    for (i, u) in facts.units.iter().enumerate() {
        for &v in unit_values(u, facts.loop_roots) {
            layout.place(v, i);
        }
        for (off, len) in std::mem::take(&mut layout.dies[i]) {
            layout.ranges.release(off, len);
        }
    }
    Memory {
        workspace_len: layout.ranges.len(),
        packs: layout.packs,
        homes: layout.homes,
        slots: layout.slots,
        consts,
    }
}

/// Tensor constants, laid out from the start of the workspace, with their homes.
fn constants(
    f: &Func,
    kinds: &ValueMap<Kind>,
    homes: &mut ValueMap<Option<Home>>,
) -> Vec<Constant> {
    let mut top = 0;
    let mut consts = Vec::new();
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        if let (Op::Const { value, .. }, Kind::Mem(m)) = (&inst.op, kinds[v]) {
            if m.storage == v {
                homes[v] = Some(Home::Work(top));
                consts.push(Constant {
                    offset: top,
                    value: value.clone(),
                    len: inst.ty.numel(),
                });
                top += inst.ty.numel();
            }
        }
    }
    consts
}

/// A permanent range for the workspace of a scan's function planned as `plan`, with its
/// constants (and those of scans nested in it) added to `consts` at their places.
fn own_workspace(plan: &Plan, ranges: &mut Ranges, consts: &mut Vec<Constant>) -> usize {
    let at = ranges.permanent(plan.workspace_len);
    consts.extend(plan.consts.iter().map(|c| Constant {
        offset: at + c.offset,
        ..c.clone()
    }));
    at
}

/// The workspace as it is laid out, unit by unit.
struct Layout<'a> {
    f: &'a Func,
    facts: &'a Facts<'a>,
    homes: ValueMap<Option<Home>>,
    slots: ValueMap<Option<Home>>,
    ranges: Ranges,
    /// The ranges freed after each unit: (offset, length).
    dies: Vec<Vec<(usize, usize)>>,
    scans: &'a mut ValueMap<Option<Box<ScanPlan>>>,
    packs: ValueMap<Option<usize>>,
}

/// The elements of the row-major copy of B that matmul `v` makes before its tiles, if it makes
/// one: when B is in memory but not contiguous along the result's columns (`tb`: B read across
/// its rows, or a strided view), so that the tiles can read two columns at once (see
/// `lower/matmul.rs`). Not for a single result row or column, where copying would cost as
/// much as the product.
fn packed_len(f: &Func, kinds: &ValueMap<Kind>, v: Value) -> Option<usize> {
    let inst = super::inst(f, v)?;
    let Op::Matmul { ta, tb } = inst.op else {
        return None;
    };
    let (a, b) = (f.value_type(inst.args[0]), f.value_type(inst.args[1]));
    let d = crate::ops::contract::matmul_dims(a, b, ta, tb);
    let Kind::Mem(m) = kinds[inst.args[1]] else {
        return None;
    };
    let r = b.rank();
    let along_j = if tb {
        m.strides[r - 2]
    } else {
        m.strides[r - 1]
    };
    let along_p = if tb {
        m.strides[r - 1]
    } else {
        m.strides[r - 2]
    };
    let across = crate::jit::lower::computed_across(&d, along_p, along_j);
    (along_j != 1 && d.m >= 2 && d.n >= 2 && !across).then_some(d.batch * d.k * d.n)
}

impl Layout<'_> {
    /// Gives value `v`, computed by unit `i`, its home or slot.
    fn place(&mut self, v: Value, i: usize) {
        // Freed after its last reader (or right away if nothing reads it).
        let last = self.facts.live.last_unit[v].max(i);
        if let Some(inside) = self.facts.inside[v] {
            self.place_inside(v, inside, i);
        } else if self.facts.live.needs_slot[v] {
            let off = self.ranges.take(1);
            self.slots[v] = Some(Home::Work(off));
            self.dies[last].push((off, 1));
        } else if self.homes[v].is_none() && matches!(self.facts.kinds[v], Kind::Mem(_)) {
            let len = self.f.value_type(v).numel();
            if len > 0 {
                self.claim(v, len, last);
            }
        }
        if self.scans[v].is_some() {
            self.place_scan(v, i);
        }
        if let Some(len) = packed_len(self.f, self.facts.kinds, v) {
            let off = self.ranges.take(len);
            self.dies[i].push((off, len));
            self.packs[v] = Some(off);
        }
    }

    /// The ranges scan `v` (unit `i`) uses while it runs: the spare carries, the replay
    /// states and the staged operands.
    fn place_scan(&mut self, v: Value, i: usize) {
        let mut take = |ranges: &mut Ranges, len: usize| {
            if len == 0 {
                return 0;
            }
            let off = ranges.take(len);
            self.dies[i].push((off, len));
            off
        };
        let sp = self.scans[v].as_mut().expect("a scan");
        let length = sp.shape.length;
        let args = &super::inst(self.f, v).expect("a scan").args;
        let running = length > 0;
        sp.at.spare = take(&mut self.ranges, if running { sp.carries_len() } else { 0 });
        let states: usize = sp.replay_lens().iter().sum();
        let ranges = &mut self.ranges;
        if let Some(rv) = &mut sp.at.revolve {
            let slots = crate::revolve::slots(length, rv.snapshots);
            rv.cur = take(ranges, states);
            rv.next = take(ranges, states);
            rv.snaps = take(ranges, slots * states);
            // Machine words in f64 slots: both are 8 bytes on the hosts Cranelift targets.
            rv.stack = take(ranges, slots);
        } else {
            sp.at.trajectory = take(ranges, if running { states * length } else { 0 });
        }
        for (j, staged) in sp.at.staged.iter_mut().enumerate() {
            if staged.is_some() {
                *staged = Some(take(&mut self.ranges, self.f.value_type(args[j]).numel()));
            }
        }
    }

    /// Places `v` inside the concat that reads it. Chains of concats resolve from the outermost
    /// one, which is claimed first.
    fn place_inside(&mut self, v: Value, inside: Inside, i: usize) {
        let inside_of = |x: Value| self.facts.inside[x];
        let mut chain = vec![v];
        let mut outer = inside.concat;
        while let Some(next) = inside_of(outer) {
            chain.push(outer);
            outer = next.concat;
        }
        let last = self.facts.live.last_unit[outer].max(i);
        self.claim(outer, self.f.value_type(outer).numel(), last);
        for &x in chain.iter().rev() {
            let at = self.facts.inside[x].expect("in the chain");
            let home = self.homes[at.concat]
                .expect("claimed above")
                .offset(at.offset);
            if self.facts.kinds[x] == Kind::Scalar {
                self.slots[x] = Some(home);
            } else {
                self.homes[x] = Some(home);
            }
        }
    }

    /// Gives `v` a fresh workspace range of `len` elements, freed after unit `last`, unless it
    /// already has a home.
    fn claim(&mut self, v: Value, len: usize, last: usize) {
        if self.homes[v].is_some() {
            return;
        }
        let off = self.ranges.take(len);
        self.homes[v] = Some(Home::Work(off));
        self.dies[last].push((off, len));
    }
}
