//! The attributes of `scan`, a loop kept as a loop: its body function (`Body`), its
//! checkpointing policy (`Checkpoint`), and the layout of its operands and its packed result
//! (`ScanShape`).
//!
//! `scan` follows JAX's `lax.scan`. Its operands are `consts` loop-invariant values, `carries`
//! initial carries, then per-step inputs `xs`, each sliced along its leading axis of size
//! `length`. Each step calls the body on `(consts, carries, x_i)`; the body returns the new
//! carries and the step's outputs `y_i`. With `reverse`, steps run from `length - 1` down to 0.
//!
//! A `replay` scan (always `reverse`) also takes `replay_init` operands (after `consts`) and a second function, the
//! replay step: it runs the trajectory `r_0 = replay_init`, `r_{i+1} = replay(consts, r_i, x_i)`
//! (its `x` are the first of the scan's `xs`), and step `i` of the body sees `r_i` between its
//! consts and its carries. The adjoint of a scan under `binomial` checkpointing is such a scan:
//! the executor keeps at most `s` of the `r_i` and recomputes the others (Griewank–Walther).
//!
//! The result is one f64 vector holding every result, flattened and packed in order: the final
//! carries, then each stacked output `ys_j` of type `[length] + type(y_j)`. `Builder::scan`
//! slices it back into tensors; the slices are views, free in compiled code. Every operand and
//! result of a scan is f64.

use super::func::Func;
use super::op::Op;
use super::types::{DType, Type};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A function a `scan` calls, shared: compared by content, hashed by its outline.
#[derive(Clone)]
pub struct Body(pub Arc<Func>);

impl Body {
    pub fn new(f: Func) -> Body {
        Body(Arc::new(f))
    }

    pub fn func(&self) -> &Func {
        &self.0
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for Body {}

impl Hash for Body {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
        self.0.params.len().hash(state);
        self.0.insts.len().hash(state);
        self.0.results.hash(state);
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0.name)
    }
}

/// What the forward sweep of a scan stores for its adjoint (`checkpoint=` in the text; README,
/// "Loops").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Checkpoint {
    /// `all` when every step's residuals fit in `AUTO_ALL_BYTES`, else `carry`. Not printed.
    #[default]
    Auto,
    /// Every step's residuals: the values the body's adjoint reads. Fastest, most memory.
    All,
    /// Only the carry entering each step; the adjoint recomputes the step before reversing it.
    Carry,
    /// Griewank–Walther binomial checkpointing with this many stored carries (at least 1).
    Binomial(u32),
}

/// Under `Checkpoint::Auto`, the most bytes the residuals of all steps may take for `all`.
pub const AUTO_ALL_BYTES: u64 = 1 << 20;

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checkpoint::Auto => f.write_str("auto"),
            Checkpoint::All => f.write_str("all"),
            Checkpoint::Carry => f.write_str("carry"),
            Checkpoint::Binomial(s) => write!(f, "binomial({s})"),
        }
    }
}

impl Checkpoint {
    /// Reads the text spelling (`all`, `carry`, `binomial(50)`, `auto`).
    pub fn parse(word: &str) -> Option<Checkpoint> {
        match word {
            "auto" => Some(Checkpoint::Auto),
            "all" => Some(Checkpoint::All),
            "carry" => Some(Checkpoint::Carry),
            _ => {
                let inner = word.strip_prefix("binomial(")?.strip_suffix(')')?;
                let s: u32 = inner.trim().parse().ok()?;
                (s >= 1).then_some(Checkpoint::Binomial(s))
            }
        }
    }
}

/// The operand groups and result parts of one scan, from its attributes and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanShape {
    pub consts: usize,
    /// Replay carries (0 unless the scan has a replay step).
    pub replays: usize,
    pub carries: usize,
    pub xs: usize,
    pub ys: usize,
    pub length: usize,
    /// Types of the carries (as the body sees them).
    pub carry_types: Vec<Type>,
    /// Types of one step's outputs (as the body returns them; the result stacks `length`).
    pub y_types: Vec<Type>,
}

impl ScanShape {
    /// The layout of a scan with `operands` operands, or why its counts do not fit the body.
    pub fn new(
        body: &Func,
        replay: Option<&Func>,
        consts: u32,
        carries: u32,
        length: u32,
        operands: usize,
    ) -> Result<ScanShape, String> {
        let (consts, carries) = (consts as usize, carries as usize);
        let replays = replay.map_or(0, |r| r.results.len());
        let fixed = consts + replays + carries;
        if operands < fixed {
            return Err(format!(
                "takes {consts} consts, {replays} replay carries and {carries} carries, but has \
                 {operands} operands"
            ));
        }
        let xs = operands - fixed;
        if body.params.len() != operands {
            return Err(format!(
                "body @{} takes {} parameters, but the scan passes {operands} ({consts} consts, \
                 {replays} replay carries, {carries} carries, {xs} xs)",
                body.name,
                body.params.len()
            ));
        }
        if body.results.len() < carries {
            return Err(format!(
                "body @{} returns {} values, fewer than its {carries} carries",
                body.name,
                body.results.len()
            ));
        }
        let start = consts + replays;
        let carry_types: Vec<Type> = body.params[start..start + carries]
            .iter()
            .map(|p| p.ty)
            .collect();
        let y_types = body.results[carries..]
            .iter()
            .map(|&r| body.value_type(r))
            .collect::<Vec<_>>();
        Ok(ScanShape {
            consts,
            replays,
            carries,
            xs,
            ys: body.results.len() - carries,
            length: length as usize,
            carry_types,
            y_types,
        })
    }

    /// The layout of the scan `op` with `operands` operands (an error for another op).
    pub fn of(op: &Op, operands: usize) -> Result<ScanShape, String> {
        match op {
            Op::Scan {
                body,
                replay,
                consts,
                carries,
                length,
                ..
            } => {
                let replay = replay.as_ref().map(|r| r.func());
                ScanShape::new(body.func(), replay, *consts, *carries, *length, operands)
            }
            other => Err(format!("{} is not a scan", other.name())),
        }
    }

    /// Index of the first operand of each group: consts, replay carries, carries, xs.
    pub fn replay_start(&self) -> usize {
        self.consts
    }
    pub fn carry_start(&self) -> usize {
        self.consts + self.replays
    }
    pub fn xs_start(&self) -> usize {
        self.consts + self.replays + self.carries
    }

    /// The stacked type of a per-step value of type `t`: `[length] + t.shape`.
    pub fn stacked(&self, t: Type) -> Result<Type, String> {
        let mut dims = vec![self.length];
        dims.extend(t.shape.iter());
        Type::try_new(t.dtype, &dims).map_err(|e| e.message)
    }

    /// The parts of the packed result in order (final carries, then stacked ys) with their
    /// offsets, and the total element count.
    pub fn parts(&self) -> Result<(Vec<(usize, Type)>, usize), String> {
        let mut off = 0usize;
        let mut parts = Vec::with_capacity(self.carries + self.ys);
        let stacked: Result<Vec<Type>, String> =
            self.y_types.iter().map(|&t| self.stacked(t)).collect();
        for t in self.carry_types.iter().copied().chain(stacked?) {
            parts.push((off, t));
            off = off
                .checked_add(t.numel())
                .ok_or_else(|| "the packed result is too large".to_string())?;
        }
        Ok((parts, off))
    }

    /// The packed result's type, `f64[total]`.
    pub fn result_type(&self) -> Result<Type, String> {
        let (_, total) = self.parts()?;
        Type::try_new(DType::F64, &[total]).map_err(|e| e.message)
    }
}
