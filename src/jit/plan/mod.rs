//! Planning a function for code generation, before any Cranelift: how every value is computed
//! and where it lives, which instructions fuse into one loop, how the work is cut into chunks,
//! and the workspace layout. `plan` runs the phases in order, one file each; this file holds
//! the plan's types, which the lowering reads.
//!
//! Every value gets a `Kind` (`kinds`):
//! - `Scalar`: one element (`f64[]`, `f64[1]`, ...). Kept in a register (an SSA value of the
//!   generated code); stored to a workspace slot only when a later chunk reads it. (A scan's
//!   result is `Mem` even with one element: the loop writes it through pointers.)
//! - `Splat`: a constant with every element equal: an immediate wherever it is read.
//! - `Mem`: readable from memory at `storage + offset + sum(index[d] * strides[d])`. Parameters,
//!   tensor constants and materialized results are `Mem` with row-major strides; `broadcast`,
//!   `slice`, `transpose` and (of row-major data) `reshape` are `Mem` views of their operand's
//!   storage with other strides, so they cost nothing until read.
//! - `Bcast`: a scalar seen over a larger shape (a broadcast of a one-element value).
//! - `Fused`: an elementwise value read by one instruction (once, or twice as in `d * d`), an
//!   elementwise op or reduction of the same shape: computed inside its consumer's loop, never
//!   stored (`fusion::Groups`); or an elementwise value only one reduction nest reads, computed
//!   in the group of its first root that reads it (`share::share_in_reductions`); or a root of
//!   a merged loop read only by later roots of that loop, kept in its register
//!   (`fusion::loop_locals`).
//! - `Pieces`: a `concat`, not a short one, read only by elementwise loops, never stored: each
//!   loop reading it is split at the part boundaries and reads every part where it lies
//!   (`concat::pieces`).
//!
//! Values that need code are emitted as `Unit`s in instruction order (`units`); a unit is a
//! scalar op, a loop nest (a fused elementwise group, a reduction, a copy, pad or concat), a
//! register-tiled matmul (a generated loop nest too: there is no kernel call), several loops
//! over one shape merged into one nest (`fusion::merge_loops`), or the copy of a result into
//! its output. Units are cut into chunks (one generated function each) so that compile time
//! stays linear (`chunks`). Workspace ranges are reused once their value is dead (`liveness`,
//! `memory`).
//!
//! A `scan` is a unit too: its body (and replay step) is planned on its own as a function of
//! its own (`scan`), compiled once, and called by a loop in the caller's code once per step.
//! The scan's operands are passed by pointer, so those not already contiguous in memory are
//! copied to a staging range first; its packed result is a materialized value like any other.

mod chunks;
mod concat;
mod fusion;
mod kinds;
mod liveness;
mod memory;
mod scan;
mod share;
mod units;
mod value_map;

pub use concat::{piece_parts, MIN_PIECEWISE_ELEMENTS};
pub use fusion::{Groups, MAX_LOOP_VALUES, MAX_REDUCTION_ROOTS};
pub use kinds::MAX_FUSED_GROUP;
pub use value_map::ValueMap;

use crate::ir::{Checkpoint, Def, Func, Inst, Literal, ScanShape, Type, Value, MAX_RANK};
use std::ops::Range;

/// Where a `Mem` value's elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    /// The value that owns the storage (a parameter, a tensor constant or a materialized value).
    pub storage: Value,
    /// In elements from the start of the storage.
    pub offset: i64,
    /// In elements, one per axis of the value's shape.
    pub strides: [i64; MAX_RANK],
}

impl Mem {
    /// The offset of the element at index `start` (one entry per axis).
    pub fn element(&self, start: crate::ir::Dims) -> i64 {
        self.offset
            + start
                .iter()
                .enumerate()
                .map(|(d, s)| s as i64 * self.strides[d])
                .sum::<i64>()
    }
}

/// How a value is computed and read (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Scalar,
    Splat(f64),
    Mem(Mem),
    Bcast(Value),
    Fused,
    Pieces,
}

/// Where a storage owner lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    Input(usize),
    /// Output buffer `k`, from element `offset`.
    Output(usize, usize),
    /// Workspace offset, in elements.
    Work(usize),
}

impl Home {
    /// The same place moved `by` elements on.
    fn offset(self, by: usize) -> Home {
        match self {
            Home::Input(i) => Home::Input(i),
            Home::Output(k, off) => Home::Output(k, off + by),
            Home::Work(off) => Home::Work(off + by),
        }
    }
}

/// A one-element value read straight from memory that no call writes (a one-element slice of a
/// parameter or tensor constant): loaded where it is used, each chunk loading its own copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub storage: Value,
    /// In elements from the start of the storage.
    pub offset: i64,
}

/// A tensor constant's data and its place in the workspace (written once, when a workspace is
/// made).
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// In elements from the start of the workspace.
    pub offset: usize,
    pub value: Literal,
    /// Number of elements.
    pub len: usize,
}

/// One piece of generated code, in execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Compute value `v` (a scalar op, or a loop nest writing `v`'s storage).
    Compute(Value),
    /// Compute several values in one loop nest over one shape: the values
    /// `loop_roots[first..first + count]`, in order, each an elementwise value of that shape or
    /// a reduction of that shape to a scalar (each may read the earlier elementwise ones, at
    /// the same index only).
    Loop { first: u32, count: u32 },
    /// Copy value `v` into output `k` (results that are not computed in place).
    CopyOut(Value, usize),
}

/// The values a unit computes (none for a copy).
pub fn unit_values<'a>(u: &'a Unit, loop_roots: &'a [Value]) -> &'a [Value] {
    match u {
        Unit::Compute(v) => std::slice::from_ref(v),
        Unit::Loop { first, count } => &loop_roots[*first as usize..(first + count) as usize],
        Unit::CopyOut(..) => &[],
    }
}

/// A function a scan calls per step, with its own plan: the body or the replay step, its
/// zero-size values already rewritten (`crate::jit::empty`).
pub struct Sub {
    pub func: Func,
    pub plan: Plan,
}

/// How one scan runs: its layout, its functions, and the workspace it uses besides its result.
pub struct ScanPlan {
    pub shape: ScanShape,
    /// Offset (in elements of the packed result) and type of each part: the final carries,
    /// then the stacked outputs.
    pub parts: Vec<(usize, Type)>,
    pub reverse: bool,
    pub checkpoint: Checkpoint,
    pub body: Sub,
    pub replay: Option<Sub>,
    /// Workspace offsets, set by the memory phase.
    pub at: ScanPlace,
}

/// Where a scan's workspace ranges are, in elements from the start of the workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPlace {
    /// The body's own workspace (its constants written once; never reused by other values).
    pub body_ws: usize,
    /// The replay step's own workspace.
    pub replay_ws: usize,
    /// The carries of every other step: steps alternate between this range and the result.
    pub spare: usize,
    /// The replay states `r_0 .. r_{length-1}`, each replay carry's states in a row (unless
    /// `revolve`).
    pub trajectory: usize,
    /// For each operand, the offset of its contiguous copy, if it is not passed where it is
    /// (`Some` from `scan` on for those copied, placed by `memory`).
    pub staged: Vec<Option<usize>>,
    /// A replay scan under binomial checkpointing with fewer snapshots than states: reversed
    /// by `crate::revolve` instead of storing the trajectory.
    pub revolve: Option<Revolve>,
}

/// The workspace of a replay scan reversed by `crate::revolve` (offsets in elements).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revolve {
    /// The snapshot count given to `revolve::run`.
    pub snapshots: usize,
    /// The current replay state (every replay carry, in a row).
    pub cur: usize,
    /// The replay step's result, copied into `cur` after each step.
    pub next: usize,
    /// `revolve::slots(length, snapshots)` stored states.
    pub snaps: usize,
    /// Revolve's stack of stored positions, one machine word per slot.
    pub stack: usize,
}

impl ScanPlan {
    /// Elements of all carries (one step's state).
    pub fn carries_len(&self) -> usize {
        self.parts[..self.shape.carries]
            .iter()
            .map(|(_, t)| t.numel())
            .sum()
    }

    /// Elements of each replay carry (none without replay).
    pub fn replay_lens(&self) -> Vec<usize> {
        let types = self.replay.as_ref().map(|r| r.func.result_types());
        types
            .unwrap_or_default()
            .iter()
            .map(|t| t.numel())
            .collect()
    }
}

/// The plan of a whole function: what the lowering reads.
pub struct Plan {
    pub kinds: ValueMap<Kind>,
    /// Home of every storage owner (`None` for values without storage).
    pub homes: ValueMap<Option<Home>>,
    /// Where a scalar is stored when computed: a workspace slot if a later chunk reads it, or
    /// its place inside the concat that reads it.
    pub slots: ValueMap<Option<Home>>,
    /// Which fused values each root's loop computes.
    pub groups: Groups,
    pub units: Vec<Unit>,
    /// The values of every `Unit::Loop`.
    pub loop_roots: Vec<Value>,
    /// `chunks[c]` is the range of `units` that chunk `c` emits.
    pub chunks: Vec<Range<usize>>,
    /// One-element values loaded where they are used, never stored.
    pub loads: ValueMap<Option<Load>>,
    /// Concat operands computed in place inside the concat (which then skips them).
    pub in_place: ValueMap<bool>,
    /// Constant tensors to write into a new workspace.
    pub consts: Vec<Constant>,
    pub workspace_len: usize,
    /// For a matmul whose B is read across its rows (`memory::packed_len`), the workspace
    /// offset (in elements) of the row-major copy of B its unit makes first.
    pub packs: ValueMap<Option<usize>>,
    /// For one-element values that are register views of another (a reshape of a scalar),
    /// the value that holds the register; every other value maps to itself.
    pub scalar_source: ValueMap<Value>,
    /// For a one-element `sin` or `cos`, the `cos` or `sin` of the same argument, if any.
    pub sin_cos: ValueMap<Option<Value>>,
    /// The plan of every scan.
    pub scans: ValueMap<Option<Box<ScanPlan>>>,
}

/// Plans `f` (which must verify) with chunks of about `chunk_cost` units of work.
pub fn plan(f: &Func, chunk_cost: usize) -> Plan {
    // What each value is: how many reads it has and by whom, then its kind; one-element values
    // loaded straight from immutable memory; one-element views that share a register.
    let uses = kinds::Uses::of(f);
    let kinds = kinds::kinds(f, &uses);
    let loads = kinds::loads(f, &kinds);
    // Each scan's body planned on its own (recursively, for nested scans).
    let mut scans = scan::scans(f, &kinds, &loads, chunk_cost);
    let scalar_source = kinds::scalar_sources(f, &kinds);
    let sin_cos = kinds::sin_cos_partners(f, &kinds, &scalar_source);
    // Which fused values each loop computes along the way.
    let groups = Groups::of(f, &kinds, &uses);
    // Concats that their loops read piecewise.
    let kinds = concat::pieces(f, &uses, &groups, kinds);
    // The units of code in order, then consecutive loops over one shape merged into one.
    let units::Units { units, output } = units::units(f, &kinds, &loads, &scalar_source);
    let (mut units, mut loop_roots) = fusion::merge_loops(f, &kinds, &groups, units);
    let (mut groups, mut kinds) = (groups, kinds); // Values one reduction nest reads, in it.
    share::share_in_reductions(
        f,
        &uses,
        &mut groups,
        (&mut units, &mut loop_roots),
        &mut kinds,
    );
    // Loop roots read only inside their own loop, kept in registers.
    let kinds = fusion::loop_locals(f, &uses, &groups, (&units, &loop_roots), kinds);
    // Units cut into chunks, one generated function each.
    let chunks = chunks::cut(f, &groups, &units, &loop_roots, chunk_cost);
    let chunk_of = chunks::chunk_of_values(f.num_values(), &units, &loop_roots, &chunks);
    // Concat parts computed in place inside the concat.
    let concat::InConcat {
        inside,
        in_place,
        strided,
    } = concat::in_concat(
        f,
        &concat::Facts {
            kinds: &kinds,
            uses: &uses,
            scalar_source: &scalar_source,
            output: &output,
            chunk_of: &chunk_of,
        },
    );
    // Parts inside a concat along a later axis store with the concat's strides.
    let mut kinds = kinds;
    for (v, strides) in strided {
        kinds[v] = Kind::Mem(Mem {
            storage: v,
            offset: 0,
            strides,
        });
    }
    // When each workspace range dies, and which scalars cross chunks.
    let live = liveness::liveness(
        f,
        &liveness::Facts {
            kinds: &kinds,
            loads: &loads,
            scalar_source: &scalar_source,
            groups: &groups,
            units: &units,
            loop_roots: &loop_roots,
            chunks: &chunks,
            chunk_of: &chunk_of,
            in_place: &in_place,
        },
    );
    // Homes, slots and the workspace layout.
    let memory = memory::memory(
        f,
        &memory::Facts {
            kinds: &kinds,
            output: &output,
            units: &units,
            loop_roots: &loop_roots,
            inside: &inside,
            live: &live,
        },
        &mut scans,
    );
    Plan {
        kinds,
        homes: memory.homes,
        slots: memory.slots,
        groups,
        units,
        loop_roots,
        chunks,
        loads,
        in_place,
        consts: memory.consts,
        workspace_len: memory.workspace_len,
        packs: memory.packs,
        scalar_source,
        sin_cos,
        scans,
    }
}

/// Row-major strides (in elements) of `shape`, zero past its rank.
pub fn row_major(shape: &[usize]) -> [i64; MAX_RANK] {
    let mut s = [0i64; MAX_RANK];
    let mut acc = 1i64;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i] as i64;
    }
    s
}

/// The instruction computing `v`, or `None` for a parameter.
fn inst(f: &Func, v: Value) -> Option<&Inst> {
    match f.def(v) {
        Def::Inst(k) => Some(&f.insts[k]),
        Def::Param(_) => None,
    }
}
