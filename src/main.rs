//! `adjit`: the command line. Evaluates and prints `.ir` functions; later issues add the
//! derivative, checking and benchmarking commands. User errors print `file:line:col: message`
//! (or a plain message for arguments) and exit with status 1; usage errors exit with status 2.

mod cli;

use adjit::interp::Program;
use adjit::ir::Func;
use clap::{Args, Parser, Subcommand};
use cli::values::{apply_inputs, to_json, to_text};
use cli::{load, CliError, CliResult};
use std::path::PathBuf;
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
    /// Print a function's IR after parsing and verifying it.
    Show(ShowArgs),
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
    inputs: InputArgs,
    /// Print {"outputs": [...]}: one entry per result, a number or nested arrays.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ShowArgs {
    /// The .ir file.
    file: PathBuf,
}

/// The values of every parameter: seeded defaults, overridden by the arguments.
fn gather_inputs(f: &Func, args: &InputArgs) -> CliResult<Vec<Vec<f64>>> {
    let mut values = adjit::inputs::defaults(f, args.seed);
    apply_inputs(f, &mut values, &args.inputs, &args.input)?;
    Ok(values)
}

fn eval(args: &EvalArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    let inputs = gather_inputs(&f, &args.inputs)?;
    let prog = Program::new(&f).map_err(|e| CliError(e.to_string()))?;
    let mut ws = prog.workspace();
    let types = f.result_types();
    let mut outs: Vec<Vec<f64>> = types.iter().map(|t| vec![0.0; t.numel()]).collect();
    {
        let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
        let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        prog.run(&mut ws, &ins, &mut refs)
            .map_err(|e| CliError(e.to_string()))?;
    }
    if args.json {
        let list: Vec<serde_json::Value> = outs
            .iter()
            .zip(&types)
            .map(|(o, t)| to_json(o, *t))
            .collect();
        println!("{}", serde_json::json!({ "outputs": list }));
    } else {
        for (i, (o, t)) in outs.iter().zip(&types).enumerate() {
            println!("{i}: {t} = {}", to_text(o, *t));
        }
    }
    Ok(())
}

fn show(args: &ShowArgs) -> CliResult<()> {
    let f = load(&args.file)?;
    print!("{f}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Eval(a) => eval(a),
        Command::Show(a) => show(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
