//! Scans: each body (and replay step) planned on its own, as a function the caller's loop calls
//! once per step (`crate::jit::lower`), and which operands that loop can pass by a pointer to
//! where they already are. The others (registers, splats, broadcasts, strided views) are copied
//! to a contiguous staging range first; `memory` places those ranges. Replay scans reversed
//! under `binomial(s)` with fewer snapshots than states run under `crate::revolve`.

use super::kinds::is_row_major;
use super::{plan, Kind, Load, Revolve, ScanPlace, ScanPlan, Sub, ValueMap};
use crate::ir::{Checkpoint, Def, Func, Op, ScanShape, Value};
use crate::jit::empty::without_empty;

/// The plan of every scan of `f`, its workspace offsets not yet placed.
pub(super) fn scans(
    f: &Func,
    kinds: &ValueMap<Kind>,
    loads: &ValueMap<Option<Load>>,
    chunk_cost: usize,
) -> ValueMap<Option<Box<ScanPlan>>> {
    let mut scans = ValueMap::from_fn(f.num_values(), |_| None);
    for (k, inst) in f.insts.iter().enumerate() {
        let Op::Scan {
            body,
            replay,
            reverse,
            checkpoint,
            ..
        } = &inst.op
        else {
            continue;
        };
        let replay = replay.as_ref().map(|r| r.func());
        let (shape, parts) = ScanShape::of(&inst.op, inst.args.len())
            .and_then(|s| Ok((s.clone(), s.parts()?.0)))
            .expect("a verified scan has a valid shape");
        let length = shape.length;
        let staged = inst
            .args
            .iter()
            .enumerate()
            .map(|(j, &a)| {
                let copied = j < shape.replay_start() || j >= shape.xs_start();
                (copied && !by_pointer(f, kinds, loads, a)).then_some(0)
            })
            .collect();
        scans[f.inst_value(k)] = Some(Box::new(ScanPlan {
            shape,
            parts,
            reverse: *reverse,
            checkpoint: *checkpoint,
            body: sub(body.func(), chunk_cost),
            replay: replay.map(|r| sub(r, chunk_cost)),
            at: ScanPlace {
                staged,
                revolve: revolve(replay.is_some(), *reverse, *checkpoint, length),
                ..ScanPlace::default()
            },
        }));
    }
    scans
}

/// A replay scan runs under `crate::revolve` when it is reversed under `binomial(s)` with too
/// few snapshots to store every state; otherwise it stores the whole trajectory (the same
/// states, computed once each).
fn revolve(replay: bool, reverse: bool, checkpoint: Checkpoint, length: usize) -> Option<Revolve> {
    let Checkpoint::Binomial(s) = checkpoint else {
        return None;
    };
    let snapshots = s as usize;
    let few = crate::revolve::slots(length, snapshots) < length.saturating_sub(1);
    (replay && reverse && few).then(|| Revolve {
        snapshots,
        ..Revolve::default()
    })
}

/// `g` planned as a function of its own.
fn sub(g: &Func, chunk_cost: usize) -> Sub {
    let func = without_empty(g).unwrap_or_else(|| g.clone());
    let plan = plan(&func, chunk_cost);
    Sub { func, plan }
}

/// Whether a scan can pass operand `a` by a pointer to where it is: row-major memory, a scalar
/// parameter, or a one-element load; or anything empty, which is never read. (Carries and
/// replay carries are always copied, into the buffers the steps alternate between.)
fn by_pointer(f: &Func, kinds: &ValueMap<Kind>, loads: &ValueMap<Option<Load>>, a: Value) -> bool {
    let ty = f.value_type(a);
    if ty.numel() == 0 {
        return true;
    }
    match kinds[a] {
        Kind::Mem(m) => is_row_major(&m, &ty.shape.to_vec()),
        Kind::Scalar => loads[a].is_some() || matches!(f.def(a), Def::Param(_)),
        Kind::Splat(_) | Kind::Bcast(_) | Kind::Fused | Kind::Pieces => false,
    }
}

/// The scans of `f`, in instruction order.
pub(super) fn scan_values<'a>(
    f: &'a Func,
    scans: &'a ValueMap<Option<Box<ScanPlan>>>,
) -> impl Iterator<Item = Value> + 'a {
    (0..f.insts.len())
        .map(|k| f.inst_value(k))
        .filter(|&v| scans[v].is_some())
}
