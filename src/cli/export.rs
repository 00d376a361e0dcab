//! `adjit export`: a function and, on request, its gradient, hvp and dense Jacobian compiled
//! into one object file with a C header (`jit::export`), and optionally a shared library
//! linked by the system C compiler.

use crate::cli::{load, CliError, CliResult};
use crate::{ad_error, wrt_slots, WrtArgs};
use adjit::ad::{self, JacobianMode};
use adjit::ir::Func;
use adjit::jit::export::{is_c_identifier, Entry};
use adjit::jit::Jit;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Args)]
pub struct ExportArgs {
    /// The .ir file.
    file: PathBuf,
    /// Also export NAME_grad: the value, then the gradient per differentiated input (one
    /// scalar result).
    #[arg(long)]
    grad: bool,
    /// Also export NAME_hvp: its arguments are the function's, then one direction per
    /// differentiated input; its results the value, the gradient and the Hessian-vector
    /// product per input.
    #[arg(long)]
    hvp: bool,
    /// Also export NAME_jac: the results, then the dense Jacobian of each result by each
    /// differentiated input, of shape result.shape + input.shape.
    #[arg(long)]
    jac: bool,
    #[command(flatten)]
    wrt: WrtArgs,
    /// Also link DIR/NAME.so with the system C compiler ($CC, else cc).
    #[arg(long)]
    shared: bool,
    /// Where to write: DIR/NAME.o and DIR/NAME.h; NAME, a C identifier, prefixes every symbol.
    #[arg(short = 'o', long = "output", value_name = "DIR/NAME")]
    output: PathBuf,
    /// The target triple [default: this machine's].
    #[arg(long)]
    target: Option<String>,
}

/// The functions to export, with their C names and result names.
fn entries(f: &Func, args: &ExportArgs, name: &str) -> CliResult<Vec<(String, Func, Vec<String>)>> {
    let file = &args.file;
    let wrt = args.wrt.names();
    let results = f.results.len();
    let values: Vec<String> = if results == 1 {
        vec!["value".to_string()]
    } else {
        (0..results).map(|i| format!("value{i}")).collect()
    };
    let mut out = vec![(name.to_string(), f.clone(), values.clone())];
    let needs_slots = args.grad || args.hvp || args.jac;
    let slots = if needs_slots {
        wrt_slots(f, &args.wrt, file)?
    } else {
        Vec::new()
    };
    let per_input =
        |stem: &str| -> Vec<String> { slots.iter().map(|(x, _)| format!("{stem}_{x}")).collect() };
    if args.grad {
        let g = ad::grad(f, wrt.as_deref()).map_err(|e| ad_error(file, e))?;
        let names = [vec!["value".to_string()], per_input("grad")].concat();
        out.push((format!("{name}_grad"), g, names));
    }
    if args.hvp {
        let h = ad::hvp(f, wrt.as_deref()).map_err(|e| ad_error(file, e))?;
        let names = [
            vec!["value".to_string()],
            per_input("grad"),
            per_input("hvp"),
        ]
        .concat();
        out.push((format!("{name}_hvp"), h, names));
    }
    if args.jac {
        let j =
            ad::jacobian(f, wrt.as_deref(), JacobianMode::Auto).map_err(|e| ad_error(file, e))?;
        let mut names = values.clone();
        for v in &values {
            let stem = if results == 1 {
                "jac".to_string()
            } else {
                format!("jac_{v}")
            };
            names.extend(per_input(&stem));
        }
        out.push((format!("{name}_jac"), j, names));
    }
    Ok(out)
}

pub fn export(args: &ExportArgs) -> CliResult<()> {
    let start = Instant::now();
    let name = args
        .output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    if !is_c_identifier(&name) {
        return Err(CliError(format!(
            "-o {}: the file name `{name}` must be a C identifier ([A-Za-z_][A-Za-z0-9_]*): it \
             prefixes every exported symbol",
            args.output.display()
        )));
    }
    let f = load(&args.file)?;
    let funcs = entries(&f, args, &name)?;
    let list: Vec<Entry> = funcs
        .iter()
        .map(|(n, func, outputs)| Entry {
            name: n.clone(),
            func,
            outputs: outputs.clone(),
        })
        .collect();
    let exported = Jit::default()
        .export(&name, &list, args.target.as_deref())
        .map_err(|e| CliError(format!("{}: {e}", args.file.display())))?;
    let object = args.output.with_extension("o");
    let header = args.output.with_extension("h");
    write(&object, &exported.object)?;
    write(&header, exported.header.as_bytes())?;
    let mut written = vec![object.display().to_string(), header.display().to_string()];
    if args.shared {
        let library = args.output.with_extension("so");
        link_shared(&object, &library)?;
        written.push(library.display().to_string());
    }
    let names: Vec<&str> = funcs.iter().map(|(n, ..)| n.as_str()).collect();
    outln!(
        "exported {} ({} bytes of machine code) in {:.1} ms: {}",
        names.join(", "),
        exported.code_bytes,
        start.elapsed().as_secs_f64() * 1e3,
        written.join(", ")
    )
}

fn write(path: &Path, bytes: &[u8]) -> CliResult<()> {
    std::fs::write(path, bytes)
        .map_err(|e| CliError(format!("{}: cannot write the file: {e}", path.display())))
}

/// Links `object` into the shared library `library` with `$CC` (default `cc`) and the C math
/// library.
fn link_shared(object: &Path, library: &Path) -> CliResult<()> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let result = Command::new(&cc)
        .arg("-shared")
        .arg("-o")
        .arg(library)
        .arg(object)
        .arg("-lm")
        .output();
    match result {
        Err(e) => Err(CliError(format!(
            "--shared: cannot run the C compiler `{cc}` ({e}); install one (gcc or clang) or set \
             CC, or link {} yourself: cc -shared -o {} {} -lm",
            object.display(),
            library.display(),
            object.display()
        ))),
        Ok(out) if !out.status.success() => Err(CliError(format!(
            "--shared: `{cc} -shared` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))),
        Ok(_) => Ok(()),
    }
}
