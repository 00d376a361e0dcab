//! Units: every value that needs code, in instruction order, and the copies of results into
//! the caller's outputs. A result computed by a unit into its own storage is computed straight
//! into its (first) output instead of being copied.

use super::{Kind, Load, Unit, ValueMap};
use crate::ir::{Func, Op, Value};

pub(super) struct Units {
    /// In execution order, before loops are merged.
    pub units: Vec<Unit>,
    /// The output each value is computed straight into.
    pub output: ValueMap<Option<usize>>,
}

/// The units of `f`, given each value's kind, the one-element values loaded where used, and
/// the register views of scalars (`scalar_source`).
pub(super) fn units(
    f: &Func,
    kinds: &ValueMap<Kind>,
    loads: &ValueMap<Option<Load>>,
    scalar_source: &ValueMap<Value>,
) -> Units {
    let nv = f.num_values();
    let mut pending: ValueMap<Vec<usize>> = ValueMap::filled(nv, Vec::new());
    for (k, &r) in f.results.iter().enumerate() {
        pending[r].push(k);
    }
    let mut out = Units {
        units: Vec::new(),
        output: ValueMap::filled(nv, None),
    };
    for i in 0..f.params.len() {
        out.outputs_of(f, f.param_value(i), &pending[f.param_value(i)], false);
    }
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k);
        let is_const = matches!(inst.op, Op::Const { .. });
        let needs_code = match kinds[v] {
            Kind::Scalar => !is_const && loads[v].is_none() && scalar_source[v] == v,
            Kind::Mem(m) => m.storage == v && !is_const,
            Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused | Kind::Pieces => false,
        };
        if needs_code {
            out.units.push(Unit::Compute(v));
        }
        let in_place = needs_code && matches!(kinds[v], Kind::Mem(_));
        out.outputs_of(f, v, &pending[v], in_place);
    }
    out
}

impl Units {
    /// Writes `v` to each output in `outputs`: the first by computing it there if
    /// `computed_in_place`, the others by copies.
    fn outputs_of(&mut self, f: &Func, v: Value, outputs: &[usize], computed_in_place: bool) {
        if f.value_type(v).numel() == 0 {
            return; // Nothing to write.
        }
        for (n, &k) in outputs.iter().enumerate() {
            if n == 0 && computed_in_place {
                self.output[v] = Some(k);
            } else {
                self.units.push(Unit::CopyOut(v, k));
            }
        }
    }
}
