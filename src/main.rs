//! `adjit`: the command line. Evaluates, differentiates, checks and prints `.ir` functions.
//! User errors print `file:line:col: message` (or a plain message for arguments) and exit with
//! status 1; usage errors exit with status 2.

/// Prints a line of results through `cli::output::write_out`; evaluates to a `CliResult<()>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints results without a newline, as `outln!` does.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::cli::output::write_out(format_args!($($arg)*))
    };
}

mod cli;

use adjit::ad;
use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::{Func, Type};
use adjit::jit;
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use cli::values::{apply_values, split_assignment, to_json, to_text, Slots};
use cli::{load, CliError, CliResult};
use serde_json::{json, Map, Value as Json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "adjit",
    version,
    about = "A JIT-compiling graph differentiator: evaluate, differentiate and benchmark .ir functions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a function and print its results.
    Eval(EvalArgs),
    /// Evaluate a function and its gradient.
    Grad(GradArgs),
    /// Evaluate a function, its gradient and a Hessian-vector product.
    Hvp(HvpArgs),
    /// Evaluate a function with any results and a vector-Jacobian product: the cotangents of
    /// its inputs, given one cotangent per result (by default all ones, which gives the
    /// gradient of the sum of every result's elements).
    Vjp(VjpArgs),
    /// Evaluate a function with any results and a Jacobian-vector product (forward mode): the
    /// tangent of each result, given one tangent per differentiated input (by default all
    /// ones; name the inputs to move with --wrt).
    Jvp(JvpArgs),
    /// Evaluate a function with any results and its dense Jacobian, in one compiled call
    /// (forward or reverse vector mode).
    Jac(cli::jac::JacArgs),
    /// Evaluate a function with one scalar result, its gradient and its dense Hessian
    /// (forward-over-reverse in vector mode).
    Hessian(cli::jac::HessianArgs),
    /// Print a function's IR after parsing and verifying it (or its gradient or hvp).
    Show(ShowArgs),
    /// Measure models: instruction counts, compile time, and time per call of f, f+grad and
    /// hvp, interpreted and compiled. With no file, the shipped models.
    Bench(BenchArgs),
    /// Compare the gradient, the jvp and the dense Jacobian (forward and reverse mode) with
    /// central differences, the hvp with differences of gradients, the jvp with the vjp, and
    /// compiled code with the interpreter; exit with status 1 on failure. Directions along
    /// which a kink (abs, sign, floor, max, min, a comparison, reduce_max, atan2's cut) stays
    /// within the shrunken step are reported as not smooth, and directions along which the
    /// function is not finite (a domain edge, a NaN input) as not finite; neither is compared.
    Check(cli::check::CheckArgs),
    /// Compile a function (and on request its gradient, hvp and Jacobian) into an object file
    /// with a C header, for C, C++ and Fortran programs: DIR/NAME.o and DIR/NAME.h.
    Export(cli::export::ExportArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// .ir files to measure (one scalar result each) [default: the shipped models].
    files: Vec<PathBuf>,
    /// A fast pass with fewer, shorter samples.
    #[arg(long)]
    quick: bool,
    /// Print a JSON array, one object per model, instead of the table.
    #[arg(long)]
    json: bool,
    /// Also draw the times as an SVG bar chart.
    #[arg(long, value_name = "PATH.svg", conflicts_with = "batch")]
    plot: Option<PathBuf>,
    /// Instead of the table: time one batch call of SETS compiled f+grad evaluations (set i:
    /// the default inputs of seed i) on each of --threads, beside SETS sequential calls, and
    /// check that every thread count gives the sequential calls' bits [default model:
    /// pendulum].
    #[arg(long, value_name = "SETS")]
    batch: Option<usize>,
    /// Thread counts for --batch, comma-separated; speed-ups are over the first.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "1,2",
        requires = "batch"
    )]
    threads: Vec<usize>,
}

/// Which executor runs the function.
#[derive(Args)]
struct EngineArgs {
    /// Run the tape interpreter instead of compiled code.
    #[arg(long)]
    interp: bool,
}

/// Which inputs to differentiate.
#[derive(Args)]
struct WrtArgs {
    /// Inputs to differentiate, comma-separated [default: every f64 input not marked data].
    #[arg(long, value_delimiter = ',', value_name = "NAMES", value_parser = input_name)]
    wrt: Vec<String>,
}

impl WrtArgs {
    /// The names given, or `None` for the default; a name given twice is an error (as an
    /// input or a tangent given twice is).
    fn names(&self) -> CliResult<Option<Vec<&str>>> {
        for (i, name) in self.wrt.iter().enumerate() {
            if self.wrt[..i].contains(name) {
                return Err(CliError(format!("--wrt names '{name}' twice")));
            }
        }
        Ok((!self.wrt.is_empty()).then(|| self.wrt.iter().map(String::as_str).collect()))
    }
}

/// Where input values come from; anything not given takes seeded defaults.
#[derive(Args)]
struct InputArgs {
    /// An input: NAME=v1,v2,... (flat, row-major) or NAME=PATH.json. Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUES")]
    input: Vec<String>,
    /// A JSON object of several inputs, e.g. {"x": [1, 2], "X": [[1, 2], [3, 4]]}. Repeatable.
    #[arg(long = "inputs", value_name = "PATH.json")]
    inputs: Vec<String>,
    /// Seed of the generator that draws the inputs not given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct EvalArgs {
    /// The .ir file.
    file: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// Print {"outputs": [...]}: one entry per result, a number or nested arrays.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct GradArgs {
    /// The .ir file (one scalar result).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// Print {"grad": {"NAME": ...}, "value": y}, each gradient in its input's shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HvpArgs {
    /// The .ir file (one scalar result).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// The direction for an input: NAME=v1,v2,... or NAME=PATH.json. Inputs given no direction
    /// take zero [default, when no direction is given: seeded random].
    #[arg(long = "v", value_name = "NAME=VALUES")]
    v: Vec<String>,
    /// A JSON object of directions keyed by input name.
    #[arg(long = "vs", value_name = "PATH.json")]
    vs: Vec<String>,
    /// How to compute the hvp: fwdrev (forward over reverse) or revrev (reverse over reverse).
    #[arg(long, value_name = "MODE", default_value_t = ad::HvpMode::DEFAULT, value_parser = hvp_mode)]
    mode: ad::HvpMode,
    /// Print {"grad": {...}, "hvp": {"NAME": ...}, "value": y}, keyed by input name.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VjpArgs {
    /// The .ir file (any results).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// The cotangent of one f64 result (a bool result has none), named by its position in the
    /// return list (0, 1, ...) or by the name of the returned value: RESULT=v1,v2,... or
    /// RESULT=PATH.json [default: all ones]. Repeatable.
    #[arg(long = "ct", value_name = "RESULT=VALUES")]
    ct: Vec<String>,
    /// Print {"outputs": [...], "grad": {"NAME": ...}}: the results, then the cotangent of each
    /// differentiated input in its input's shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct JvpArgs {
    /// The .ir file (any results).
    file: PathBuf,
    #[command(flatten)]
    wrt: WrtArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    /// The tangent of one differentiated input: NAME=v1,v2,... or NAME=PATH.json; inputs given
    /// no tangent take all ones [default: all ones]. Repeatable.
    #[arg(long = "t", value_name = "NAME=VALUES")]
    t: Vec<String>,
    /// A JSON object of tangents keyed by input name.
    #[arg(long = "ts", value_name = "PATH.json")]
    ts: Vec<String>,
    /// Print {"outputs": [...], "tangents": [...]}: one entry per result each (a bool result's
    /// tangent is zeros).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[group(multiple = false)]
struct TransformFlags {
    /// Show the gradient function (simplified).
    #[arg(long)]
    grad: bool,
    /// Show the Hessian-vector-product function (simplified).
    #[arg(long)]
    hvp: bool,
    /// Show the Jacobian-vector-product function (forward mode, simplified).
    #[arg(long)]
    jvp: bool,
}

#[derive(Args)]
struct ShowArgs {
    /// The .ir file.
    file: PathBuf,
    #[command(flatten)]
    transform: TransformFlags,
    #[command(flatten)]
    wrt: WrtArgs,
}

/// A flag's value that must be a positive finite number, such as a tolerance: NaN, an infinity,
/// zero or a negative value is a usage error.
fn positive_finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!("must be a positive finite number, not {x}")),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

/// One name of `--wrt`, without the spaces around it (`--wrt 'x, y'`, as `-i 'x=1, 2'`).
fn input_name(text: &str) -> Result<String, String> {
    Ok(text.trim().to_string())
}

fn hvp_mode(text: &str) -> Result<ad::HvpMode, String> {
    ad::HvpMode::from_name(text).ok_or_else(|| format!("'{text}' is not a mode (fwdrev, revrev)"))
}

/// The values of every parameter: seeded defaults, overridden by the arguments.
fn gather_inputs(f: &Func, args: &InputArgs) -> CliResult<Vec<Vec<f64>>> {
    let mut values =
        adjit::inputs::try_defaults(f, args.seed).map_err(|e| CliError(e.to_string()))?;
    apply_values(&Slots::inputs(f), &mut values, &args.inputs, &args.input)?;
    Ok(values)
}

/// Runs `f` once on `inputs`, compiled (or interpreted with `interp`), and returns its results.
fn execute(f: &Func, inputs: &[Vec<f64>], interp: bool) -> CliResult<Vec<Vec<f64>>> {
    let fail = |e: &dyn std::fmt::Display| CliError(format!("@{}: {e}", f.name));
    let outs = if interp {
        Program::new(f).map_err(|e| fail(&e))?.eval(inputs)
    } else {
        jit::compile(f).map_err(|e| fail(&e))?.eval(inputs)
    };
    outs.map_err(|e| fail(&e))
}

/// An AD error, prefixed with the file it concerns.
fn ad_error(file: &Path, e: ad::AdError) -> CliError {
    let shown = file.display();
    match e {
        ad::AdError::NotScalar { .. } => CliError(format!(
            "{shown}: {e} (`adjit jac {shown}` prints the Jacobian; `adjit vjp {shown}` takes --ct RESULT=VALUES for the results' cotangents)"
        )),
        _ => CliError(format!("{shown}: {e}")),
    }
}

/// The differentiated inputs of `f`, as (name, type) in order.
fn wrt_slots(f: &Func, wrt: &WrtArgs, file: &Path) -> CliResult<Vec<(String, Type)>> {
    let names = wrt.names()?;
    let idx = ad::resolve_wrt(f, names.as_deref()).map_err(|e| ad_error(file, e))?;
    Ok(idx
        .iter()
        .map(|&i| (f.params[i].name.clone(), f.params[i].ty))
        .collect())
}

/// The inputs of `f` that are not among the differentiated `slots`.
fn undifferentiated(f: &Func, slots: &[(String, Type)]) -> Vec<String> {
    f.params
        .iter()
        .filter(|p| !slots.iter().any(|(n, _)| *n == p.name))
        .map(|p| p.name.clone())
        .collect()
}

/// `{"NAME": value, ...}` for buffers named by `slots`.
fn keyed(slots: &[(String, Type)], values: &[Vec<f64>]) -> Json {
    let map: Map<String, Json> = slots
        .iter()
        .zip(values)
        .map(|((n, t), v)| (n.clone(), to_json(v, *t)))
        .collect();
    Json::Object(map)
}

/// Prints `LABEL NAME: TYPE = VALUE` for each of `slots`.
fn print_named(label: &str, slots: &[(String, Type)], values: &[Vec<f64>]) -> CliResult<()> {
    for ((n, t), v) in slots.iter().zip(values) {
        outln!("{label} {n}: {t} = {}", to_text(v, *t))?;
    }
    Ok(())
}

fn bench_command(args: &BenchArgs) -> CliResult<()> {
    // Read every file first, so that a bad argument fails before any measuring.
    let mut models: Vec<(String, String)> = Vec::new();
    if args.files.is_empty() && args.batch.is_some() {
        let m = adjit::models::find("pendulum").expect("pendulum is shipped");
        models.push((m.name.to_string(), m.text.to_string()));
    } else if args.files.is_empty() {
        // bench measures grad and hvp: vector-valued models (bratu) are left out.
        for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
            models.push((m.name.to_string(), m.text.to_string()));
        }
    }
    for path in &args.files {
        let f = load(path)?;
        let results = f.result_types();
        if results.len() != 1
            || !results[0].is_scalar()
            || results[0].dtype != adjit::ir::DType::F64
        {
            return Err(CliError(format!(
                "{}: bench needs a function with one scalar f64 result (for grad and hvp)",
                path.display()
            )));
        }
        ad::resolve_wrt(&f, None).map_err(|e| ad_error(path, e))?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        models.push((name, f.to_string()));
    }
    if let Some(path) = &args.plot {
        cli::bench::check_writable(path)?;
    }
    let budget = if args.quick {
        cli::measure::Budget::QUICK
    } else {
        cli::measure::Budget::NORMAL
    };
    if let Some(sets) = args.batch {
        return bench_batch(args, &models, sets, budget);
    }
    let mut reports = Vec::new();
    let total = models.len();
    for (i, (name, text)) in models.iter().enumerate() {
        note(format_args!("[{}/{total}] {name}", i + 1));
        let r = cli::measure::measure(name, text, budget)
            .map_err(|e| CliError(format!("{name}: {e}")))?;
        reports.push(r);
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&cli::bench::to_json(&reports)).unwrap_or_default()
        )?;
    } else {
        out!("{}", cli::bench::table(&reports))?;
    }
    if let Some(path) = &args.plot {
        cli::bench::plot(&reports, path)?;
        note(format_args!("wrote {}", path.display()));
    }
    Ok(())
}

/// `adjit bench --batch SETS`: one batch call of SETS f+grad sets per thread count.
fn bench_batch(
    args: &BenchArgs,
    models: &[(String, String)],
    sets: usize,
    budget: cli::measure::Budget,
) -> CliResult<()> {
    if sets == 0 || args.threads.contains(&0) {
        return Err(CliError(
            "--batch and --threads need counts of at least 1".to_string(),
        ));
    }
    let mut reports = Vec::new();
    for (i, (name, text)) in models.iter().enumerate() {
        note(format_args!("[{}/{}] {name}", i + 1, models.len()));
        reports.push(cli::batch::measure(
            name,
            text,
            sets,
            &args.threads,
            budget,
        )?);
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&cli::batch::to_json(&reports)).unwrap_or_default()
        )?;
    } else {
        out!("{}", cli::batch::table(&reports))?;
    }
    Ok(())
}

fn eval(args: &EvalArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let types = f.result_types();
    let outs = execute(&f, &inputs, args.engine.interp)?;
    if args.json {
        let list: Vec<Json> = outs
            .iter()
            .zip(&types)
            .map(|(o, t)| to_json(o, *t))
            .collect();
        outln!("{}", json!({ "outputs": list }))?;
    } else {
        for (i, (o, t)) in outs.iter().zip(&types).enumerate() {
            outln!("{i}: {t} = {}", to_text(o, *t))?;
        }
    }
    Ok(())
}

fn grad(args: &GradArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let g = ad::grad(&f, args.wrt.names()?.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let outs = execute(&g, &inputs, args.engine.interp)?;
    if args.json {
        outln!(
            "{}",
            json!({ "value": to_json(&outs[0], Type::scalar()), "grad": keyed(&slots, &outs[1..]) })
        )?;
    } else {
        outln!("value: f64[] = {}", to_text(&outs[0], Type::scalar()))?;
        print_named("grad", &slots, &outs[1..])?;
    }
    Ok(())
}

fn hvp(args: &HvpArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let h = ad::hvp_with(&f, args.wrt.names()?.as_deref(), args.mode)
        .map_err(|e| ad_error(&args.file, e))?;
    let mut inputs = gather_inputs(&f, &args.inputs)?;
    // The directions are the hvp function's last parameters, one per differentiated input:
    // seeded random when none is given, else zero for every input not given one.
    let all = adjit::inputs::defaults(&h, args.inputs.seed);
    let mut dirs = all[f.params.len()..].to_vec();
    if !args.v.is_empty() || !args.vs.is_empty() {
        dirs.iter_mut().for_each(|d| d.fill(0.0));
    }
    let dir_slots = Slots {
        kind: "direction",
        func: &f.name,
        slots: slots.clone(),
        objects_flag: Some("--vs"),
        label: "NAME",
        undifferentiated: undifferentiated(&f, &slots),
    };
    apply_values(&dir_slots, &mut dirs, &args.vs, &args.v)?;
    inputs.extend(dirs);
    let outs = execute(&h, &inputs, args.engine.interp)?;
    let k = slots.len();
    if args.json {
        outln!(
            "{}",
            json!({
                "value": to_json(&outs[0], Type::scalar()),
                "grad": keyed(&slots, &outs[1..1 + k]),
                "hvp": keyed(&slots, &outs[1 + k..]),
            })
        )?;
    } else {
        outln!("value: f64[] = {}", to_text(&outs[0], Type::scalar()))?;
        print_named("grad", &slots, &outs[1..1 + k])?;
        print_named("hvp", &slots, &outs[1 + k..])?;
    }
    Ok(())
}

/// The names of the returned values of `f`, in order.
fn result_names(f: &Func) -> Vec<String> {
    let names = adjit::ir::Names::new(f);
    f.results.iter().map(|&r| names.get(r)).collect()
}

/// How messages name result `i`, returning `name`: `0 (y)`.
fn result_label(i: usize, name: &str) -> String {
    format!("{i} ({name})")
}

/// Rewrites `--ct RESULT=VALUES` arguments to name results by their labels: a result may be
/// named by its position or, if no other result returns a value of that name, by its value's
/// name; either way, only once.
fn cotangents_by_label(f: &Func, cts: &[String]) -> CliResult<Vec<String>> {
    let result_names = result_names(f);
    let known = || {
        let list: Vec<String> = result_names
            .iter()
            .enumerate()
            .map(|(i, n)| result_label(i, n))
            .collect();
        list.join(", ")
    };
    let mut out = Vec::with_capacity(cts.len());
    let mut given: Vec<Option<&String>> = vec![None; result_names.len()];
    for arg in cts {
        let (name, values) = split_assignment(arg, "cotangent", "RESULT")?;
        let by_name: Vec<usize> = (0..result_names.len())
            .filter(|&i| result_names[i] == name)
            .collect();
        let index = match name.parse::<usize>() {
            Ok(i) if i < result_names.len() => i,
            _ if by_name.len() == 1 => by_name[0],
            _ if by_name.len() > 1 => {
                return Err(CliError(format!(
                    "cotangent '{arg}': @{} returns '{name}' more than once; name the result by its position (results: {})",
                    f.name,
                    known()
                )))
            }
            _ => {
                return Err(CliError(format!(
                    "cotangent '{arg}': @{} has no result '{name}' (results: {})",
                    f.name,
                    known()
                )))
            }
        };
        let ty = f.result_types()[index];
        if ty.dtype != adjit::ir::DType::F64 {
            return Err(CliError(format!(
                "cotangent '{arg}': result {} of @{} is {ty}, which has no cotangent (only f64 results take --ct)",
                result_label(index, &result_names[index]),
                f.name
            )));
        }
        if let Some(first) = given[index].replace(arg) {
            return Err(CliError(format!(
                "the cotangent of result {} is given twice (in '{first}' and '{arg}')",
                result_label(index, &result_names[index])
            )));
        }
        out.push(format!(
            "{}={values}",
            result_label(index, &result_names[index])
        ));
    }
    Ok(out)
}

fn vjp(args: &VjpArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let v = ad::vjp(&f, args.wrt.names()?.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let mut inputs = gather_inputs(&f, &args.inputs)?;
    // The cotangents are the vjp function's last parameters, one per result.
    let types = f.result_types();
    let ct_slots = Slots {
        kind: "cotangent",
        func: &f.name,
        slots: result_names(&f)
            .iter()
            .zip(&types)
            .enumerate()
            .map(|(i, (n, t))| (result_label(i, n), *t))
            .collect(),
        objects_flag: None,
        label: "RESULT",
        undifferentiated: Vec::new(),
    };
    let mut cts: Vec<Vec<f64>> = types.iter().map(|t| vec![1.0; t.numel()]).collect();
    apply_values(
        &ct_slots,
        &mut cts,
        &[],
        &cotangents_by_label(&f, &args.ct)?,
    )?;
    inputs.extend(cts);
    let outs = execute(&v, &inputs, args.engine.interp)?;
    let (results, grads) = outs.split_at(types.len());
    if args.json {
        let list: Vec<Json> = results
            .iter()
            .zip(&types)
            .map(|(o, t)| to_json(o, *t))
            .collect();
        outln!(
            "{}",
            json!({ "outputs": list, "grad": keyed(&slots, grads) })
        )?;
    } else {
        for (i, (o, t)) in results.iter().zip(&types).enumerate() {
            outln!("{i}: {t} = {}", to_text(o, *t))?;
        }
        print_named("grad", &slots, grads)?;
    }
    Ok(())
}

fn jvp(args: &JvpArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let slots = wrt_slots(&f, &args.wrt, &args.file)?;
    let j = ad::jvp(&f, args.wrt.names()?.as_deref()).map_err(|e| ad_error(&args.file, e))?;
    let mut inputs = gather_inputs(&f, &args.inputs)?;
    // The tangents are the jvp function's last parameters, one per differentiated input.
    let t_slots = Slots {
        kind: "tangent",
        func: &f.name,
        slots: slots.clone(),
        objects_flag: Some("--ts"),
        label: "NAME",
        undifferentiated: undifferentiated(&f, &slots),
    };
    let mut ts: Vec<Vec<f64>> = slots.iter().map(|(_, t)| vec![1.0; t.numel()]).collect();
    apply_values(&t_slots, &mut ts, &args.ts, &args.t)?;
    inputs.extend(ts);
    let outs = execute(&j, &inputs, args.engine.interp)?;
    let types = f.result_types();
    let (results, tangents) = outs.split_at(types.len());
    let tangent_type = |t: &Type| t.with_dtype(adjit::ir::DType::F64);
    if args.json {
        let list = |vs: &[Vec<f64>], tangent: bool| -> Vec<Json> {
            vs.iter()
                .zip(&types)
                .map(|(o, t)| to_json(o, if tangent { tangent_type(t) } else { *t }))
                .collect()
        };
        outln!(
            "{}",
            json!({ "outputs": list(results, false), "tangents": list(tangents, true) })
        )?;
    } else {
        for (i, (o, t)) in results.iter().zip(&types).enumerate() {
            outln!("{i}: {t} = {}", to_text(o, *t))?;
        }
        for (i, (o, t)) in tangents.iter().zip(&types).enumerate() {
            let t = tangent_type(t);
            outln!("tangent {i}: {t} = {}", to_text(o, t))?;
        }
    }
    Ok(())
}

fn show(args: &ShowArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let wrt = args.wrt.names()?;
    let shown = if args.transform.grad {
        ad::grad(&f, wrt.as_deref()).map_err(|e| ad_error(&args.file, e))?
    } else if args.transform.hvp {
        ad::hvp(&f, wrt.as_deref()).map_err(|e| ad_error(&args.file, e))?
    } else if args.transform.jvp {
        ad::jvp(&f, wrt.as_deref()).map_err(|e| ad_error(&args.file, e))?
    } else {
        f
    };
    out!("{shown}")?;
    Ok(())
}

/// Refuses argument combinations that clap cannot express, as clap refuses the others: a usage
/// message and exit status 2.
fn refuse_bad_usage(cli: &Cli) {
    if let Command::Check(a) = &cli.command {
        if a.coordinates == 0 && a.directions == 0 {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                "check: --coordinates 0 with --directions 0 would check nothing; ask for at least one\n",
            )
            .exit();
        }
    }
}

/// Writes a line to standard error; a closed or full standard error is ignored (there is
/// nowhere left to report it).
fn note(args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{args}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    refuse_bad_usage(&cli);
    let result = match &cli.command {
        Command::Eval(a) => eval(a),
        Command::Grad(a) => grad(a),
        Command::Hvp(a) => hvp(a),
        Command::Vjp(a) => vjp(a),
        Command::Jvp(a) => jvp(a),
        Command::Jac(a) => cli::jac::jac(a),
        Command::Hessian(a) => cli::jac::hessian(a),
        Command::Show(a) => show(a),
        Command::Check(a) => cli::check::check_command(a),
        Command::Bench(a) => bench_command(a),
        Command::Export(a) => cli::export::export(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away: nothing is wrong that anyone would see.
        Err(e) if e.is_reader_gone() => ExitCode::SUCCESS,
        Err(e) => {
            note(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}
