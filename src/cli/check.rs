//! `adjit check`: the gradient, hvp, jvp and dense Jacobian (forward and reverse mode) against
//! central differences, the jvp against the vjp, and compiled code against the interpreter,
//! printed as a report or JSON.

use crate::cli::values::number_json;
use crate::cli::{load, CliError, CliResult};
use crate::{ad_error, execute, gather_inputs, positive_finite, InputArgs, WrtArgs};
use adjit::ad;
use adjit::check::{
    check, jacobian_calls, CheckError, CheckOptions, CheckReport, JacobianCalls, Part,
};
use adjit::ir::Func;
use clap::Args;
use serde_json::{json, Value as Json};
use std::path::PathBuf;

#[derive(Args)]
pub struct CheckArgs {
    /// The .ir file (one scalar result).
    pub file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// Largest relative error of the gradient, the jvp and the Jacobian that passes (a positive
    /// finite number).
    #[arg(long, default_value_t = 1e-6, value_parser = positive_finite)]
    grad_tol: f64,
    /// Largest relative error of the hvp that passes (a positive finite number).
    #[arg(long, default_value_t = 1e-5, value_parser = positive_finite)]
    hvp_tol: f64,
    /// Coordinates checked per input (the first ones).
    #[arg(long, default_value_t = 4)]
    pub coordinates: usize,
    /// Random directions checked (this and --coordinates cannot both be 0).
    #[arg(long, default_value_t = 3)]
    pub directions: usize,
    /// Print the report as one JSON object: a part per check (gradient, hvp, jvp, jvp_vjp,
    /// jacobian).
    #[arg(long)]
    json: bool,
}

/// Compiled code against the interpreter on `f`, its gradient, hvp and jvp, and the Jacobian
/// functions `jac` (forward and reverse): how many values differ in their bits (NaN payloads
/// aside), and the largest relative difference.
fn jit_vs_interp(
    f: &Func,
    args: &CheckArgs,
    inputs: &[Vec<f64>],
    jac: Option<&JacobianCalls>,
) -> CliResult<(usize, f64)> {
    let names = args.wrt.names()?;
    let g = ad::grad(f, names.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let h = ad::hvp(f, names.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let j = ad::jvp(f, names.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let mut hin = inputs.to_vec();
    hin.extend(adjit::inputs::defaults(&h, args.inputs.seed).drain(f.params.len()..));
    let mut jin = inputs.to_vec();
    jin.extend(adjit::inputs::defaults(&j, args.inputs.seed).drain(f.params.len()..));
    let mut worst = 0.0f64;
    let mut differing = 0usize;
    let mut calls = vec![(f, inputs), (&g, inputs), (&h, &hin[..]), (&j, &jin[..])];
    if let Some(jac) = jac {
        calls.push((&jac.forward, &jac.forward_inputs[..]));
        calls.push((&jac.reverse, inputs));
    }
    for (func, ins) in calls {
        let (a, b) = (execute(func, ins, true)?, execute(func, ins, false)?);
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
                differing += 1;
                let d = (x - y).abs() / x.abs().max(y.abs());
                worst = worst.max(if d.is_nan() { f64::INFINITY } else { d });
            }
        }
    }
    Ok((differing, worst))
}

/// Prints one part of a check's report; true if it passes.
fn print_part(what: &str, p: &Part, tol: f64) -> CliResult<bool> {
    let passed = p.worst.error <= tol;
    if let Some(why) = &p.skipped {
        outln!("  {what}: not checked: {why}")?;
        return Ok(passed);
    }
    if p.compared > 0 {
        let w = &p.worst;
        outln!(
            "  {what}: largest relative error {:.2e} at {} ({:e} vs {:e}), tolerance {tol:e}: {}",
            w.error,
            w.at,
            w.computed,
            w.differenced,
            if passed { "ok" } else { "FAILED" }
        )?;
    } else {
        outln!("  {what}: no direction could be compared")?;
    }
    if !p.not_smooth.is_empty() {
        outln!(
            "    not smooth here along {}: a kink (abs, sign, floor, max, min, reduce_max, a comparison or atan2's cut) lies within the smallest step; not compared",
            p.not_smooth.join(", ")
        )?;
    }
    if !p.not_finite.is_empty() {
        outln!(
            "    not finite here along {}: the function is NaN or infinite at a point the difference uses (a domain edge, a NaN input); not compared",
            p.not_finite.join(", ")
        )?;
    }
    Ok(passed)
}

fn print_jit(differing: usize, worst: f64) -> CliResult<()> {
    let what = "compiled code vs interpreter (f, grad, hvp, jvp, jacobian)";
    if differing == 0 {
        outln!("  {what}: identical, bit for bit: ok")
    } else {
        outln!(
            "  {what}: {differing} values differ, largest relative difference {worst:.2e}: FAILED"
        )
    }
}

/// One part of a check's report as JSON (`worst` is absent when nothing was compared).
fn part_json(p: &Part, tol: f64) -> Json {
    let w = &p.worst;
    let worst = (p.compared > 0).then(|| {
        json!({
            "error": number_json(w.error),
            "at": w.at,
            "computed": number_json(w.computed),
            "differenced": number_json(w.differenced),
        })
    });
    json!({
        "worst": worst,
        "compared": p.compared,
        "not_smooth": p.not_smooth,
        "not_finite": p.not_finite,
        "skipped": p.skipped,
        "tolerance": tol,
        "passed": w.error <= tol,
    })
}

/// One row of the report: the JSON key, what the text says, the part and its tolerance.
type Row<'a> = (&'static str, &'static str, &'a Part, f64);

fn rows<'a>(r: &'a CheckReport, args: &CheckArgs) -> [Row<'a>; 5] {
    let (grad_tol, hvp_tol) = (args.grad_tol, args.hvp_tol);
    [
        (
            "gradient",
            "gradient vs central differences",
            &r.gradient,
            grad_tol,
        ),
        ("hvp", "hvp vs differences of gradients", &r.hvp, hvp_tol),
        ("jvp", "jvp vs central differences", &r.jvp, grad_tol),
        (
            "jvp_vjp",
            "jvp vs vjp (<w, J u> = <J^T w, u>)",
            &r.jvp_vjp,
            grad_tol,
        ),
        (
            "jacobian",
            "Jacobian (forward and reverse mode) vs central differences",
            &r.jacobian,
            grad_tol,
        ),
    ]
}

/// What the report concludes besides its rows.
struct Verdict {
    /// The forward Jacobian was checked on the function restricted to the directions.
    restricted: bool,
    /// Values in which compiled code and the interpreter differ, and the largest difference.
    differing: usize,
    worst_jit: f64,
    /// Every row within its tolerance.
    rows_ok: bool,
    /// Some direction was compared (or there was none to compare).
    compared_any: bool,
}

impl Verdict {
    fn passed(&self) -> bool {
        self.rows_ok && self.differing == 0 && self.compared_any
    }
}

fn print_json(r: &CheckReport, rows: &[Row<'_>], v: &Verdict) -> CliResult<()> {
    let mut j = serde_json::Map::new();
    for (key, _, p, tol) in rows {
        j.insert(key.to_string(), part_json(p, *tol));
    }
    j["jacobian"]["forward_restricted"] = json!(v.restricted);
    j.insert("value".into(), number_json(r.value));
    j.insert("checks".into(), json!(r.checks));
    j.insert("compared_any".into(), json!(v.compared_any));
    let jit = json!({
        "differing": v.differing,
        "largest_relative_difference": number_json(v.worst_jit),
    });
    j.insert("jit_vs_interp".into(), jit);
    j.insert("passed".into(), json!(v.passed()));
    outln!("{}", Json::Object(j))
}

fn print_text(f: &Func, r: &CheckReport, rows: &[Row<'_>], v: &Verdict) -> CliResult<()> {
    outln!(
        "@{}: value {:?}, {} directions checked",
        f.name,
        r.value,
        r.checks
    )?;
    for (key, what, p, tol) in rows {
        print_part(what, p, *tol)?;
        if *key == "jacobian" && v.restricted {
            outln!("    forward mode on the function restricted to the directions checked (t -> f(x + sum t_k u_k)): the inputs have more elements than there are directions")?;
        }
    }
    print_jit(v.differing, v.worst_jit)?;
    if !v.compared_any {
        outln!("  nothing was compared: no direction is smooth and finite here, so nothing is verified: FAILED")?;
    }
    Ok(())
}

pub fn check_command(args: &CheckArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let opts = CheckOptions {
        coordinates: args.coordinates,
        directions: args.directions,
        seed: args.inputs.seed,
    };
    let failed = |e: CheckError| match e {
        CheckError::Ad(e) => ad_error(&args.file, e),
        other => CliError(format!("{}: {other}", args.file.display())),
    };
    let names = args.wrt.names()?;
    let r = check(&f, names.as_deref(), &inputs, &opts).map_err(failed)?;
    // `check` has reported a Jacobian beyond the limits of a value as skipped.
    let jac = match r.jacobian.skipped {
        Some(_) => None,
        None => Some(jacobian_calls(&f, names.as_deref(), &inputs, &opts).map_err(failed)?),
    };
    let (differing, worst_jit) = jit_vs_interp(&f, args, &inputs, jac.as_ref())?;
    let rows = rows(&r, args);
    let verdict = Verdict {
        restricted: jac.as_ref().is_some_and(|j| j.restricted),
        differing,
        worst_jit,
        rows_ok: rows.iter().all(|(_, _, p, tol)| p.worst.error <= *tol),
        // Directions of which none could be compared with differences verified nothing: that
        // does not pass (the jvp against the vjp needs no difference). With no differentiated
        // element there is no direction, and nothing to verify.
        compared_any: r.checks == 0
            || rows
                .iter()
                .any(|(key, _, p, _)| *key != "jvp_vjp" && p.compared > 0),
    };
    if args.json {
        print_json(&r, &rows, &verdict)?;
    } else {
        print_text(&f, &r, &rows, &verdict)?;
    }
    if !verdict.compared_any {
        Err(CliError(format!(
            "{}: no derivative could be compared with finite differences at these inputs (the function is not finite or not smooth along every direction checked)",
            args.file.display()
        )))
    } else if verdict.passed() {
        Ok(())
    } else {
        Err(CliError(format!(
            "{}: derivatives differ from finite differences beyond tolerance",
            args.file.display()
        )))
    }
}
