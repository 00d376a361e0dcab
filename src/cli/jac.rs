//! `adjit jac` and `adjit hessian`: dense Jacobians (`ad::jacobian`, forward, reverse or auto)
//! and Hessians (`ad::hessian`) in one compiled call, printed as text or JSON.

use crate::cli::values::{to_json, to_text};
use crate::cli::{load, CliError, CliResult};
use crate::{ad_error, execute, gather_inputs, wrt_slots, EngineArgs, InputArgs, WrtArgs};
use adjit::ad::{self, JacobianMode};
use adjit::ir::{DType, Type};
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value as Json};
use std::path::PathBuf;

/// How `jac` computes the Jacobian.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Forward vector mode: one direction per input element.
    Fwd,
    /// Reverse vector mode: one cotangent per result element.
    Rev,
    /// Forward when the inputs have at most as many elements as the results, else reverse.
    Auto,
}

impl Mode {
    pub fn jacobian_mode(self) -> JacobianMode {
        match self {
            Mode::Fwd => JacobianMode::Forward,
            Mode::Rev => JacobianMode::Reverse,
            Mode::Auto => JacobianMode::Auto,
        }
    }
}

#[derive(Args)]
pub struct JacArgs {
    /// The .ir file (any results).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    /// Forward or reverse vector mode, or whichever has fewer directions.
    #[arg(long, value_enum, default_value = "auto")]
    mode: Mode,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// Print {"outputs": [...], "jacobian": [{"NAME": J, ...}, ...]}: one object per result,
    /// each J of shape result.shape + input.shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct HessianArgs {
    /// The .ir file (one scalar result).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// Print {"value": y, "grad": {"NAME": ...}, "hessian": {"A": {"B": H_AB, ...}, ...}},
    /// each H_AB of shape A.shape + B.shape.
    #[arg(long)]
    json: bool,
}

fn block(r: Type, a: Type) -> Type {
    let shape: Vec<usize> = r.shape.iter().chain(a.shape.iter()).collect();
    Type::f64(&shape)
}

pub fn jac(args: &JacArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let names = args.wrt.names()?;
    let j = ad::jacobian(&f, names.as_deref(), args.mode.jacobian_mode())
        .map_err(|e| ad_error(&args.file, e))?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let outs = execute(&j, &inputs, args.engine.interp)?;
    let types = f.result_types();
    let (results, blocks) = outs.split_at(types.len());
    let per = slots.len();
    if args.json {
        let list: Vec<Json> = results
            .iter()
            .zip(&types)
            .map(|(o, t)| to_json(o, *t))
            .collect();
        let jacobian: Vec<Json> = types
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let m: Map<String, Json> = slots
                    .iter()
                    .enumerate()
                    .map(|(a, (n, t))| (n.clone(), to_json(&blocks[i * per + a], block(*r, *t))))
                    .collect();
                Json::Object(m)
            })
            .collect();
        outln!("{}", json!({ "outputs": list, "jacobian": jacobian }))?;
    } else {
        for (i, (o, t)) in results.iter().zip(&types).enumerate() {
            outln!("{i}: {t} = {}", to_text(o, *t))?;
        }
        for (i, r) in types.iter().enumerate() {
            for (a, (n, t)) in slots.iter().enumerate() {
                let ty = block(*r, *t);
                outln!(
                    "jacobian {i} {n}: {ty} = {}",
                    to_text(&blocks[i * per + a], ty)
                )?;
            }
        }
    }
    Ok(())
}

pub fn hessian(args: &HessianArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let results = f.result_types();
    if results.len() != 1 || results[0] != Type::scalar().with_dtype(DType::F64) {
        let types: Vec<String> = results.iter().map(|t| t.to_string()).collect();
        return Err(CliError(format!(
            "{}: hessian needs one scalar f64 result, but @{} returns ({}); `adjit jac` gives the Jacobian of any function",
            args.file.display(),
            f.name,
            types.join(", ")
        )));
    }
    let names = args.wrt.names()?;
    let h = ad::hessian(&f, names.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let outs = execute(&h, &inputs, args.engine.interp)?;
    let k = slots.len();
    let (grads, blocks) = outs[1..].split_at(k);
    if args.json {
        let grad: Map<String, Json> = slots
            .iter()
            .zip(grads)
            .map(|((n, t), g)| (n.clone(), to_json(g, *t)))
            .collect();
        let hess: Map<String, Json> = slots
            .iter()
            .enumerate()
            .map(|(a, (na, ta))| {
                let row: Map<String, Json> = slots
                    .iter()
                    .enumerate()
                    .map(|(b, (nb, tb))| (nb.clone(), to_json(&blocks[a * k + b], block(*ta, *tb))))
                    .collect();
                (na.clone(), Json::Object(row))
            })
            .collect();
        outln!(
            "{}",
            json!({ "value": to_json(&outs[0], Type::scalar()), "grad": grad, "hessian": hess })
        )?;
    } else {
        outln!("value: f64[] = {}", to_text(&outs[0], Type::scalar()))?;
        for ((n, t), g) in slots.iter().zip(grads) {
            outln!("grad {n}: {t} = {}", to_text(g, *t))?;
        }
        for (a, (na, ta)) in slots.iter().enumerate() {
            for (b, (nb, tb)) in slots.iter().enumerate() {
                let ty = block(*ta, *tb);
                outln!(
                    "hessian {na} {nb}: {ty} = {}",
                    to_text(&blocks[a * k + b], ty)
                )?;
            }
        }
    }
    Ok(())
}
