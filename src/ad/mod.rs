//! Reverse mode as an IR transform: `vjp`, `grad` and `hvp` take a function and return a new one.
//! Forward mode (`jvp`) is in `jvp.rs` and shares the entry checks, names and `finish`.
//!
//! The result holds the forward instructions first, then the adjoint sweep, which reads the
//! forward values (nothing is recomputed). The sweep is the seed's backward pass: walk the tape
//! in reverse, take the cotangent of each instruction's result, apply its VJP rule
//! (`crate::ops::vjp`), accumulate into the operands' cotangents. Cotangents are `Option`s:
//! absent means zero, and no zero tensor is built unless an output needs one. Only values that
//! depend on a differentiated input get cotangents.
//!
//! Rules emit IR with the Builder, so the transforms apply to their own output: `hvp` is the
//! forward transform of the gradient function (`HvpMode::FwdRev`, the default) or the reverse
//! transform of `x -> <grad f(x), v>` (`HvpMode::RevRev`), giving value, gradient and
//! Hessian-vector product in one function; the Hessian is never formed. Every input is
//! verified first (an invalid function is `AdError::Invalid`, never a panic), and every result
//! is simplified (`crate::simplify`) and verified. Nothing here recurses over the graph, and nothing knows of Cranelift.

mod jacobian;
mod jvp;
mod limits;
mod scan;
mod scan_sums;

pub use jacobian::{hessian, jacobian, JacobianMode};
pub use jvp::{jvp, jvp_vector, tangent_name};

use crate::ir::{
    verify, Builder, DType, Dims, Func, Names, Op, Role, Type, Value, Var, VerifyError,
};
use crate::ops::{layout, Cotangent};
use crate::simplify::{batch_products, dce, simplifying_builder};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Why a function cannot be differentiated as asked.
#[derive(Debug, Clone, PartialEq)]
pub enum AdError {
    NoSuchInput {
        func: String,
        name: String,
        inputs: Vec<String>,
    },
    NotDifferentiable {
        name: String,
        ty: Type,
    },
    /// No input is differentiated: `data_inputs` f64 inputs are all marked data (or there
    /// is none, if 0).
    NothingToDifferentiate {
        func: String,
        data_inputs: usize,
    },
    /// `wrt` is an empty list (where `None` means every f64 input not marked data).
    EmptyWrt {
        func: String,
    },
    NotScalar {
        func: String,
        results: Vec<Type>,
    },
    /// An op of `func` has no JVP rule (a bug in adjit: every op has one).
    NoJvpRule {
        func: String,
        op: String,
    },
    /// The function given fails verification (for example one from
    /// `Builder::finish_unverified`); nothing was differentiated.
    Invalid(VerifyError),
    /// A transform produced a function that fails verification: a bug in adjit.
    Internal(VerifyError),
    /// A value the derivative needs exceeds the limits of a value (rank, elements): a dense
    /// Jacobian or Hessian block, a value with its directions in vector mode, or what a scan
    /// stacks along its steps (`limits`).
    TooLarge {
        func: String,
        what: String,
    },
}

impl fmt::Display for AdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdError::NoSuchInput { func, name, inputs } => {
                write!(
                    f,
                    "@{func} has no input '{name}' (its inputs: {})",
                    inputs.join(", ")
                )
            }
            AdError::NotDifferentiable { name, ty } => {
                write!(
                    f,
                    "input '{name}' has type {ty}; only f64 inputs can be differentiated"
                )
            }
            AdError::NothingToDifferentiate {
                func,
                data_inputs: 0,
            } => write!(f, "@{func} has no f64 input to differentiate"),
            AdError::NothingToDifferentiate { func, .. } => write!(
                f,
                "@{func} has no input to differentiate: every f64 input is marked data (choose \
                 inputs with wrt, `--wrt NAMES` on the command line)"
            ),
            AdError::EmptyWrt { func } => write!(
                f,
                "@{func}: the inputs to differentiate (wrt) are an empty list; name at least one, \
                 or give none (None) for every f64 input not marked data"
            ),
            AdError::NotScalar { func, results } => {
                let types: Vec<String> = results.iter().map(|t| t.to_string()).collect();
                write!(
                    f,
                    "grad, hvp, the Hessian and check need one scalar f64 result, but @{func} returns ({}); for other results use vjp, jvp or the Jacobian (jac)",
                    types.join(", ")
                )
            }
            AdError::NoJvpRule { func, op } => {
                write!(f, "@{func}: op {op} has no JVP rule")
            }
            AdError::Invalid(e) => write!(f, "cannot differentiate an invalid function: {e}"),
            AdError::TooLarge { func, what } => write!(
                f,
                "@{func}: the derivative needs {what}, beyond the limits of a value"
            ),
            AdError::Internal(e) => write!(
                f,
                "internal error, please report: the transform produced invalid IR: {e}"
            ),
        }
    }
}

impl std::error::Error for AdError {}

/// The entry check of every transform: `f` must pass the verifier, so that the transforms (and
/// the Builder they emit through) only ever see well-typed functions.
fn verified(f: &Func) -> Result<(), AdError> {
    verify(f).map_err(AdError::Invalid)
}

/// The inputs to differentiate: the named ones, or by default every f64 input not marked data.
/// Reads only the parameters, so it needs (and does) no verification.
pub fn resolve_wrt(f: &Func, wrt: Option<&[&str]>) -> Result<Vec<usize>, AdError> {
    if wrt.is_some_and(|names| names.is_empty()) {
        return Err(AdError::EmptyWrt {
            func: f.name.clone(),
        });
    }
    let indices: Vec<usize> = match wrt {
        Some(names) => names
            .iter()
            .map(|n| {
                f.param_index(n).ok_or_else(|| AdError::NoSuchInput {
                    func: f.name.clone(),
                    name: n.to_string(),
                    inputs: f.params.iter().map(|p| p.name.clone()).collect(),
                })
            })
            .collect::<Result<_, _>>()?,
        None => (0..f.params.len())
            .filter(|&i| f.params[i].role == Role::Wrt && f.params[i].ty.dtype == DType::F64)
            .collect(),
    };
    for &i in &indices {
        let p = &f.params[i];
        if p.ty.dtype != DType::F64 {
            return Err(AdError::NotDifferentiable {
                name: p.name.clone(),
                ty: p.ty,
            });
        }
    }
    let mut unique = indices.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.is_empty() {
        let data_inputs = f.params.iter().filter(|p| p.ty.dtype == DType::F64).count();
        return Err(AdError::NothingToDifferentiate {
            func: f.name.clone(),
            data_inputs,
        });
    }
    Ok(indices.into_iter().fold(Vec::new(), |mut acc, i| {
        if !acc.contains(&i) {
            acc.push(i);
        }
        acc
    }))
}

pub(crate) fn check_scalar(f: &Func) -> Result<(), AdError> {
    let results = f.result_types();
    if results.len() != 1 || results[0] != Type::scalar() {
        return Err(AdError::NotScalar {
            func: f.name.clone(),
            results,
        });
    }
    Ok(())
}

/// Where the cotangents of the outputs come from.
enum Seed {
    /// One new parameter per result (`vjp`).
    Params,
    /// Cotangent 1 for the scalar result at this index, none for the others (`grad`, `hvp`).
    One(usize),
}

/// Hands out names that no value of a function uses yet: `base`, or `base_1`, `base_2`, ...
struct FreshNames(HashSet<String>);

impl FreshNames {
    fn of(f: &Func) -> FreshNames {
        let names = Names::new(f);
        FreshNames(
            (0..f.num_values())
                .map(|i| names.get(Value(i as u32)))
                .collect(),
        )
    }

    fn get(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.0.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// The forward instructions of `f` followed by the adjoint sweep, unsimplified. The result
/// returns the results of `f` listed in `keep`, then the cotangent of every input in `wrt`.
fn transform(
    f: &Func,
    name: String,
    wrt: &[usize],
    seed: Seed,
    keep: &[usize],
) -> Result<Func, AdError> {
    let expanded = scan::expand_replays(f, wrt)?;
    let f = expanded.as_ref().unwrap_or(f);
    let b = simplifying_builder(name, 3 * f.insts.len());
    let mut map: Vec<Value> = Vec::with_capacity(f.num_values());
    for p in &f.params {
        map.push(b.param_with(&p.name, p.ty, p.role, p.init).value());
    }
    let mut seeds: Vec<(Value, Var<'_>)> = Vec::new();
    if let Seed::Params = seed {
        let names = Names::new(f);
        let mut fresh = FreshNames::of(f);
        for &r in &f.results {
            let n = fresh.get(&format!("{}_bar", names.get(r)));
            let ty = f.value_type(r);
            seeds.push((r, b.param_with(&n, ty, Role::Data, None)));
        }
    }
    let active = activity(f, wrt);
    let reaches = reaching(f, &seed);
    // Forward: re-emit every instruction (hash-consing merges duplicates); a scan that will
    // get a cotangent stores what its adjoint needs.
    let mut tapes = HashMap::new();
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k).index();
        let args: Vec<Value> = inst.args.iter().map(|a| map[a.index()]).collect();
        let v = if matches!(inst.op, Op::Scan { .. }) && active[v] && reaches[v] {
            let needs: Vec<bool> = inst.args.iter().map(|a| active[a.index()]).collect();
            let vars = args.iter().map(|&a| b.var(a)).collect();
            let (value, tape) = scan::forward(&b, &inst.op, vars, &needs)?;
            tapes.insert(k, tape);
            value.value()
        } else {
            b.op(inst.op.clone(), &args).value()
        };
        if let Some(n) = &inst.name {
            b.name_if_unnamed(v, n);
        }
        debug_assert_eq!(map.len(), f.params.len() + k);
        map.push(v);
    }
    if let Seed::One(i) = seed {
        seeds.push((f.results[i], b.scalar(1.0)));
    }
    // The sweep.
    let mut adj = Adjoints {
        dense: vec![None; f.num_values()],
        pieces: HashMap::new(),
    };
    for (v, g) in seeds {
        if active[v.index()] {
            adj.add(v.index(), g);
        }
    }
    let mut needs = Vec::new();
    let mut args = Vec::new();
    for k in (0..f.insts.len()).rev() {
        let v = f.inst_value(k).index();
        let Some(g) = adj.take(&b, v, f.insts[k].ty) else {
            continue;
        };
        let inst = &f.insts[k];
        needs.clear();
        needs.extend(inst.args.iter().map(|a| active[a.index()]));
        args.clear();
        args.extend(inst.args.iter().map(|a| b.var(map[a.index()])));
        let cts = match tapes.get(&k) {
            Some(tape) => scan::adjoint(&b, tape, g)?,
            None => crate::ops::vjp(&inst.op, &args, b.var(map[v]), g, &needs),
        };
        for ((a, ct), &need) in inst.args.iter().zip(cts).zip(needs.iter()) {
            if let (Some(ct), true) = (ct, need) {
                adj.add_cotangent(a.index(), ct);
            }
        }
    }
    let mut results: Vec<Value> = keep.iter().map(|&i| map[f.results[i].index()]).collect();
    for &i in wrt {
        let ct = match adj.take(&b, i, f.params[i].ty) {
            Some(ct) => ct,
            None => b.splat(0.0, &f.params[i].ty.shape.to_vec()),
        };
        results.push(ct.value());
    }
    Ok(b.finish_unverified(&results))
}

/// Which values depend on an input being differentiated (only f64 values carry cotangents).
fn activity(f: &Func, wrt: &[usize]) -> Vec<bool> {
    let mut active = vec![false; f.num_values()];
    for &i in wrt {
        active[i] = true;
    }
    for (k, inst) in f.insts.iter().enumerate() {
        let v = f.inst_value(k).index();
        active[v] = inst.ty.dtype == DType::F64 && inst.args.iter().any(|a| active[a.index()]);
    }
    active
}

/// Which values a seeded result depends on: only those can get a cotangent.
fn reaching(f: &Func, seed: &Seed) -> Vec<bool> {
    let mut reaches = vec![false; f.num_values()];
    match seed {
        Seed::Params => f.results.iter().for_each(|r| reaches[r.index()] = true),
        Seed::One(i) => reaches[f.results[*i].index()] = true,
    }
    for k in (0..f.insts.len()).rev() {
        if reaches[f.inst_value(k).index()] {
            for a in f.insts[k].args.iter() {
                reaches[a.index()] = true;
            }
        }
    }
    reaches
}

/// The cotangents of a function's values during the sweep: dense contributions are summed as
/// they come; placed ones (from `slice`, see `ops::Cotangent`) are kept as pieces and assembled
/// once, by `ops::layout::assemble`, when the cotangent is taken.
struct Adjoints<'b> {
    dense: Vec<Option<Var<'b>>>,
    pieces: HashMap<usize, Vec<(Dims, Var<'b>)>>,
}

impl<'b> Adjoints<'b> {
    /// Adds a contribution: the first one is stored, later ones are summed.
    fn add(&mut self, v: usize, ct: Var<'b>) {
        let slot = &mut self.dense[v];
        *slot = Some(match *slot {
            None => ct,
            Some(prev) => prev + ct,
        });
    }

    fn add_piece(&mut self, v: usize, start: Dims, ct: Var<'b>) {
        if ct.ty().numel() > 0 {
            self.pieces.entry(v).or_default().push((start, ct));
        }
    }

    fn add_cotangent(&mut self, v: usize, ct: Cotangent<'b>) {
        match ct {
            Cotangent::Dense(ct) => self.add(v, ct),
            Cotangent::Placed { start, value } => self.add_piece(v, start, value),
        }
    }

    /// The whole cotangent of `v` (of type `ty`), if it has any; it is then cleared.
    fn take(&mut self, b: &'b Builder, v: usize, ty: Type) -> Option<Var<'b>> {
        let dense = self.dense[v].take();
        let Some(pieces) = self.pieces.remove(&v) else {
            return dense;
        };
        let assembled = layout::assemble(b, ty, pieces);
        Some(match dense {
            None => assembled,
            Some(d) => d + assembled,
        })
    }
}

/// Drops what the outputs do not need (the builder has simplified already), moves the outer
/// products scans accumulate after their loops (`scan_sums`), batches products that share a
/// matrix (`batch_products`), and verifies.
fn finish(f: Func) -> Result<Func, AdError> {
    let f = batch_products(scan_sums::hoist_scan_sums(dce(f)));
    verify(&f).map_err(AdError::Internal)?;
    Ok(f)
}

/// `f.vjp(inputs..., ybar...) -> (outputs..., xbar...)`: the vector-Jacobian product for any `f`.
/// The cotangent parameters are named after the results (`<result>_bar`) and marked data.
pub fn vjp(f: &Func, wrt: Option<&[&str]>) -> Result<Func, AdError> {
    verified(f)?;
    let wrt = resolve_wrt(f, wrt)?;
    let keep: Vec<usize> = (0..f.results.len()).collect();
    finish(transform(
        f,
        format!("{}.vjp", f.name),
        &wrt,
        Seed::Params,
        &keep,
    )?)
}

/// `f.grad(inputs...) -> (y, grad...)` for a function with one scalar result: its value and
/// its gradient with respect to each input in `wrt`, in that order.
pub fn grad(f: &Func, wrt: Option<&[&str]>) -> Result<Func, AdError> {
    verified(f)?;
    check_scalar(f)?;
    let wrt = resolve_wrt(f, wrt)?;
    finish(transform(
        f,
        format!("{}.grad", f.name),
        &wrt,
        Seed::One(0),
        &[0],
    )?)
}

/// The name of the direction parameter for input `name` in an hvp function (unless taken).
pub fn direction_name(name: &str) -> String {
    format!("v_{name}")
}

/// How `hvp` computes the Hessian-vector product. Both give the same function signature and
/// the same values (to rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HvpMode {
    /// Forward over reverse: the jvp of the gradient function, along `v`.
    FwdRev,
    /// Reverse over reverse: the gradient of `x -> <grad f(x), v>`.
    RevRev,
}

impl HvpMode {
    /// The mode `hvp` uses: the faster on the shipped models (README, "Results").
    pub const DEFAULT: HvpMode = HvpMode::FwdRev;
    /// Every mode: forward over reverse, then reverse over reverse.
    pub const ALL: [HvpMode; 2] = [HvpMode::FwdRev, HvpMode::RevRev];

    /// The name on the command line: `fwdrev` or `revrev`.
    pub fn name(self) -> &'static str {
        match self {
            HvpMode::FwdRev => "fwdrev",
            HvpMode::RevRev => "revrev",
        }
    }

    /// The mode named `s` (as `name` spells it), if any.
    pub fn from_name(s: &str) -> Option<HvpMode> {
        HvpMode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl Default for HvpMode {
    fn default() -> HvpMode {
        HvpMode::DEFAULT
    }
}

impl fmt::Display for HvpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `f.hvp(inputs..., v...) -> (y, grad..., Hv...)`: value, gradient and Hessian-vector product
/// for a function with one scalar result, one direction `v_<name>` per input in `wrt` (marked
/// data), in the default mode (`HvpMode::DEFAULT`). The Hessian is never formed.
pub fn hvp(f: &Func, wrt: Option<&[&str]>) -> Result<Func, AdError> {
    hvp_with(f, wrt, HvpMode::DEFAULT)
}

/// `hvp` in the given mode: the same parameters, results and names in either.
pub fn hvp_with(f: &Func, wrt: Option<&[&str]>, mode: HvpMode) -> Result<Func, AdError> {
    hvp_results(f, wrt, mode, HvpResults::WithGrad)
}

/// `f.hvp_only(inputs..., v...) -> (Hv...)`: the Hessian-vector product alone, in `mode`. It is
/// `hvp_with`'s function without the value and the gradient, and without the work only they
/// need. This is what a loop that calls it many times at one point wants (Newton-CG's inner
/// iterations), and what JAX's `jvp(grad(f), (x,), (v,))[1]` computes.
pub fn hvp_only(f: &Func, wrt: Option<&[&str]>, mode: HvpMode) -> Result<Func, AdError> {
    hvp_results(f, wrt, mode, HvpResults::ProductOnly)
}

/// Which results an hvp function returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HvpResults {
    /// `(y, grad..., Hv...)`.
    WithGrad,
    /// `(Hv...)`.
    ProductOnly,
}

fn hvp_results(
    f: &Func,
    wrt: Option<&[&str]>,
    mode: HvpMode,
    results: HvpResults,
) -> Result<Func, AdError> {
    verified(f)?;
    check_scalar(f)?;
    let wrt = resolve_wrt(f, wrt)?;
    let g = finish(transform(
        f,
        format!("{}.grad", f.name),
        &wrt,
        Seed::One(0),
        &[0],
    )?)?;
    let name = match results {
        HvpResults::WithGrad => format!("{}.hvp", f.name),
        HvpResults::ProductOnly => format!("{}.hvp_only", f.name),
    };
    match mode {
        HvpMode::FwdRev => jvp::hvp_fwdrev(name, &g, &wrt, results),
        HvpMode::RevRev => hvp_revrev(name, &g, &wrt, results),
    }
}

/// Reverse over reverse: the gradient of `x, v -> <grad f(x), v>`, keeping `(y, grad...)`
/// unless only the product is wanted; `g` is the gradient function of `f` for the inputs
/// `wrt`.
fn hvp_revrev(name: String, g: &Func, wrt: &[usize], wanted: HvpResults) -> Result<Func, AdError> {
    // x, v -> (y, grad..., <grad, v>)
    let b = simplifying_builder(name.clone(), g.insts.len());
    let mut map: Vec<Value> = Vec::with_capacity(g.num_values());
    for p in &g.params {
        map.push(b.param_with(&p.name, p.ty, p.role, p.init).value());
    }
    let mut fresh = FreshNames::of(g);
    let dirs: Vec<Var<'_>> = wrt
        .iter()
        .map(|&i| {
            let n = fresh.get(&direction_name(&g.params[i].name));
            b.param_with(&n, g.params[i].ty, Role::Data, None)
        })
        .collect();
    for inst in &g.insts {
        let args: Vec<Value> = inst.args.iter().map(|a| map[a.index()]).collect();
        let v = b.op(inst.op.clone(), &args).value();
        if let Some(n) = &inst.name {
            b.name_if_unnamed(v, n);
        }
        map.push(v);
    }
    let mut dot: Option<Var<'_>> = None;
    for (j, v) in dirs.iter().enumerate() {
        let term = (b.var(map[g.results[1 + j].index()]) * *v).sum();
        dot = Some(match dot {
            None => term,
            Some(d) => d + term,
        });
    }
    let mut results: Vec<Value> = g.results.iter().map(|r| map[r.index()]).collect();
    let k = results.len();
    results.push(dot.expect("wrt is not empty").value());
    let inner = b.finish_unverified(&results);
    let keep: Vec<usize> = match wanted {
        HvpResults::WithGrad => (0..k).collect(),
        HvpResults::ProductOnly => Vec::new(),
    };
    finish(transform(&inner, name, wrt, Seed::One(k), &keep)?)
}
